"""The elastic Llama super-network.

`ElasticLlamaForCausalLM` is a `LlamaForCausalLM` whose decoder can run any sub-network of its search
space: a subset of its layers, each with an MLP narrowed to its first `k` neurons. Activating a
sub-network changes no weight and copies none: the MLP projections read slices (views) of their full
weights, and the decoder loop skips the layers that are not kept. With the full network active the
forward pass is exactly `LlamaForCausalLM`'s.

Shapes, with `H = hidden_size`, `I = intermediate_size` (native) and `k` the active width of a layer:
    gate_proj.weight[:k, :]   (k, H)    up_proj.weight[:k, :]   (k, H)    down_proj.weight[:, :k]   (H, k)
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import init_empty_weights
from torch import nn
from transformers import LlamaForCausalLM, LlamaModel
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import BaseModelOutputWithPast
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaPreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from ..errors import SubnetError
from ..search_space import SearchSpace, SubnetConfig
from .configuration_elastic_llama import ElasticLlamaConfig
from .loading import load_config_dict, resolve_checkpoint

SubnetLike = SubnetConfig | dict | str | os.PathLike | None


class ElasticLinear(nn.Linear):
    """An `nn.Linear` that can compute with the leading block `weight[:out, :in]` of its weight.

    The slice is a view, so no weight is copied, and under autograd the gradient reaches only the
    active block. `None` means the full dimension; with both `None` the layer is a plain `nn.Linear`.
    The state dict is the plain `nn.Linear`'s, so checkpoints keep the Llama layout.
    """

    active_in_features: int | None = None
    active_out_features: int | None = None

    @classmethod
    def convert_(cls, linear: nn.Linear) -> ElasticLinear:
        """Turn an existing `nn.Linear` into an `ElasticLinear` in place, keeping its parameters."""
        linear.__class__ = cls
        return linear  # type: ignore[return-value]

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.active_in_features is None and self.active_out_features is None:
            return super().forward(input)
        out_features = self.active_out_features or self.out_features
        in_features = self.active_in_features or self.in_features
        weight = self.weight[:out_features, :in_features]
        bias = self.bias[:out_features] if self.bias is not None else None
        return F.linear(input, weight, bias)

    def extra_repr(self) -> str:
        active = ""
        if self.active_in_features is not None or self.active_out_features is not None:
            active = f", active=({self.active_out_features or self.out_features}, {self.active_in_features or self.in_features})"
        return super().extra_repr() + active


class ElasticLlamaMLP(LlamaMLP):
    """`LlamaMLP` whose intermediate size can be narrowed to its first `k` neurons.

    `LlamaMLP.forward` is reused unchanged: gate/up produce `k` channels, down reads `k`.
    """

    @classmethod
    def convert_(cls, mlp: LlamaMLP) -> ElasticLlamaMLP:
        """Make an existing `LlamaMLP` elastic in place (no weight is allocated or copied)."""
        mlp.__class__ = cls
        for linear in (mlp.gate_proj, mlp.up_proj, mlp.down_proj):
            ElasticLinear.convert_(linear)
        return mlp  # type: ignore[return-value]

    @property
    def active_intermediate_size(self) -> int:
        return self.gate_proj.active_out_features or self.intermediate_size

    def set_active_intermediate_size(self, width: int | None) -> None:
        """Use the first `width` neurons (`None` or the native size: all of them)."""
        if width is not None and not 0 < width <= self.intermediate_size:
            raise SubnetError(f"intermediate_size {width} is outside 1..{self.intermediate_size} for this MLP.")
        active = None if width == self.intermediate_size else width
        self.gate_proj.active_out_features = active
        self.up_proj.active_out_features = active
        self.down_proj.active_in_features = active


class ElasticLlamaModel(LlamaModel):
    """`LlamaModel` that runs only the active decoder layers.

    Each kept layer's attention writes the KV cache at its position among the kept layers, so a cache
    made for the sub-network (e.g. by `generate`) has no holes and its length is read from slot 0.
    """

    config_class = ElasticLlamaConfig
    config: ElasticLlamaConfig

    def __init__(self, config: ElasticLlamaConfig):
        super().__init__(config)
        for layer in self.layers:
            ElasticLlamaMLP.convert_(layer.mlp)
        self.active_layer_indices: tuple[int, ...] = tuple(range(config.num_hidden_layers))

    def set_active(self, layers: Sequence[int], widths: Sequence[int]) -> None:
        """Keep `layers` (ascending), layer `layers[j]` with MLP width `widths[j]`."""
        for index, layer in enumerate(self.layers):
            layer.self_attn.layer_idx = index
            layer.mlp.set_active_intermediate_size(None)
        for slot, (index, width) in enumerate(zip(layers, widths)):
            layer = self.layers[index]
            layer.self_attn.layer_idx = slot
            layer.mlp.set_active_intermediate_size(width)
        self.active_layer_indices = tuple(layers)

    def _check_cache(self, cache: Cache | None) -> None:
        """A KV cache holds keys of specific layers and widths: refuse to continue it with another sub-network."""
        if cache is None:
            return
        key = tuple((index, self.layers[index].mlp.active_intermediate_size) for index in self.active_layer_indices)
        owner = getattr(cache, "_hf_llama_nas_subnet", None)
        if owner is not None and owner != key and cache.get_seq_length() > 0:
            raise SubnetError(
                "This KV cache was filled by another sub-network. Switch sub-networks only between generations, "
                "or pass a fresh cache (cache=None)."
            )
        cache._hf_llama_nas_subnet = key

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPast:
        """`LlamaModel.forward` of the installed transformers, with the layer loop over the active layers only."""
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")

        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)

        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        self._check_cache(cache)

        if position_ids is None:
            past_seen_tokens = cache.get_seq_length() if cache is not None else 0
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_seen_tokens
            position_ids = position_ids.unsqueeze(0)

        causal_mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            position_ids=position_ids,
        )

        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, position_ids=position_ids)

        for index in self.active_layer_indices:
            hidden_states = self.layers[index](
                hidden_states,
                attention_mask=causal_mask,
                position_embeddings=position_embeddings,
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                **kwargs,
            )

        hidden_states = self.norm(hidden_states)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, cache=cache)


class ElasticLlamaForCausalLM(LlamaForCausalLM):
    """A Llama causal LM that is also a super-network of sub-networks from its search space.

    Load any Llama checkpoint (hub id, directory or `.gguf` file) with `from_pretrained(...,
    search_space=space)`, activate a sub-network with `set_subnet` or the `subnet(...)` context
    manager, and turn it into a standalone smaller model with `extract_subnetwork`.
    """

    config_class = ElasticLlamaConfig
    config: ElasticLlamaConfig

    def __init__(self, config: ElasticLlamaConfig):
        LlamaPreTrainedModel.__init__(self, config)
        self.model = ElasticLlamaModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()
        self._search_space = config.get_search_space()
        self._search_space.validate(config)
        self._active_subnet: SubnetConfig | None = None

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *model_args: Any,
        search_space: SearchSpace | dict | None = None,
        **kwargs: Any,
    ) -> ElasticLlamaForCausalLM:
        """Load any Llama checkpoint as a super-network.

        Accepts what `LlamaForCausalLM.from_pretrained` accepts, plus a path to a `.gguf` file and a
        `search_space` (a `SearchSpace` or its dict). A GGUF checkpoint is de-quantised on load and
        rebuilt as an ordinary model, so that it can be saved, trained and extracted.
        """
        path, gguf_file = resolve_checkpoint(pretrained_model_name_or_path, kwargs.pop("gguf_file", None))
        passthrough = {k: kwargs[k] for k in ("revision", "token", "cache_dir", "local_files_only") if k in kwargs}
        load_config_dict(path, gguf_file=gguf_file, **passthrough)
        with _quiet_model_type_warning():
            model = super().from_pretrained(path, *model_args, gguf_file=gguf_file, **kwargs)
        if gguf_file is not None:
            model = model._without_gguf_quantizer()
        if search_space is not None:
            model.search_space = search_space
        return model

    def _without_gguf_quantizer(self) -> ElasticLlamaForCausalLM:
        """A copy sharing this model's (de-quantised) tensors but free of the GGUF quantizer, so it can be saved."""
        config_dict = self.config.to_dict()
        config_dict.pop("quantization_config", None)
        config = self.config_class.from_dict(config_dict)
        with init_empty_weights(include_buffers=False):
            fresh = type(self)(config)
        fresh.load_state_dict(self.state_dict(), assign=True, strict=True)
        fresh.tie_weights()
        fresh.generation_config = self.generation_config
        fresh.config._name_or_path = self.config._name_or_path
        return fresh.to(self.dtype).train(self.training)

    @property
    def search_space(self) -> SearchSpace:
        """The space the sub-networks come from; stored in `config.search_space` and saved with the model."""
        return self._search_space

    @search_space.setter
    def search_space(self, space: SearchSpace | dict) -> None:
        self.config.set_search_space(space)
        self._search_space = self.config.get_search_space()
        if self._active_subnet is not None and not self._search_space.contains(self._active_subnet):
            self.set_subnet(None)

    @property
    def active_subnet(self) -> SubnetConfig:
        """The active sub-network (the full network when none was set)."""
        return self._active_subnet or SubnetConfig.full(self.config)

    def set_subnet(self, subnet: SubnetLike, check_space: bool = True) -> None:
        """Activate a sub-network: a `SubnetConfig`, its dict, a JSON string or file; `None` for the full network.

        It must be valid for this model; with `check_space` it must also lie in `search_space`. Nothing
        is copied: the next forward pass simply runs fewer layers on narrower weight slices.
        """
        if subnet is None:
            self.model.set_active(range(self.config.num_hidden_layers), [None] * self.config.num_hidden_layers)
            self._active_subnet = None
            return
        subnet = as_subnet(subnet)
        subnet.validate_for(self.config)
        if check_space:
            self.search_space.validate_subnet(subnet)
        self.model.set_active(subnet.layers, subnet.intermediate_size)
        self._active_subnet = None if subnet == SubnetConfig.full(self.config) else subnet

    @contextlib.contextmanager
    def subnet(self, subnet: SubnetLike, check_space: bool = True) -> Iterator[ElasticLlamaForCausalLM]:
        """Context manager: run with `subnet` active, then restore the previous one."""
        previous = self._active_subnet
        self.set_subnet(subnet, check_space=check_space)
        try:
            yield self
        finally:
            self.set_subnet(previous, check_space=False)

    def sample_subnet(self, seed: int | None = None) -> SubnetConfig:
        """A sub-network drawn from the search space (see `SearchSpace.sample`)."""
        return self.search_space.sample(seed)

    def extract_subnetwork(self, subnet: SubnetLike = None, check_space: bool = True) -> LlamaPreTrainedModel:
        """A standalone, physically smaller model of `subnet` (default: the active one); see `hf_llama_nas.export`."""
        from ..export.extract import extract_subnetwork

        subnet = self.active_subnet if subnet is None else as_subnet(subnet)
        if check_space:
            self.search_space.validate_subnet(subnet)
        return extract_subnetwork(self, subnet)


class _ModelTypeWarningFilter(logging.Filter):
    """Drops transformers' "model of type `llama` to instantiate `elastic_llama`" warning: that load is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "to instantiate a model of type `elastic_llama`" not in record.getMessage()


@contextlib.contextmanager
def _quiet_model_type_warning() -> Iterator[None]:
    logger = logging.getLogger("transformers.configuration_utils")
    log_filter = _ModelTypeWarningFilter()
    logger.addFilter(log_filter)
    try:
        yield
    finally:
        logger.removeFilter(log_filter)


def as_subnet(subnet: SubnetConfig | dict | str | os.PathLike) -> SubnetConfig:
    """Coerce the forms users pass (value, dict, JSON string or file path) to a `SubnetConfig`."""
    if isinstance(subnet, SubnetConfig):
        return subnet
    if isinstance(subnet, dict):
        return SubnetConfig.from_dict(subnet)
    if isinstance(subnet, (str, os.PathLike)):
        return SubnetConfig.from_json(os.fspath(subnet))
    raise SubnetError(
        f"Cannot read a sub-network from {type(subnet).__name__}: pass a SubnetConfig, a dict "
        '{"layers": [...], "intermediate_size": [...]}, or a path to such a JSON file.'
    )


__all__ = [
    "ElasticLinear",
    "ElasticLlamaMLP",
    "ElasticLlamaModel",
    "ElasticLlamaForCausalLM",
    "as_subnet",
]
