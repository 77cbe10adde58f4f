import json
import math

import pytest

from hf_llama_nas.search import LINAS, Objective, RandomSearch, ResultsError, ResultsMismatchError, ResultsStore
from hf_llama_nas.search_space import SearchSpace
from tests.search_helpers import DIMS, SPACE, loss_objective


def run_random(tmp_path, num_evals=12, resume=False, objective=None, space=SPACE):
    search = RandomSearch(space, [objective or loss_objective(), "params"], num_evals=num_evals, population=4, seed=3)
    return search.run(dims=DIMS, output_dir=tmp_path, resume=resume, progress=False)


def test_results_file_holds_everything(tmp_path):
    result = run_random(tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["search_space"] == SPACE.to_dict()
    evaluations = [line for line in lines if line["type"] == "evaluation"]
    assert len(evaluations) == 12 and len({e["id"] for e in evaluations}) == 12
    assert {"subnet", "values", "time_s", "round", "status"} <= set(evaluations[0])
    store = ResultsStore.read(tmp_path)
    assert [e.id for e in store] == [e.id for e in result.store]
    front = store.pareto()
    assert front and all(e.ok for e in front)
    hv = store.hypervolume()
    assert 0 < hv["hypervolume"] <= 1 and set(hv["reference"]) == {"loss", "params"}
    assert hv == result.hypervolume()
    best = store.best_under({"params": 150_000})
    assert best is not None and best.values["params"] <= 150_000
    assert all(e.values["loss"] >= best.values["loss"] for e in store.ok() if e.values["params"] <= 150_000)
    summary = json.loads((tmp_path / "pareto.json").read_text())
    assert [p["id"] for p in summary["pareto"]] == [e.id for e in front]


def test_truncated_last_line_is_recovered_with_a_warning(tmp_path):
    run_random(tmp_path, num_evals=6)
    path = tmp_path / "results.jsonl"
    text = path.read_text()
    path.write_text(text + '{"type": "evaluation", "id": "L5-abc", "sub')
    with pytest.warns(UserWarning, match="truncated"):
        result = run_random(tmp_path, num_evals=8, resume=True)
    assert len(result.store) == 8
    for line in path.read_text().splitlines():
        json.loads(line)


def test_refuses_to_mix_searches(tmp_path):
    run_random(tmp_path, num_evals=4)
    with pytest.raises(ResultsError, match="--resume"):
        run_random(tmp_path, num_evals=4)
    other_space = SearchSpace(num_hidden_layers=8, num_layers=(6, 7, 8), intermediate_size=(64, 128), layer_mode="any")
    with pytest.raises(ResultsMismatchError, match="different search.*search_space"):
        run_random(tmp_path, num_evals=4, resume=True, space=other_space)
    renamed = Objective("loss", fn=loss_objective().fn, scale="linear")
    with pytest.raises(ResultsMismatchError, match="objectives"):
        run_random(tmp_path, num_evals=4, resume=True, objective=renamed)
    (tmp_path / "results.jsonl").write_text('{"type": "header", "format": "hf_llama_nas.search/1"}\nnot json\n{}\n')
    with pytest.raises(ResultsError, match="line 2"):
        ResultsStore.read(tmp_path)


def test_failed_and_nan_evaluations_are_recorded_and_the_search_goes_on(tmp_path):
    calls = []

    def flaky(model, subnet):
        calls.append(subnet.id)
        if len(calls) % 5 == 1:
            raise RuntimeError("out of memory")
        if len(calls) % 5 == 2:
            return math.nan
        return loss_objective().fn(model, subnet)

    objective = Objective("loss", fn=flaky, scale="log")
    result = LINAS(SPACE, [objective, "params"], num_evals=20, population=10, batch_size=5, seed=0,
                   inner_population=20, inner_generations=3).run(dims=DIMS, output_dir=tmp_path, progress=False)
    store = ResultsStore.read(tmp_path)
    failed = [e for e in store if not e.ok]
    assert len(store) == 20 and len(failed) == 8
    assert {e.error.split(":")[0] for e in failed} == {"RuntimeError", "non-finite value for ['loss']"}
    assert all(e.ok for e in store.pareto()) and len(result.store.ok()) == 12
