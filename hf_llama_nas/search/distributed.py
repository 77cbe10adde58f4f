"""Distributed evaluation with accelerate: each round's candidates are split across processes.

Under `accelerate launch` every process runs the same (deterministic) search; `SearchSession`
hands each process its contiguous share of a round's new candidates through `split`, every process
appends its own evaluations to the shared results file as they finish, and `gather` gives all
processes every result so they take identical decisions in the next round. The main process alone
creates the file, logs rounds and writes the summary.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AccelerateDistribution", "default_distribution"]


class AccelerateDistribution:
    """`LocalDistribution`'s interface over `accelerate.PartialState` (any number of processes or nodes)."""

    def __init__(self, state: Any | None = None):
        if state is None:
            import torch
            from accelerate import PartialState

            # Without an accelerator, accelerate only forms a process group (gloo) when told it runs on CPU.
            state = PartialState(cpu=not torch.cuda.is_available())
        self.state = state

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    @property
    def num_processes(self) -> int:
        return self.state.num_processes

    @property
    def process_index(self) -> int:
        return self.state.process_index

    def split(self, items: list[Any]) -> list[Any]:
        """This process's contiguous share (shares differ in length by at most one; some may be empty)."""
        count, index = self.num_processes, self.process_index
        base, extra = divmod(len(items), count)
        start = index * base + min(index, extra)
        return items[start:start + base + (1 if index < extra else 0)]

    def gather(self, items: list[Any]) -> list[Any]:
        """Every process's items, concatenated in process order, on every process."""
        from accelerate.utils import gather_object

        return list(gather_object(list(items)))

    def barrier(self) -> None:
        self.state.wait_for_everyone()

    def broadcast(self, value: Any) -> Any:
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value])[0]


def default_distribution() -> Any:
    """`AccelerateDistribution` when launched with several processes, else the single-process default."""
    import os

    from .linas import LocalDistribution

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return AccelerateDistribution()
    return LocalDistribution()
