"""`LINASCallback`: run the search on the super-network from inside `transformers.Trainer`.

At the end of training (and, with `every_n_steps`, periodically) the callback searches the model being
trained, writes `results.jsonl` and `pareto.json` under `output_dir/<subdir>` (one sub-folder per
step for periodic searches; every process of a distributed run takes part, see `distributed`), and logs the hypervolume and front size through the Trainer's loggers
(TensorBoard, W&B, ...: every `on_log` callback) when bound to the trainer with `bind(trainer)`;
otherwise it appends them to `state.log_history`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from .linas import ALGORITHMS, SearchError, SearchResult
from .objectives import Objective

__all__ = ["LINASCallback"]

logger = logging.getLogger(__name__)


class LINASCallback(TrainerCallback):
    """Search sub-networks of the trained super-network with LINAS (or a baseline) after training."""

    def __init__(self, objectives: Sequence[Objective | str], num_evals: int = 250, population: int = 50,
                 algorithm: str = "linas", every_n_steps: int | None = None, subdir: str = "linas",
                 seed: int = 0, search_kwargs: Mapping[str, Any] | None = None,
                 run_kwargs: Mapping[str, Any] | None = None):
        if algorithm not in ALGORITHMS:
            raise SearchError(f"Unknown search algorithm {algorithm!r}: choose one of {sorted(ALGORITHMS)}.")
        if every_n_steps is not None and every_n_steps < 1:
            raise SearchError(f"every_n_steps must be a positive number of steps, got {every_n_steps}.")
        self.objectives = list(objectives)
        self.num_evals = num_evals
        self.population = population
        self.algorithm = algorithm
        self.every_n_steps = every_n_steps
        self.subdir = subdir
        self.seed = seed
        self.search_kwargs = dict(search_kwargs or {})
        self.run_kwargs = dict(run_kwargs or {})
        self.trainer: Any | None = None
        self.results: list[SearchResult] = []

    def bind(self, trainer: Any) -> LINASCallback:
        """Log through `trainer.log` (all the Trainer's loggers); returns self for chaining."""
        self.trainer = trainer
        return self

    def search(self, model: Any, output_dir: Path, state: TrainerState) -> SearchResult:
        """Run one search on `model` into `output_dir` and log its outcome."""
        model = getattr(model, "module", model)
        space = model.search_space
        cls = ALGORITHMS[self.algorithm]
        algorithm = cls(space, self.objectives, num_evals=self.num_evals, population=self.population,
                        seed=self.seed, **self.search_kwargs)
        was_training = model.training
        model.eval()
        try:
            result = algorithm.run(model, output_dir=output_dir, resume=True, **self.run_kwargs)
        finally:
            model.train(was_training)
        self.results.append(result)
        hv = result.hypervolume()
        metrics = {"nas/hypervolume": hv["hypervolume"], "nas/pareto_size": len(result.pareto()),
                   "nas/evaluations": len(result.store)}
        if self.trainer is not None:
            self.trainer.log(metrics)
        else:
            state.log_history.append({**metrics, "step": state.global_step})
        logger.info("LINAS at step %d: %s (results in %s)", state.global_step, metrics, output_dir)
        return result

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    model: Any = None, **kwargs: Any) -> TrainerControl:
        if self.every_n_steps and state.global_step % self.every_n_steps == 0 and model is not None:
            self.search(model, Path(args.output_dir) / self.subdir / f"step-{state.global_step}", state)
        return control

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     model: Any = None, **kwargs: Any) -> TrainerControl:
        if model is not None:
            self.search(model, Path(args.output_dir) / self.subdir, state)
        return control
