"""PEFT LoRA on the elastic model: adapters whose A/B matrices are sliced together with the base weights.

`peft` wraps every `nn.Linear` (our `ElasticLinear` is one) in `lora.Linear`, whose forward adds
`B(A(x))` at full size: wrong shapes once a sub-network narrows the MLP. `ElasticLoraLinear` is the LoRA layer
peft builds for an `ElasticLinear` instead (peft's custom-module hook): with the base layer narrowed to
`weight[:out, :in]` it uses `A[:, :in]` and `B[:out, :]`, exactly the slice of the merged update `B @ A`. So
`merge_and_unload()` followed by `extract_subnetwork` gives the logits of the adapted model with that
sub-network active. It also forwards `active_in_features`/`active_out_features` to the base layer, so
`set_subnet` works through the adapter.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora.layer import Linear as LoraLinear

from ..modeling import ElasticLinear, ElasticLlamaForCausalLM
from .errors import InstaTuneError


class ElasticLoraLinear(LoraLinear):
    """`peft`'s LoRA `Linear` around an `ElasticLinear`, slicing the adapter with the active block."""

    def __init__(self, base_layer: ElasticLinear, adapter_name: str, **kwargs: Any) -> None:
        super().__init__(base_layer, adapter_name, **kwargs)
        if self.lora_variant:
            raise InstaTuneError(
                "LoRA variants (DoRA and the like) are not supported on elastic layers: use plain LoRA "
                "(use_dora=False)."
            )

    @property
    def active_in_features(self) -> int | None:
        return self.get_base_layer().active_in_features

    @active_in_features.setter
    def active_in_features(self, value: int | None) -> None:
        self.get_base_layer().active_in_features = value

    @property
    def active_out_features(self) -> int | None:
        return self.get_base_layer().active_out_features

    @active_out_features.setter
    def active_out_features(self, value: int | None) -> None:
        self.get_base_layer().active_out_features = value

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        base = self.get_base_layer()
        if (base.active_in_features is None and base.active_out_features is None) or self.disable_adapters \
                or self.merged:
            return super().forward(x, *args, **kwargs)
        out_features = base.active_out_features or base.out_features
        in_features = base.active_in_features or base.in_features
        result = self.base_layer(x, *args, **kwargs)
        result_dtype = result.dtype
        for adapter in self.active_adapters:
            if adapter not in self.lora_A:
                continue
            lora_a, lora_b = self.lora_A[adapter], self.lora_B[adapter]
            h = self._cast_input_dtype(x, lora_a.weight.dtype)
            h = F.linear(self.lora_dropout[adapter](h), lora_a.weight[:, :in_features])
            bias = lora_b.bias[:out_features] if lora_b.bias is not None else None
            result = result + F.linear(h, lora_b.weight[:out_features], bias) * self.scaling[adapter]
        return result.to(result_dtype)


def elastic_lora_config(**kwargs: Any) -> LoraConfig:
    """A `LoraConfig` (default: every linear layer, the elastic MLPs included) that builds `ElasticLoraLinear`."""
    kwargs.setdefault("target_modules", "all-linear")
    kwargs.setdefault("task_type", "CAUSAL_LM")
    config = LoraConfig(**kwargs)
    config._register_custom_module({ElasticLinear: ElasticLoraLinear})
    return config


def get_elastic_peft_model(model: ElasticLlamaForCausalLM, lora_config: LoraConfig | None = None,
                           **lora_kwargs: Any) -> PeftModel:
    """`peft.get_peft_model` for the elastic model, with adapters that follow the active sub-network."""
    if not isinstance(model, ElasticLlamaForCausalLM):
        raise InstaTuneError(
            f"get_elastic_peft_model needs an ElasticLlamaForCausalLM, got {type(model).__name__}: load it with "
            "ElasticLlamaForCausalLM.from_pretrained."
        )
    if lora_config is None:
        lora_config = elastic_lora_config(**lora_kwargs)
    elif lora_kwargs:
        raise InstaTuneError("Pass either lora_config or LoRA keyword arguments, not both.")
    else:
        lora_config._register_custom_module({ElasticLinear: ElasticLoraLinear})
    return get_peft_model(model, lora_config)


__all__ = ["ElasticLoraLinear", "elastic_lora_config", "get_elastic_peft_model"]
