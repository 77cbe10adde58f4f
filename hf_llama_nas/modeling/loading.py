"""Resolve what a user passes as MODEL (hub id, local directory, `.gguf` file) and check it is a Llama."""

from __future__ import annotations

import os
from typing import Any

from transformers import PretrainedConfig

from ..errors import UnsupportedModelError

#: Model types whose checkpoints have exactly the Llama layout (the elastic model loads their weights as is).
LLAMA_MODEL_TYPES = ("llama", "elastic_llama")


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else that does not exist locally is a mistyped path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or name.endswith(".gguf")


def resolve_checkpoint(name_or_path: str | os.PathLike, gguf_file: str | None = None) -> tuple[str, str | None]:
    """Split a MODEL argument into (`pretrained_model_name_or_path`, `gguf_file`) as transformers expects them.

    A path to a `.gguf` file becomes its directory plus `gguf_file`, so every entry point accepts the file itself.
    """
    name = os.fspath(name_or_path)
    if name.endswith(".gguf"):
        path = os.path.expanduser(name)
        if not os.path.isfile(path):
            raise UnsupportedModelError(f"GGUF file {name!r} does not exist: check the path.")
        return os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        return path, gguf_file
    if os.path.exists(path):
        raise UnsupportedModelError(
            f"{name!r} is a file, not a model directory: pass the directory that holds config.json, a .gguf file, "
            "or a Hub id such as 'HuggingFaceTB/SmolLM2-135M'."
        )
    if _looks_like_path(name):
        raise UnsupportedModelError(
            f"No model at {name!r}: the directory does not exist. Pass a local directory with config.json and "
            "weights, a .gguf file, or a Hub id such as 'HuggingFaceTB/SmolLM2-135M'."
        )
    return name, gguf_file


def load_config_dict(name_or_path: str | os.PathLike, gguf_file: str | None = None, **kwargs: Any) -> dict:
    """The checkpoint's config as a dict, checked to be a Llama-family causal LM."""
    path, gguf_file = resolve_checkpoint(name_or_path, gguf_file)
    try:
        config_dict, _ = PretrainedConfig.get_config_dict(path, gguf_file=gguf_file, **kwargs)
    except OSError as err:
        raise UnsupportedModelError(
            f"Could not load a config for {os.fspath(name_or_path)!r}: it is not a local directory and the Hub did "
            f"not answer ({err.__class__.__name__}). Pass a local directory or .gguf file, or check the Hub id and "
            "your network (HF_HUB_OFFLINE=1 forbids downloads)."
        ) from err
    check_llama_config(config_dict, os.fspath(name_or_path))
    return config_dict


def check_llama_config(config_dict: dict, name: str) -> None:
    """Refuse checkpoints whose layout is not Llama's: their weights would not map onto the elastic layers."""
    model_type = config_dict.get("model_type")
    if model_type not in LLAMA_MODEL_TYPES:
        raise UnsupportedModelError(
            f"{name!r} is a {model_type!r} model; hf_llama_nas works on Llama-family checkpoints "
            f"(model_type in {LLAMA_MODEL_TYPES}), such as SmolLM2, TinyLlama or Llama 2/3. "
            "Convert the checkpoint to the Llama layout or pick a Llama model."
        )


__all__ = ["LLAMA_MODEL_TYPES", "resolve_checkpoint", "load_config_dict", "check_llama_config"]
