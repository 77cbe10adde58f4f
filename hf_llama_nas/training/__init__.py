"""InstaTune: fine-tune an elastic Llama super-network with the stock Trainer so that its sub-networks stay good.

    model = ElasticLlamaForCausalLM.from_pretrained(path, search_space=space)
    apply_importance_ordering_(model, calibration_ids)          # before fine-tuning: neuron order, layer drop order
    trainer = InstaTuneTrainer(model=model, args=InstaTuneArguments(output_dir="out", nas_strategy="alternate"),
                               train_dataset=load_training_data("train.txt", tokenizer, block_size=256))
    trainer.train()
"""

from .arguments import STRATEGIES, InstaTuneArguments
from .data import chunk_token_ids, load_training_data, read_text
from .errors import InstaTuneError
from .importance import (
    NEURON_CRITERIA,
    ImportanceScores,
    apply_importance_ordering_,
    compute_importance,
    permute_mlp_neurons_,
)
from .lora import ElasticLoraLinear, elastic_lora_config, get_elastic_peft_model
from .sampler import SubnetSampler
from .trainer import InstaTuneTrainer, PlannedNetwork, distillation_loss

__all__ = [
    "STRATEGIES",
    "InstaTuneArguments",
    "InstaTuneTrainer",
    "InstaTuneError",
    "PlannedNetwork",
    "SubnetSampler",
    "distillation_loss",
    "chunk_token_ids",
    "load_training_data",
    "read_text",
    "NEURON_CRITERIA",
    "ImportanceScores",
    "compute_importance",
    "permute_mlp_neurons_",
    "apply_importance_ordering_",
    "ElasticLoraLinear",
    "elastic_lora_config",
    "get_elastic_peft_model",
]
