"""Importance ordering of MLP neurons and ranking of layers, from a small calibration set, before fine-tuning.

Sub-networks keep the *first* `k` neurons of every MLP, and in `any` layer mode drop some layers. On a real
pretrained model the native neuron order is arbitrary, so first-k slicing throws away important neurons at
random; and dropping the wrong layers ruins the network (DESIGN.md section 6: SmolLM2 at MLP 768 has perplexity
1.6M with first-k neurons and 665 with activation-ordered ones). This module measures, on calibration tokens:

* each MLP neuron's importance: the mean magnitude of its activation `act(gate(x)) * up(x)` (the input of
  `down_proj`), as Minitron and NNCF do; criterion ``contribution`` also multiplies it by the norm of the
  neuron's `down_proj` column, i.e. its mean contribution to the layer's output;
* each layer's block influence (ShortGPT): 1 - mean cosine similarity between the hidden state entering and
  leaving the layer. The least influential layers change their input least and are the ones to drop.

`permute_mlp_neurons_` then reorders gate/up rows and down columns in place (the full network computes the same
function) and the layer order is stored in `config.nas_layer_drop_order`, which `SubnetSampler` follows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..modeling import ElasticLlamaForCausalLM
from .errors import InstaTuneError
from .sampler import LAYER_DROP_ORDER_ATTR

#: Neuron importance criteria of `compute_importance`.
NEURON_CRITERIA = ("activation", "contribution")


@dataclass
class ImportanceScores:
    """Per-layer neuron scores (one tensor of `intermediate_size` floats per layer) and per-layer block influence."""

    neuron: list[torch.Tensor]
    layer: list[float]
    num_tokens: int

    def neuron_orders(self) -> list[torch.Tensor]:
        """For each layer, neuron indices from most to least important (stable for ties)."""
        return [torch.sort(scores, descending=True, stable=True).indices for scores in self.neuron]

    def layer_drop_order(self) -> list[int]:
        """Layer indices from least to most influential: the order in which to drop layers."""
        return sorted(range(len(self.layer)), key=lambda index: (self.layer[index], index))


def _calibration_batches(calibration_ids: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(calibration_ids, torch.Tensor):
        ids = calibration_ids if calibration_ids.dim() == 2 else calibration_ids[None]
        yield from ids.split(batch_size)
    else:
        for ids in calibration_ids:
            yield ids if ids.dim() == 2 else ids[None]


@torch.no_grad()
def compute_importance(
    model: ElasticLlamaForCausalLM,
    calibration_ids: torch.Tensor | Iterable[torch.Tensor],
    criterion: str = "activation",
    batch_size: int = 1,
) -> ImportanceScores:
    """Score MLP neurons and layers of `model` (full network active) on calibration token ids of shape (B, L)."""
    if not isinstance(model, ElasticLlamaForCausalLM):
        raise InstaTuneError(
            f"Importance ordering needs an ElasticLlamaForCausalLM, got {type(model).__name__}: load the model with "
            "ElasticLlamaForCausalLM.from_pretrained and order it before adding LoRA adapters."
        )
    if criterion not in NEURON_CRITERIA:
        raise InstaTuneError(f"Unknown importance criterion {criterion!r}: choose one of {list(NEURON_CRITERIA)}.")
    layers = model.model.layers
    device = next(model.parameters()).device
    neuron_sums = [torch.zeros(layer.mlp.intermediate_size, dtype=torch.float64, device=device) for layer in layers]
    cosine_sums = [0.0] * len(layers)
    counts = {"tokens": 0}

    def neuron_hook(index: int):
        def hook(module: torch.nn.Module, args: tuple) -> None:
            activation = args[0].detach()
            neuron_sums[index] += activation.abs().reshape(-1, activation.shape[-1]).sum(0, dtype=torch.float64)
        return hook

    def layer_hook(index: int):
        def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output) -> None:
            hidden_in = args[0] if args else kwargs["hidden_states"]
            hidden_out = output[0] if isinstance(output, tuple) else output
            cosine = F.cosine_similarity(hidden_in.float(), hidden_out.float(), dim=-1)
            cosine_sums[index] += cosine.sum().item()
        return hook

    handles = []
    was_training = model.training
    try:
        for index, layer in enumerate(layers):
            handles.append(layer.mlp.down_proj.register_forward_pre_hook(neuron_hook(index)))
            handles.append(layer.register_forward_hook(layer_hook(index), with_kwargs=True))
        model.eval()
        with model.subnet(None):
            for ids in _calibration_batches(calibration_ids, batch_size):
                model(input_ids=ids.to(device), use_cache=False)
                counts["tokens"] += ids.numel()
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if counts["tokens"] == 0:
        raise InstaTuneError("The calibration set is empty: pass at least one sequence of token ids.")
    neuron = []
    for layer, sums in zip(layers, neuron_sums):
        scores = sums / counts["tokens"]
        if criterion == "contribution":
            scores = scores * layer.mlp.down_proj.weight.detach().double().norm(dim=0)
        neuron.append(scores.float().cpu())
    influence = [1.0 - total / counts["tokens"] for total in cosine_sums]
    return ImportanceScores(neuron=neuron, layer=influence, num_tokens=counts["tokens"])


@torch.no_grad()
def permute_mlp_neurons_(model: ElasticLlamaForCausalLM, orders: Sequence[torch.Tensor]) -> None:
    """Reorder every MLP's neurons in place: gate/up rows and down columns by `orders[layer]`.

    The parameters stay the same objects (an optimizer built earlier stays valid) and the full network
    computes the same function, up to float summation order.
    """
    layers = model.model.layers
    if len(orders) != len(layers):
        raise InstaTuneError(f"Expected one neuron order per layer ({len(layers)}), got {len(orders)}.")
    for index, (layer, order) in enumerate(zip(layers, orders)):
        mlp = layer.mlp
        order = torch.as_tensor(order, dtype=torch.long, device=mlp.gate_proj.weight.device)
        if sorted(order.tolist()) != list(range(mlp.intermediate_size)):
            raise InstaTuneError(f"layer {index}: the neuron order is not a permutation of 0..{mlp.intermediate_size - 1}.")
        for linear in (mlp.gate_proj, mlp.up_proj):
            linear.weight.copy_(linear.weight[order])
            if linear.bias is not None:
                linear.bias.copy_(linear.bias[order])
        mlp.down_proj.weight.copy_(mlp.down_proj.weight[:, order])


def apply_importance_ordering_(
    model: ElasticLlamaForCausalLM,
    calibration_ids: torch.Tensor | Iterable[torch.Tensor],
    criterion: str = "activation",
    batch_size: int = 1,
) -> ImportanceScores:
    """Score, reorder MLP neurons most-important-first, and store the layer drop order in the model config.

    Call it once on the pretrained model, before fine-tuning and before adding LoRA adapters. The drop order is
    saved with the model (`config.nas_layer_drop_order`), and `SubnetSampler`/`InstaTuneTrainer` use it in
    `any` layer mode.
    """
    scores = compute_importance(model, calibration_ids, criterion=criterion, batch_size=batch_size)
    permute_mlp_neurons_(model, scores.neuron_orders())
    setattr(model.config, LAYER_DROP_ORDER_ATTR, scores.layer_drop_order())
    return scores


__all__ = [
    "ImportanceScores",
    "NEURON_CRITERIA",
    "compute_importance",
    "permute_mlp_neurons_",
    "apply_importance_ordering_",
]
