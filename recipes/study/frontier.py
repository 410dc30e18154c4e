"""Where a run lands against the fresh-compute frontier: the compute multiplier and the accuracy at equal compute.

The frontier is the baseline trained at several budgets, each with its own schedule (Portes, Blalock et al. 2022,
arXiv 2206.00832): its mean accuracy per budget, made non-decreasing in compute by an isotonic fit, and linear in
log-compute between budgets. Nothing is extrapolated beyond the budgets that were trained.

A compute multiplier M = c* / c: c* is the least baseline compute whose frontier accuracy reaches the run's
accuracy, c the run's compute. M > 1: the run reaches its accuracy with less compute than a fresh run needs.
Where the run's accuracy lies above the frontier's best, c* > c_max and M is only bounded below (``>``); below
the frontier's lowest point, c* < c_min and M is bounded above (``<``).

The uncertainty: :func:`multiplier_interval` resamples seeds (a seed's baseline runs and its recipe run together,
since they share an initialisation and a data order), or, where seeds reuse the same past run, the past runs and then
the seeds within them, and reads an expanded percentile interval, which holds its level with few units; where the
frontier cannot price an end, that end is open. Its p-value of M = 1 is counted from the same resamples, so it cannot
go below :func:`p_floor`; :func:`resamples_for` sizes the resamples so that a Holm family's first threshold lies above
that floor.

On a sweep's results (:mod:`recipes.study.results`): :func:`frontier_of` is the baseline's finished budgets as a
:class:`Frontier`, and :func:`place_runs` places a recipe's runs at one budget on it, under one accounting of
compute (``sunk``, ``fresh`` or ``total``), as a :class:`Placement`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import optimize, stats

if TYPE_CHECKING:
    from recipes.study.results import Groups, RunResult

__all__ = [
    'ABOVE',
    'ALPHA',
    'BELOW',
    'EXACT',
    'MAX_RESAMPLES',
    'RESAMPLES',
    'Frontier',
    'Multiplier',
    'Placement',
    'Interval',
    'accuracy_at_compute',
    'interval_units',
    'multiplier_interval',
    'compute_multiplier',
    'fit_frontier',
    'frontier_of',
    'mean_or_nan',
    'p_floor',
    'place',
    'place_runs',
    'placeable',
    'resamples_for',
]

EXACT, ABOVE, BELOW = '', '>', '<'  # the bound marker: M is the value, at least it, or at most it
LEVEL = 0.95
ALPHA = 1 - LEVEL
RESAMPLES = 2000  # the fewest resamples an interval reads
MAX_RESAMPLES = 2_000_000  # the most resamples_for asks for: about a second an interval of 10 seeds, 16 MB a side
CHUNK = 100_000  # resamples drawn at once: the counts of 10 seeds are 8 MB


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
    ``fit_k = max_{i<=k} min_{j>=k} mean(a_i..a_j)``, vectorised over the rows that are not already non-decreasing:
    a frontier has a handful of budgets.
    """
    fitted = accuracy.copy()
    bad = np.flatnonzero(np.any(np.diff(accuracy, axis=1) < 0, axis=1))
    if not len(bad):
        return fitted
    rows, budgets = len(bad), accuracy.shape[1]
    sums = np.concatenate([np.zeros((rows, 1)), np.cumsum(accuracy[bad], axis=1)], axis=1)
    best = np.full((rows, budgets), -np.inf)
    for i in range(budgets):
        worst = np.full(rows, np.inf)  # min_{j>=k} mean(a_i..a_j), for k from the last budget down to i
        for k in range(budgets - 1, i - 1, -1):
            worst = np.minimum(worst, (sums[:, k + 1] - sums[:, i]) / (k + 1 - i))
            best[:, k] = np.maximum(best[:, k], worst)
    fitted[bad] = best
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
    # at a budget's own compute, that compute itself (exp(log c) need not give c back: M = 1 must stay 1)
    star = np.where(above, compute[:, -1], np.where(below | (j == 0), compute[:, 0], np.exp(log_star)))
    return star / own_compute, np.where(above, 1, np.where(below, -1, 0))


@dataclass(frozen=True)
class Interval:
    """A compute multiplier with its interval: ``value`` and its ``bound`` as :class:`Multiplier` has them, ``lo``
    and ``hi`` the interval's ends (``hi = inf`` where the frontier cannot price the upper end, above its best
    accuracy: one-sided; ``lo = 0`` below its lowest point; both where the resamples cannot resolve the level at all),
    ``p_value`` the two-sided test of M = 1 the interval inverts, counted from the resamples (M = 1 lies outside the
    interval at level ``confidence`` exactly when ``p_value <= 1 - confidence``). ``resamples`` and ``units`` (the
    seeds, or the past runs when clustered) set the smallest p-value it can count, :attr:`p_floor`; ``ends`` holds
    ``(alpha, lo, hi)`` at its own two-sided error level and at the further ones asked for (:meth:`at`)."""

    value: float
    lo: float
    hi: float
    bound: str
    p_value: float = math.nan
    resamples: int = 0
    units: int = 0
    ends: tuple[tuple[float, float, float], ...] = ()

    @property
    def one_sided(self) -> bool:
        return math.isinf(self.hi)

    @property
    def p_floor(self) -> float:
        """The smallest p-value its resamples can count (:func:`p_floor`); NaN without an interval."""
        return p_floor(self.resamples, self.units) if self.resamples and self.units >= 2 else math.nan

    def at(self, alpha: float) -> tuple[float, float]:
        """``(lo, hi)`` at the two-sided error level ``alpha`` (``1 - confidence`` or one of the ``alphas`` it was
        computed with; NaN without an interval): M = 1 lies outside it exactly when ``p_value <= alpha``."""
        if math.isnan(self.p_value):
            return math.nan, math.nan
        for level, lo, hi in self.ends:
            if level == alpha:
                return lo, hi
        raise KeyError(f'no interval at alpha={alpha}: pass it in multiplier_interval(alphas=...)')


def _units(baseline: Iterable[int], recipe: Iterable[int]) -> tuple[list[int], list[int], list[int]]:
    """Seeds in both (paired: they share an initialisation and a data order), the baseline's alone, the recipe's."""
    base, own = set(baseline), set(recipe)
    return sorted(base & own), sorted(base - own), sorted(own - base)


def _clusters_of(recipe: Iterable[int], clusters: Mapping[int, Hashable]) -> dict[Hashable, list[int]]:
    """The recipe's seeds by cluster, in order of their first seed."""
    out: dict[Hashable, list[int]] = {}
    for s in sorted(recipe):
        if s not in clusters:
            raise ValueError(f'clusters names no past run for recipe seed {s}: give every recipe seed one')
        out.setdefault(clusters[s], []).append(s)
    return out


def interval_units(baseline: Iterable[int], recipe: Iterable[int], clusters: Mapping[int, Hashable] | None = None
                   ) -> int:
    """The number of independent units :func:`multiplier_interval` resamples for these seeds: the seeds of the
    smaller side, or, clustered, the number of past runs the recipe's seeds reuse (at most the baseline's seeds)."""
    both, alone, own_only = _units(baseline, recipe)
    n_base, n_own = len(both) + len(alone), len(both) + len(own_only)
    if clusters is None:
        return min(n_base, n_own)
    return min(n_base, len(_clusters_of([*both, *own_only], clusters)))


def _spread(n: int) -> float:
    return math.sqrt(n / (n - 1))


def _expanded_p(tail: float, n: int) -> float:
    """The two-sided p-value of a one-sided bootstrap tail share on the expanded scale of Hesterberg's expanded
    percentile interval: ``2 T_{n-1}(Phi^-1(tail) / sqrt(n / (n - 1)))``, at most 1. The percentile bootstrap of a
    mean is too narrow for few units (about 90% at 10); the expanded interval reads its ends at the tail share
    ``Phi(sqrt(n / (n - 1)) t_{n-1, alpha/2})`` instead of ``alpha / 2``, and this is its inverse."""
    if tail >= 0.5:
        return 1.0
    return float(min(1.0, 2 * stats.t.cdf(stats.norm.ppf(tail) / _spread(n), n - 1)))


def _counted_p(count: int, resamples: int, n: int) -> float:
    """The p-value of ``count`` of ``resamples`` resamples on the far side of M = 1: the tail share
    ``(count + 1) / (resamples + 1)`` (the resampled statistic counted among its resamples), on the expanded scale."""
    return _expanded_p((count + 1) / (resamples + 1), n)


def p_floor(resamples: int, n_units: int) -> float:
    """The smallest p-value ``resamples`` resamples of ``n_units`` units can count: none on the far side of M = 1.

    With 10 units: 0.012 at 2,000 resamples, 0.0015 at 10**6; with 3, 0.060 at 10**6 (the expanded scale stretches
    the tail by ``t`` with 2 degrees of freedom).
    """
    return _counted_p(0, resamples, n_units)


def _far_count(alpha: float, resamples: int, n: int) -> int:
    """The most resamples that may lie on the far side of a value for the test at ``alpha`` to reject it: the largest
    count whose :func:`_counted_p` is at most ``alpha``; -1 where no count is."""
    tail = stats.norm.cdf(_spread(n) * stats.t.ppf(alpha / 2, n - 1))  # where the expanded p equals alpha
    count = max(-1, min(resamples, math.floor(tail * (resamples + 1)) - 1))
    while count < resamples and _counted_p(count + 1, resamples, n) <= alpha:
        count += 1
    while count >= 0 and _counted_p(count, resamples, n) > alpha:
        count -= 1
    return count


def _round_up(x: float) -> int:
    """``x`` rounded up to two significant digits: 131,072 -> 140,000."""
    step = 10 ** max(0, math.floor(math.log10(x)) - 1)
    return int(math.ceil(x / step) * step)


def resamples_for(family_size: int, n_units: int, alpha: float = ALPHA, *, cap: int = MAX_RESAMPLES) -> int | None:
    """The resamples a Holm family of ``family_size`` comparisons of ``n_units`` units each needs: the least number
    whose :func:`p_floor` lies below Holm's first threshold ``alpha / family_size`` (so that its most significant
    comparison can be rejected at all), rounded up to two significant digits, at least :data:`RESAMPLES`. None where
    even ``cap`` resamples cannot get there.

    Examples at alpha 0.05: 10 units, one comparison: 2,000 (117 would do); 10 units, 19 comparisons: 140,000;
    4 units, one comparison: 8,500; 3 units (past runs), one comparison: about 1.5 * 10**7, past the cap: None.
    """
    if family_size < 1 or n_units < 2:
        raise ValueError(f'a family needs a comparison and each comparison two units: {family_size}, {n_units}')
    threshold = alpha / family_size
    tail = stats.norm.cdf(_spread(n_units) * stats.t.ppf(threshold / 2, n_units - 1))  # p_floor(R) < threshold iff
    if tail * (cap + 1) <= 1:  # 1 / (R + 1) < tail, up to rounding
        return None
    least = max(1, math.floor(1 / tail) - 1)
    while p_floor(least, n_units) >= threshold:
        least += 1
    if least > cap:
        return None
    return max(RESAMPLES, min(cap, _round_up(least)))


def _counts(idx: np.ndarray, width: int) -> np.ndarray:
    """Per row of ``idx`` (resamples x draws, each draw an index below ``width``), how often each index is drawn."""
    size = len(idx)
    if width == 0:
        return np.zeros((size, 0))
    flat = (np.arange(size)[:, None] * width + idx).ravel()
    return np.bincount(flat, minlength=size * width).reshape(size, width)


def _cluster_counts(labels: np.ndarray, groups: Sequence[Sequence[int]], width: int,
                    rng: np.random.Generator) -> np.ndarray:
    """The second stage of the cluster bootstrap: per row of ``labels`` (resamples x the clusters drawn), each drawn
    cluster's members (``groups[label]``, indices below ``width``) drawn with replacement, as many as it holds;
    returned as counts per index (resamples x ``width``)."""
    size = len(labels)
    sizes = np.asarray([len(g) for g in groups])
    most = int(sizes.max())
    if width == 0 or most == 0:
        return np.zeros((size, width))
    members = np.zeros((len(groups), most), dtype=np.int64)
    for c, g in enumerate(groups):
        members[c, :len(g)] = g
    drawn = sizes[labels][..., None]  # (resamples, clusters drawn, 1)
    local = (rng.random((*labels.shape, most)) * drawn).astype(np.int64)  # below the cluster's size
    valid = np.arange(most) < drawn
    chosen = members[labels[..., None], local]
    rows = np.broadcast_to(np.arange(size)[:, None, None], chosen.shape)
    return np.bincount((rows * width + chosen)[valid], minlength=size * width).reshape(size, width)


def _resample(point_base: np.ndarray, own: np.ndarray, n_both: int, groups: Sequence[tuple[list[int], list[int]]] | None,
              resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What each resample can claim at the low end of M and at the high end: ``point_base`` (seeds x budgets x 2) the
    paired seeds first, then the baseline's alone; ``own`` (seeds x 2) the paired first, then the recipe's alone;
    ``groups`` per cluster its paired and recipe-alone seeds (indices into those), None to resample seeds. Drawn
    :data:`CHUNK` resamples at a time, each as counts per seed, so that the means are one product of matrices."""
    n_alone, n_own_only = len(point_base) - n_both, len(own) - n_both
    base_flat = np.concatenate([point_base.reshape(len(point_base), -1), np.ones((len(point_base), 1))], axis=1)
    own_flat = np.concatenate([own, np.ones((len(own), 1))], axis=1)  # the last column counts the seeds drawn
    at_least, at_most = np.empty(resamples), np.empty(resamples)
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        if groups is None:
            paired = _counts(rng.integers(0, n_both, (size, n_both), dtype=np.int32), n_both)
            alone = _counts(rng.integers(0, n_alone, (size, n_alone), dtype=np.int32), n_alone)
            own_only = _counts(rng.integers(0, n_own_only, (size, n_own_only), dtype=np.int32), n_own_only)
        else:
            labels = rng.integers(0, len(groups), (size, len(groups)))
            paired = _cluster_counts(labels, [g for g, _ in groups], n_both, rng)
            own_only = _cluster_counts(labels, [g for _, g in groups], n_own_only, rng)
            alone = _counts(rng.integers(0, n_alone, (size, n_alone), dtype=np.int32), n_alone)
        # einsum, not the BLAS product: a threaded BLAS stalls on a busy machine at these skinny shapes
        base_sums = np.einsum('ij,jk->ik', np.concatenate([paired, alone], axis=1), base_flat)
        own_sums = np.einsum('ij,jk->ik', np.concatenate([paired, own_only], axis=1), own_flat)
        with np.errstate(invalid='ignore', divide='ignore'):  # a resample that draws no seed of a side: NaN
            base = (base_sums[:, :-1] / base_sums[:, -1:]).reshape(size, *point_base.shape[1:])
            mine = own_sums[:, :-1] / own_sums[:, -1:]
            values, codes = _multipliers(base[:, :, 0], base[:, :, 1], mine[:, 0], mine[:, 1])
        unknown = np.isnan(values)  # claims nothing: 0 at the low end, inf at the high end
        at_least[start:start + size] = np.where((codes == -1) | unknown, 0.0, values)
        at_most[start:start + size] = np.where((codes == 1) | unknown, np.inf, values)
    return at_least, at_most


def multiplier_interval(
    baseline: Mapping[int, Sequence[tuple[float, float]]],
    recipe: Mapping[int, tuple[float, float]],
    *,
    clusters: Mapping[int, Hashable] | None = None,
    confidence: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
    alphas: Sequence[float] = (),
) -> Interval:
    """The compute multiplier of a recipe's mean ``(compute, accuracy)`` on the frontier of the baseline's means, and
    its bootstrap interval over seeds, or over the past runs they reuse.

    ``baseline`` maps each seed to its ``(compute, accuracy)`` at every baseline budget (in the same budget order for
    every seed); ``recipe`` maps each seed to its ``(compute, accuracy)``. Seeds present in both share their
    initialisation and data order, so they are resampled jointly (paired); the others are resampled within their own
    side. ``clusters`` maps each recipe seed to the past run it reuses: seeds that reuse one past run are not
    independent, so the past runs are resampled with replacement, then the seeds within each drawn one (a two-stage
    cluster bootstrap, Davison & Hinkley 1997, 3.8; paired seeds still together, the baseline's seeds alone on their
    own); where every seed has its own past run this is the plain resampling of seeds.

    The interval is the expanded percentile interval (Hesterberg 2015; :func:`_expanded_p`) over ``n`` units
    (:func:`interval_units`: the seeds, or the past runs when clustered), which holds its level where the plain
    percentile interval does not; ``tests/test_frontier.py`` measures both, and the clustered one against the
    unclustered, on simulated studies. The p-value of M = 1 is counted from the same resamples on the same scale
    (:func:`_counted_p`), so it is never below :func:`p_floor` ``(resamples, n)``: size ``resamples`` with
    :func:`resamples_for`. The ends are the resamples themselves at the count where the test rejects, so M = 1 lies
    outside the interval at a level exactly when the p-value rejects at it; ``alphas`` asks for the ends at further
    two-sided error levels (:meth:`Interval.at`). A resample above the frontier's best accuracy says only that M is at
    least its value, one below its lowest point that M is at most its value: the ends take the least they can claim
    (``hi = inf``, ``lo = 0``) rather than a cap. NaN where there are fewer than two units.
    """
    both, alone, own_only = _units(baseline, recipe)
    seeds = [*both, *alone]
    if not seeds or not recipe:
        raise ValueError('a multiplier needs at least one baseline seed and one recipe seed')
    point_base = np.asarray([baseline[s] for s in seeds], dtype=float)  # (seeds, budgets, 2)
    own = np.asarray([recipe[s] for s in [*both, *own_only]], dtype=float)  # (seeds, 2)
    order = np.argsort(point_base[:, :, 0].mean(axis=0))  # budgets in increasing compute
    point_base = point_base[:, order]
    value, code = _multipliers(point_base[:, :, 0].mean(axis=0)[None], point_base[:, :, 1].mean(axis=0)[None],
                               own[:, 0].mean()[None], own[:, 1].mean()[None])
    bound = {0: EXACT, 1: ABOVE, -1: BELOW}[int(code[0])]
    n = interval_units(baseline, recipe, clusters)
    if n < 2:
        return Interval(float(value[0]), math.nan, math.nan, bound, units=n)

    groups = None
    shared = _clusters_of(recipe, clusters) if clusters is not None else {}
    if shared and len(shared) < len(recipe):  # some seeds share a past run: resample past runs, then seeds within them
        index = {s: i for i, s in enumerate(both)} | {s: i for i, s in enumerate(own_only)}
        groups = [([index[s] for s in members if s in baseline], [index[s] for s in members if s not in baseline])
                  for members in shared.values()]
    at_least, at_most = _resample(point_base, own, len(both), groups, resamples, np.random.default_rng(seed))

    levels = [1 - confidence, *alphas]
    counts = [_far_count(alpha, resamples, n) for alpha in levels]
    kth = sorted({c for c in counts if c >= 0})
    low = np.partition(at_least, kth) if kth else at_least
    high = np.partition(at_most, [resamples - 1 - c for c in kth]) if kth else at_most
    ends = [(alpha, float(low[c]) if c >= 0 else 0.0, float(high[resamples - 1 - c]) if c >= 0 else math.inf)
            for alpha, c in zip(levels, counts, strict=True)]
    p_beats = _counted_p(int(np.count_nonzero(at_least <= 1)), resamples, n)  # a resample at exactly 1 counts
    p_loses = _counted_p(int(np.count_nonzero(at_most >= 1)), resamples, n)  # against the claim
    (_, lo, hi), *_ = ends
    return Interval(float(value[0]), lo, hi, bound, min(p_beats, p_loses), resamples, n, tuple(ends))


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

    @property
    def medians(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per budget, the median compute and the median final accuracy of its runs."""
        return (tuple(float(np.median([c for c, _ in rs])) for rs in self.runs),
                tuple(float(np.median([a for _, a in rs])) for rs in self.runs))


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
    interval: Interval  # the multiplier, its bound, its 95% interval over seeds or past runs (open ends), its p-value
    vs_frontier: float  # mean final accuracy minus the frontier's accuracy at the same compute; nan outside it
    median: Multiplier  # the recipe's median (compute, final accuracy) on the frontier of the baseline's medians

    @property
    def multiplier(self) -> float:
        return self.interval.value

    @property
    def bound(self) -> str:
        return self.interval.bound


def placeable(frontier: Frontier, runs: Sequence[RunResult], accounting: str) -> bool:
    """Whether :func:`place_runs` can place ``runs``: a usable frontier, and every run's compute in ``accounting``."""
    return bool(frontier.by_seed and runs) and all(math.isfinite(c) and c > 0 for c in (r.compute(accounting) for r in runs))


def place_runs(frontier: Frontier, runs: Sequence[RunResult], accounting: str, *,
               clusters: Mapping[int, Hashable] | None = None, resamples: int = RESAMPLES,
               alphas: Sequence[float] = ()) -> Placement | None:
    """A recipe's runs at one budget on ``frontier``, their compute counted as ``accounting`` (``sunk``, ``fresh`` or
    ``total``), with :func:`multiplier_interval` (``clusters``, ``resamples``, ``alphas`` as it takes them), and the
    multiplier of their medians; None where it is not :func:`placeable`."""
    if not placeable(frontier, runs, accounting):
        return None
    computes = [r.compute(accounting) for r in runs]
    finals = [r.final for r in runs]
    interval = multiplier_interval(frontier.by_seed, {r.seed: (c, r.final) for r, c in zip(runs, computes, strict=True)},
                                   clusters=clusters, resamples=resamples, alphas=alphas)
    compute = mean_or_nan(computes)
    at = accuracy_at_compute(frontier.compute, frontier.accuracy, compute)
    median = place(*frontier.medians, float(np.median(computes)), float(np.median(finals)))
    return Placement(compute, interval, mean_or_nan(finals) - at, median)
