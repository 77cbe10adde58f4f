"""Multi-objective search of sub-networks: LINAS (predictor-guided NSGA-II) and its baselines."""

from .callback import LINASCallback
from .linas import (
    ALGORITHMS,
    LINAS,
    LocalDistribution,
    NSGA2Search,
    RandomSearch,
    SearchAlgorithm,
    SearchError,
    SearchResult,
    SearchSession,
    SubnetEvaluator,
    get_algorithm,
)
from .objectives import (
    Objective,
    ObjectiveError,
    accuracy_objective,
    bytes_objective,
    get_objective,
    latency_objective,
    macs_objective,
    params_objective,
    peak_memory_objective,
    perplexity_objective,
    throughput_objective,
)
from .pareto import hypervolume, non_dominated_mask, non_dominated_sort, normalised_hypervolume
from .predictors import AutoRegressor, SubnetFeaturizer
from .results import Evaluation, ResultsError, ResultsMismatchError, ResultsStore

__all__ = [
    "LINASCallback",
    "ALGORITHMS",
    "LINAS",
    "LocalDistribution",
    "NSGA2Search",
    "RandomSearch",
    "SearchAlgorithm",
    "SearchError",
    "SearchResult",
    "SearchSession",
    "SubnetEvaluator",
    "get_algorithm",
    "Objective",
    "ObjectiveError",
    "accuracy_objective",
    "bytes_objective",
    "get_objective",
    "latency_objective",
    "macs_objective",
    "params_objective",
    "peak_memory_objective",
    "perplexity_objective",
    "throughput_objective",
    "hypervolume",
    "non_dominated_mask",
    "non_dominated_sort",
    "normalised_hypervolume",
    "AutoRegressor",
    "SubnetFeaturizer",
    "Evaluation",
    "ResultsError",
    "ResultsMismatchError",
    "ResultsStore",
]
