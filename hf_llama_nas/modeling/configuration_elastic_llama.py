"""Configuration of the elastic Llama super-network: a LlamaConfig that also carries its search space."""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import LlamaConfig

from ..search_space import SearchSpace


@strict
class ElasticLlamaConfig(LlamaConfig):
    r"""A [`LlamaConfig`] plus the search space of the super-network.

    The weights of an elastic model are exactly those of the Llama model it was loaded from, so a
    saved super-network stays a valid Llama checkpoint; only `model_type` and `search_space` are added.

    Args:
        search_space (`dict`, *optional*):
            The [`SearchSpace`] as a dictionary (see `SearchSpace.to_dict`). `None` uses
            `SearchSpace.for_model(config)`, the default space of the model.
    """

    model_type = "elastic_llama"

    search_space: dict | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if isinstance(self.search_space, SearchSpace):
            self.search_space = self.search_space.to_dict()

    def get_search_space(self) -> SearchSpace:
        """The declared search space, or the model's default one when none was given."""
        if self.search_space is None:
            return SearchSpace.for_model(self)
        return SearchSpace.from_dict(self.search_space)

    def set_search_space(self, space: SearchSpace | dict) -> None:
        """Validate `space` against this config and store it (as a dict, so it serialises to JSON)."""
        space = space if isinstance(space, SearchSpace) else SearchSpace.from_dict(space)
        space.validate(self)
        self.search_space = space.to_dict()


__all__ = ["ElasticLlamaConfig"]
