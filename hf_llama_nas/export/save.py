"""Save an extracted sub-network as a checkpoint that plain transformers loads, in full precision or INT8.

INT8 is bitsandbytes' LLM.int8(): every decoder linear layer holds int8 weights plus one float32 scale
per output row; embeddings, norms and the LM head stay in 16 (or 32) bit. The checkpoint is saved
pre-quantized with its `quantization_config` in `config.json`, so a plain
`AutoModelForCausalLM.from_pretrained(dir)` rebuilds the bitsandbytes 8-bit layers with no extra flag.
(transformers 5 reads any `quantization_config` in `config.json` as "weights already quantized", so
16-bit weights carrying load-time flags would not load: saving the quantized weights is the form that works.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, PreTrainedModel

from ..errors import LlamaNASError

#: Modules bitsandbytes must leave in floating point: the LM head (often tied to the embeddings).
INT8_SKIP_MODULES = ["lm_head"]
#: Bytes per element of the safetensors dtypes a checkpoint can hold.
_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I8": 1, "U8": 1, "I64": 8, "I32": 4, "BOOL": 1, "F64": 8}
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def int8_quantization_config() -> BitsAndBytesConfig:
    """The bitsandbytes config used for INT8 export: LLM.int8() with outlier threshold 6, LM head kept in float."""
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0, llm_int8_skip_modules=INT8_SKIP_MODULES)


def quantize_int8(model: PreTrainedModel, other_dtype: str | torch.dtype = "float16") -> PreTrainedModel:
    """An INT8 (bitsandbytes) copy of `model`; `other_dtype` is the precision of embeddings, norms and head.

    The model is round-tripped through a temporary checkpoint so that transformers' own bitsandbytes
    integration does the conversion, exactly as it will when the saved folder is loaded.
    """
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise LlamaNASError("INT8 export needs bitsandbytes: `pip install bitsandbytes`.") from err
    dtype = _DTYPES[other_dtype] if isinstance(other_dtype, str) else other_dtype
    device = model.device if model.device.type != "meta" else torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        return AutoModelForCausalLM.from_pretrained(
            tmp, quantization_config=int8_quantization_config(), dtype=dtype, device_map={"": str(device)}
        )


def save_subnetwork(
    model: PreTrainedModel,
    save_directory: str | os.PathLike,
    tokenizer: Any | None = None,
    int8: bool = False,
    other_dtype: str | torch.dtype = "float16",
    **save_kwargs: Any,
) -> Path:
    """Save an extracted model (and its tokenizer and generation config) so plain `AutoModelForCausalLM` loads it.

    With `int8=True` the decoder linear layers are stored as bitsandbytes INT8 weights. A mixed-width
    model also gets its configuration/modeling files and `auto_map`, for `trust_remote_code=True`.
    """
    save_directory = Path(save_directory)
    if save_directory.exists() and not save_directory.is_dir():
        raise LlamaNASError(f"{save_directory} exists and is a file: choose a directory for the checkpoint.")
    to_save = quantize_int8(model, other_dtype) if int8 and not getattr(model, "is_loaded_in_8bit", False) else model
    to_save.save_pretrained(save_directory, **save_kwargs)
    if tokenizer is not None:
        tokenizer.save_pretrained(save_directory)
    return save_directory


def checkpoint_nbytes(save_directory: str | os.PathLike) -> int:
    """Bytes of the tensors stored in a checkpoint's safetensors files (headers excluded)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(Path(save_directory).glob("*.safetensors")):
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():
                tensor = handle.get_slice(key)
                numel = 1
                for dim in tensor.get_shape():
                    numel *= dim
                total += numel * _DTYPE_BYTES[tensor.get_dtype()]
    return total


__all__ = ["INT8_SKIP_MODULES", "int8_quantization_config", "quantize_int8", "save_subnetwork", "checkpoint_nbytes"]
