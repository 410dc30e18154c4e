"""The compute multiplier and the accuracy at equal compute against hand-computed frontiers."""

import math

import pytest

from recipes.study.frontier import (
    ABOVE,
    BELOW,
    EXACT,
    accuracy_at_compute,
    bootstrap_multiplier,
    compute_multiplier,
    fit_frontier,
    place,
)

COMPUTE = [1e12, 2e12, 4e12]
ACCURACY = [0.50, 0.60, 0.70]


def test_the_issue_example_gives_2_83():
    # 0.65 lies halfway between 2e12 and 4e12 in log-compute: c* = 2**1.5 * 1e12
    assert compute_multiplier(COMPUTE, ACCURACY, 1e12, 0.65) == pytest.approx(2**1.5)
    assert round(compute_multiplier(COMPUTE, ACCURACY, 1e12, 0.65), 2) == 2.83
    assert place(COMPUTE, ACCURACY, 1e12, 0.65).bound == EXACT
    assert compute_multiplier(COMPUTE, ACCURACY, 2e12, 0.50) == pytest.approx(0.5)  # the lowest point itself
    assert compute_multiplier(COMPUTE, ACCURACY, 4e12, 0.70) == pytest.approx(1.0)  # a run on the frontier


def test_outside_the_frontier_the_multiplier_is_a_bound_never_an_extrapolation():
    above = place(COMPUTE, ACCURACY, 1e12, 0.90)
    assert (above.value, above.bound) == (pytest.approx(4.0), ABOVE)  # c* > c_max = 4e12: M > 4
    below = place(COMPUTE, ACCURACY, 0.5e12, 0.30)
    assert (below.value, below.bound) == (pytest.approx(2.0), BELOW)  # c* < c_min = 1e12: M < 2
    assert compute_multiplier(COMPUTE, ACCURACY, 1e12, 0.90) == pytest.approx(4.0)


def test_a_non_monotone_frontier_is_fitted_isotonic_first():
    compute, accuracy = [1e12, 2e12, 4e12, 8e12], [0.5, 0.75, 0.625, 0.875]  # binary fractions: exact sums
    log_c, fitted = fit_frontier(compute, accuracy)
    assert list(fitted) == [0.5, 0.6875, 0.6875, 0.875]  # 0.75 and 0.625 pooled
    assert log_c == pytest.approx([math.log(c) for c in compute])
    # 0.6 is 0.1/0.1875 of the way from 0.5 to 0.6875 (at 2e12); the raw points would give 0.1/0.25 of the way
    assert compute_multiplier(compute, accuracy, 1e12, 0.6) == pytest.approx(2 ** (0.1 / 0.1875))
    # 0.75 lies past the flat stretch, 1/3 of the way from 4e12 to 8e12: the least compute that reaches it
    assert compute_multiplier(compute, accuracy, 1e12, 0.75) == pytest.approx(4 * 2 ** (1 / 3))
    assert compute_multiplier(compute, accuracy, 1e12, 0.6875) == pytest.approx(2.0)  # the first point that reaches it
    # seeds of one budget given as separate points with equal compute are averaged before the fit
    assert fit_frontier([1e12, 1e12, 2e12], [0.4, 0.6, 0.7])[1] == pytest.approx([0.5, 0.7])


def test_accuracy_at_compute_inside_and_outside_the_frontier():
    assert accuracy_at_compute(COMPUTE, ACCURACY, 2**1.5 * 1e12) == pytest.approx(0.65)
    assert accuracy_at_compute(COMPUTE, ACCURACY, 1e12) == pytest.approx(0.50)
    assert accuracy_at_compute(COMPUTE, ACCURACY, 4e12) == pytest.approx(0.70)
    assert math.isnan(accuracy_at_compute(COMPUTE, ACCURACY, 0.9e12))
    assert math.isnan(accuracy_at_compute(COMPUTE, ACCURACY, 4.1e12))
    assert accuracy_at_compute([1e12, 2e12], [0.7, 0.5], 1.5e12) == pytest.approx(0.6)  # isotonic: flat at 0.6


BASELINE_SEEDS = [
    [(1e12, 0.48), (1e12, 0.50), (1e12, 0.52)],
    [(2e12, 0.57), (2e12, 0.60), (2e12, 0.63)],
    [(4e12, 0.69), (4e12, 0.70), (4e12, 0.71)],
]
RECIPE_SEEDS = [(1e12, 0.63), (1e12, 0.65), (1e12, 0.67)]


def test_the_bootstrap_interval_is_seeded_and_contains_the_point_estimate():
    low, high = bootstrap_multiplier(BASELINE_SEEDS, RECIPE_SEEDS, seed=3)
    assert (low, high) == bootstrap_multiplier(BASELINE_SEEDS, RECIPE_SEEDS, seed=3)
    assert (low, high) != bootstrap_multiplier(BASELINE_SEEDS, RECIPE_SEEDS, seed=4)
    assert low < 2**1.5 < high  # the means are the issue's example
    assert 1.5 < low and high < 4.0 + 1e-9  # resamples stay between the frontier's bounds
    assert all(math.isnan(x) for x in bootstrap_multiplier(BASELINE_SEEDS, RECIPE_SEEDS[:1]))  # one seed: none
