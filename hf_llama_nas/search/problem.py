"""The search as pymoo problems: gene vectors of the search space, repaired to allowed depths.

`SubnetProblem` declares the variables (one integer gene per layer, see `SearchSpace.encode`),
`SpaceSampling` draws initial populations as `SearchSpace.sample` does, and `GeneRepair` moves any
gene vector onto a valid sub-network (allowed depth, canonical genes), so pymoo's operators never
produce invalid or duplicate-in-disguise candidates. `PredictedProblem` is LINAS's inner problem:
cheap objectives computed exactly for the whole population at once (`CheapObjectives`), expensive
ones predicted. Pure numpy + pymoo: no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling

from ..search_space import ModelDims, SearchSpace, SubnetConfig
from .objectives import Objective, additive_table
from .predictors import SubnetFeaturizer

__all__ = ["CheapObjectives", "GeneRepair", "SpaceSampling", "SubnetProblem", "PredictedProblem", "stratified_sample"]


class CheapObjectives:
    """Exact values of the cheap objectives for gene matrices: table look-ups for layer-additive ones."""

    def __init__(self, objectives: Sequence[Objective], space: SearchSpace, dims: ModelDims):
        self.objectives = [o for o in objectives if o.cheap]
        self.space = space
        self.dims = dims
        self.featurizer = SubnetFeaturizer(space)
        self._tables: dict[str, tuple[float, np.ndarray]] = {}
        for objective in self.objectives:
            if objective.layer_additive:
                constant, per_width = additive_table(objective, space, dims)
                table = np.array([0.0] + [per_width[w] for w in space.intermediate_size])
                self._tables[objective.name] = (constant, table)

    def width_indices(self, genes: np.ndarray) -> np.ndarray:
        """Per layer: 0 if dropped, k+1 for width choice k."""
        genes = np.asarray(genes, dtype=int).reshape(-1, self.space.num_genes)
        if self.space.layer_mode == "any":
            return genes
        depth = np.asarray(self.space.num_layers)[genes[:, 0]]
        kept = np.arange(self.space.num_hidden_layers)[None, :] < depth[:, None]
        return np.where(kept, genes[:, 1:] + 1, 0)

    def values(self, genes: np.ndarray) -> dict[str, np.ndarray]:
        """Raw values (the objectives' own units) per cheap objective, one per gene row."""
        indices = self.width_indices(genes)
        out = {}
        for objective in self.objectives:
            if objective.name in self._tables:
                constant, table = self._tables[objective.name]
                out[objective.name] = constant + table[indices].sum(axis=1)
            else:
                out[objective.name] = np.array([objective.compute_cheap(self.space.decode(row), self.dims)
                                                for row in np.asarray(genes, dtype=int)], dtype=float)
        return out

    def subnet_values(self, subnet: SubnetConfig) -> dict[str, float]:
        """Exact values for one sub-network (the direct computation, not the table)."""
        return {o.name: o.compute_cheap(subnet, self.dims) for o in self.objectives}


def stratified_sample(space: SearchSpace, n: int, seed: int = 0) -> list[SubnetConfig]:
    """`n` distinct sub-networks spread evenly over size: a Latin hypercube over (depth, typical width).

    Uniform sampling (`SearchSpace.sample`) almost never draws a sub-network close to the largest or
    the smallest one, so predictors fitted on it cannot see what happens there. Here sample i gets a
    depth quantile and a width quantile from two independent permutations of n strata; each kept layer
    then takes a width near its width quantile, and the kept layers are a random subset.
    """
    rng = np.random.default_rng(seed)
    depths, widths = np.asarray(space.num_layers), np.asarray(space.intermediate_size)
    chosen: dict[SubnetConfig, None] = {}
    attempts = 0
    limit = min(n, space.num_subnets())
    while len(chosen) < limit and attempts < 100 * max(n, 1):
        batch = limit - len(chosen)
        depth_q = (rng.permutation(batch) + rng.random(batch)) / batch
        width_q = (rng.permutation(batch) + rng.random(batch)) / batch
        for dq, wq in zip(depth_q, width_q):
            attempts += 1
            depth = int(depths[min(int(dq * len(depths)), len(depths) - 1)])
            centre = wq * (len(widths) - 1)
            index = np.clip(np.rint(centre + rng.normal(0.0, 0.6, depth)), 0, len(widths) - 1).astype(int)
            if space.layer_mode == "prefix":
                layers = tuple(range(depth))
            else:
                layers = tuple(sorted(rng.choice(space.num_hidden_layers, depth, replace=False).tolist()))
            chosen.setdefault(SubnetConfig(layers=layers, intermediate_size=tuple(int(w) for w in widths[index])), None)
    return list(chosen)[:limit]


class GeneRepair(Repair):
    """Round and clip genes, give each vector an allowed depth, and zero genes that mean nothing.

    In "any" mode a vector keeping a disallowed number of layers drops or adds random layers (at
    random widths) to reach the nearest allowed depth; in "prefix" mode width genes beyond the depth
    are set to 0 so that one sub-network has one gene vector.
    """

    def __init__(self, space: SearchSpace, seed: int = 0):
        super().__init__()
        self.space = space
        self.rng = np.random.default_rng(seed)
        lower, upper = space.gene_bounds()
        self.lower, self.upper = np.asarray(lower), np.asarray(upper)
        self.allowed = np.asarray(space.num_layers)

    def repair_genes(self, X: np.ndarray) -> np.ndarray:
        X = np.clip(np.rint(np.asarray(X, dtype=float)), self.lower, self.upper).astype(int)
        X = X.reshape(-1, self.space.num_genes)
        if self.space.layer_mode == "prefix":
            depth = self.allowed[X[:, 0]]
            X[:, 1:][np.arange(self.space.num_hidden_layers)[None, :] >= depth[:, None]] = 0
            return X
        m = len(self.space.intermediate_size)
        counts = (X > 0).sum(axis=1)
        for i in np.flatnonzero(~np.isin(counts, self.allowed)):
            distance = np.abs(self.allowed - counts[i])
            target = int(self.rng.choice(self.allowed[distance == distance.min()]))
            kept, dropped = np.flatnonzero(X[i] > 0), np.flatnonzero(X[i] == 0)
            if target < len(kept):
                X[i, self.rng.choice(kept, len(kept) - target, replace=False)] = 0
            else:
                add = self.rng.choice(dropped, target - len(kept), replace=False)
                X[i, add] = self.rng.integers(1, m + 1, size=len(add))
        return X

    def _do(self, problem: Problem, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        return self.repair_genes(X).astype(float)


class SpaceSampling(Sampling):
    """Initial populations drawn like `SearchSpace.sample` (uniform depth, then layers, then widths)."""

    def __init__(self, space: SearchSpace, seed: int = 0, fixed: np.ndarray | None = None):
        super().__init__()
        self.space = space
        self.seed = seed
        self.fixed = None if fixed is None else np.asarray(fixed, dtype=float).reshape(-1, space.num_genes)

    def _do(self, problem: Problem, n_samples: int, **kwargs: Any) -> np.ndarray:
        rows = [] if self.fixed is None else list(self.fixed[:n_samples])
        missing = n_samples - len(rows)
        if missing > 0:
            # Distinct sub-networks while the space has enough; a tiny space repeats some (pymoo drops duplicates).
            unique = min(missing, self.space.num_subnets())
            subnets = self.space.sample_many(unique, seed=self.seed, unique=True)
            subnets += self.space.sample_many(missing - unique, seed=self.seed + 1)
            rows.extend(self.space.encode(s) for s in subnets)
        return np.asarray(rows, dtype=float)


class SubnetProblem(Problem):
    """Sub-networks of `space` under `objectives`: the variables and bounds (evaluation is up to subclasses)."""

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], **kwargs: Any):
        lower, upper = space.gene_bounds()
        self.space = space
        self.objectives = list(objectives)
        self.constrained = [o for o in self.objectives if o.constraint is not None]
        super().__init__(n_var=space.num_genes, n_obj=len(self.objectives), n_ieq_constr=len(self.constrained),
                         xl=np.asarray(lower, dtype=float), xu=np.asarray(upper, dtype=float), vtype=int, **kwargs)


class PredictedProblem(SubnetProblem):
    """LINAS's inner problem: exact cheap objectives, predicted expensive ones, evaluated in bulk.

    Every evaluated gene vector is archived (`archive_X`, `archive_F`, `archive_G`) so that the
    candidates of the next real batch can be chosen from all of them, not only the final population.
    """

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], cheap: CheapObjectives,
                 predictors: Mapping[str, Any]):
        super().__init__(space, objectives, elementwise=False)
        self.cheap = cheap
        self.predictors = dict(predictors)
        self.featurizer = SubnetFeaturizer(space)
        self.archive_X: list[np.ndarray] = []
        self.archive_F: list[np.ndarray] = []
        self.archive_G: list[np.ndarray] = []

    def predict(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F, G): minimisation-form objectives and constraint values (<= 0 feasible) for a gene matrix."""
        genes = np.asarray(genes, dtype=int).reshape(-1, self.space.num_genes)
        cheap = self.cheap.values(genes)
        features = self.featurizer.transform(genes) if self.predictors else None
        columns, constraints = [], []
        for objective in self.objectives:
            if objective.cheap:
                raw = cheap[objective.name]
                scaled = np.log(raw) if objective.scale == "log" else raw
            else:
                scaled = self.predictors[objective.name].predict(features)
                raw = np.exp(scaled) if objective.scale == "log" else scaled
            columns.append(objective.sign * scaled)
            if objective.constraint is not None:
                constraints.append(objective.sign * (raw - objective.constraint))
        F = np.column_stack(columns)
        G = np.column_stack(constraints) if constraints else np.zeros((len(genes), 0))
        return F, G

    def _evaluate(self, X: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        F, G = self.predict(X)
        self.archive_X.append(np.asarray(X, dtype=int))
        self.archive_F.append(F)
        self.archive_G.append(G)
        out["F"] = F
        if G.shape[1]:
            out["G"] = G

    def archive(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unique archived gene vectors with their predicted F and G."""
        if not self.archive_X:
            empty = np.zeros((0, self.space.num_genes), dtype=int)
            return empty, np.zeros((0, self.n_obj)), np.zeros((0, self.n_ieq_constr))
        X = np.vstack(self.archive_X)
        _, first = np.unique(X, axis=0, return_index=True)
        first = np.sort(first)
        return X[first], np.vstack(self.archive_F)[first], np.vstack(self.archive_G)[first]

