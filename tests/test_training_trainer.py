"""InstaTuneTrainer: strategies, logging, accumulation, evaluation, checkpointing and resume on a tiny model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from hf_llama_nas import SubnetConfig
from hf_llama_nas.training import InstaTuneTrainer, distillation_loss
from hf_llama_nas.training.trainer import SUBNET_LOG_FILE

from .training_helpers import quiet_args, tiny_elastic, token_blocks, single_thread  # noqa: F401 (autouse fixture)


def read_plans(output_dir) -> list[dict]:
    return [json.loads(line) for line in (output_dir / SUBNET_LOG_FILE).read_text().splitlines()]


def train_logs(trainer: InstaTuneTrainer) -> list[dict]:
    return [entry for entry in trainer.state.log_history if "loss" in entry]


def test_alternate_trains_full_then_sampled_and_logs_each(llama_dir, tmp_path):
    model = tiny_elastic(llama_dir)
    trainer = InstaTuneTrainer(model=model, args=quiet_args(tmp_path), train_dataset=token_blocks())
    trainer.train()
    plans = read_plans(tmp_path)
    assert [p["step"] for p in plans] == [0, 1, 2, 3]
    assert [[n["role"] for n in p["networks"]] for p in plans] == [["full"], ["subnet"], ["full"], ["subnet"]]
    assert plans[0]["networks"][0]["subnet"] is None
    for plan in plans[1::2]:
        assert model.search_space.contains(SubnetConfig.from_dict(plan["networks"][0]["subnet"]))
    logs = train_logs(trainer)
    assert "loss_full" in logs[0] and "loss_subnet" in logs[1]
    assert logs[1]["nas_subnet_layers"] == len(plans[1]["networks"][0]["subnet"]["layers"])
    assert 0 < logs[1]["nas_subnet_params_fraction"] <= 1
    assert model.active_subnet == SubnetConfig.full(model.config)


@pytest.mark.parametrize("strategy, roles", [
    ("joint", {"loss_full", "loss_subnet", "kd_subnet"}),
    ("sandwich", {"loss_largest", "loss_smallest", "loss_random0", "kd_smallest", "kd_random0"}),
])
def test_distilling_strategies_log_every_loss_term(llama_dir, tmp_path, strategy, roles):
    trainer = InstaTuneTrainer(model=tiny_elastic(llama_dir), args=quiet_args(tmp_path, nas_strategy=strategy, max_steps=2),
                               train_dataset=token_blocks())
    trainer.train()
    logs = train_logs(trainer)
    assert roles <= set(logs[0])
    assert all(logs[0][key] >= 0 for key in roles if key.startswith("kd_"))
    total = sum(logs[0][key] for key in roles)
    assert logs[0]["loss"] == pytest.approx(total, rel=1e-3, abs=1e-3)


def test_distillation_loss_is_zero_for_identical_logits_and_ignores_unlabelled_positions():
    logits = torch.randn(2, 5, 7)
    assert distillation_loss(logits, logits, None, 5.0).item() == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(2, 5, 7)
    labels = torch.full((2, 5), -100)
    assert distillation_loss(logits, other, labels, 5.0).item() == 0.0
    labels[:, 1:] = 1
    assert distillation_loss(logits, other, labels, 5.0).item() > 0


def test_one_subnet_per_optimizer_step_under_gradient_accumulation(llama_dir, tmp_path):
    trainer = InstaTuneTrainer(
        model=tiny_elastic(llama_dir),
        args=quiet_args(tmp_path, per_device_train_batch_size=1, gradient_accumulation_steps=3, max_steps=3),
        train_dataset=token_blocks(),
    )
    seen: list[tuple[int, SubnetConfig]] = []
    original = trainer.compute_loss

    def spy(model, inputs, **kwargs):
        seen.append((trainer.state.global_step, trainer._elastic.active_subnet))
        return original(model, inputs, **kwargs)

    trainer.compute_loss = spy
    trainer.train()
    assert len(seen) == 9
    for step in range(3):
        in_step = {subnet for s, subnet in seen if s == step}
        assert len(in_step) == 1
    assert [p["step"] for p in read_plans(tmp_path)] == [0, 1, 2]


def test_gradient_checkpointing_and_bf16(llama_dir, tmp_path):
    model = tiny_elastic(llama_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = InstaTuneTrainer(model=model, args=quiet_args(tmp_path, gradient_checkpointing=True, bf16=True,
                                                            nas_strategy="joint", max_steps=2),
                               train_dataset=token_blocks())
    trainer.train()
    assert model.is_activation_checkpointing
    assert all(math.isfinite(entry["loss"]) for entry in train_logs(trainer))
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert any("mlp.down_proj" in n for n in changed)


def test_evaluation_covers_full_and_reference_subnets(llama_dir, tmp_path):
    model = tiny_elastic(llama_dir)
    trainer = InstaTuneTrainer(model=model, args=quiet_args(tmp_path, eval_strategy="steps", eval_steps=2),
                               train_dataset=token_blocks(), eval_dataset=token_blocks(4, seed=1))
    assert set(trainer.reference_subnets) == {"smallest", "middle"}
    trainer.train()
    metrics = trainer.evaluate()
    for prefix in ("eval", "eval_smallest", "eval_middle"):
        assert metrics[f"{prefix}_perplexity"] == pytest.approx(math.exp(metrics[f"{prefix}_loss"]), rel=1e-6)
    assert metrics["eval_smallest_loss"] != metrics["eval_loss"]
    assert any("eval_middle_loss" in entry for entry in trainer.state.log_history)
    with model.subnet(trainer.reference_subnets["smallest"]):
        loss = trainer.evaluate(metric_key_prefix="again")["again_smallest_loss"]
    assert loss == pytest.approx(metrics["eval_smallest_loss"], rel=1e-6)


def test_resume_samples_the_same_sequence_and_reaches_the_same_weights(llama_dir, tmp_path):
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    args = dict(max_steps=6, save_strategy="steps", save_steps=3, nas_seed=7)
    straight = tiny_elastic(llama_dir)
    InstaTuneTrainer(model=straight, args=quiet_args(full_dir, **args), train_dataset=token_blocks()).train()
    checkpoint = full_dir / "checkpoint-3"
    assert (checkpoint / "instatune_sampler.json").is_file()

    resumed = tiny_elastic(llama_dir)
    trainer = InstaTuneTrainer(model=resumed, args=quiet_args(resumed_dir, **{**args, "nas_seed": 99}),
                               train_dataset=token_blocks())
    trainer.train(resume_from_checkpoint=str(checkpoint))
    assert trainer.sampler.seed == 7
    assert read_plans(resumed_dir) == read_plans(full_dir)[3:]
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, msg=name)
