"""Predictors of expensive objectives from a sub-network's architecture (scikit-learn).

`SubnetFeaturizer` turns gene vectors (or sub-networks) into features, vectorised so that the inner
NSGA-II can score thousands of candidates per generation: per super-network layer a kept flag and
the kept width as a fraction of the widest choice, plus the depth fraction. The kept flag matters:
dropping a layer is not the limit of narrowing it.

`AutoRegressor` is a scikit-learn regressor that fits ridge, RBF SVR and an extra-trees ensemble,
keeps the one with the lowest cross-validated MAE, and exposes the out-of-fold quality (Kendall tau
and MAE on held-out evaluations) that LINAS logs every round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import kendalltau
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from ..search_space import SearchSpace, SubnetConfig

__all__ = ["SubnetFeaturizer", "AutoRegressor", "CANDIDATE_REGRESSORS", "make_regressor", "prediction_quality"]

CANDIDATE_REGRESSORS = ("ridge", "svr", "trees")


class SubnetFeaturizer:
    """Features of sub-networks of `space`, computed from gene matrices in numpy."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self._widths = np.asarray(space.intermediate_size, dtype=float) / space.intermediate_size[-1]

    @property
    def num_features(self) -> int:
        return 2 * self.space.num_hidden_layers + 1

    def kept_and_widths(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per layer: kept flag (0/1) and width fraction (0 when dropped), from an (n, num_genes) gene matrix."""
        genes = np.asarray(genes, dtype=int).reshape(-1, self.space.num_genes)
        layers = self.space.num_hidden_layers
        if self.space.layer_mode == "prefix":
            depth = np.asarray(self.space.num_layers)[genes[:, 0]]
            kept = (np.arange(layers)[None, :] < depth[:, None]).astype(float)
            width = self._widths[genes[:, 1:]] * kept
        else:
            kept = (genes > 0).astype(float)
            width = np.where(genes > 0, self._widths[np.maximum(genes - 1, 0)], 0.0)
        return kept, width

    def transform(self, genes: np.ndarray) -> np.ndarray:
        kept, width = self.kept_and_widths(genes)
        depth = kept.sum(axis=1, keepdims=True) / self.space.num_hidden_layers
        return np.hstack([kept, width, depth])

    def transform_subnets(self, subnets: Sequence[SubnetConfig]) -> np.ndarray:
        genes = np.asarray([self.space.encode(s) for s in subnets], dtype=int).reshape(len(subnets), self.space.num_genes)
        return self.transform(genes)


def make_regressor(name: str, seed: int = 0) -> BaseEstimator:
    """One of the candidate regressors, with settings that work on a few hundred samples without tuning."""
    if name == "ridge":
        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    if name == "svr":
        return TransformedTargetRegressor(
            regressor=make_pipeline(StandardScaler(), SVR(kernel="rbf", C=10.0, epsilon=0.05, gamma="scale")),
            transformer=StandardScaler(),
        )
    if name == "trees":
        return ExtraTreesRegressor(n_estimators=40, max_features=0.5, bootstrap=True, oob_score=True,
                                   random_state=seed, n_jobs=1)
    raise ValueError(f"Unknown regressor {name!r}: choose one of {list(CANDIDATE_REGRESSORS)}.")


def prediction_quality(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """Kendall tau (rank agreement, what selection needs) and MAE of predictions."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if len(y_true) < 2:
        return {"kendall_tau": math.nan, "mae": float(np.mean(np.abs(y_true - y_pred))) if len(y_true) else math.nan}
    tau = kendalltau(y_true, y_pred).statistic
    return {"kendall_tau": float(tau) if np.isfinite(tau) else math.nan, "mae": float(np.mean(np.abs(y_true - y_pred)))}


class AutoRegressor(RegressorMixin, BaseEstimator):
    """Fits every candidate regressor, keeps the one with the lowest held-out MAE (or, with `ensemble=True`,
    averages all of them weighted by inverse held-out MAE: a tree ensemble cannot extrapolate beyond the
    best value it has seen, a linear model can, and the search needs both).

    Held-out predictions are K-fold out-of-fold ones for ridge and SVR, and the out-of-bag ones of a
    single bagged fit for the tree ensemble (as honest, K times cheaper: the search machinery must stay
    a small fraction of the evaluation time).

    After `fit`: `chosen_` (name), `cv_` (per candidate: MAE and Kendall tau of out-of-fold
    predictions), `quality_` (the chosen one's), `estimator_` (refit on all data).
    """

    def __init__(self, candidates: Sequence[str] = CANDIDATE_REGRESSORS, folds: int = 5, seed: int = 0,
                 ensemble: bool = False):
        self.candidates = candidates
        self.folds = folds
        self.seed = seed
        self.ensemble = ensemble

    def fit(self, X: np.ndarray, y: np.ndarray) -> AutoRegressor:
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        candidates = list(self.candidates)
        self.cv_: dict[str, dict[str, float]] = {}
        folds = min(self.folds, len(y))
        if folds >= 3 and len(candidates) > 1:
            splitter = KFold(n_splits=folds, shuffle=True, random_state=self.seed)
            fitted, oofs = {}, {}
            for name in candidates:
                if name == "trees":
                    fitted[name] = make_regressor(name, self.seed).fit(X, y)
                    oof = fitted[name].oob_prediction_
                else:
                    oof = np.empty_like(y)
                    for train, test in splitter.split(X):
                        oof[test] = make_regressor(name, self.seed).fit(X[train], y[train]).predict(X[test])
                oofs[name] = oof
                self.cv_[name] = prediction_quality(y, oof)
            self.chosen_ = min(candidates, key=lambda n: (self.cv_[n]["mae"], candidates.index(n)))
            self.estimator_ = fitted.get(self.chosen_) or make_regressor(self.chosen_, self.seed).fit(X, y)
            if self.ensemble:
                self.members_ = {name: fitted.get(name) or make_regressor(name, self.seed).fit(X, y) for name in candidates}
                inverse = {name: 1.0 / max(self.cv_[name]["mae"], 1e-12) for name in candidates}
                self.weights_ = {name: w / sum(inverse.values()) for name, w in inverse.items()}
                self.chosen_ = "ensemble"
                combined = sum(w * oofs[name] for name, w in self.weights_.items())
                self.cv_["ensemble"] = {**prediction_quality(y, combined), "weights": self.weights_}
        else:
            self.chosen_ = candidates[0]
            self.cv_[self.chosen_] = {"kendall_tau": math.nan, "mae": math.nan}
            self.estimator_ = make_regressor(self.chosen_, self.seed).fit(X, y)
        self.quality_ = self.cv_[self.chosen_]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if getattr(self, "members_", None):
            return sum(w * self.members_[name].predict(X) for name, w in self.weights_.items())
        return self.estimator_.predict(X)

    def report(self) -> dict[str, Any]:
        """What the round log records about this predictor."""
        return {"chosen": self.chosen_, "cv": self.cv_}
