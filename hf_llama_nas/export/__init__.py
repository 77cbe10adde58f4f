"""Extraction: a chosen sub-network as a real, smaller checkpoint (fp or INT8) that plain transformers loads."""

from .configuration_llama_nas import LlamaNASConfig
from .extract import extract_subnetwork, subnetwork_config
from .modeling_llama_nas import LlamaNASForCausalLM, LlamaNASModel

__all__ = ["LlamaNASConfig", "LlamaNASModel", "LlamaNASForCausalLM", "extract_subnetwork", "subnetwork_config"]
