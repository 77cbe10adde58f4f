"""Loaders of the offline evaluation sets for the task pack (`tasks/*.yaml`, `custom_dataset: !function ...`).

Each loader reads the files under the data directory: `data_dir` from the task metadata (e.g.
`lm_eval --metadata '{"data_dir": ...}'`), else the one `evaluate(..., data_dir=...)` set with `using_data_dir`,
else `hf_llama_nas.data.shared_data_dir()`. It checks every row and returns a `DatasetDict` in the schema of the Hub
dataset lm-eval's own task reads, so the YAMLs keep lm-eval's prompts, choices, targets and metrics verbatim.
A missing file or a malformed row raises `TaskDataError` naming the file, the row and the fix; no row is dropped.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import datasets

from ..data import DATA_ENV_VAR, shared_data_dir
from ..errors import LlamaNASError

ARC_DIR = Path("eval/llm-foundry-local_data/world_knowledge")
PIQA_DIR = Path("eval/piqa")
WINOGRANDE_FILE = Path("eval/llm-foundry-local_data/language_understanding/winogrande.jsonl")
BOOLQ_FILE = Path("eval/llm-foundry-local_data/reading_comprehension/boolq.jsonl")
HELLASWAG_FILE = Path("eval/hellaswag/hellaswag_val_subset1000.jsonl")
TRUTHFULQA_FILE = Path("eval/truthfulqa/data/v0/mc_task.json")
MMLU_DIR = Path("eval/mmlu")
ARC_LABELS = "ABCDE"


_DATA_DIR: ContextVar[str | None] = ContextVar("hf_llama_nas_eval_data_dir", default=None)


class TaskDataError(LlamaNASError):
    """An evaluation data file is missing or holds a row that does not fit its task."""


@contextlib.contextmanager
def using_data_dir(data_dir: str | os.PathLike | None) -> Iterator[None]:
    """Read the task pack's data from `data_dir` (None: the default) while the block runs; one task index serves all."""
    token = _DATA_DIR.set(os.fspath(data_dir) if data_dir else None)
    try:
        yield
    finally:
        _DATA_DIR.reset(token)


def data_path(relative: Path, data_dir: str | Path | None = None) -> Path:
    """`relative` inside the data directory, or an error saying where the file was expected and how to point there."""
    data_dir = data_dir or _DATA_DIR.get()
    root = Path(data_dir).expanduser() if data_dir else shared_data_dir()
    path = root / relative
    if not path.is_file():
        raise TaskDataError(
            f"Evaluation data file {path} is missing. Pass the folder that holds eval/ as data_dir "
            f"(evaluate(..., data_dir=...), or lm_eval --metadata '{{\"data_dir\": \"...\"}}'), or set {DATA_ENV_VAR}."
        )
    return path


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """`(line number, object)` for each non-empty line; a line that is not a JSON object is an error."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaskDataError(f"{path}, line {number}: not valid JSON ({err.msg}). Fix or remove that line.") from err
            if not isinstance(row, dict):
                raise TaskDataError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}.")
            yield number, row


def _check(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise TaskDataError(f"{where}: {problem}. Fix or remove that row.")


def _is_str_list(value: Any, length: int | None = None) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(item, str) for item in value)
        and (len(value) == length if length is not None else len(value) > 0)
    )


def _is_index(value: Any, size: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size


def _dataset(split: str, rows: list[dict[str, Any]], path: Path) -> datasets.DatasetDict:
    if not rows:
        raise TaskDataError(f"{path} holds no rows: check that it is the right file.")
    return datasets.DatasetDict({split: datasets.Dataset.from_list(rows)})


def _foundry_mc_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of MosaicML's multiple-choice JSONL: `{"query": str, "choices": [str, ...], "gold": int}`."""
    for number, row in _jsonl_rows(path):
        where = f"{path}, line {number}"
        _check(isinstance(row.get("query"), str), where, "'query' must be a string")
        _check(_is_str_list(row.get("choices")), where, "'choices' must be a non-empty list of strings")
        _check(_is_index(row.get("gold"), len(row["choices"])), where, "'gold' must index 'choices'")
        yield where, row


def arc(subset: str, data_dir: str | Path | None = None, **_: Any) -> datasets.DatasetDict:
    """ARC test set (`subset`: `challenge` or `easy`) in `allenai/ai2_arc`'s schema (`question`, `choices`, `answerKey`)."""
    path = data_path(ARC_DIR / f"arc_{subset}.jsonl", data_dir)
    rows = []
    for where, row in _foundry_mc_rows(path):
        _check(row["query"].startswith("Question: "), where, "'query' must start with 'Question: '")
        labels = list(ARC_LABELS[: len(row["choices"])])
        rows.append(
            {
                "question": row["query"][len("Question: ") :],
                "choices": {"text": row["choices"], "label": labels},
                "answerKey": labels[row["gold"]],
            }
        )
    return _dataset("test", rows, path)


def piqa(data_dir: str | Path | None = None, **_: Any) -> datasets.DatasetDict:
    """PIQA validation set from the authors' `valid.jsonl` + `valid-labels.lst` (`goal`, `sol1`, `sol2`, `label`)."""
    path = data_path(PIQA_DIR / "valid.jsonl", data_dir)
    labels_path = data_path(PIQA_DIR / "valid-labels.lst", data_dir)
    labels = [line.strip() for line in labels_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = []
    for number, row in _jsonl_rows(path):
        where = f"{path}, line {number}"
        for key in ("goal", "sol1", "sol2"):
            _check(isinstance(row.get(key), str), where, f"{key!r} must be a string")
        _check(len(rows) < len(labels), where, f"{labels_path} has no label for this row")
        _check(labels[len(rows)] in ("0", "1"), f"{labels_path}, line {len(rows) + 1}", "a label must be 0 or 1")
        rows.append({"goal": row["goal"], "sol1": row["sol1"], "sol2": row["sol2"], "label": int(labels[len(rows)])})
    _check(len(labels) == len(rows), str(labels_path), f"{len(labels)} labels for {len(rows)} rows of {path}")
    return _dataset("validation", rows, path)


def winogrande(data_dir: str | Path | None = None, **_: Any) -> datasets.DatasetDict:
    """WinoGrande dev set as partial-scoring rows: the sentence up to each option, the rest, and the gold option."""
    path = data_path(WINOGRANDE_FILE, data_dir)
    rows = []
    for number, row in _jsonl_rows(path):
        where = f"{path}, line {number}"
        _check(_is_str_list(row.get("context_options"), 2), where, "'context_options' must be 2 strings")
        _check(isinstance(row.get("continuation"), str), where, "'continuation' must be a string")
        _check(_is_index(row.get("gold"), 2), where, "'gold' must be 0 or 1")
        rows.append({key: row[key] for key in ("context_options", "continuation", "gold")})
    return _dataset("validation", rows, path)


def boolq(data_dir: str | Path | None = None, **_: Any) -> datasets.DatasetDict:
    """BoolQ dev set in `super_glue/boolq`'s schema (`passage`, `question` without its '?', `label`)."""
    path = data_path(BOOLQ_FILE, data_dir)
    rows = []
    for where, row in _foundry_mc_rows(path):
        query = row["query"]
        _check(row["choices"] == ["no", "yes"], where, "'choices' must be ['no', 'yes']")
        _check(
            query.startswith("Passage: ") and "\nQuestion: " in query and query.endswith("?"),
            where,
            "'query' must read 'Passage: ...\\nQuestion: ...?'",
        )
        passage, question = query[len("Passage: ") : -1].rsplit("\nQuestion: ", 1)
        rows.append({"passage": passage, "question": question, "label": row["gold"]})
    return _dataset("validation", rows, path)


def hellaswag(data_dir: str | Path | None = None, **_: Any) -> datasets.DatasetDict:
    """The 1000-item HellaSwag validation subset in its original schema (lm-eval's `process_docs` runs on it)."""
    path = data_path(HELLASWAG_FILE, data_dir)
    rows = []
    for number, row in _jsonl_rows(path):
        where = f"{path}, line {number}"
        for key in ("activity_label", "ctx_a", "ctx_b"):
            _check(isinstance(row.get(key), str), where, f"{key!r} must be a string")
        _check(_is_str_list(row.get("endings"), 4), where, "'endings' must be 4 strings")
        label = row.get("label")
        _check(str(label) in ("0", "1", "2", "3"), where, "'label' must be 0..3")
        rows.append(
            {
                "activity_label": row["activity_label"],
                "ctx_a": row["ctx_a"],
                "ctx_b": row["ctx_b"],
                "endings": row["endings"],
                "label": str(label),
            }
        )
    return _dataset("validation", rows, path)


def truthfulqa(data_dir: str | Path | None = None, **_: Any) -> datasets.DatasetDict:
    """TruthfulQA MC1/MC2 (original `mc_task.json`) in `truthful_qa/multiple_choice`'s schema."""
    path = data_path(TRUTHFULQA_FILE, data_dir)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise TaskDataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}).") from err
    _check(isinstance(items, list), str(path), "expected a JSON list of questions")
    rows = []
    for number, item in enumerate(items):
        where = f"{path}, question {number}"
        _check(isinstance(item, dict) and isinstance(item.get("question"), str), where, "'question' must be a string")
        row: dict[str, Any] = {"question": item["question"]}
        for key in ("mc1_targets", "mc2_targets"):
            targets = item.get(key)
            _check(isinstance(targets, dict) and len(targets) > 0, where, f"{key!r} must map answers to 0/1")
            _check(all(label in (0, 1) for label in targets.values()), where, f"{key!r} labels must be 0 or 1")
            row[key] = {"choices": list(targets), "labels": list(targets.values())}
        _check(row["mc1_targets"]["labels"][0] == 1, where, "the first 'mc1_targets' answer must be the true one")
        rows.append(row)
    return _dataset("validation", rows, path)


def process_results_mc2(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, float]:
    """TruthfulQA MC2 as lm-eval computes it: the normalised probability mass of the true answers."""
    import numpy as np

    log_likelihoods = np.array([ll for ll, _ in results])
    probs = np.exp(log_likelihoods)
    probs = probs / probs.sum()
    labels = np.array(doc["mc2_targets"]["labels"])
    return {"acc": float(probs[labels == 1].sum())}


def _mmlu_rows(path: Path, subject: str) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        for number, record in enumerate(csv.reader(handle), start=1):
            where = f"{path}, row {number}"
            _check(len(record) == 6, where, f"expected 6 columns (question, A, B, C, D, answer), got {len(record)}")
            _check(record[5] in "ABCD" and len(record[5]) == 1, where, "the answer must be A, B, C or D")
            rows.append(
                {"question": record[0], "subject": subject, "choices": record[1:5], "answer": "ABCD".index(record[5])}
            )
    if not rows:
        raise TaskDataError(f"{path} holds no rows: check that it is the right file.")
    return rows


def mmlu(subject: str, data_dir: str | Path | None = None, **_: Any) -> datasets.DatasetDict:
    """One MMLU subject: `test` (the questions) and `dev` (the 5 few-shot exemplars), in `cais/mmlu`'s schema."""
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list(
                _mmlu_rows(data_path(MMLU_DIR / split / f"{subject}_{split}.csv", data_dir), subject)
            )
            for split in ("test", "dev")
        }
    )


def arc_easy(**kwargs: Any) -> datasets.DatasetDict:
    return arc("easy", **kwargs)


def arc_challenge(**kwargs: Any) -> datasets.DatasetDict:
    return arc("challenge", **kwargs)


#: Every loader by the name the YAMLs call it with (for the tests and for data checks).
LOADERS: dict[str, Callable[..., datasets.DatasetDict]] = {
    "arc_easy": arc_easy,
    "arc_challenge": arc_challenge,
    "piqa": piqa,
    "winogrande": winogrande,
    "boolq": boolq,
    "hellaswag": hellaswag,
    "truthfulqa": truthfulqa,
}

__all__ = ["LOADERS", "TaskDataError", "data_path", "mmlu", "process_results_mc2", "using_data_dir"]
