"""The crash-safe results file of a search: one JSON object per line (JSONL).

The first line is a header that fingerprints the search (space, model, objectives); every real
evaluation is appended as its own line as soon as it finishes, with one `write` on a file opened for
appending, then flushed and fsynced, so a search killed at any moment loses at most the evaluation in
flight and several processes can append to the same file. Rounds add a line with their predictor
quality. A truncated last line (the kill came mid-write) is cut off with a warning when the file is
reopened. Everything a report needs (Pareto set, hypervolume, best sub-network under a constraint)
is computed from the file alone.

Pure data: no torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LlamaNASError
from ..search_space import SearchSpace, SubnetConfig
from .pareto import non_dominated_mask, normalised_hypervolume

__all__ = [
    "RESULTS_FILE",
    "PARETO_FILE",
    "FORMAT",
    "ResultsError",
    "ResultsMismatchError",
    "Evaluation",
    "ResultsStore",
    "search_fingerprint",
]

RESULTS_FILE = "results.jsonl"
PARETO_FILE = "pareto.json"
FORMAT = "hf_llama_nas.search/1"


class ResultsError(LlamaNASError):
    """A results file is corrupted or unreadable."""


class ResultsMismatchError(ResultsError):
    """A results file belongs to another search (space, model or objectives differ)."""


def search_fingerprint(space: Mapping[str, Any], model: Mapping[str, Any], objectives: Sequence[Mapping[str, Any]]) -> str:
    """A short hash of what makes evaluations comparable: the space, the model and the objectives."""
    canonical = json.dumps({"search_space": space, "model": model, "objectives": list(objectives)},
                           sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Evaluation:
    """One real evaluation of a sub-network, as stored in the results file."""

    subnet: SubnetConfig
    values: dict[str, float]
    status: str = "ok"
    error: str | None = None
    time_s: float = 0.0
    round: int = 0
    index: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.subnet.id

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_record(self) -> dict[str, Any]:
        return {
            "type": "evaluation",
            "index": self.index,
            "id": self.id,
            "subnet": self.subnet.to_dict(),
            "values": {k: (v if math.isfinite(v) else None) for k, v in self.values.items()},
            "status": self.status,
            "error": self.error,
            "time_s": self.time_s,
            "round": self.round,
            "details": self.details,
            "finished_at": time.time(),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Evaluation:
        values = {k: (math.nan if v is None else float(v)) for k, v in record.get("values", {}).items()}
        return cls(
            subnet=SubnetConfig.from_dict(record["subnet"]),
            values=values,
            status=record.get("status", "ok"),
            error=record.get("error"),
            time_s=float(record.get("time_s", 0.0)),
            round=int(record.get("round", 0)),
            index=int(record.get("index", 0)),
            details=dict(record.get("details") or {}),
        )


def _describe_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    parts = []
    for key in ("search_space", "model", "objectives"):
        if old.get(key) != new.get(key):
            parts.append(f"{key}: file has {json.dumps(old.get(key), default=str)[:300]}, "
                         f"this search has {json.dumps(new.get(key), default=str)[:300]}")
    return "; ".join(parts) or "fingerprints differ"


class ResultsStore:
    """The evaluations of one search, backed by `DIR/results.jsonl`.

    `open(directory, header, resume)` creates the file with `header`, or (with `resume=True`) reads an
    existing one after checking that it belongs to the same search. `append` writes one evaluation
    durably. `write=False` makes a read-only view (other processes of a distributed search).
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any], evaluations: list[Evaluation],
                 rounds: list[dict[str, Any]], write: bool = True):
        self.path = Path(path)
        self.header = header
        self.evaluations = evaluations
        self.rounds = rounds
        self.write = write
        self._by_id = {e.id: e for e in evaluations}
        self.reference: Evaluation | None = None

    # ----- opening -----

    @classmethod
    def open(cls, directory: str | os.PathLike, header: Mapping[str, Any], resume: bool = False,
             write: bool = True) -> ResultsStore:
        """Create the results file in `directory`, or resume the one there (same search only)."""
        directory = Path(directory)
        path = directory / RESULTS_FILE
        header = dict(header)
        header.setdefault("type", "header")
        header.setdefault("format", FORMAT)
        header["fingerprint"] = search_fingerprint(header.get("search_space", {}), header.get("model", {}),
                                                   header.get("objectives", []))
        if path.exists() and path.stat().st_size > 0:
            if not resume:
                raise ResultsError(
                    f"{path} already holds a search: pass resume=True (CLI: --resume) to continue it, "
                    "or choose another output directory."
                )
            store = cls.read(path, repair=write)
            old = store.header
            if old.get("fingerprint") != header["fingerprint"]:
                raise ResultsMismatchError(
                    f"Cannot resume {path}: it was written by a different search ({_describe_difference(old, header)}). "
                    "Use a new output directory for this search, or rerun with the original space, model and objectives."
                )
            store.write = write
            return store
        if write:
            directory.mkdir(parents=True, exist_ok=True)
            header.setdefault("created_at", time.time())
            _append_line(path, header)
        return cls(path, header, [], [], write=write)

    @classmethod
    def read(cls, path: str | os.PathLike, repair: bool = False) -> ResultsStore:
        """Load a results file (a directory means its results.jsonl); `repair` cuts a truncated last line off."""
        path = Path(path)
        if path.is_dir():
            path = path / RESULTS_FILE
        if not path.is_file():
            raise ResultsError(f"No results file at {path}: run `llama-nas search ... --output DIR` first.")
        data = path.read_bytes()
        lines = data.split(b"\n")
        # A complete file ends with "\n", so the last piece is empty; anything else was cut mid-write.
        if lines[-1].strip():
            try:
                json.loads(lines[-1])
                complete_tail = True
            except json.JSONDecodeError:
                complete_tail = False
            if not complete_tail:
                warnings.warn(f"{path}: the last line is truncated (the search was killed while writing it); "
                              "it is dropped and that evaluation will be redone.", stacklevel=2)
                if repair:
                    with open(path, "r+b") as handle:
                        handle.truncate(len(data) - len(lines[-1]))
                        handle.flush()
                        os.fsync(handle.fileno())
                lines = lines[:-1]
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ResultsError(f"{path}, line {number}, is not valid JSON ({err}): the file is corrupted; "
                                   "restore it or start the search in a new directory.") from None
        if not records or records[0].get("type") != "header":
            raise ResultsError(f"{path} does not start with a search header: it is not a hf_llama_nas results file.")
        if records[0].get("format") != FORMAT:
            raise ResultsError(f"{path} has format {records[0].get('format')!r}; this version reads {FORMAT!r}.")
        evaluations, rounds, seen = [], [], set()
        for record in records[1:]:
            kind = record.get("type")
            if kind == "evaluation":
                evaluation = Evaluation.from_record(record)
                if evaluation.id not in seen:
                    seen.add(evaluation.id)
                    evaluations.append(evaluation)
            elif kind == "round":
                rounds.append(record)
        store = cls(path, records[0], evaluations, rounds, write=False)
        references = [Evaluation.from_record(r) for r in records[1:] if r.get("type") == "reference"]
        store.reference = references[-1] if references else None
        return store

    # ----- writing -----

    def append(self, evaluation: Evaluation, persist: bool = True) -> Evaluation:
        """Record one finished evaluation: durably when this store writes and `persist` (False: another
        process of a distributed search already wrote it)."""
        if evaluation.id in self._by_id:
            return self._by_id[evaluation.id]
        if self.write and persist:
            _append_line(self.path, evaluation.to_record())
        self.evaluations.append(evaluation)
        self._by_id[evaluation.id] = evaluation
        return evaluation

    def set_reference(self, evaluation: Evaluation) -> None:
        """Record the full super-network's values: marked in reports, outside the search's budget and front."""
        if self.write:
            _append_line(self.path, {**evaluation.to_record(), "type": "reference"})
        self.reference = evaluation

    def add_round(self, record: dict[str, Any]) -> None:
        """Record a round's bookkeeping (predictor quality, machinery time)."""
        record = {"type": "round", **record}
        if self.write:
            _append_line(self.path, record)
        self.rounds.append(record)

    # ----- reading -----

    def __len__(self) -> int:
        return len(self.evaluations)

    def __iter__(self) -> Iterator[Evaluation]:
        return iter(self.evaluations)

    def __contains__(self, subnet: SubnetConfig | str) -> bool:
        return (subnet if isinstance(subnet, str) else subnet.id) in self._by_id

    def get(self, subnet: SubnetConfig | str) -> Evaluation | None:
        return self._by_id.get(subnet if isinstance(subnet, str) else subnet.id)

    @property
    def space(self) -> SearchSpace:
        return SearchSpace.from_dict(self.header["search_space"])

    @property
    def objectives(self) -> list[dict[str, Any]]:
        """The objective declarations (as data) the file was written with."""
        return list(self.header["objectives"])

    def ok(self) -> list[Evaluation]:
        """Evaluations that succeeded with a finite value for every objective."""
        names = [o["name"] for o in self.objectives]
        return [e for e in self.evaluations
                if e.ok and all(math.isfinite(e.values.get(n, math.nan)) for n in names)]

    def minimisation_matrix(self, evaluations: Sequence[Evaluation] | None = None) -> np.ndarray:
        """Objective values on their scale, sign-flipped so every column is minimised."""
        evaluations = self.ok() if evaluations is None else evaluations
        rows = [[_to_min(o, e.values[o["name"]]) for o in self.objectives] for e in evaluations]
        return np.asarray(rows, dtype=float).reshape(len(rows), len(self.objectives))

    def feasible(self, evaluations: Sequence[Evaluation] | None = None) -> list[Evaluation]:
        """Evaluations that satisfy every objective's constraint."""
        evaluations = self.ok() if evaluations is None else evaluations
        return [e for e in evaluations if all(_satisfies(o, e.values[o["name"]]) for o in self.objectives)]

    def pareto(self, evaluations: Sequence[Evaluation] | None = None) -> list[Evaluation]:
        """The non-dominated feasible evaluations, sorted by the first objective."""
        candidates = self.feasible(evaluations)
        if not candidates:
            return []
        mask = non_dominated_mask(self.minimisation_matrix(candidates))
        front = [e for e, keep in zip(candidates, mask) if keep]
        first = self.objectives[0]
        return sorted(front, key=lambda e: _to_min(first, e.values[first["name"]]))

    def hypervolume(self, ideal: Mapping[str, float] | None = None, reference: Mapping[str, float] | None = None,
                    first: int | None = None) -> dict[str, Any]:
        """Normalised hypervolume of the first `first` evaluations (all by default), with its reference point.

        `ideal`/`reference` are in the objectives' own units; by default they are the header's
        (`header["hypervolume"]`), else the best/worst values in the file.
        """
        evaluations = self.feasible(self.ok()[: first] if first is not None else self.ok())
        stored = self.header.get("hypervolume") or {}
        ideal = dict(ideal or stored.get("ideal") or {})
        reference = dict(reference or stored.get("reference") or {})
        matrix = self.minimisation_matrix(self.ok())
        lows = matrix.min(axis=0) if len(matrix) else np.zeros(len(self.objectives))
        highs = matrix.max(axis=0) if len(matrix) else np.ones(len(self.objectives))
        ideal_min, ref_min = [], []
        for j, objective in enumerate(self.objectives):
            name = objective["name"]
            a = _to_min(objective, ideal[name]) if name in ideal else lows[j]
            b = _to_min(objective, reference[name]) if name in reference else highs[j]
            a, b = min(a, b), max(a, b)
            if b <= a:
                b = a + 1.0
            ideal_min.append(a)
            ref_min.append(b)
            ideal.setdefault(name, _from_min(objective, a))
            reference.setdefault(name, _from_min(objective, b))
        value = normalised_hypervolume(self.minimisation_matrix(evaluations), ideal_min, ref_min) if evaluations else 0.0
        return {"hypervolume": value, "ideal": ideal, "reference": reference, "num_evaluations": len(evaluations)}

    def best_under(self, constraints: Mapping[str, float], objective: str | None = None) -> Evaluation | None:
        """The best evaluation on `objective` (default: the first expensive one) among those within `constraints`.

        `constraints` map objective names to bounds: `<=` for minimised and `>=` for maximised objectives.
        """
        by_name = {o["name"]: o for o in self.objectives}
        for name in constraints:
            if name not in by_name:
                raise ResultsError(f"Unknown objective {name!r} in constraints: the file has {sorted(by_name)}.")
        if objective is None:
            objective = next((o["name"] for o in self.objectives if o["kind"] == "expensive"), self.objectives[0]["name"])
        if objective not in by_name:
            raise ResultsError(f"Unknown objective {objective!r}: the file has {sorted(by_name)}.")
        target = by_name[objective]
        admissible = [e for e in self.ok() if all(
            _satisfies({**by_name[n], "constraint": bound}, e.values[n]) for n, bound in constraints.items())]
        if not admissible:
            return None
        return min(admissible, key=lambda e: _to_min(target, e.values[objective]))

    def summary(self) -> dict[str, Any]:
        """Counts, hypervolume and the Pareto set, as JSON data."""
        failed = sum(not e.ok for e in self.evaluations)
        reference = None
        if self.reference is not None:
            reference = {"id": self.reference.id, "subnet": self.reference.subnet.to_dict(), "values": self.reference.values}
        return {
            "reference_model": reference,
            "num_evaluations": len(self.evaluations),
            "num_failed": failed,
            "objectives": self.objectives,
            "hypervolume": self.hypervolume(),
            "pareto": [{"id": e.id, "subnet": e.subnet.to_dict(), "values": e.values} for e in self.pareto()],
        }

    def write_summary(self, path: str | os.PathLike) -> None:
        """Write `summary()` as JSON (atomically: a reader never sees half a file)."""
        path = Path(path)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(self.summary(), indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(temporary, path)


def _to_min(objective: Mapping[str, Any], value: float) -> float:
    value = float(value)
    sign = 1.0 if objective["direction"] == "minimize" else -1.0
    if objective.get("scale") == "log":
        value = math.log(value) if value > 0 else -math.inf
    return sign * value


def _from_min(objective: Mapping[str, Any], value: float) -> float:
    sign = 1.0 if objective["direction"] == "minimize" else -1.0
    value = sign * value
    return math.exp(value) if objective.get("scale") == "log" else value


def _satisfies(objective: Mapping[str, Any], value: float) -> bool:
    bound = objective.get("constraint")
    if bound is None:
        return True
    return value <= bound if objective["direction"] == "minimize" else value >= bound


def _append_line(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line with a single write() on an O_APPEND descriptor, then fsync."""
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
        while written < len(line):
            written += os.write(fd, line[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
