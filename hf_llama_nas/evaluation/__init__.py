"""Evaluation of sub-networks: lm-eval task accuracy (prefix-shared scoring, offline task pack) and perplexity.

    from hf_llama_nas.evaluation import evaluate
    scores = evaluate(model, subnet, ["arc_easy", "mmlu"], limit=200)   # {"arc_easy": {"acc": ..., ...}, ...}

The lm-eval parts are imported on first use, so that `perplexity` alone does not pay for importing lm-eval.
"""

from __future__ import annotations

import importlib
from typing import Any

from .perplexity import PerplexityResult, evaluate_perplexity, perplexity, read_text, sliding_windows

_LAZY = {
    "evaluate": "harness",
    "summarize": "harness",
    "task_manager": "harness",
    "PACK_TASKS": "harness",
    "TASK_PACK_DIR": "harness",
    "UnknownTaskError": "harness",
    "ElasticLlamaLM": "lm_eval_model",
    "load_tokenizer": "lm_eval_model",
    "TaskDataError": "task_data",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PerplexityResult", "evaluate_perplexity", "perplexity", "read_text", "sliding_windows", *_LAZY]
