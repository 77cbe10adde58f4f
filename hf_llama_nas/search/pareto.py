"""Pareto maths on plain arrays: non-dominated sorting and normalised hypervolume.

Everything is in *minimisation* form: callers flip maximised objectives (see
`Objective.to_min`) before calling. The module imports numpy only, so result files can be analysed
on any machine without torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "non_dominated_mask",
    "non_dominated_sort",
    "hypervolume",
    "normalised_hypervolume",
    "hypervolume_contributions",
]


def _as_matrix(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim == 1:
        array = array[None, :] if array.size else array.reshape(0, 0)
    return array


def non_dominated_mask(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """True for every point no other point dominates (<= in all objectives, < in one); NaN rows are never kept."""
    f = _as_matrix(points)
    n = len(f)
    if n == 0:
        return np.zeros(0, dtype=bool)
    finite = np.all(np.isfinite(f), axis=1)
    mask = finite.copy()
    g = np.where(finite[:, None], f, np.inf)
    for i in np.flatnonzero(finite):
        if not mask[i]:
            continue
        dominated_by = np.all(g <= g[i], axis=1) & np.any(g < g[i], axis=1)
        if dominated_by.any():
            mask[i] = False
            continue
        dominates = np.all(g[i] <= g, axis=1) & np.any(g[i] < g, axis=1)
        mask[dominates] = False
    # Duplicates of a non-dominated point all stay: none dominates the other.
    return mask


def non_dominated_sort(points: Sequence[Sequence[float]] | np.ndarray) -> list[np.ndarray]:
    """Indices of the successive fronts (front 0 first); rows with NaN/inf are left out."""
    f = _as_matrix(points)
    remaining = np.flatnonzero(np.all(np.isfinite(f), axis=1)) if len(f) else np.zeros(0, dtype=int)
    fronts = []
    while remaining.size:
        mask = non_dominated_mask(f[remaining])
        fronts.append(remaining[mask])
        remaining = remaining[~mask]
    return fronts


def _hv2d(f: np.ndarray, ref: np.ndarray) -> float:
    f = f[np.all(f < ref, axis=1)]
    if not len(f):
        return 0.0
    f = f[np.lexsort((f[:, 1], f[:, 0]))]
    volume, best_y = 0.0, ref[1]
    for x, y in f:
        if y < best_y:
            volume += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(volume)


def _hv_recursive(f: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume by slicing along the last objective (fine for the small fronts of a NAS)."""
    f = f[np.all(f < ref, axis=1)]
    if not len(f):
        return 0.0
    if f.shape[1] == 1:
        return float(ref[0] - f[:, 0].min())
    if f.shape[1] == 2:
        return _hv2d(f, ref)
    f = f[non_dominated_mask(f)]
    order = np.argsort(f[:, -1])
    f = f[order]
    volume = 0.0
    for i in range(len(f)):
        upper = f[i + 1, -1] if i + 1 < len(f) else ref[-1]
        depth = upper - f[i, -1]
        if depth > 0:
            volume += depth * _hv_recursive(f[: i + 1, :-1], ref[:-1])
    return float(volume)


def hypervolume(points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]) -> float:
    """Volume dominated by `points` and bounded by `reference` (minimisation); NaN rows are ignored."""
    f = _as_matrix(points)
    ref = np.asarray(reference, dtype=float)
    if not len(f):
        return 0.0
    if f.shape[1] != ref.size:
        raise ValueError(f"points have {f.shape[1]} objectives but the reference point has {ref.size}.")
    f = f[np.all(np.isfinite(f), axis=1)]
    return _hv_recursive(f, ref)


def normalised_hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray, ideal: Sequence[float], reference: Sequence[float]
) -> float:
    """Hypervolume after mapping `ideal` to 0 and `reference` to 1 in every objective: a number in [0, 1].

    Points better than `ideal` are clipped to it, so the figure stays comparable across runs that
    share the same (recorded) `ideal` and `reference`.
    """
    ideal_ = np.asarray(ideal, dtype=float)
    ref_ = np.asarray(reference, dtype=float)
    span = ref_ - ideal_
    if np.any(span <= 0):
        raise ValueError(f"every reference value must exceed its ideal value, got ideal={ideal_} reference={ref_}.")
    f = _as_matrix(points)
    if not len(f):
        return 0.0
    scaled = np.maximum((f - ideal_) / span, 0.0)
    return hypervolume(scaled, np.ones_like(ref_))


def hypervolume_contributions(
    candidates: np.ndarray, front: np.ndarray, reference: Sequence[float]
) -> np.ndarray:
    """Hypervolume each candidate would add to `front` on its own (2 objectives: exact and vectorised-ish)."""
    ref = np.asarray(reference, dtype=float)
    base = hypervolume(front, ref) if len(front) else 0.0
    out = np.empty(len(candidates))
    for i, point in enumerate(candidates):
        stacked = np.vstack([front, point[None, :]]) if len(front) else point[None, :]
        out[i] = hypervolume(stacked, ref) - base
    return out


def hypervolume_improvement_2d(candidates: np.ndarray, front: np.ndarray, reference: Sequence[float]) -> np.ndarray:
    """Hypervolume each 2-objective candidate adds to `front`, for all candidates at once (numpy, no loop).

    The region `front` dominates is a staircase: between consecutive front points sorted by the first
    objective it covers everything above the current point's second objective. A candidate adds the
    area of its own box that lies below that staircase.
    """
    ref = np.asarray(reference, dtype=float)
    c = np.asarray(candidates, dtype=float).reshape(-1, 2)
    f = np.asarray(front, dtype=float).reshape(-1, 2)
    f = f[np.all(f < ref, axis=1)]
    if len(f):
        f = f[non_dominated_mask(f)]
        f = f[np.lexsort((f[:, 1], f[:, 0]))]
    starts = np.concatenate([[-np.inf], f[:, 0]])
    ends = np.concatenate([f[:, 0], [ref[0]]])
    levels = np.concatenate([[ref[1]], f[:, 1]])
    widths = np.clip(np.minimum(ends, ref[0])[None, :] - np.maximum(starts[None, :], c[:, :1]), 0.0, None)
    heights = np.clip(levels[None, :] - c[:, 1:2], 0.0, None)
    return (widths * heights).sum(axis=1)
