"""Cut a sub-network out of an elastic super-network as a standalone, physically smaller model."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING

import torch
from accelerate import init_empty_weights
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel

from ..search_space import SubnetConfig
from .configuration_llama_nas import LlamaNASConfig
from .modeling_llama_nas import LlamaNASForCausalLM

if TYPE_CHECKING:
    from ..modeling import ElasticLlamaForCausalLM

#: Keys of the elastic config that describe the super-network, not the extracted model.
_SUPERNET_KEYS = ("search_space", "model_type", "architectures", "auto_map", "quantization_config", "transformers_version")
_LAYER_KEY = re.compile(r"^model\.layers\.(\d+)\.(.*)$")


def subnetwork_config(config: LlamaConfig, subnet: SubnetConfig) -> LlamaConfig:
    """The config of the extracted model: plain `LlamaConfig` if all kept layers share one width, else `LlamaNASConfig`.

    The provenance (parent model, sub-network, its id) is recorded under `config.hf_llama_nas`.
    """
    fields = {k: v for k, v in config.to_dict().items() if k not in _SUPERNET_KEYS}
    fields["num_hidden_layers"] = subnet.num_layers
    fields["hf_llama_nas"] = {
        "parent": config._name_or_path or None,
        "subnet": subnet.to_dict(),
        "subnet_id": subnet.id,
    }
    widths = list(subnet.intermediate_size)
    if len(set(widths)) == 1:
        sub_config = LlamaConfig(**{**fields, "intermediate_size": widths[0]})
    else:
        sub_config = LlamaNASConfig(**{**fields, "intermediate_size": widths})
    sub_config._attn_implementation = config._attn_implementation
    return sub_config


def _source_tensor(state: dict[str, torch.Tensor], key: str, subnet: SubnetConfig) -> torch.Tensor:
    """The super-network tensor behind `key` of the extracted model, sliced to the sub-network's width."""
    match = _LAYER_KEY.match(key)
    if match is None:
        return state[key]
    slot, rest = int(match.group(1)), match.group(2)
    tensor = state[f"model.layers.{subnet.layers[slot]}.{rest}"]
    width = subnet.intermediate_size[slot]
    if rest.startswith(("mlp.gate_proj.", "mlp.up_proj.")):
        return tensor[:width]
    if rest == "mlp.down_proj.weight":
        return tensor[:, :width]
    return tensor


@torch.no_grad()
def extract_subnetwork(model: ElasticLlamaForCausalLM, subnet: SubnetConfig) -> PreTrainedModel:
    """A standalone copy of `subnet`: `LlamaForCausalLM` for one width, `LlamaNASForCausalLM` for mixed widths.

    Weights are copied (contiguous slices), so the result owns its memory and does not change when the
    super-network is trained further. Its logits equal the elastic model's with `subnet` active.
    """
    subnet.validate_for(model.config)
    config = subnetwork_config(model.config, subnet)
    model_class = LlamaForCausalLM if type(config) is LlamaConfig else LlamaNASForCausalLM
    with init_empty_weights(include_buffers=False):
        sub = model_class(config)
    state = model.state_dict()
    new_state = {key: _source_tensor(state, key, subnet).clone(memory_format=torch.contiguous_format) for key in sub.state_dict()}
    sub.load_state_dict(new_state, assign=True, strict=True)
    sub.tie_weights()
    sub.generation_config = copy.deepcopy(model.generation_config)
    sub.to(model.device)
    return sub.train(model.training)


__all__ = ["extract_subnetwork", "subnetwork_config"]
