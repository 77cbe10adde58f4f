"""`evaluate(model, subnet, tasks)`: lm-eval accuracy of one sub-network, the accuracy objective of the search.

The model is evaluated in place, in eval mode, with `subnet` active (sub-network and train/eval mode are restored
afterwards), through `ElasticLlamaLM` and
`lm_eval.simple_evaluate`. Task names resolve against lm-eval's own tasks plus the offline task pack of this
package (`tasks/`), whose tasks take the standard names (`arc_easy`, `arc_challenge`, `piqa`, `winogrande`,
`boolq`, `mmlu` and its groups/subjects, `truthfulqa_mc1`, `truthfulqa_mc2`) plus `hellaswag_subset`, and read
their data from `data_dir` (default: the shared data folder) instead of the Hub.

Between calls nothing grows: each call wraps the model in a fresh, light `ElasticLlamaLM` (no weight is loaded or
copied), and only the task index (one per process) and up to a few tokenizers are cached.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lm_eval
from lm_eval.tasks import TaskManager
from torch import nn
from transformers import PreTrainedTokenizerBase

from ..errors import LlamaNASError
from ..modeling import ElasticLlamaForCausalLM
from ..modeling.modeling_elastic_llama import SubnetLike
from .lm_eval_model import ElasticLlamaLM, load_tokenizer
from .task_data import using_data_dir

#: The offline task pack shipped with the package.
TASK_PACK_DIR = Path(__file__).resolve().parent / "tasks"
#: The pack's tasks and groups (the headline names; MMLU's groups and subjects resolve too).
PACK_TASKS = (
    "arc_challenge",
    "arc_easy",
    "piqa",
    "winogrande",
    "boolq",
    "mmlu",
    "truthfulqa_mc1",
    "truthfulqa_mc2",
    "hellaswag_subset",
)
_FEWSHOT_SEED = 1234


class UnknownTaskError(LlamaNASError):
    """A task name that neither lm-eval nor the offline task pack knows."""


class _DropMessages(logging.Filter):
    """Hides lm-eval's log lines that are expected here (a model object passed in, pack tasks overriding Hub ones)."""

    PATTERNS = (
        "overrides existing task",
        "is not of type `str`",
        "Passed an already-initialized model",
        "Custom kwargs can be passed",
    )
    LOGGERS = ("lm_eval.tasks._index", "lm_eval.models.huggingface", "lm_eval.api.task")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(pattern in record.getMessage() for pattern in self.PATTERNS)


@contextlib.contextmanager
def _quiet_lm_eval() -> Iterator[None]:
    log_filter = _DropMessages()
    loggers = [logging.getLogger(name) for name in _DropMessages.LOGGERS]
    for logger in loggers:
        logger.addFilter(log_filter)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(log_filter)


@functools.lru_cache(maxsize=2)
def task_manager(include_defaults: bool = True) -> TaskManager:
    """lm-eval's task index with the offline pack on top (its tasks win over Hub tasks of the same name).

    Built once per process (scanning lm-eval's task folders takes seconds); the data directory is not part of it.
    """
    with _quiet_lm_eval():
        return TaskManager(include_path=str(TASK_PACK_DIR), include_defaults=include_defaults)


@functools.lru_cache(maxsize=4)
def _cached_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    return load_tokenizer(name_or_path)


def check_task_names(tasks: Sequence[str | dict], manager: TaskManager) -> None:
    """Fail early, with suggestions, on a task name lm-eval would not find (YAML paths and dicts pass through)."""
    known = set(manager.all_tasks)
    for task in tasks:
        if isinstance(task, str) and task not in known and not os.path.isfile(task):
            close = difflib.get_close_matches(task, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownTaskError(
                f"Unknown task {task!r}.{hint} The offline pack has {', '.join(PACK_TASKS)} (plus mmlu_<subject>); "
                "other lm-eval tasks need their dataset to be reachable."
            )


def _metrics(entry: dict[str, Any]) -> dict[str, Any]:
    """lm-eval's `"acc,none"`-style keys as plain metric names (other filters keep their suffix)."""
    metrics: dict[str, Any] = {}
    for key, value in entry.items():
        if key in ("alias", "name", "sample_len"):
            continue
        if key == "sample_count":
            metrics["num_samples"] = max(int(count) for count in value.values())
            continue
        name, _, filter_name = key.partition(",")
        metrics[name if filter_name in ("", "none") else key] = float(value) if isinstance(value, (int, float)) else value
    return metrics


def summarize(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{task or group: {"acc": ..., "acc_stderr": ..., "acc_norm": ..., "num_samples": ...}}` from lm-eval's results."""
    summary: dict[str, dict[str, Any]] = {}
    for section in ("results", "groups"):
        for name, entry in (results.get(section) or {}).items():
            summary.setdefault(name, {}).update(_metrics(entry))
    for name, counts in (results.get("n-samples") or {}).items():
        if name in summary:
            summary[name]["num_samples"] = counts.get("effective")
    return summary


def evaluate(
    model: ElasticLlamaForCausalLM | nn.Module | ElasticLlamaLM,
    subnet: SubnetLike,
    tasks: str | Sequence[str | dict],
    *,
    limit: int | float | None = None,
    num_fewshot: int | None = None,
    tokenizer: str | PreTrainedTokenizerBase | None = None,
    batch_size: int = 16,
    data_dir: str | os.PathLike | None = None,
    prefix_sharing: bool = True,
    check_space: bool = True,
    return_raw: bool = False,
) -> dict[str, Any]:
    """Accuracy of `model` with `subnet` active (None: the full network, or the model's active one if it is plain).

    Returns `{name: {"acc": float, "acc_stderr": float, "acc_norm": float (tasks that have it),
    "num_samples": int}}` for every task and group evaluated (e.g. `"mmlu"` and its four categories carry the
    size-weighted aggregate `acc`). `limit` is lm-eval's (first N documents of each task, so of each MMLU subject,
    or a fraction);
    `num_fewshot` overrides the tasks' defaults (the pack's MMLU is 5-shot, the others 0-shot). `tokenizer`
    defaults to the one stored with the model's checkpoint. With `return_raw=True` the result also holds lm-eval's
    whole output under `"_lm_eval"`.

    Example: `evaluate(model, subnet, ["arc_easy", "mmlu"], limit=100)["arc_easy"]["acc_norm"]`.
    """
    task_list = [tasks] if isinstance(tasks, str) else list(tasks)
    if not task_list:
        raise UnknownTaskError("No task given: pass at least one task name, e.g. tasks=['arc_easy'].")
    manager = task_manager()
    check_task_names(task_list, manager)
    was_training = (model.model if isinstance(model, ElasticLlamaLM) else model).training
    if isinstance(model, ElasticLlamaLM):
        lm = model
    else:
        if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = _cached_tokenizer(os.fspath(tokenizer or model.name_or_path))
        with _quiet_lm_eval():
            lm = ElasticLlamaLM(model, tokenizer=tokenizer, batch_size=batch_size, prefix_sharing=prefix_sharing)
    target = lm.model
    previous = target.active_subnet if isinstance(target, ElasticLlamaForCausalLM) else None
    lm.set_subnet(subnet, check_space=check_space)
    target.eval()
    try:
        with _quiet_lm_eval(), using_data_dir(data_dir):
            raw = lm_eval.simple_evaluate(
                model=lm,
                tasks=task_list,
                num_fewshot=num_fewshot,
                limit=limit,
                task_manager=manager,
                log_samples=return_raw,
                random_seed=None,
                numpy_random_seed=None,
                torch_random_seed=None,
                fewshot_random_seed=_FEWSHOT_SEED,
            )
    finally:
        if isinstance(target, ElasticLlamaForCausalLM):
            target.set_subnet(previous, check_space=False)
        target.train(was_training)
    summary = summarize(raw)
    if return_raw:
        summary["_lm_eval"] = raw
    return summary


__all__ = ["PACK_TASKS", "TASK_PACK_DIR", "UnknownTaskError", "check_task_names", "evaluate", "summarize", "task_manager"]
