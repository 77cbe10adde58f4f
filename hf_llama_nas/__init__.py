"""hf_llama_nas: neural architecture search for Llama-family models, as a Hugging Face plugin.

Importing the package registers its model types with the transformers Auto classes:
`elastic_llama` (the super-network) and `llama_nas` (an extracted sub-network with per-layer MLP widths).
"""

import logging

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .errors import LlamaNASError, SearchSpaceError, SubnetError, UnsupportedModelError
from .export import LlamaNASConfig, LlamaNASForCausalLM, LlamaNASModel, extract_subnetwork
from .modeling import ElasticLlamaConfig, ElasticLlamaForCausalLM, ElasticLlamaModel
from .search_space import ModelDims, SearchSpace, SubnetConfig

__version__ = "0.1.0"


class _KernelsHubFilter(logging.Filter):
    """Drops bitsandbytes' warning that its *4-bit* CPU kernel could not be fetched from the Hub (`kernels` package).

    It fires on import (peft and INT8 saving import bitsandbytes) on CPUs with AVX512-BF16; hf_llama_nas uses only
    LLM.int8(), which needs no such kernel, and fetching one would need the Hub.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "gemm_4bit_forward from kernels-community" not in record.getMessage()


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_KernelsHubFilter())

AutoConfig.register(ElasticLlamaConfig.model_type, ElasticLlamaConfig, exist_ok=True)
AutoModel.register(ElasticLlamaConfig, ElasticLlamaModel, exist_ok=True)
AutoModelForCausalLM.register(ElasticLlamaConfig, ElasticLlamaForCausalLM, exist_ok=True)
AutoConfig.register(LlamaNASConfig.model_type, LlamaNASConfig, exist_ok=True)
AutoModel.register(LlamaNASConfig, LlamaNASModel, exist_ok=True)
AutoModelForCausalLM.register(LlamaNASConfig, LlamaNASForCausalLM, exist_ok=True)
# Saving a LlamaNAS model also writes its configuration/modeling files and `auto_map`, for trust_remote_code.
LlamaNASConfig.register_for_auto_class()
LlamaNASForCausalLM.register_for_auto_class("AutoModelForCausalLM")

#: Pipeline-stage names, imported on first use (pymoo, scikit-learn, peft and lm-eval are slow to import and most
#: commands need none of them).
_LAZY_SEARCH = {
    "LINAS": "search",
    "NSGA2Search": "search",
    "RandomSearch": "search",
    "Objective": "search",
    "get_objective": "search",
    "ResultsStore": "search",
    "LINASCallback": "search.callback",
    "write_report": "reports",
    "InstaTuneTrainer": "training",
    "InstaTuneArguments": "training",
    "apply_importance_ordering_": "training",
    "get_elastic_peft_model": "training",
    "evaluate": "evaluation",
}


def __getattr__(name: str):
    if name in _LAZY_SEARCH:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY_SEARCH[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    *_LAZY_SEARCH,
    "SearchSpace",
    "SubnetConfig",
    "ModelDims",
    "ElasticLlamaConfig",
    "ElasticLlamaModel",
    "ElasticLlamaForCausalLM",
    "LlamaNASConfig",
    "LlamaNASModel",
    "LlamaNASForCausalLM",
    "extract_subnetwork",
    "LlamaNASError",
    "SearchSpaceError",
    "SubnetError",
    "UnsupportedModelError",
]
