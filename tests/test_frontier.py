"""The compute multiplier and the accuracy at equal compute against hand-computed frontiers, and its interval: paired,
open where the frontier cannot price an end, and holding its level on simulated studies."""

import math

import numpy as np
import pytest

from recipes.study.frontier import (
    ABOVE,
    BELOW,
    EXACT,
    accuracy_at_compute,
    compute_multiplier,
    fit_frontier,
    multiplier_interval,
    place,
)
from recipes.study.tables import holm

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


# Three seeds: each seed's baseline run at the three budgets, and its recipe run (the issue's example on average).
BASELINE = {1: [(1e12, 0.48), (2e12, 0.57), (4e12, 0.69)], 2: [(1e12, 0.50), (2e12, 0.60), (4e12, 0.70)],
            3: [(1e12, 0.52), (2e12, 0.63), (4e12, 0.71)]}
RECIPE = {1: (1e12, 0.67), 2: (1e12, 0.63), 3: (1e12, 0.65)}


def test_the_interval_is_seeded_and_contains_the_point_estimate():
    interval = multiplier_interval(BASELINE, RECIPE, seed=3)
    assert interval == multiplier_interval(BASELINE, RECIPE, seed=3)
    assert (interval.value, interval.bound) == (pytest.approx(2**1.5), EXACT)  # the means are the issue's example
    assert interval.lo < 2**1.5 < interval.hi
    # every resample lies above 1: the p-value comes from the normal approximation of the resampled log M, on the
    # expanded (t, 2 degrees of freedom) scale, and agrees with the interval, which excludes 1
    assert interval.lo > 1 and 0.001 < interval.p_value < 0.05
    one = multiplier_interval(BASELINE, {1: RECIPE[1]})
    assert math.isnan(one.lo) and math.isnan(one.hi) and math.isnan(one.p_value)  # one recipe seed: no interval


def test_where_the_frontier_cannot_price_an_end_it_is_open():
    above = multiplier_interval(BASELINE, {1: (1e12, 0.72), 2: (1e12, 0.75), 3: (1e12, 0.78)})
    assert above.bound == ABOVE and above.value == pytest.approx(4.0)  # at least c_max / c
    assert math.isinf(above.hi) and above.one_sided and above.lo >= 2**1.5  # never a cap printed as a limit
    below = multiplier_interval(BASELINE, {1: (2e12, 0.40), 2: (2e12, 0.42), 3: (2e12, 0.44)})
    assert below.bound == BELOW and below.lo == 0 and below.hi <= 0.5 + 1e-12  # at most c_min / c


def simulated(rng: np.random.Generator, seeds: int, budget: int = 1, seed_effect: float = 0.03, noise: float = 0.02):
    """A study whose recipe is the baseline at ``budget`` (true M = 1): four budgets, normal noise per run and a
    normal seed effect that a seed's runs share (its initialisation and data order)."""
    compute, accuracy = [1e12, 2e12, 4e12, 8e12], [0.45, 0.60, 0.72, 0.80]
    effect = rng.normal(0, seed_effect, seeds)
    baseline = {s: [(c, a + effect[s] + rng.normal(0, noise)) for c, a in zip(compute, accuracy, strict=True)]
                for s in range(seeds)}
    recipe = {s: (compute[budget], accuracy[budget] + effect[s] + rng.normal(0, noise)) for s in range(seeds)}
    return baseline, recipe


def test_the_interval_holds_its_level_with_ten_seeds():
    rng = np.random.default_rng(2026)
    covered = rejected = 0
    for study in range(1000):
        baseline, recipe = simulated(rng, seeds=10)
        interval = multiplier_interval(baseline, recipe, seed=study)
        covered += interval.lo <= 1 <= interval.hi
        rejected += interval.p_value < 0.05
    assert covered >= 930, covered  # measured: 947 of 1000 (the plain percentile interval: 902)
    assert rejected <= 70, rejected  # the test of M = 1 holds its level too


def test_a_clear_effect_gets_a_p_value_below_what_the_resamples_can_count():
    """A recipe at the 4x budget's accuracy for 1x compute, 10 seeds: no resample reaches M = 1, and the p-value
    (normal approximation of the resampled log M) is small enough to survive Holm over 18 comparisons, where a count
    of 2,000 resamples could not go below about 0.009."""
    baseline, recipe = simulated(np.random.default_rng(11), seeds=10, budget=2)
    interval = multiplier_interval(baseline, {s: (1e12, a) for s, (_, a) in recipe.items()})
    assert interval.lo > 2 and interval.p_value < 0.05 / 18


def test_paired_seeds_narrow_the_interval_against_resampling_them_apart():
    baseline, recipe = simulated(np.random.default_rng(7), seeds=10, seed_effect=0.05, noise=0.01)
    paired = multiplier_interval(baseline, recipe)
    assert paired != multiplier_interval(baseline, recipe, seed=1)  # another resampling seed, other resamples
    apart = multiplier_interval(baseline, {s + 100: v for s, v in recipe.items()})  # other seeds: no pairing
    assert paired.value == pytest.approx(apart.value)
    assert math.log(paired.hi / paired.lo) < 0.5 * math.log(apart.hi / apart.lo)


def test_holm_on_four_p_values_computed_by_hand():
    # sorted: 0.005 <= 0.05/4 and 0.01 <= 0.05/3 are rejected; 0.03 > 0.05/2 stops the procedure, so 0.04 stands too
    assert holm([0.01, 0.04, 0.03, 0.005]) == [True, False, False, True]
    assert holm([0.01, 0.04, 0.03, 0.005], alpha=0.2) == [True, True, True, True]  # 0.04 <= 0.2/1
    assert holm([0.02, math.nan]) == [True, False]  # an untested comparison does not count in m
