"""Exceptions a user can cause. Each message says what was wrong and how to fix it."""


class LlamaNASError(ValueError):
    """Base class of every user-facing error raised by hf_llama_nas."""


class SearchSpaceError(LlamaNASError):
    """A search space is malformed or does not fit the model it is used with."""


class SubnetError(LlamaNASError):
    """A sub-network is malformed, outside its search space, or invalid for the model."""


class UnsupportedModelError(LlamaNASError):
    """A checkpoint is not a Llama-family causal LM, or cannot be found."""
