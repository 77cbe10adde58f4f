"""LINAS and its baselines: multi-objective searches over a `SearchSpace` under one interface.

Every algorithm draws sub-networks, has them evaluated for real through a `SearchSession` (which
computes cheap objectives exactly, measures expensive ones on the model, appends each evaluation to
the results file as soon as it finishes, never evaluates a sub-network twice, and splits batches
across processes when distributed), and stops when `num_evals` real evaluations are spent.

* `LINAS`: an initial population spread over the whole size range; then per round a predictor per expensive objective
  (`AutoRegressor`), an inner pymoo NSGA-II (NSGA-III for three or more objectives) over predicted
  expensive and exact cheap objectives for thousands of candidates, and a real evaluation of the
  batch of not-yet-evaluated candidates that adds the most *predicted* hypervolume to the real front
  (chosen greedily, each pick assumed to come true before the next: the batch spreads along the front).
* `NSGA2Search`: pymoo NSGA-II on real evaluations only (the no-predictor baseline).
* `RandomSearch`: uniform samples of the space.

Algorithms are deterministic given their seed and the measured values, so a killed search resumes by
replaying itself: evaluations already in the results file are read back instead of being measured.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.optimize import minimize
from pymoo.problems.static import StaticProblem
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from pymoo.util.ref_dirs import get_reference_directions
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..errors import LlamaNASError
from ..search_space import ModelDims, SearchSpace, SubnetConfig
from .objectives import Objective, cheap_bounds, check_objectives, resolve_objectives
from .pareto import hypervolume_contributions, hypervolume_improvement_2d, non_dominated_mask
from .predictors import AutoRegressor, SubnetFeaturizer, prediction_quality
from .problem import CheapObjectives, GeneRepair, PredictedProblem, SpaceSampling, SubnetProblem, stratified_sample
from .results import PARETO_FILE, Evaluation, ResultsStore

__all__ = [
    "SearchError",
    "SubnetEvaluator",
    "LocalDistribution",
    "SearchSession",
    "SearchResult",
    "SearchAlgorithm",
    "LINAS",
    "NSGA2Search",
    "RandomSearch",
    "ALGORITHMS",
    "get_algorithm",
    "model_description",
]

logger = logging.getLogger(__name__)
#: Fitness given to failed evaluations in NSGA-II: bad, but finite so that sorting works.
_FAILED_FITNESS = 1e30


class SearchError(LlamaNASError):
    """A search cannot run as configured."""


def model_description(model: Any | None, dims: ModelDims) -> dict[str, Any]:
    """What identifies the super-network in a results file: its name or path and its dimensions."""
    name = None
    if model is not None:
        config = getattr(model, "config", None)
        name = getattr(config, "_name_or_path", None) or getattr(model, "name_or_path", None)
    return {
        "name_or_path": str(name) if name else None,
        "hidden_size": dims.hidden_size,
        "num_hidden_layers": dims.num_hidden_layers,
        "intermediate_size": list(dims.intermediate_size),
        "num_attention_heads": dims.num_attention_heads,
        "num_key_value_heads": dims.num_key_value_heads,
        "vocab_size": dims.vocab_size,
    }


class SubnetEvaluator:
    """Measures every objective of one sub-network: cheap ones exactly, expensive ones on the model.

    The model must offer `model.subnet(subnet, check_space=False)` (as `ElasticLlamaForCausalLM`
    does); it may be `None` when the expensive objectives do not need one. An exception or a
    non-finite value makes the evaluation "failed", with the error recorded, and the search goes on.
    """

    def __init__(self, objectives: Sequence[Objective], dims: ModelDims, model: Any | None = None):
        self.objectives = list(objectives)
        self.dims = dims
        self.model = model

    def __call__(self, subnet: SubnetConfig) -> Evaluation:
        start = time.perf_counter()
        values: dict[str, float] = {}
        details: dict[str, Any] = {}
        error = None
        try:
            for objective in self.objectives:
                if objective.cheap:
                    values[objective.name] = objective.compute_cheap(subnet, self.dims)
            expensive = [o for o in self.objectives if not o.cheap]
            if expensive:
                if self.model is not None and hasattr(self.model, "subnet"):
                    with self.model.subnet(subnet, check_space=False):
                        measured = [o.measure(self.model, subnet) for o in expensive]
                else:
                    measured = [o.measure(self.model, subnet) for o in expensive]
                for objective, (value, extra) in zip(expensive, measured):
                    values[objective.name] = value
                    if extra:
                        details[objective.name] = extra
            bad = [name for name, value in values.items() if not math.isfinite(value)]
            if bad:
                error = f"non-finite value for {bad}"
        except Exception as err:  # noqa: BLE001 - a failing evaluation is recorded, the search goes on
            error = f"{type(err).__name__}: {err}"
            logger.warning("Evaluation of %s failed: %s", subnet.id, error)
        for objective in self.objectives:
            values.setdefault(objective.name, math.nan)
        return Evaluation(subnet=subnet, values=values, status="failed" if error else "ok", error=error,
                          time_s=time.perf_counter() - start, details=details)


class LocalDistribution:
    """One process does everything (the default); `distributed.AccelerateDistribution` splits the work."""

    is_main = True
    num_processes = 1
    process_index = 0

    def split(self, items: list[Any]) -> list[Any]:
        return items

    def gather(self, items: list[Any]) -> list[Any]:
        return items

    def barrier(self) -> None:
        return None

    def broadcast(self, value: Any) -> Any:
        return value


class SearchSession:
    """What an algorithm sees of the outside world: real evaluations, the budget, the store, the clock.

    `known` holds the evaluations the algorithm has asked for so far, in order. A resumed search starts
    with a full store but an empty `known`: replaying, it sees exactly what the original run saw at
    each step (and so makes the same choices), while the store answers instead of the model.
    """

    def __init__(self, store: ResultsStore, evaluator: Callable[[SubnetConfig], Evaluation], num_evals: int,
                 distribution: Any, progress: bool, desc: str):
        self.store = store
        self.evaluator = evaluator
        self.num_evals = num_evals
        self.distribution = distribution
        self.round = 0
        self.known: dict[str, Evaluation] = {}
        self.evaluation_s = 0.0
        self.machinery_s = 0.0
        self.new_evaluations = 0
        self.bar = tqdm(total=num_evals, initial=min(len(store), num_evals), desc=desc, unit="eval",
                        disable=not (progress and distribution.is_main), dynamic_ncols=True)

    @property
    def remaining(self) -> int:
        return max(0, self.num_evals - len(self.known))

    def known_ok(self) -> list[Evaluation]:
        """The successful evaluations the algorithm knows of, with finite values for every objective."""
        names = [o["name"] for o in self.store.objectives]
        return [e for e in self.known.values() if e.ok and all(math.isfinite(e.values[n]) for n in names)]

    def evaluate(self, subnets: Sequence[SubnetConfig]) -> list[Evaluation]:
        """Evaluate `subnets` (those already in the store are read back), within the remaining budget.

        Returns the evaluations of the given sub-networks that exist afterwards, in their order.
        """
        seen: set[str] = set()
        new, replayed = [], []
        budget = self.remaining
        for subnet in subnets:
            if subnet.id in seen or subnet.id in self.known:
                continue
            if len(seen) == budget:
                break
            seen.add(subnet.id)
            (replayed if subnet in self.store else new).append(subnet)
        for subnet in replayed:
            self.known[subnet.id] = self.store.get(subnet)
        self.bar.set_postfix(round=self.round)
        base = len(self.store)
        mine = self.distribution.split(list(enumerate(new)))
        finished = []
        for position, subnet in mine:
            evaluation = self.evaluator(subnet)
            evaluation = Evaluation(subnet=evaluation.subnet, values=evaluation.values, status=evaluation.status,
                                    error=evaluation.error, time_s=evaluation.time_s, round=self.round,
                                    index=base + position, details=evaluation.details)
            self.store.append(evaluation)
            if self.distribution.num_processes == 1:
                self.bar.update(1)
            self.evaluation_s += evaluation.time_s
            finished.append(evaluation.to_record())
        if self.distribution.num_processes > 1:
            gathered = self.distribution.gather(finished)
            for record in sorted(gathered, key=lambda r: r["index"]):
                self.store.append(Evaluation.from_record(record), persist=False)
            self.bar.update(len(gathered))
        self.new_evaluations += len(new)
        for subnet in new:
            self.known[subnet.id] = self.store.get(subnet)
        return [e for e in (self.known.get(s.id) for s in subnets) if e is not None]

    def add_round(self, record: dict[str, Any]) -> None:
        """Log a round once (a resumed search replays its rounds without writing them again)."""
        if self.distribution.is_main and not any(r.get("round") == record.get("round") for r in self.store.rounds):
            self.store.add_round(record)

    def close(self) -> None:
        self.bar.close()


@dataclass
class SearchResult:
    """The outcome of a search: its results store plus the timing of this run."""

    store: ResultsStore
    algorithm: str
    evaluation_s: float
    machinery_s: float
    new_evaluations: int
    output_dir: Path | None = None

    @property
    def evaluations(self) -> list[Evaluation]:
        return list(self.store.evaluations)

    def pareto(self) -> list[Evaluation]:
        return self.store.pareto()

    def hypervolume(self, **kwargs: Any) -> dict[str, Any]:
        return self.store.hypervolume(**kwargs)

    def best_under(self, constraints: Mapping[str, float], objective: str | None = None) -> Evaluation | None:
        return self.store.best_under(constraints, objective)

    def summary(self) -> dict[str, Any]:
        summary = self.store.summary()
        summary.update({"algorithm": self.algorithm, "evaluation_s": self.evaluation_s,
                        "machinery_s": self.machinery_s, "new_evaluations": self.new_evaluations})
        return summary


class SearchAlgorithm:
    """Shared driver: objectives, budget, results file, resume, progress, distribution."""

    name: ClassVar[str] = "search"

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective | str], num_evals: int = 250,
                 population: int = 50, batch_size: int | None = None, seed: int = 0,
                 objective_options: Mapping[str, Mapping[str, Any]] | None = None):
        if not isinstance(space, SearchSpace):
            raise SearchError(f"space must be a SearchSpace, got {type(space).__name__}.")
        self.space = space
        self.objectives = resolve_objectives(objectives, objective_options)
        if num_evals < 1 or population < 1:
            raise SearchError(f"num_evals ({num_evals}) and population ({population}) must be at least 1.")
        self.num_evals = int(num_evals)
        self.population = int(population)
        self.batch_size = int(batch_size or max(1, population // 2))
        if self.batch_size < 1:
            raise SearchError(f"batch_size must be at least 1, got {batch_size}.")
        self.seed = int(seed)

    def settings(self) -> dict[str, Any]:
        """The algorithm's parameters, recorded in the results header."""
        return {"name": self.name, "num_evals": self.num_evals, "population": self.population,
                "batch_size": self.batch_size, "seed": self.seed}

    def run(self, model: Any | None = None, output_dir: str | Path | None = None, resume: bool = False, *,
            dims: ModelDims | Any | None = None, evaluator: Callable[[SubnetConfig], Evaluation] | None = None,
            distribution: Any | None = None, progress: bool = True,
            hypervolume_reference: Mapping[str, Mapping[str, float]] | None = None,
            evaluate_full: bool = False) -> SearchResult:
        """Search the sub-networks of `model` (an `ElasticLlamaForCausalLM`) and return the results.

        With `output_dir` every evaluation is appended to `output_dir/results.jsonl` and the Pareto set
        is written to `output_dir/pareto.json` at the end; `resume=True` continues a killed search
        there. `dims` (a config) is needed when `model` is None. `hypervolume_reference`, as
        `{"ideal": {...}, "reference": {...}}` in objective units, fixes the normalisation recorded in
        the results; by default cheap objectives span the space's range and expensive ones the data's.
        `evaluate_full=True` also measures the whole super-network once (outside the budget), so that
        reports can mark it.
        """
        if dims is None:
            if model is None:
                raise SearchError("Pass the super-network `model`, or its config as `dims=` when evaluating without one.")
            dims = model.config
        dims = ModelDims.from_config(dims)
        self.space.validate(dims)
        check_objectives(self.objectives, self.space, dims)
        if distribution is None:
            from .distributed import default_distribution

            distribution = default_distribution()
        header = {
            "search_space": self.space.to_dict(),
            "model": model_description(model, dims),
            "objectives": [o.describe() for o in self.objectives],
            "algorithm": self.settings(),
            "hypervolume": self._hypervolume_bounds(dims, hypervolume_reference),
        }
        if output_dir is not None:
            if distribution.is_main:
                store = ResultsStore.open(output_dir, header, resume=resume)
            distribution.barrier()
            if not distribution.is_main:
                store = ResultsStore.open(output_dir, header, resume=True)
            # Nobody appends before everybody has read the file: all must see the same evaluations.
            distribution.barrier()
        else:
            store = ResultsStore(Path("results.jsonl"), {**header, "type": "header"}, [], [], write=False)
        evaluator = evaluator or SubnetEvaluator(self.objectives, dims, model)
        if evaluate_full and store.reference is None:
            full = evaluator(SubnetConfig.full(dims))
            if distribution.is_main:
                store.set_reference(full)
            store.reference = full
        session = SearchSession(store, evaluator, self.num_evals, distribution, progress, desc=self.name)
        try:
            self._search(session, dims)
        finally:
            session.close()
        result = SearchResult(store=store, algorithm=self.name, evaluation_s=session.evaluation_s,
                              machinery_s=session.machinery_s, new_evaluations=session.new_evaluations,
                              output_dir=Path(output_dir) if output_dir is not None else None)
        if output_dir is not None and distribution.is_main:
            store.write_summary(Path(output_dir) / PARETO_FILE)
        return result

    def _hypervolume_bounds(self, dims: ModelDims, given: Mapping[str, Mapping[str, float]] | None) -> dict[str, Any]:
        ideal: dict[str, float] = dict((given or {}).get("ideal", {}))
        reference: dict[str, float] = dict((given or {}).get("reference", {}))
        for objective in self.objectives:
            if objective.cheap and objective.layer_additive and objective.name not in reference:
                low, high = cheap_bounds(objective, self.space, dims)
                ideal.setdefault(objective.name, low if objective.direction == "minimize" else high)
                reference[objective.name] = high if objective.direction == "minimize" else low
        return {"ideal": ideal, "reference": reference}

    def _search(self, session: SearchSession, dims: ModelDims) -> None:
        raise NotImplementedError

    def _minimisation(self, evaluation: Evaluation) -> list[float]:
        return [o.to_min(evaluation.values[o.name]) if evaluation.ok else _FAILED_FITNESS for o in self.objectives]


class RandomSearch(SearchAlgorithm):
    """Uniform random sub-networks (as `SearchSpace.sample`), evaluated in batches of `batch_size`."""

    name = "random"

    def _search(self, session: SearchSession, dims: ModelDims) -> None:
        rng = random.Random(self.seed)
        drawn: dict[SubnetConfig, None] = {}
        limit = self.space.num_subnets()
        while session.remaining and len(drawn) < limit:
            batch = []
            while len(batch) < min(self.batch_size, session.remaining) and len(drawn) < limit:
                subnet = self.space.sample(rng)
                if subnet not in drawn:
                    drawn[subnet] = None
                    batch.append(subnet)
            session.round += 1
            session.evaluate(batch)


def _integer_operators() -> dict[str, Any]:
    return {"crossover": SBX(prob=0.9, eta=15, repair=RoundingRepair()),
            "mutation": PM(prob=0.9, eta=20, repair=RoundingRepair())}


class NSGA2Search(SearchAlgorithm):
    """pymoo NSGA-II on real evaluations only: population `population`, `batch_size` offspring per generation."""

    name = "nsga2"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if "batch_size" not in kwargs:
            self.batch_size = self.population

    def _search(self, session: SearchSession, dims: ModelDims) -> None:
        problem = SubnetProblem(self.space, self.objectives)
        algorithm = NSGA2(pop_size=self.population, n_offsprings=self.batch_size,
                          sampling=SpaceSampling(self.space, seed=self.seed), repair=GeneRepair(self.space, self.seed),
                          eliminate_duplicates=True, **_integer_operators())
        algorithm.setup(problem, seed=self.seed, termination=("n_gen", 10**9))
        stale = 0
        while session.remaining and stale < 100:
            population = algorithm.ask()
            genes = population.get("X").astype(int)
            subnets = [self.space.decode(row) for row in genes]
            before = len(session.known)
            session.round += 1
            session.evaluate(subnets)
            stale = stale + 1 if len(session.known) == before else 0
            evaluations = [session.known.get(s.id) or session.store.get(s) for s in subnets]
            if any(e is None for e in evaluations):
                break
            F = np.array([self._minimisation(e) for e in evaluations])
            values = {"F": F}
            constrained = [o for o in self.objectives if o.constraint is not None]
            if constrained:
                values["G"] = np.array([[o.sign * (e.values[o.name] - o.constraint) if e.ok else _FAILED_FITNESS
                                         for o in constrained] for e in evaluations])
            PymooEvaluator().eval(StaticProblem(problem, **values), population)
            algorithm.tell(infills=population)


class LINAS(SearchAlgorithm):
    """Lightweight Iterative NAS: predictor-guided NSGA-II, real evaluations only where they pay most.

    `population` sub-networks spread evenly over size (`initial="stratified"`, see `stratified_sample`;
    "uniform" draws them as `SearchSpace.sample` does) are evaluated first; then each round fits an `AutoRegressor`
    per expensive objective, runs the inner search (`inner_population` x `inner_generations`
    predicted candidates, started from the real Pareto set) and evaluates `batch_size` new candidates
    chosen by greedy predicted hypervolume improvement.
    """

    name = "linas"

    def __init__(self, *args: Any, inner_population: int = 100, inner_generations: int = 25,
                 predictors: Sequence[str] = ("ridge", "svr", "trees"), cv_folds: int = 5,
                 clip_margin: float | None = 0.5, ensemble: bool = False, initial: str = "stratified",
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        if inner_population < 4 or inner_generations < 1:
            raise SearchError("inner_population must be >= 4 and inner_generations >= 1.")
        self.inner_population = int(inner_population)
        self.inner_generations = int(inner_generations)
        self.predictor_names = tuple(predictors)
        self.cv_folds = int(cv_folds)
        self.clip_margin = clip_margin
        self.ensemble = bool(ensemble)
        if initial not in ("uniform", "stratified"):
            raise SearchError(f"initial must be 'uniform' or 'stratified', got {initial!r}.")
        self.initial = initial

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "inner_population": self.inner_population,
                "inner_generations": self.inner_generations, "predictors": list(self.predictor_names),
                "cv_folds": self.cv_folds, "clip_margin": self.clip_margin, "ensemble": self.ensemble,
                "initial": self.initial}

    def _search(self, session: SearchSession, dims: ModelDims) -> None:
        cheap = CheapObjectives(self.objectives, self.space, dims)
        featurizer = SubnetFeaturizer(self.space)
        expensive = [o for o in self.objectives if not o.cheap]
        size = min(self.population, self.space.num_subnets())
        if self.initial == "stratified":
            initial = stratified_sample(self.space, size, seed=self.seed)
        else:
            initial = self.space.sample_many(size, seed=self.seed, unique=True)
        session.evaluate(initial)
        previous: dict[str, Any] | None = None
        while session.remaining:
            session.round += 1
            start = time.perf_counter()
            with threadpool_limits(1):
                batch, predicted, record = self._round(session, cheap, featurizer, expensive, start)
            if previous is not None:
                record["previous_batch"] = previous
            evaluations = session.evaluate(batch)
            previous = self._batch_quality(evaluations, predicted, expensive)
            session.add_round(record)
            if not batch:
                break

    def _round(self, session: SearchSession, cheap: CheapObjectives, featurizer: SubnetFeaturizer,
               expensive: Sequence[Objective], start: float) -> tuple[list[SubnetConfig], dict[str, Any], dict[str, Any]]:
        """Fit the predictors and propose the next batch (BLAS on one thread: tiny matrices, busy cores)."""
        ok = sorted(session.known_ok(), key=lambda e: e.id)
        if len(ok) < 2:
            raise SearchError(
                f"Only {len(ok)} of {len(session.known)} evaluations succeeded, too few to fit predictors: "
                "check the errors recorded in the results file."
            )
        X = featurizer.transform_subnets([e.subnet for e in ok])
        bounds = session.store.header.get("hypervolume") or {}
        predictors = {}
        for objective in expensive:
            y = np.array([objective.transform(e.values[objective.name]) for e in ok])
            y = self._clip_targets(objective, y, bounds)
            predictors[objective.name] = AutoRegressor(self.predictor_names, self.cv_folds, seed=self.seed + session.round,
                                                       ensemble=self.ensemble).fit(X, y)
        fitted = time.perf_counter()
        batch, predicted = self._propose(session, cheap, predictors, ok)
        proposed = time.perf_counter()
        session.machinery_s += proposed - start
        record: dict[str, Any] = {
            "round": session.round,
            "num_evaluations": len(session.known),
            "fit_s": fitted - start,
            "inner_search_s": proposed - fitted,
            "predictors": {name: p.report() for name, p in predictors.items()},
        }
        return batch, predicted, record

    def _clip_targets(self, objective: Objective, y: np.ndarray, bounds: Mapping[str, Any]) -> np.ndarray:
        """Cap targets far beyond the recorded reference point (when there is one) before fitting.

        Sub-networks a hundred times worse than the reference tell the predictor nothing about ranking
        inside the region that counts, but their huge errors dominate its fit; capped at
        `reference + clip_margin * (reference - ideal)` (on the objective's scale) they still read as bad.
        """
        ideal, reference = bounds.get("ideal", {}).get(objective.name), bounds.get("reference", {}).get(objective.name)
        if self.clip_margin is None or ideal is None or reference is None:
            return y
        low, high = objective.transform(ideal), objective.transform(reference)
        cap = high + self.clip_margin * (high - low)
        return np.minimum(y, cap) if objective.direction == "minimize" else np.maximum(y, cap)

    def _propose(self, session: SearchSession, cheap: CheapObjectives, predictors: Mapping[str, AutoRegressor],
                 ok: Sequence[Evaluation]) -> tuple[list[SubnetConfig], dict[str, dict[str, float]]]:
        """Run the inner search on predictions and pick the next real batch; also return its predictions."""
        problem = PredictedProblem(self.space, self.objectives, cheap, predictors)
        real = np.array([self._minimisation(e) for e in ok])
        front_genes = np.array([self.space.encode(e.subnet) for e, keep in zip(ok, non_dominated_mask(real)) if keep])
        seed = self.seed * 1000 + session.round
        common = dict(sampling=SpaceSampling(self.space, seed=seed, fixed=front_genes[: self.inner_population // 2]),
                      repair=GeneRepair(self.space, seed), eliminate_duplicates=True, **_integer_operators())
        if len(self.objectives) >= 3:
            # As many reference directions as fit in the population (NSGA-III needs pop_size >= directions).
            partitions = 1
            while math.comb(partitions + len(self.objectives), len(self.objectives) - 1) <= self.inner_population:
                partitions += 1
            ref_dirs = get_reference_directions("das-dennis", len(self.objectives), n_partitions=partitions)
            algorithm = NSGA3(ref_dirs=ref_dirs, pop_size=self.inner_population, **common)
        else:
            algorithm = NSGA2(pop_size=self.inner_population, **common)
        minimize(problem, algorithm, ("n_gen", self.inner_generations), seed=seed, verbose=False)
        genes, F, G = problem.archive()
        evaluated = {tuple(self.space.encode(e.subnet)) for e in session.known.values()}
        keep = np.array([tuple(row) not in evaluated for row in genes], dtype=bool)
        if G.shape[1]:
            keep &= np.all(G <= 0, axis=1)
        genes, F = genes[keep], F[keep]
        picks = self._select(F, real, min(self.batch_size, session.remaining), session.store.header.get("hypervolume") or {})
        batch = [self.space.decode(genes[i]) for i in picks]
        names = [o.name for o in self.objectives]
        predicted = {s.id: {n: float(F[i, j]) for j, n in enumerate(names)} for s, i in zip(batch, picks)}
        return batch, predicted

    def _select(self, F: np.ndarray, real: np.ndarray, count: int, bounds: Mapping[str, Any]) -> list[int]:
        """Greedy batch by predicted hypervolume improvement over the real front (normalised objectives).

        Objectives are normalised by the search's recorded hypervolume bounds where it has them (the
        region the user cares about) and by the range of the real evaluations elsewhere.
        """
        if count <= 0 or not len(F):
            return []
        finite = real[np.all(real < _FAILED_FITNESS, axis=1)]
        ideal = np.minimum(finite.min(axis=0), F.min(axis=0))
        nadir = finite.max(axis=0) * 1.0
        for j, objective in enumerate(self.objectives):
            low, high = bounds.get("ideal", {}).get(objective.name), bounds.get("reference", {}).get(objective.name)
            if low is not None and high is not None:
                a, b = sorted((objective.to_min(low), objective.to_min(high)))
                ideal[j], nadir[j] = a, b
        span = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
        front = (finite[non_dominated_mask(finite)] - ideal) / span
        candidates = (F - ideal) / span
        reference = np.full(F.shape[1], 1.1)
        if F.shape[1] > 2:
            first = NonDominatedSorting().do(candidates, only_non_dominated_front=True)
            order = first[np.argsort(candidates[first, 0])]
            pool = order[np.linspace(0, len(order) - 1, min(len(order), 300)).astype(int)]
            pool = np.unique(pool)
        else:
            pool = np.arange(len(candidates))
        chosen: list[int] = []
        available = np.ones(len(pool), dtype=bool)
        for _ in range(min(count, len(pool))):
            subset = candidates[pool]
            if F.shape[1] == 2:
                gains = hypervolume_improvement_2d(subset, front, reference)
            else:
                gains = hypervolume_contributions(subset, front, reference)
            gains[~available] = -1.0
            best = int(np.argmax(gains))
            if gains[best] <= 0:
                break
            chosen.append(int(pool[best]))
            available[best] = False
            front = np.vstack([front, subset[best]])
        if len(chosen) < count:
            # Nothing promises more hypervolume: explore the predicted front's remaining candidates, spread out.
            rest = [int(i) for i in pool[available]]
            fronts = NonDominatedSorting().do(candidates[rest]) if rest else []
            ordered = [rest[i] for front_ in fronts for i in front_]
            chosen.extend(ordered[: count - len(chosen)])
        return chosen

    def _batch_quality(self, evaluations: Sequence[Evaluation], predicted: Mapping[str, Mapping[str, float]],
                       expensive: Sequence[Objective]) -> dict[str, Any]:
        """Predicted vs real values of the batch just evaluated: truly held-out predictor quality."""
        quality: dict[str, Any] = {}
        for objective in expensive:
            pairs = [(objective.to_min(e.values[objective.name]), predicted[e.id][objective.name])
                     for e in evaluations if e.ok and e.id in predicted]
            if pairs:
                real, guess = zip(*pairs)
                quality[objective.name] = {**prediction_quality(real, guess), "n": len(pairs)}
        return quality


#: Algorithms by the name the CLI uses.
ALGORITHMS: dict[str, type[SearchAlgorithm]] = {"linas": LINAS, "nsga2": NSGA2Search, "random": RandomSearch}


def get_algorithm(name: str) -> type[SearchAlgorithm]:
    if name not in ALGORITHMS:
        raise SearchError(f"Unknown search algorithm {name!r}: choose one of {sorted(ALGORITHMS)}.")
    return ALGORITHMS[name]

