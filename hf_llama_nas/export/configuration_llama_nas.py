"""Configuration of a Llama sub-network whose layers have different MLP widths.

This file is self-contained (it imports only transformers and huggingface_hub): `save_pretrained`
copies it next to the weights, so `trust_remote_code=True` loads the model where hf_llama_nas is not
installed.
"""

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import LlamaConfig


@strict
class LlamaNASConfig(LlamaConfig):
    r"""A [`LlamaConfig`] whose `intermediate_size` may be a list with one MLP width per layer.

    Args:
        intermediate_size (`int` or `list[int]`):
            The MLP width of every decoder layer (an int: the same for all layers).
    """

    model_type = "llama_nas"

    intermediate_size: int | list[int] = 11008

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if isinstance(self.intermediate_size, list) and len(self.intermediate_size) != self.num_hidden_layers:
            raise ValueError(
                f"intermediate_size lists {len(self.intermediate_size)} widths but the model has "
                f"{self.num_hidden_layers} layers: give one width per layer."
            )

    def layer_intermediate_size(self, layer_idx: int) -> int:
        """The MLP width of decoder layer `layer_idx`."""
        if isinstance(self.intermediate_size, int):
            return self.intermediate_size
        return self.intermediate_size[layer_idx]


__all__ = ["LlamaNASConfig"]
