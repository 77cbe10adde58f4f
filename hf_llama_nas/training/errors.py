"""The error InstaTune raises for input a user can fix (model, data, strategy, search space)."""

from __future__ import annotations

from ..errors import LlamaNASError


class InstaTuneError(LlamaNASError):
    """Training cannot start (or resume) with the given model, data or arguments; the message names the fix."""


__all__ = ["InstaTuneError"]
