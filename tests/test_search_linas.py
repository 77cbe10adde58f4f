import numpy as np
import pytest
import torch

from hf_llama_nas import ElasticLlamaForCausalLM
from hf_llama_nas.search import LINAS, NSGA2Search, RandomSearch, SearchError, get_objective, perplexity_objective
from hf_llama_nas.search.predictors import AutoRegressor, SubnetFeaturizer
from hf_llama_nas.search.problem import GeneRepair
from hf_llama_nas.search_space import SearchSpace
from tests.search_helpers import DIMS, SPACE, loss_objective, synthetic_loss

FAST = dict(inner_population=24, inner_generations=6)


def linas(num_evals=30, seed=0, objectives=None, space=SPACE, **kwargs):
    return LINAS(space, objectives or [loss_objective(), "params"], num_evals=num_evals, population=10,
                 batch_size=5, seed=seed, **{**FAST, **kwargs})


def test_linas_is_seeded_dedups_and_spends_its_budget_exactly():
    first = linas().run(dims=DIMS, progress=False)
    second = linas().run(dims=DIMS, progress=False)
    ids = [e.id for e in first.store]
    assert len(ids) == 30 == len(set(ids))
    assert ids == [e.id for e in second.store]
    assert ids != [e.id for e in linas(seed=1).run(dims=DIMS, progress=False).store]
    rounds = first.store.rounds
    assert [r["round"] for r in rounds] == [1, 2, 3, 4]
    quality = rounds[-1]["predictors"]["loss"]
    assert quality["chosen"] in ("ridge", "svr", "trees") and set(quality["cv"][quality["chosen"]]) == {"kendall_tau", "mae"}
    assert "kendall_tau" in rounds[-1]["previous_batch"]["loss"]
    assert first.machinery_s > 0


def test_linas_finds_a_better_front_than_random_search_on_an_easy_problem():
    reference = {"ideal": {"loss": 5.0}, "reference": {"loss": 1e4}}
    hv_linas = linas(num_evals=40).run(dims=DIMS, progress=False, hypervolume_reference=reference).hypervolume()
    hv_random = RandomSearch(SPACE, [loss_objective(), "params"], num_evals=40, population=10, seed=0).run(
        dims=DIMS, progress=False, hypervolume_reference=reference).hypervolume()
    assert hv_linas["reference"] == hv_random["reference"]
    assert hv_linas["hypervolume"] > hv_random["hypervolume"]


def test_baselines_share_the_interface_and_the_initial_population():
    options = {LINAS: {"initial": "uniform"}, NSGA2Search: {}, RandomSearch: {}}
    runs = {cls.name: cls(SPACE, [loss_objective(), "params"], num_evals=20, population=10, seed=4, **kw).run(
        dims=DIMS, progress=False) for cls, kw in options.items()}
    for result in runs.values():
        assert len(result.store) == 20 and len({e.id for e in result.store}) == 20
    initial = [{e.id for e in r.store.evaluations[:10]} for r in runs.values()]
    assert initial[0] == initial[1] == initial[2]


def test_three_objectives_and_prefix_mode_and_constraints():
    objectives = [loss_objective(), get_objective("params", constraint=180_000), get_objective("macs")]
    result = linas(num_evals=20, objectives=objectives).run(dims=DIMS, progress=False)
    assert len(result.store) == 20
    assert all(e.values["params"] <= 180_000 for e in result.pareto())
    prefix = SearchSpace(num_hidden_layers=8, num_layers=(4, 6, 8), intermediate_size=(32, 64, 128), layer_mode="prefix")
    result = linas(num_evals=15, space=prefix).run(dims=DIMS, progress=False)
    assert all(e.subnet.layers == tuple(range(e.subnet.num_layers)) for e in result.store)


def test_gene_repair_gives_allowed_depths():
    repair = GeneRepair(SPACE, seed=0)
    genes = repair.repair_genes(np.array([[0] * 8, [4] * 8, [1, 0, 0, 0, 0, 0, 0, 0], [2.6, -1, 9, 0, 0, 1, 1, 1]]))
    assert all((row > 0).sum() in SPACE.num_layers for row in genes)
    assert genes.min() >= 0 and genes.max() <= 4
    for row in genes:
        SPACE.decode(row)


def test_predictor_chooses_by_held_out_error():
    featurizer = SubnetFeaturizer(SPACE)
    subnets = SPACE.sample_many(60, seed=0, unique=True)
    X = featurizer.transform_subnets(subnets)
    y = np.log([synthetic_loss(None, s) for s in subnets])
    model = AutoRegressor(seed=0).fit(X, y)
    assert set(model.cv_) == {"ridge", "svr", "trees"}
    assert model.chosen_ == min(model.cv_, key=lambda n: model.cv_[n]["mae"])
    assert model.quality_["kendall_tau"] > 0.8
    assert model.predict(X[:3]).shape == (3,)


def test_bad_settings_raise():
    with pytest.raises(SearchError, match="dims="):
        linas().run(progress=False)
    with pytest.raises(SearchError, match="num_evals"):
        LINAS(SPACE, [loss_objective(), "params"], num_evals=0)


def test_linas_on_a_tiny_elastic_model_with_perplexity(llama_dir):
    space = SearchSpace.for_model(_config(llama_dir), num_layers=(2, 3, 4),
                                  intermediate_size=(64, 128), layer_mode="any")
    model = ElasticLlamaForCausalLM.from_pretrained(llama_dir, search_space=space).eval()
    ids = torch.arange(4, 36)
    objective = perplexity_objective(ids, context_length=16)
    result = LINAS(space, [objective, "params"], num_evals=12, population=6, batch_size=3, seed=0, **FAST).run(
        model, progress=False, evaluate_full=True)
    assert len(result.store) == 12 and all(e.ok for e in result.store)
    assert result.store.reference.subnet.num_layers == 4
    assert result.store.header["model"]["num_hidden_layers"] == 4
    assert model.active_subnet.num_layers == 4


def _config(path):
    from hf_llama_nas.modeling import load_config_dict

    return load_config_dict(path)


def test_stratified_initial_population_spans_the_sizes():
    from hf_llama_nas.search.problem import stratified_sample

    sizes = sorted(s.num_parameters(DIMS) for s in stratified_sample(SPACE, 20, seed=0))
    uniform = sorted(s.num_parameters(DIMS) for s in SPACE.sample_many(20, seed=0, unique=True))
    assert len(sizes) == 20
    assert sizes[-1] - sizes[0] > uniform[-1] - uniform[0]
    result = linas(num_evals=15, initial="stratified", ensemble=True).run(dims=DIMS, progress=False)
    assert result.store.rounds[0]["predictors"]["loss"]["chosen"] == "ensemble"
    assert len(result.store) == 15


def test_targets_beyond_the_reference_are_capped():
    search = linas()
    objective = loss_objective()
    bounds = {"ideal": {"loss": 10.0}, "reference": {"loss": 1000.0}}
    y = np.log([20.0, 1e3, 1e9])
    capped = search._clip_targets(objective, y, bounds)
    cap = np.log(1000) + 0.5 * (np.log(1000) - np.log(10))
    assert capped[:2].tolist() == y[:2].tolist() and capped[2] == pytest.approx(cap)
    assert search._clip_targets(objective, y, {}).tolist() == y.tolist()
