"""Where a run lands against the fresh-compute frontier: the compute multiplier and the accuracy at equal compute.

The frontier is the baseline trained at several budgets, each with its own schedule (Portes, Blalock et al. 2022,
arXiv 2206.00832): its mean accuracy per budget, made non-decreasing in compute by an isotonic fit, and linear in
log-compute between budgets. Nothing is extrapolated beyond the budgets that were trained.

A compute multiplier M = c* / c: c* is the least baseline compute whose frontier accuracy reaches the run's
accuracy, c the run's compute. M > 1: the run reaches its accuracy with less compute than a fresh run needs.
Where the run's accuracy lies above the frontier's best, c* > c_max and M is only bounded below (``>``); below
the frontier's lowest point, c* < c_min and M is bounded above (``<``).

The uncertainty: :func:`multiplier_interval` resamples seeds (a seed's baseline runs and its recipe run together,
since they share an initialisation and a data order) and reads an expanded percentile interval, which holds its
level with few seeds; where the frontier cannot price an end, that end is open.

On a sweep's results (:mod:`recipes.study.results`): :func:`frontier_of` is the baseline's finished budgets as a
:class:`Frontier`, and :func:`place_runs` places a recipe's runs at one budget on it, under one accounting of
compute (``sunk``, ``fresh`` or ``total``), as a :class:`Placement`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import optimize, stats

if TYPE_CHECKING:
    from recipes.study.results import Groups, RunResult

__all__ = [
    'ABOVE',
    'BELOW',
    'EXACT',
    'Frontier',
    'Multiplier',
    'Placement',
    'Interval',
    'accuracy_at_compute',
    'multiplier_interval',
    'compute_multiplier',
    'fit_frontier',
    'frontier_of',
    'mean_or_nan',
    'place',
    'place_runs',
]

EXACT, ABOVE, BELOW = '', '>', '<'  # the bound marker: M is the value, at least it, or at most it
LEVEL = 0.95
RESAMPLES = 2000


def fit_frontier(baseline_compute: Sequence[float], baseline_accuracy: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(log-compute, accuracy)`` of the frontier's points, in increasing compute, accuracy made non-decreasing.

    Budgets with equal compute are pooled (their accuracies averaged) before the isotonic fit.
    """
    compute = np.asarray(baseline_compute, dtype=float)
    accuracy = np.asarray(baseline_accuracy, dtype=float)
    if compute.shape != accuracy.shape or compute.ndim != 1 or not len(compute):
        raise ValueError('the frontier needs one accuracy per baseline compute, and at least one point')
    if not (np.all(np.isfinite(compute)) and np.all(compute > 0) and np.all(np.isfinite(accuracy))):
        raise ValueError(f'frontier points must be finite with compute > 0: {compute}, {accuracy}')
    xs, inverse = np.unique(compute, return_inverse=True)
    counts = np.bincount(inverse)
    means = np.bincount(inverse, weights=accuracy) / counts
    fitted = optimize.isotonic_regression(means, weights=counts, increasing=True).x
    return np.log(xs), fitted


@dataclass(frozen=True)
class Multiplier:
    value: float
    bound: str  # EXACT, ABOVE (the multiplier is at least value) or BELOW (at most value)


def place(baseline_compute: Sequence[float], baseline_accuracy: Sequence[float], compute: float,
          accuracy: float) -> Multiplier:
    """The compute multiplier of a run at ``(compute, accuracy)`` with its bound marker."""
    if not compute > 0:
        raise ValueError(f'compute={compute} must be > 0')
    log_c, acc = fit_frontier(baseline_compute, baseline_accuracy)
    if accuracy > acc[-1]:
        return Multiplier(math.exp(log_c[-1]) / compute, ABOVE)
    if accuracy < acc[0]:
        return Multiplier(math.exp(log_c[0]) / compute, BELOW)
    j = int(np.argmax(acc >= accuracy))  # the first point that reaches it
    if j == 0:
        return Multiplier(math.exp(log_c[0]) / compute, EXACT)
    share = (accuracy - acc[j - 1]) / (acc[j] - acc[j - 1])  # acc[j-1] < accuracy <= acc[j]
    return Multiplier(math.exp(log_c[j - 1] + share * (log_c[j] - log_c[j - 1])) / compute, EXACT)


def compute_multiplier(baseline_compute: Sequence[float], baseline_accuracy: Sequence[float], compute: float,
                       accuracy: float) -> float:
    """c* / compute, c* the least compute at which the frontier reaches ``accuracy``; a bound outside it.

    Example: frontier (1e12, 0.50), (2e12, 0.60), (4e12, 0.70) and a run at (1e12, 0.65): c* = 2**1.5 * 1e12, M = 2.83.
    """
    return place(baseline_compute, baseline_accuracy, compute, accuracy).value


def accuracy_at_compute(baseline_compute: Sequence[float], baseline_accuracy: Sequence[float], compute: float) -> float:
    """The frontier's accuracy at ``compute``; NaN outside the computes the baseline trained at."""
    log_c, acc = fit_frontier(baseline_compute, baseline_accuracy)
    x = math.log(compute) if compute > 0 else -math.inf
    if not log_c[0] <= x <= log_c[-1]:
        return math.nan
    return float(np.interp(x, log_c, acc))


def _isotonic_rows(accuracy: np.ndarray) -> np.ndarray:
    """The isotonic (non-decreasing) fit of each row of ``accuracy`` (resamples x budgets), equal weights.

    Row by row this is what :func:`fit_frontier` computes, written as the max-min formula of isotonic regression,
    ``fit_k = max_{i<=k} min_{j>=k} mean(a_i..a_j)``, vectorised over rows: a frontier has a handful of budgets.
    """
    rows, budgets = accuracy.shape
    sums = np.concatenate([np.zeros((rows, 1)), np.cumsum(accuracy, axis=1)], axis=1)
    fitted = np.empty_like(accuracy)
    for k in range(budgets):
        best = np.full(rows, -np.inf)
        for i in range(k + 1):
            worst = np.full(rows, np.inf)
            for j in range(k, budgets):
                worst = np.minimum(worst, (sums[:, j + 1] - sums[:, i]) / (j + 1 - i))
            best = np.maximum(best, worst)
        fitted[:, k] = best
    return fitted


def _multipliers(compute: np.ndarray, accuracy: np.ndarray, own_compute: np.ndarray,
                 own_accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`place` for many frontiers at once: ``compute`` and ``accuracy`` (rows x budgets, budgets in increasing
    compute), a run's ``own_compute`` and ``own_accuracy`` per row. Returns the multipliers and their bounds as
    codes: 0 exact, 1 above the frontier's best (at least the value), -1 below its lowest point (at most)."""
    fitted = _isotonic_rows(accuracy)
    log_c = np.log(compute)
    rows = np.arange(len(fitted))
    above, below = own_accuracy > fitted[:, -1], own_accuracy < fitted[:, 0]
    reaches = fitted >= own_accuracy[:, None]
    j = np.where(reaches.any(axis=1), reaches.argmax(axis=1), fitted.shape[1] - 1)  # the first point that reaches it
    i = np.maximum(j - 1, 0)
    with np.errstate(invalid='ignore', divide='ignore'):  # rows where j == 0 divide 0 by 0: np.where drops them
        share = (own_accuracy - fitted[rows, i]) / (fitted[rows, j] - fitted[rows, i])  # where j > 0: below j, >= at j
        log_star = np.where(j > 0, log_c[rows, i] + share * (log_c[rows, j] - log_c[rows, i]), log_c[rows, 0])
    log_star = np.where(above, log_c[:, -1], np.where(below, log_c[:, 0], log_star))
    return np.exp(log_star) / own_compute, np.where(above, 1, np.where(below, -1, 0))


@dataclass(frozen=True)
class Interval:
    """A compute multiplier with its interval: ``value`` and its ``bound`` as :class:`Multiplier` has them, ``lo``
    and ``hi`` the interval's ends (``hi = inf`` where the frontier cannot price the upper end, above its best
    accuracy: one-sided; ``lo = 0`` below its lowest point), ``p_value`` the two-sided test of M = 1 the interval
    inverts (M = 1 lies outside the interval at level ``confidence`` exactly when ``p_value < 1 - confidence``)."""

    value: float
    lo: float
    hi: float
    bound: str
    p_value: float = math.nan

    @property
    def one_sided(self) -> bool:
        return math.isinf(self.hi)


def _units(baseline: Mapping[int, Sequence[tuple[float, float]]], recipe: Mapping[int, tuple[float, float]]
           ) -> tuple[list[int], list[int], list[int]]:
    """Seeds in both (paired: they share an initialisation and a data order), the baseline's alone, the recipe's."""
    both = sorted(set(baseline) & set(recipe))
    return both, sorted(set(baseline) - set(recipe)), sorted(set(recipe) - set(baseline))


def _expanded_level(confidence: float, n: int) -> float:
    """The two-sided level whose percentiles make Hesterberg's expanded percentile interval: the percentile
    bootstrap of a mean is too narrow for few units (about 90% at 10), so it reads the quantiles at
    ``Phi(-sqrt(n / (n - 1)) t_{n-1})`` instead of ``(1 - confidence) / 2``."""
    t = stats.t.ppf(0.5 + confidence / 2, n - 1) * math.sqrt(n / (n - 1))
    return 1 - 2 * stats.norm.cdf(-t)


def _expanded_p(tail: float, n: int) -> float:
    """The two-sided p-value of a one-sided bootstrap tail share ``tail``, on the expanded scale."""
    tail = min(max(tail, 1e-300), 0.5)
    return float(min(1.0, 2 * stats.t.cdf(stats.norm.ppf(tail) / math.sqrt(n / (n - 1)), n - 1)))


def _tail_share(values: np.ndarray, beats: bool) -> float:
    """The share of resampled multipliers on the far side of M = 1: below it, to test whether the recipe beats the
    frontier (``values`` the least each resample can claim), above it to test whether it loses.

    Where no resample lies there, the count resolves nothing below ``1 / resamples``, and a floor there would cap
    the evidence (with 10 seeds, no p-value under about 0.009: too large for any Holm-adjusted family of six or
    more); the share is then read from the normal approximation of the resampled ``log M``, the scale on which the
    expanded interval is read too.
    """
    share = float(np.mean(values < 1 if beats else values > 1))
    if share > 0:
        return share
    logs = np.log(values)
    spread = float(np.std(logs, ddof=1))
    return 0.0 if spread == 0 else float(stats.norm.sf(abs(float(np.mean(logs))) / spread))


def multiplier_interval(
    baseline: Mapping[int, Sequence[tuple[float, float]]],
    recipe: Mapping[int, tuple[float, float]],
    *,
    confidence: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """The compute multiplier of a recipe's mean ``(compute, accuracy)`` on the frontier of the baseline's means, and
    its bootstrap interval over seeds.

    ``baseline`` maps each seed to its ``(compute, accuracy)`` at every baseline budget (in the same budget order for
    every seed); ``recipe`` maps each seed to its ``(compute, accuracy)``. Seeds present in both share their
    initialisation and data order, so they are resampled jointly (paired); the others are resampled within their own
    side. The interval is the expanded percentile interval (Hesterberg 2015; :func:`_expanded_level`), which holds its
    level where the plain percentile interval does not (``tests/test_frontier.py`` measures both on simulated
    studies). A resample above the frontier's best accuracy says only that M is at least its value, one below its
    lowest point that M is at most its value: the interval's ends take the least they can claim (``hi = inf``,
    ``lo = 0``) rather than a cap. NaN where either side has fewer than two seeds.
    """
    both, alone, own_only = _units(baseline, recipe)
    seeds = [*both, *alone]
    n_base, n_own = len(seeds), len(both) + len(own_only)
    point_base = np.asarray([baseline[s] for s in seeds], dtype=float)  # (seeds, budgets, 2)
    if n_base == 0 or n_own == 0:
        raise ValueError('a multiplier needs at least one baseline seed and one recipe seed')
    own = np.asarray([recipe[s] for s in [*both, *own_only]], dtype=float)  # (seeds, 2)
    order = np.argsort(point_base[:, :, 0].mean(axis=0))  # budgets in increasing compute
    point_base = point_base[:, order]
    value, code = _multipliers(point_base[:, :, 0].mean(axis=0)[None], point_base[:, :, 1].mean(axis=0)[None],
                               own[:, 0].mean()[None], own[:, 1].mean()[None])
    bound = {0: EXACT, 1: ABOVE, -1: BELOW}[int(code[0])]
    if min(n_base, n_own) < 2:
        return Interval(float(value[0]), math.nan, math.nan, bound)

    rng = np.random.default_rng(seed)
    paired = rng.integers(0, len(both), (resamples, len(both)))
    base_idx = np.concatenate([paired, len(both) + rng.integers(0, len(alone), (resamples, len(alone)))], axis=1)
    own_idx = np.concatenate([paired, len(both) + rng.integers(0, len(own_only), (resamples, len(own_only)))], axis=1)
    sampled_base, sampled_own = point_base[base_idx].mean(axis=1), own[own_idx].mean(axis=1)  # (resamples, ...)
    values, codes = _multipliers(sampled_base[:, :, 0], sampled_base[:, :, 1], sampled_own[:, 0], sampled_own[:, 1])
    at_least = np.where(codes == -1, 0.0, values)  # what each resample can claim at the low end
    at_most = np.where(codes == 1, np.inf, values)  # and at the high end
    n = min(n_base, n_own)
    tail = (1 - _expanded_level(confidence, n)) / 2
    # inverted_cdf reads resampled values themselves: no interpolation towards an open (infinite) end
    lo = float(np.quantile(at_least, tail, method='inverted_cdf'))
    hi = float(np.quantile(at_most, 1 - tail, method='inverted_cdf'))
    p_beats, p_loses = _expanded_p(_tail_share(at_least, True), n), _expanded_p(_tail_share(at_most, False), n)
    return Interval(float(value[0]), lo, hi, bound, min(p_beats, p_loses))


# ----- a sweep's runs on its baseline's frontier ---------------------------------------------------------------------


def mean_or_nan(values: Sequence[float]) -> float:
    """The mean of ``values``; NaN for none."""
    return float(np.mean(values)) if len(values) else math.nan


@dataclass(frozen=True)
class Frontier:
    """The baseline's budgets: mean compute (its own FLOPs) and mean final accuracy, each budget's runs, and per seed
    its ``(compute, accuracy)`` at every budget (the seeds that finished them all: the units the interval resamples)."""

    compute: tuple[float, ...]
    accuracy: tuple[float, ...]
    runs: tuple[tuple[tuple[float, float], ...], ...]  # per budget, (compute, final accuracy) of each seed
    by_seed: dict[int, list[tuple[float, float]]]

    @property
    def usable(self) -> bool:
        return bool(self.compute)


def frontier_of(baseline: str, groups: Groups) -> Frontier:
    """The baseline's finished budgets with compute.json (it reuses nothing: its compute is the same in every
    accounting)."""
    points = [
        rs for (name, _), rs in sorted(groups.items(), key=lambda item: item[0][1])
        if name == baseline and rs and all(math.isfinite(r.spent) and r.spent > 0 for r in rs)
    ]
    complete = set.intersection(*({r.seed for r in rs} for rs in points)) if points else set()
    return Frontier(
        compute=tuple(mean_or_nan([r.spent for r in rs]) for rs in points),
        accuracy=tuple(mean_or_nan([r.final for r in rs]) for rs in points),
        runs=tuple(tuple((r.spent, r.final) for r in rs) for rs in points),
        by_seed={s: [next((r.spent, r.final) for r in rs if r.seed == s) for rs in points] for s in sorted(complete)},
    )


@dataclass(frozen=True)
class Placement:
    """A recipe's mean (compute, final accuracy) against the frontier, under one accounting of compute."""

    compute: float
    interval: Interval  # the multiplier, its bound, its 95% interval over seeds (open ends) and its p-value
    vs_frontier: float  # mean final accuracy minus the frontier's accuracy at the same compute; nan outside it

    @property
    def multiplier(self) -> float:
        return self.interval.value

    @property
    def bound(self) -> str:
        return self.interval.bound


def place_runs(frontier: Frontier, runs: Sequence[RunResult], accounting: str) -> Placement | None:
    """A recipe's runs at one budget on ``frontier``, their compute counted as ``accounting`` (``sunk``, ``fresh`` or
    ``total``), with :func:`multiplier_interval`; None without a usable frontier or without every run's compute."""
    computes = [r.compute(accounting) for r in runs]
    if not frontier.by_seed or not runs or not all(math.isfinite(c) and c > 0 for c in computes):
        return None
    interval = multiplier_interval(frontier.by_seed, {r.seed: (c, r.final) for r, c in zip(runs, computes, strict=True)})
    compute = mean_or_nan(computes)
    at = accuracy_at_compute(frontier.compute, frontier.accuracy, compute)
    return Placement(compute, interval, mean_or_nan([r.final for r in runs]) - at)
