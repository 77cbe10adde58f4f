"""InstaTune: fine-tune an elastic Llama super-network with the stock Trainer so that its sub-networks stay good.

    model = ElasticLlamaForCausalLM.from_pretrained(path, search_space=space)
    apply_importance_ordering_(model, calibration_ids)          # before fine-tuning: neuron order, layer drop order
    trainer = InstaTuneTrainer(model=model, args=InstaTuneArguments(output_dir="out", nas_strategy="alternate"),
                               train_dataset=load_training_data("train.txt", tokenizer, block_size=256))
    trainer.train()
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> submodule. Imported on first use (PEP 562), so that `llama-nas` sub-commands that never train
#: (info, extract, ...) do not pay for importing peft/datasets, nor print their import-time warnings.
_EXPORTS = {
    "STRATEGIES": "strategies",
    "InstaTuneArguments": "arguments",
    "InstaTuneTrainer": "trainer",
    "PlannedNetwork": "trainer",
    "distillation_loss": "trainer",
    "InstaTuneError": "errors",
    "SubnetSampler": "sampler",
    "chunk_token_ids": "data",
    "load_training_data": "data",
    "read_text": "data",
    "NEURON_CRITERIA": "importance",
    "ImportanceScores": "importance",
    "compute_importance": "importance",
    "permute_mlp_neurons_": "importance",
    "apply_importance_ordering_": "importance",
    "ElasticLoraLinear": "lora",
    "elastic_lora_config": "lora",
    "get_elastic_peft_model": "lora",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
