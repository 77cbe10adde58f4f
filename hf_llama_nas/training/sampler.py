"""A seeded sub-network sampler whose draw for a step depends only on (seed, step).

Being a pure function of the global step is what makes InstaTune distributed- and resume-safe: every DDP rank
computes the same sub-network for a step without any communication, and a run resumed from a checkpoint at
step `n` draws exactly what the uninterrupted run drew from step `n` on. The few fields that define the
sequence (seed, space, layer drop order) are saved in every checkpoint (`instatune_sampler.json`).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..search_space import SearchSpace, SubnetConfig
from .errors import InstaTuneError

#: File, inside a checkpoint folder, holding the sampler's state.
SAMPLER_STATE_FILE = "instatune_sampler.json"
#: Name of the config attribute in which `apply_importance_ordering_` stores the layer drop order.
LAYER_DROP_ORDER_ATTR = "nas_layer_drop_order"


@dataclass(frozen=True)
class SubnetSampler:
    """Draws the sub-network of a training step from `space`.

    With a `layer_drop_order` (least influential layer first, e.g. from block influence) and a space in
    `any` mode, a sub-network of depth `d` drops the first `N - d` layers of that order: the layers whose removal
    hurts least, as measured, instead of random ones. Widths are drawn per layer, uniformly, as
    `SearchSpace.sample` does.
    """

    space: SearchSpace
    seed: int = 0
    layer_drop_order: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.layer_drop_order is not None:
            order = tuple(int(i) for i in self.layer_drop_order)
            if sorted(order) != list(range(self.space.num_hidden_layers)):
                raise InstaTuneError(
                    f"layer_drop_order must be a permutation of the {self.space.num_hidden_layers} layer indices, "
                    f"got {list(order)}: recompute it with hf_llama_nas.training.rank_layers on this model."
                )
            object.__setattr__(self, "layer_drop_order", order)

    @property
    def uses_drop_order(self) -> bool:
        return self.layer_drop_order is not None and self.space.layer_mode == "any"

    def layers_for_depth(self, depth: int, rng: random.Random | None = None) -> tuple[int, ...]:
        """The layers a sub-network of `depth` keeps: by drop order, as a prefix, or at random (with `rng`)."""
        total = self.space.num_hidden_layers
        if self.uses_drop_order:
            assert self.layer_drop_order is not None
            return tuple(sorted(self.layer_drop_order[total - depth:]))
        if self.space.layer_mode == "prefix" or rng is None:
            return tuple(range(depth))
        return tuple(sorted(rng.sample(range(total), depth)))

    def sample(self, step: int, index: int = 0) -> SubnetConfig:
        """The `index`-th sub-network of training step `step` (the same on every process and after resume)."""
        rng = random.Random(f"instatune:{self.seed}:{int(step)}:{int(index)}")
        depth = rng.choice(self.space.num_layers)
        layers = self.layers_for_depth(depth, rng)
        widths = tuple(rng.choice(self.space.intermediate_size) for _ in layers)
        return SubnetConfig(layers=layers, intermediate_size=widths)

    def uniform(self, depth: int, width: int) -> SubnetConfig:
        """The sub-network of `depth` layers (chosen as `sample` chooses them), every MLP `width` wide."""
        layers = self.layers_for_depth(depth)
        return SubnetConfig(layers=layers, intermediate_size=(width,) * depth)

    def largest(self) -> SubnetConfig:
        return self.uniform(self.space.num_layers[-1], self.space.intermediate_size[-1])

    def smallest(self) -> SubnetConfig:
        return self.uniform(self.space.num_layers[0], self.space.intermediate_size[0])

    def middle(self) -> SubnetConfig:
        """The median depth at the median width: a fixed mid-size reference."""
        depths, widths = self.space.num_layers, self.space.intermediate_size
        return self.uniform(depths[len(depths) // 2], widths[len(widths) // 2])

    def references(self) -> dict[str, SubnetConfig]:
        """Fixed sub-networks to evaluate during training (the full network is always evaluated besides)."""
        return {"smallest": self.smallest(), "middle": self.middle(), "largest": self.largest()}

    # ----- checkpoint state -----

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "search_space": self.space.to_dict(),
            "layer_drop_order": None if self.layer_drop_order is None else list(self.layer_drop_order),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> SubnetSampler:
        order = state.get("layer_drop_order")
        return cls(SearchSpace.from_dict(state["search_space"]), int(state["seed"]),
                   None if order is None else tuple(order))

    def save(self, directory: str | os.PathLike) -> None:
        with open(os.path.join(directory, SAMPLER_STATE_FILE), "w", encoding="utf-8") as handle:
            json.dump(self.state_dict(), handle, indent=1)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SubnetSampler | None:
        """The sampler saved in a checkpoint folder, or None if it has none (not an InstaTune checkpoint)."""
        path = os.path.join(directory, SAMPLER_STATE_FILE)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return cls.from_state_dict(json.load(handle))


def layer_drop_order_of(config: Any) -> Sequence[int] | None:
    """The drop order stored in a model config by `apply_importance_ordering_`, if any."""
    order = getattr(config, LAYER_DROP_ORDER_ATTR, None)
    return None if order is None else tuple(order)


__all__ = ["SubnetSampler", "SAMPLER_STATE_FILE", "LAYER_DROP_ORDER_ATTR", "layer_drop_order_of"]
