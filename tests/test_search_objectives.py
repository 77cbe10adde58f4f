import math

import numpy as np
import pytest
import torch

from hf_llama_nas.search import ObjectiveError, get_objective
from hf_llama_nas.search.objectives import accuracy_objective, check_objectives, latency_objective, resolve_objectives
from hf_llama_nas.search.problem import CheapObjectives
from tests.search_helpers import DIMS, SPACE, loss_objective


def test_cheap_objectives_are_exact_in_bulk():
    objectives = [get_objective(n) for n in ("params", "decoder_params", "bytes_fp16", "bytes_int8", "macs")]
    cheap = CheapObjectives(objectives, SPACE, DIMS)
    subnets = SPACE.sample_many(30, seed=1)
    genes = np.array([SPACE.encode(s) for s in subnets])
    bulk = cheap.values(genes)
    for i, subnet in enumerate(subnets):
        direct = cheap.subnet_values(subnet)
        for name, value in direct.items():
            assert bulk[name][i] == value, name
    assert bulk["params"][0] == subnets[0].num_parameters(DIMS)


def test_unknown_and_conflicting_objectives_raise_clear_errors():
    with pytest.raises(ObjectiveError, match="Unknown objective 'acc'.*choose one of"):
        get_objective("acc")
    with pytest.raises(ObjectiveError, match="listed twice"):
        resolve_objectives(["params", "params"])
    with pytest.raises(ObjectiveError, match="nothing to measure"):
        check_objectives(resolve_objectives(["params", "macs"]), SPACE, DIMS)
    with pytest.raises(ObjectiveError, match="at least two objectives"):
        check_objectives([loss_objective()], SPACE, DIMS)
    tiny = get_objective("params", constraint=10)
    with pytest.raises(ObjectiveError, match="No sub-network of the search space satisfies params <= 10"):
        check_objectives([loss_objective(), tiny], SPACE, DIMS)
    with pytest.raises(ObjectiveError, match="needs at least one task"):
        accuracy_objective([])


def test_accuracy_objective_goes_through_evaluate(monkeypatch):
    import hf_llama_nas.evaluation as evaluation

    calls = []

    def fake_evaluate(model, subnet, tasks, limit=None, num_fewshot=None, **kwargs):
        calls.append((subnet, tuple(tasks), limit, num_fewshot))
        return {task: {"acc": 0.25 + 0.5 * (task == "arc_easy"), "acc_norm": 0.1} for task in tasks}

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate, raising=False)
    objective = accuracy_objective(["arc_easy", "piqa"], limit=500, num_fewshot=0)
    subnet = SPACE.sample(0)
    value, details = objective.measure(None, subnet)
    assert value == pytest.approx((0.75 + 0.25) / 2)
    assert details == {"per_task": {"arc_easy": 0.75, "piqa": 0.25}}
    assert calls == [(subnet, ("arc_easy", "piqa"), 500, 0)]
    assert objective.direction == "maximize" and objective.describe()["options"]["limit"] == 500


def test_latency_objective_times_a_model():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4))
    model.config = type("C", (), {"vocab_size": 10})()
    model.forward = lambda input_ids, use_cache=False: None
    objective = latency_objective(batch_size=2, sequence_length=8, warmup=1, repeats=3)
    value, details = objective.measure(model, SPACE.sample(0))
    assert len(details["times_s"]) == 3 and value == sorted(details["times_s"])[1]
    with pytest.raises(ObjectiveError, match="repeats >= 1"):
        latency_objective(repeats=0)


def test_log_scale_and_constraint_maths():
    loss = loss_objective()
    assert loss.transform(math.e) == pytest.approx(1.0)
    accuracy = accuracy_objective("arc_easy").with_constraint(0.5)
    assert accuracy.to_min(0.7) == -0.7
    assert accuracy.violation(0.4) == pytest.approx(0.1) and accuracy.violation(0.6) == 0.0


def test_copies_share_the_objective_and_its_function():
    import copy

    from hf_llama_nas.search.problem import SubnetProblem

    heavy = torch.nn.Linear(4, 4)
    objective = get_objective("params")
    measured = type(objective)("probe", fn=lambda model, subnet: float(heavy.weight.sum()))
    problem = copy.deepcopy(SubnetProblem(SPACE, [measured, objective]))
    assert problem.objectives[0] is measured and problem.objectives[1] is objective
