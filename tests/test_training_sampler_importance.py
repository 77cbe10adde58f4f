"""The seeded sub-network sampler and importance ordering (neurons, layers) on a tiny model."""

from __future__ import annotations

import pytest
import torch

from hf_llama_nas import SearchSpace, SubnetConfig
from hf_llama_nas.training import (
    SubnetSampler,
    apply_importance_ordering_,
    compute_importance,
    permute_mlp_neurons_,
)

from .conftest import VOCAB
from .training_helpers import SPACE, tiny_elastic, single_thread  # noqa: F401 (autouse fixture)


def test_sampler_is_a_function_of_seed_and_step():
    sampler = SubnetSampler(SPACE, seed=3)
    first = [sampler.sample(step) for step in range(20)]
    assert first == [SubnetSampler(SPACE, seed=3).sample(step) for step in range(20)]
    assert first != [SubnetSampler(SPACE, seed=4).sample(step) for step in range(20)]
    assert all(SPACE.contains(subnet) for subnet in first)
    assert len(set(first)) > 5
    assert sampler.sample(5, index=1) != sampler.sample(5, index=0) or sampler.sample(5, 2) != sampler.sample(5, 0)


def test_sampler_drops_layers_by_drop_order_and_round_trips(tmp_path):
    sampler = SubnetSampler(SPACE, seed=1, layer_drop_order=(2, 0, 3, 1))
    for step in range(20):
        subnet = sampler.sample(step)
        assert subnet.layers in {(0, 1, 3), (1, 3), (0, 1, 2, 3)}
    assert sampler.smallest() == SubnetConfig(layers=(1, 3), intermediate_size=(64, 64))
    assert sampler.middle() == SubnetConfig(layers=(0, 1, 3), intermediate_size=(96, 96, 96))
    assert sampler.largest() == SubnetConfig.full({"num_hidden_layers": 4, "intermediate_size": 128, "hidden_size": 64,
                                                   "num_attention_heads": 4, "vocab_size": VOCAB})
    sampler.save(tmp_path)
    assert SubnetSampler.load(tmp_path) == sampler
    assert SubnetSampler.load(tmp_path / "missing") is None
    prefix = SubnetSampler(SearchSpace(num_hidden_layers=4, num_layers=(2, 4), intermediate_size=(64, 128)),
                           layer_drop_order=(2, 0, 3, 1))
    assert prefix.smallest().layers == (0, 1)


def test_permutation_keeps_the_full_network_and_orders_neurons(llama_dir, input_ids):
    model = tiny_elastic(llama_dir).eval()
    with torch.no_grad():
        reference = model(input_ids).logits
    scores = compute_importance(model, input_ids)
    assert len(scores.neuron) == 4 and scores.neuron[0].shape == (128,)
    assert scores.num_tokens == input_ids.numel()
    permute_mlp_neurons_(model, scores.neuron_orders())
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids).logits, reference, atol=1e-5, rtol=1e-5)
    rescored = compute_importance(model, input_ids)
    for layer_scores in rescored.neuron:
        assert torch.all(layer_scores[:-1] >= layer_scores[1:] - 1e-6)


def test_ordering_makes_narrow_subnets_closer_to_the_full_network(llama_dir):
    generator = torch.Generator().manual_seed(1)
    calibration = torch.randint(4, VOCAB, (8, 32), generator=generator)
    held_out = torch.randint(4, VOCAB, (8, 32), generator=generator)
    model = tiny_elastic(llama_dir).eval()
    narrow = SubnetConfig(layers=(0, 1, 2, 3), intermediate_size=(64,) * 4)

    def distance() -> float:
        with torch.no_grad():
            full = model(held_out).logits.log_softmax(-1)
            with model.subnet(narrow):
                sub = model(held_out).logits.log_softmax(-1)
        return torch.nn.functional.kl_div(sub, full, log_target=True, reduction="batchmean").item()

    before = distance()
    scores = apply_importance_ordering_(model, calibration)
    assert distance() < before
    order = model.config.nas_layer_drop_order
    assert sorted(order) == [0, 1, 2, 3]
    assert order == scores.layer_drop_order()
    assert scores.layer[order[0]] <= scores.layer[order[-1]]
    with pytest.raises(Exception, match="criterion"):
        compute_importance(model, calibration, criterion="magic")
