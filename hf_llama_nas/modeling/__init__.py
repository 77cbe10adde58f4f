"""The elastic super-network: a Llama model that can run any sub-network of its search space."""

from .configuration_elastic_llama import ElasticLlamaConfig
from .loading import LLAMA_MODEL_TYPES, check_llama_config, load_config_dict, resolve_checkpoint
from .modeling_elastic_llama import (
    ElasticLinear,
    ElasticLlamaForCausalLM,
    ElasticLlamaMLP,
    ElasticLlamaModel,
    as_subnet,
)

__all__ = [
    "ElasticLlamaConfig",
    "ElasticLinear",
    "ElasticLlamaMLP",
    "ElasticLlamaModel",
    "ElasticLlamaForCausalLM",
    "as_subnet",
    "LLAMA_MODEL_TYPES",
    "check_llama_config",
    "load_config_dict",
    "resolve_checkpoint",
]
