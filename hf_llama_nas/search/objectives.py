"""Search objectives declared as data.

An `Objective` says what is measured (`name`), which way is better (`direction`), whether it is
*cheap* (an exact function of the sub-network's architecture: parameters, bytes, MACs, computed for
every candidate and never predicted) or *expensive* (measured on the model: accuracy, perplexity,
latency, ...; predicted by LINAS between real evaluations), an optional constraint, and the scale on
which predictors and hypervolumes see it (`"log"` for quantities such as perplexity that span orders
of magnitude). Built-in objectives are made by name with `get_objective`; any function of
`(model, subnet)` (expensive) or `(subnet, dims)` (cheap) becomes an objective with `Objective(...)`.

The module imports no torch: measuring functions import it when they run.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import LlamaNASError
from ..search_space import ModelDims, SearchSpace, SubnetConfig

__all__ = [
    "ObjectiveError",
    "Objective",
    "OBJECTIVE_FACTORIES",
    "get_objective",
    "resolve_objectives",
    "check_objectives",
    "params_objective",
    "bytes_objective",
    "macs_objective",
    "perplexity_objective",
    "accuracy_objective",
    "latency_objective",
    "throughput_objective",
    "peak_memory_objective",
    "macs_per_token",
]

DIRECTIONS = ("minimize", "maximize")
KINDS = ("cheap", "expensive")
SCALES = ("linear", "log")


class ObjectiveError(LlamaNASError):
    """An objective is unknown, malformed, or conflicts with the search space."""


@dataclass(frozen=True)
class Objective:
    """One objective of a search.

    `fn` is `fn(subnet, dims) -> float` for cheap objectives and `fn(model, subnet) -> float | dict`
    for expensive ones (the model has `subnet` active when it is called; a dict must hold "value" and
    may hold details that are stored with the evaluation). `constraint` is an upper bound for a
    minimised objective and a lower bound for a maximised one. `layer_additive` declares that a cheap
    objective is a constant plus a sum over kept layers of a function of the layer's width, which lets
    the search compute it for thousands of candidates at once, exactly. `options` are what the
    objective was built with; they enter the results file's fingerprint.
    """

    name: str
    direction: str = "minimize"
    kind: str = "expensive"
    fn: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    constraint: float | None = None
    scale: str = "linear"
    layer_additive: bool = False
    unit: str = ""
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in ",= "):
            raise ObjectiveError(f"Objective name {self.name!r} must be a non-empty string without ',', '=' or spaces.")
        if self.direction not in DIRECTIONS:
            raise ObjectiveError(f"Objective {self.name!r}: direction {self.direction!r} must be one of {list(DIRECTIONS)}.")
        if self.kind not in KINDS:
            raise ObjectiveError(f"Objective {self.name!r}: kind {self.kind!r} must be one of {list(KINDS)}.")
        if self.scale not in SCALES:
            raise ObjectiveError(f"Objective {self.name!r}: scale {self.scale!r} must be one of {list(SCALES)}.")
        if self.fn is None or not callable(self.fn):
            raise ObjectiveError(f"Objective {self.name!r} needs a callable `fn` that measures it.")
        if self.layer_additive and self.kind != "cheap":
            raise ObjectiveError(f"Objective {self.name!r}: only cheap objectives can be layer_additive.")
        if self.constraint is not None and not math.isfinite(float(self.constraint)):
            raise ObjectiveError(f"Objective {self.name!r}: the constraint must be a finite number, got {self.constraint!r}.")

    def __copy__(self) -> Objective:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Objective:
        """An objective is an immutable declaration: copies share it. pymoo deep-copies problems (and so their
        objectives) every generation; copying `fn` would copy the model it measures with each time."""
        return self

    @property
    def cheap(self) -> bool:
        return self.kind == "cheap"

    @property
    def sign(self) -> float:
        """+1 for minimised, -1 for maximised objectives: `sign * value` is always minimised."""
        return 1.0 if self.direction == "minimize" else -1.0

    def with_constraint(self, bound: float | None) -> Objective:
        """The same objective, bounded (`<= bound` if minimised, `>= bound` if maximised)."""
        return replace(self, constraint=None if bound is None else float(bound))

    def transform(self, value: float) -> float:
        """The value on the objective's scale (log for `scale="log"`), as predictors and hypervolumes see it."""
        value = float(value)
        if self.scale == "log":
            return math.log(value) if value > 0 else (-math.inf if value == 0 else math.nan)
        return value

    def to_min(self, value: float) -> float:
        """Transformed and sign-flipped so that smaller is better (for Pareto maths)."""
        return self.sign * self.transform(value)

    def violation(self, value: float) -> float:
        """How far `value` is outside the constraint (0 when it is satisfied or there is none)."""
        if self.constraint is None:
            return 0.0
        return max(0.0, self.sign * (float(value) - float(self.constraint)))

    def describe(self) -> dict[str, Any]:
        """The objective as JSON data (what results files record and fingerprint)."""
        return {
            "name": self.name,
            "direction": self.direction,
            "kind": self.kind,
            "constraint": self.constraint,
            "scale": self.scale,
            "unit": self.unit,
            "options": {key: _jsonable(value) for key, value in dict(self.options).items()},
        }

    def compute_cheap(self, subnet: SubnetConfig, dims: ModelDims) -> float:
        """The exact value of a cheap objective."""
        if not self.cheap:
            raise ObjectiveError(f"Objective {self.name!r} is expensive: it is measured on a model, not computed.")
        return float(self.fn(subnet, dims))

    def measure(self, model: Any, subnet: SubnetConfig) -> tuple[float, dict[str, Any]]:
        """Run an expensive objective on `model` (with `subnet` active): (value, details)."""
        result = self.fn(model, subnet)
        if isinstance(result, Mapping):
            if "value" not in result:
                raise ObjectiveError(f"Objective {self.name!r} returned a dict without a 'value' key.")
            details = {key: _jsonable(val) for key, val in result.items() if key != "value"}
            return float(result["value"]), details
        return float(result), {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__} shape {tuple(shape)}>"
    name = getattr(value, "name_or_path", None)
    return f"<{type(value).__name__}{' ' + str(name) if name else ''}>"


# ----- cheap objectives: exact functions of the architecture -----


def params_objective(include_embeddings: bool = True, constraint: float | None = None) -> Objective:
    """Parameter count of the extracted sub-network (exact); `include_embeddings=False`: decoder only."""
    name = "params" if include_embeddings else "decoder_params"
    return Objective(
        name=name,
        direction="minimize",
        kind="cheap",
        fn=lambda subnet, dims: subnet.num_parameters(dims, include_embeddings=include_embeddings),
        constraint=constraint,
        layer_additive=True,
        unit="parameters",
        options={"include_embeddings": include_embeddings},
    )


def bytes_objective(dtype: str = "float16", constraint: float | None = None) -> Objective:
    """Size in bytes of the weights at `dtype` ("float32", "float16", "bfloat16" or "int8"), exact."""
    short = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "int8": "int8"}
    if dtype not in short:
        raise ObjectiveError(f"Unknown dtype {dtype!r} for a bytes objective: choose one of {list(short)}.")
    return Objective(
        name=f"bytes_{short[dtype]}",
        direction="minimize",
        kind="cheap",
        fn=lambda subnet, dims: subnet.num_bytes(dims, dtype),
        constraint=constraint,
        layer_additive=True,
        unit="bytes",
        options={"dtype": dtype},
    )


def macs_per_token(subnet: SubnetConfig, dims: ModelDims, sequence_length: int = 1) -> int:
    """Multiply-accumulates to process one token at position `sequence_length` (weights plus attention).

    Every Linear costs out*in MACs per token, attention scores and values cost
    `2 * heads * head_dim * sequence_length` per layer, and the LM head costs vocab*hidden.
    """
    total = dims.vocab_size * dims.hidden_size
    q_dim = dims.num_attention_heads * dims.head_dim
    kv_dim = dims.num_key_value_heads * dims.head_dim
    for width in subnet.intermediate_size:
        total += dims.hidden_size * (q_dim + 2 * kv_dim) + q_dim * dims.hidden_size
        total += 3 * width * dims.hidden_size
        total += 2 * q_dim * sequence_length
    return total


def macs_objective(sequence_length: int = 1, constraint: float | None = None) -> Objective:
    """MACs per token at context position `sequence_length` (exact; layer-additive)."""
    return Objective(
        name="macs",
        direction="minimize",
        kind="cheap",
        fn=lambda subnet, dims: macs_per_token(subnet, dims, sequence_length),
        constraint=constraint,
        layer_additive=True,
        unit="MACs/token",
        options={"sequence_length": sequence_length},
    )


# ----- expensive objectives: measured on the model -----


def perplexity_objective(token_ids: Sequence[int] | Any, context_length: int = 256, stride: int | None = None,
                         constraint: float | None = None) -> Objective:
    """Perplexity on fixed token ids (see `hf_llama_nas.evaluation.evaluate_perplexity`); log scale."""
    ids = [int(i) for i in (token_ids.tolist() if hasattr(token_ids, "tolist") else token_ids)]
    if len(ids) < 2:
        raise ObjectiveError("The perplexity objective needs at least 2 token ids.")

    def measure(model: Any, subnet: SubnetConfig) -> dict[str, Any]:
        import torch

        from ..evaluation.perplexity import evaluate_perplexity

        result = evaluate_perplexity(model, torch.tensor(ids), context_length=context_length, stride=stride,
                                     progress=False)
        return {"value": result.perplexity, "mean_nll": result.mean_nll, "scored_tokens": result.num_scored_tokens}

    digest = hashlib.sha1(",".join(map(str, ids)).encode()).hexdigest()[:12]
    return Objective(
        name="perplexity",
        direction="minimize",
        kind="expensive",
        fn=measure,
        constraint=constraint,
        scale="log",
        options={"num_tokens": len(ids), "tokens_sha1": digest, "context_length": context_length, "stride": stride},
    )


def accuracy_objective(tasks: Sequence[str] | str, limit: int | None = None, num_fewshot: int | None = None,
                       metric: str = "acc", constraint: float | None = None, name: str = "accuracy",
                       **evaluate_kwargs: Any) -> Objective:
    """Mean `metric` over lm-eval `tasks`, through `hf_llama_nas.evaluation.evaluate` (per-task values kept)."""
    task_list = [tasks] if isinstance(tasks, str) else list(tasks)
    task_list = [t.strip() for t in task_list if t and t.strip()]
    if not task_list:
        raise ObjectiveError("The accuracy objective needs at least one task: pass --tasks arc_easy (for example).")

    def measure(model: Any, subnet: SubnetConfig) -> dict[str, Any]:
        from .. import evaluation

        evaluate = getattr(evaluation, "evaluate", None)
        if evaluate is None:
            raise ObjectiveError("hf_llama_nas.evaluation.evaluate is not available: install the evaluation engine.")
        # The search has validated `subnet` already; the reference full model may lie outside the space.
        results = evaluate(model, subnet, task_list, limit=limit, num_fewshot=num_fewshot, check_space=False,
                           **evaluate_kwargs)
        per_task = {}
        for task in task_list:
            metrics = results.get(task)
            if metrics is None or metric not in metrics:
                raise ObjectiveError(f"evaluate() returned no {metric!r} for task {task!r} (got {results.get(task)!r}).")
            per_task[task] = float(metrics[metric])
        return {"value": statistics.fmean(per_task.values()), "per_task": per_task}

    return Objective(
        name=name,
        direction="maximize",
        kind="expensive",
        fn=measure,
        constraint=constraint,
        options={"tasks": task_list, "limit": limit, "num_fewshot": num_fewshot, "metric": metric,
                 **{k: _jsonable(v) for k, v in evaluate_kwargs.items()}},
    )


def _timed_forwards(model: Any, batch_size: int, sequence_length: int, warmup: int, repeats: int) -> list[float]:
    """Wall times (s) of `repeats` forward passes after `warmup` ones; CUDA is synchronised around each pass."""
    import torch

    device = next(model.parameters()).device
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch_size, sequence_length), generator=generator).to(device)
    cuda = device.type == "cuda"
    times = []
    with torch.no_grad():
        for step in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(input_ids=ids, use_cache=False)
            if cuda:
                torch.cuda.synchronize(device)
            if step >= warmup:
                times.append(time.perf_counter() - start)
    return times


def _timing_objective(name: str, direction: str, unit: str, from_median: Callable[[float], float], batch_size: int,
                      sequence_length: int, warmup: int, repeats: int, constraint: float | None) -> Objective:
    """An objective measured from the median of timed forward passes (`from_median` maps seconds to the value)."""
    _check_timing(batch_size, sequence_length, warmup, repeats)

    def measure(model: Any, subnet: SubnetConfig) -> dict[str, Any]:
        times = _timed_forwards(model, batch_size, sequence_length, warmup, repeats)
        return {"value": from_median(statistics.median(times)), "times_s": times}

    return Objective(name=name, direction=direction, kind="expensive", fn=measure, constraint=constraint, unit=unit,
                     options={"batch_size": batch_size, "sequence_length": sequence_length, "warmup": warmup,
                              "repeats": repeats})


def latency_objective(batch_size: int = 1, sequence_length: int = 128, warmup: int = 2, repeats: int = 5,
                      constraint: float | None = None) -> Objective:
    """Median forward latency in seconds at a fixed batch and sequence length, measured on the model's device."""
    return _timing_objective("latency", "minimize", "s", lambda median: median, batch_size, sequence_length,
                             warmup, repeats, constraint)


def throughput_objective(batch_size: int = 8, sequence_length: int = 128, warmup: int = 2, repeats: int = 5,
                         constraint: float | None = None) -> Objective:
    """Tokens per second of forward passes (batch * sequence / median time), measured on the model's device."""
    return _timing_objective("throughput", "maximize", "tokens/s", lambda median: batch_size * sequence_length / median,
                             batch_size, sequence_length, warmup, repeats, constraint)


def peak_memory_objective(batch_size: int = 1, sequence_length: int = 128, constraint: float | None = None) -> Objective:
    """Peak memory of one forward pass in bytes: CUDA's allocator peak on a GPU, the process's RSS growth on CPU."""
    _check_timing(batch_size, sequence_length, 0, 1)

    def measure(model: Any, subnet: SubnetConfig) -> dict[str, Any]:
        import torch

        device = next(model.parameters()).device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            _timed_forwards(model, batch_size, sequence_length, 0, 1)
            return {"value": float(torch.cuda.max_memory_allocated(device)), "device": "cuda"}
        import resource

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        _timed_forwards(model, batch_size, sequence_length, 0, 1)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        return {"value": float(weights + 1024 * max(0, after - before)), "device": "cpu"}

    return Objective(name="peak_memory", direction="minimize", kind="expensive", fn=measure, constraint=constraint,
                     unit="bytes", options={"batch_size": batch_size, "sequence_length": sequence_length})


def _check_timing(batch_size: int, sequence_length: int, warmup: int, repeats: int) -> None:
    if batch_size < 1 or sequence_length < 1 or warmup < 0 or repeats < 1:
        raise ObjectiveError(
            f"Timing needs batch_size >= 1, sequence_length >= 1, warmup >= 0 and repeats >= 1; got "
            f"{batch_size}, {sequence_length}, {warmup}, {repeats}."
        )


#: Built-in objectives by name: `get_objective(name, **options)` calls the factory with the options.
OBJECTIVE_FACTORIES: dict[str, Callable[..., Objective]] = {
    "params": params_objective,
    "decoder_params": lambda **kw: params_objective(include_embeddings=False, **kw),
    "bytes_fp32": lambda **kw: bytes_objective("float32", **kw),
    "bytes_fp16": lambda **kw: bytes_objective("float16", **kw),
    "bytes_int8": lambda **kw: bytes_objective("int8", **kw),
    "macs": macs_objective,
    "perplexity": perplexity_objective,
    "accuracy": accuracy_objective,
    "latency": latency_objective,
    "throughput": throughput_objective,
    "peak_memory": peak_memory_objective,
}


def get_objective(name: str, **options: Any) -> Objective:
    """A built-in objective by name, e.g. `get_objective("params", constraint=1e8)`."""
    factory = OBJECTIVE_FACTORIES.get(name)
    if factory is None:
        raise ObjectiveError(f"Unknown objective {name!r}: choose one of {sorted(OBJECTIVE_FACTORIES)}, "
                             "or pass an Objective(name, fn=...) for your own measure.")
    try:
        return factory(**options)
    except TypeError as err:
        raise ObjectiveError(f"Objective {name!r} cannot be built with options {sorted(options)} ({err}).") from None


def resolve_objectives(objectives: Sequence[Objective | str], options: Mapping[str, Mapping[str, Any]] | None = None
                       ) -> list[Objective]:
    """Objectives from names or `Objective`s; `options[name]` are passed to a named objective's factory."""
    options = options or {}
    resolved = [o if isinstance(o, Objective) else get_objective(o, **dict(options.get(o, {}))) for o in objectives]
    names = [o.name for o in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ObjectiveError(f"Objective(s) {duplicates} are listed twice: give each objective once.")
    return resolved


def additive_table(objective: Objective, space: SearchSpace, dims: ModelDims) -> tuple[float, dict[int, float]]:
    """`(constant, {width: per-layer value})` of a layer-additive cheap objective, derived from exact values.

    With one layer at width w the value is c + g(w); with two it is c + 2 g(w): so g and c follow
    exactly from two evaluations per width.
    """
    per_width = {}
    constant = None
    for width in space.intermediate_size:
        one = objective.compute_cheap(SubnetConfig(layers=(0,), intermediate_size=(width,)), dims)
        two = objective.compute_cheap(SubnetConfig(layers=(0, 1), intermediate_size=(width, width)), dims) \
            if dims.num_hidden_layers > 1 else 2 * one
        per_width[width] = two - one
        constant = one - per_width[width] if constant is None else constant
    return float(constant), per_width


def cheap_bounds(objective: Objective, space: SearchSpace, dims: ModelDims) -> tuple[float, float]:
    """The smallest and largest value a layer-additive cheap objective takes over the space (exact)."""
    constant, per_width = additive_table(objective, space, dims)
    low, high = min(per_width.values()), max(per_width.values())
    values = [constant + d * w for d in (space.num_layers[0], space.num_layers[-1]) for w in (low, high)]
    return min(values), max(values)


def check_objectives(objectives: Sequence[Objective], space: SearchSpace, dims: ModelDims) -> None:
    """Refuse objective sets that cannot make a search: none, only cheap ones, or unsatisfiable constraints."""
    if len(objectives) < 2:
        raise ObjectiveError(
            f"A multi-objective search needs at least two objectives, got {[o.name for o in objectives]}: "
            "add e.g. params to trade size against quality."
        )
    if not any(not o.cheap for o in objectives):
        raise ObjectiveError(
            "All objectives are cheap (computed from the architecture), so there is nothing to measure or "
            "predict: add an expensive objective such as accuracy or perplexity."
        )
    for objective in objectives:
        if objective.cheap and objective.layer_additive and objective.constraint is not None:
            low, high = cheap_bounds(objective, space, dims)
            best = low if objective.direction == "minimize" else high
            if objective.violation(best) > 0:
                raise ObjectiveError(
                    f"No sub-network of the search space satisfies {objective.name} "
                    f"{'<=' if objective.direction == 'minimize' else '>='} {objective.constraint:g}: over the space it "
                    f"ranges {low:g}..{high:g}. Relax the constraint or add smaller depths/widths to the space."
                )
