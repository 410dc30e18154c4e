"""Where a run lands against the fresh-compute frontier: the compute multiplier and the accuracy at equal compute.

The frontier is the baseline trained at several budgets, each with its own schedule (Portes, Blalock et al. 2022,
arXiv 2206.00832): its mean accuracy per budget, made non-decreasing in compute by an isotonic fit, and linear in
log-compute between budgets. Nothing is extrapolated beyond the budgets that were trained.

A compute multiplier M = c* / c: c* is the least baseline compute whose frontier accuracy reaches the run's
accuracy, c the run's compute. M > 1: the run reaches its accuracy with less compute than a fresh run needs.
Where the run's accuracy lies above the frontier's best, c* > c_max and M is only bounded below (``>``); below
the frontier's lowest point, c* < c_min and M is bounded above (``<``).

On a sweep's results (:mod:`recipes.study.results`): :func:`frontier_of` is the baseline's finished budgets as a
:class:`Frontier`, and :func:`place_runs` places a recipe's runs at one budget on it, under one accounting of
compute (``sunk`` or ``total``), as a :class:`Placement`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    'accuracy_at_compute',
    'bootstrap_multiplier',
    'compute_multiplier',
    'fit_frontier',
    'frontier_of',
    'mean_or_nan',
    'place',
    'place_runs',
]

EXACT, ABOVE, BELOW = '', '>', '<'  # the bound marker: M is the value, at least it, or at most it
LEVEL = 0.95
RESAMPLES = 1000


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


def bootstrap_multiplier(
    baseline_runs: Sequence[Sequence[tuple[float, float]]],
    runs: Sequence[tuple[float, float]],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the multiplier of mean compute and mean accuracy.

    ``baseline_runs``: per budget, the ``(compute, accuracy)`` of each baseline seed; ``runs``: the recipe's seeds.
    Each budget's seeds and the recipe's seeds are resampled independently (``scipy.stats.bootstrap``, seeded).
    Resamples outside the frontier count with their bound. NaN where a sample has fewer than two seeds.
    """
    data = [np.asarray(s, dtype=float).reshape(-1, 2) for s in (*baseline_runs, runs)]  # each (seeds, 2)
    if any(len(d) < 2 for d in data):
        return math.nan, math.nan

    def statistic(*indices: np.ndarray) -> float:  # resampled seed indices, one array per sample
        means = [d[i.astype(int)].mean(axis=0) for d, i in zip(data, indices, strict=True)]
        *base, own = means
        return compute_multiplier([b[0] for b in base], [b[1] for b in base], float(own[0]), float(own[1]))

    result = stats.bootstrap(
        [np.arange(len(d)) for d in data], statistic, n_resamples=resamples, confidence_level=LEVEL, method='percentile', vectorized=False,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


# ----- a sweep's runs on its baseline's frontier ---------------------------------------------------------------------


def mean_or_nan(values: Sequence[float]) -> float:
    """The mean of ``values``; NaN for none."""
    return float(np.mean(values)) if len(values) else math.nan


@dataclass(frozen=True)
class Frontier:
    """The baseline's budgets: mean compute (its own FLOPs) and mean final accuracy, and each budget's runs."""

    compute: tuple[float, ...]
    accuracy: tuple[float, ...]
    runs: tuple[tuple[tuple[float, float], ...], ...]  # per budget, (compute, final accuracy) of each seed

    @property
    def usable(self) -> bool:
        return bool(self.compute)


def frontier_of(baseline: str, groups: Groups) -> Frontier:
    """The baseline's finished budgets with compute.json (its sunk and total compute are equal: it reuses nothing)."""
    points = [
        rs for (name, _), rs in groups.items()
        if name == baseline and rs and all(math.isfinite(r.spent) and r.spent > 0 for r in rs)
    ]
    return Frontier(
        compute=tuple(mean_or_nan([r.spent for r in rs]) for rs in points),
        accuracy=tuple(mean_or_nan([r.final for r in rs]) for rs in points),
        runs=tuple(tuple((r.spent, r.final) for r in rs) for rs in points),
    )


@dataclass(frozen=True)
class Placement:
    """A recipe's mean (compute, final accuracy) against the frontier, under one accounting of compute."""

    compute: float
    multiplier: float
    bound: str  # '' exact, '>' at least, '<' at most: outside the frontier's accuracies
    low: float  # 95% bootstrap interval over seeds
    high: float
    vs_frontier: float  # mean final accuracy minus the frontier's accuracy at the same compute; nan outside it


def place_runs(frontier: Frontier, runs: Sequence[RunResult], accounting: str) -> Placement | None:
    """A recipe's runs at one budget on ``frontier``, their compute counted as ``accounting`` (``sunk``/``total``);
    None without a usable frontier or without every run's compute."""
    computes = [r.compute(accounting) for r in runs]
    if not frontier.usable or not runs or not all(math.isfinite(c) and c > 0 for c in computes):
        return None
    compute, accuracy = mean_or_nan(computes), mean_or_nan([r.final for r in runs])
    where = place(frontier.compute, frontier.accuracy, compute, accuracy)
    low, high = bootstrap_multiplier(frontier.runs, list(zip(computes, [r.final for r in runs], strict=True)))
    at = accuracy_at_compute(frontier.compute, frontier.accuracy, compute)
    return Placement(compute, where.value, where.bound, low, high, accuracy - at)
