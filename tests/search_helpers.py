"""Synthetic search problems for the search tests: exact, deterministic and free of models."""

from __future__ import annotations

import math
import os

from hf_llama_nas.search import Objective
from hf_llama_nas.search_space import ModelDims, SearchSpace, SubnetConfig

DIMS = ModelDims(hidden_size=64, intermediate_size=(128,) * 8, num_hidden_layers=8, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, vocab_size=96)
SPACE = SearchSpace(num_hidden_layers=8, num_layers=(4, 5, 6, 7, 8), intermediate_size=(32, 64, 96, 128), layer_mode="any")
IMPORTANCE = (3.0, 0.4, 1.5, 0.2, 0.9, 0.1, 0.6, 2.5)


def synthetic_loss(model: object, subnet: SubnetConfig) -> float:
    """A perplexity-like value: dropping important layers or narrowing them costs, multiplicatively."""
    widths = subnet.widths_by_layer(8)
    penalty = sum(IMPORTANCE[i] * (1.0 if w == 0 else (128 - w) / 192) for i, w in enumerate(widths))
    return math.exp(2.0 + penalty)


def loss_objective(sleep: float = 0.0) -> Objective:
    def measure(model: object, subnet: SubnetConfig) -> dict:
        if sleep:
            import time

            time.sleep(sleep)
        return {"value": synthetic_loss(model, subnet), "rank": int(os.environ.get("RANK", "0"))}

    return Objective("loss", fn=measure, scale="log")
