"""Evaluation of sub-networks: perplexity on a text (task accuracy via lm-eval comes in its own module)."""

from .perplexity import PerplexityResult, evaluate_perplexity, perplexity, sliding_windows

__all__ = ["PerplexityResult", "evaluate_perplexity", "perplexity", "sliding_windows"]
