"""The sub-network training strategies of `InstaTuneTrainer`, and what each costs.

Cost per optimizer step relative to one plain forward/backward of the full network (`s` = cost of a sampled
sub-network, 0 < s <= 1, about its share of the decoder parameters):

* ``alternate`` (LLaMA-NAS): even steps train the full network, odd steps one sampled sub-network, no
  distillation. Time (1 + s) / 2 on average, memory of one forward/backward: never above plain training.
* ``joint`` (InstaTune): each step trains the full network and one sampled sub-network, the sub-network also
  distilled (KL at temperature T) from the full network's detached logits. Time 1 + s; each network's
  backward runs right after its forward, so peak memory is one forward/backward plus the teacher logits
  (batch x length x vocab floats) and the distillation loss's temporaries of that size.
* ``sandwich`` (BigNAS): the largest, the smallest and `nas_num_random_subnets` random sub-networks per step,
  all but the largest distilled from the largest. Time 1 + s_min + k * s, memory as ``joint``.

Kept free of torch/transformers imports, so that the CLI can list the choices cheaply.
"""

from __future__ import annotations

#: The sub-network training strategies `InstaTuneTrainer` implements.
STRATEGIES = ("alternate", "joint", "sandwich")

__all__ = ["STRATEGIES"]
