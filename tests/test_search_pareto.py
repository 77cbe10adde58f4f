import numpy as np
import pytest

from hf_llama_nas.search.pareto import (
    hypervolume,
    hypervolume_contributions,
    hypervolume_improvement_2d,
    non_dominated_mask,
    non_dominated_sort,
    normalised_hypervolume,
)


def test_non_dominated_mask_and_sort():
    points = np.array([[1, 5], [2, 2], [3, 3], [5, 1], [np.nan, 0], [2, 2]])
    mask = non_dominated_mask(points)
    assert mask.tolist() == [True, True, False, True, False, True]
    fronts = non_dominated_sort(points)
    assert sorted(fronts[0].tolist()) == [0, 1, 3, 5] and fronts[1].tolist() == [2]


def test_hypervolume_known_values():
    assert hypervolume([[1, 1]], [2, 2]) == pytest.approx(1.0)
    assert hypervolume([[0, 1], [1, 0]], [2, 2]) == pytest.approx(3.0)
    assert hypervolume([[3, 3]], [2, 2]) == 0.0
    assert hypervolume([[0, 0, 0]], [1, 2, 3]) == pytest.approx(6.0)
    # Three 2x1x1 slabs of the 2x2x2 cube overlapping pairwise and triply in one unit cube: 6 - 3 + 1.
    assert hypervolume([[0, 1, 1], [1, 0, 1], [1, 1, 0]], [2, 2, 2]) == pytest.approx(4.0)
    assert normalised_hypervolume([[10, 100]], ideal=[0, 0], reference=[20, 200]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="reference"):
        normalised_hypervolume([[1, 1]], ideal=[2, 0], reference=[1, 1])


def test_hypervolume_improvement_2d_matches_exact():
    rng = np.random.default_rng(0)
    front = rng.random((12, 2))
    candidates = rng.random((40, 2))
    fast = hypervolume_improvement_2d(candidates, front, [1.1, 1.1])
    exact = hypervolume_contributions(candidates, front, [1.1, 1.1])
    np.testing.assert_allclose(fast, exact, atol=1e-12)
    np.testing.assert_allclose(hypervolume_improvement_2d(candidates, np.zeros((0, 2)), [1.1, 1.1]),
                               [hypervolume([c], [1.1, 1.1]) for c in candidates])
