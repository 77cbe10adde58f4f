"""`InstaTuneArguments`: the stock `TrainingArguments` plus how sub-networks are trained (see `strategies`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from .errors import InstaTuneError
from .strategies import STRATEGIES


@dataclass
class InstaTuneArguments(TrainingArguments):
    """`TrainingArguments` for `InstaTuneTrainer`; every stock option keeps its meaning.

    A sub-network is drawn once per optimizer step (not per micro-batch) from `nas_seed` and the global step,
    so all micro-batches of an accumulated step train the same network (the accumulated gradient is that
    network's gradient on the whole batch), all DDP ranks draw the same one without communicating, and a
    resumed run draws the same sequence. `ddp_find_unused_parameters` defaults to True here, because the
    layers a sub-network skips receive no gradient in that step.
    """

    nas_strategy: str = field(default="alternate", metadata={"help": f"One of {STRATEGIES}."})
    nas_seed: int = field(default=0, metadata={"help": "Seed of the sub-network sequence (with the global step)."})
    nas_temperature: float = field(default=5.0, metadata={"help": "Distillation temperature (joint, sandwich)."})
    nas_full_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the full network's loss (joint)."})
    nas_subnet_loss_weight: float = field(
        default=1.0, metadata={"help": "Weight of a sampled sub-network's cross-entropy (joint, sandwich)."}
    )
    nas_distill_weight: float = field(
        default=1.0, metadata={"help": "Weight of the KL distillation loss of sub-networks (joint, sandwich)."}
    )
    nas_num_random_subnets: int = field(default=1, metadata={"help": "Random sub-networks per step (sandwich)."})
    nas_layer_sampling: str = field(
        default="importance",
        metadata={"help": "'importance': drop the least influential layers (from config.nas_layer_drop_order, "
                          "if the model has one); 'uniform': drop random layers (layer_mode='any' only)."},
    )

    def __post_init__(self) -> None:
        if self.nas_strategy not in STRATEGIES:
            raise InstaTuneError(f"Unknown nas_strategy {self.nas_strategy!r}: choose one of {list(STRATEGIES)}.")
        if self.nas_layer_sampling not in ("importance", "uniform"):
            raise InstaTuneError(
                f"Unknown nas_layer_sampling {self.nas_layer_sampling!r}: choose 'importance' or 'uniform'."
            )
        if self.nas_temperature <= 0:
            raise InstaTuneError(f"nas_temperature must be positive (got {self.nas_temperature}); the default is 5.")
        if self.nas_num_random_subnets < 0:
            raise InstaTuneError(f"nas_num_random_subnets must be >= 0 (got {self.nas_num_random_subnets}).")
        for name in ("nas_full_loss_weight", "nas_subnet_loss_weight", "nas_distill_weight"):
            if getattr(self, name) < 0:
                raise InstaTuneError(f"{name} must be >= 0 (got {getattr(self, name)}).")
        if self.ddp_find_unused_parameters is None:
            self.ddp_find_unused_parameters = True
        super().__post_init__()


__all__ = ["InstaTuneArguments", "STRATEGIES"]
