"""The report's numbers and tables: per recipe and budget, the statistics over seeds, the placements on the frontier,
and their markdown tables and CSV.

Per recipe and budget, over its seeds: final- and best-evaluation test accuracy (mean, standard deviation with ddof
1, 95% t interval of the mean: ``scipy.stats.t.interval``; the median; how many runs collapsed, their final accuracy
within 10 points of chance, all of them kept in every statistic); the difference to the baseline at the same budget
with the 95% Welch interval (``scipy.stats.ttest_ind(equal_var=False)``); the compute multipliers against the
baseline's frontier (:mod:`recipes.study.frontier`) in the three accountings of :mod:`recipes.study.results`
(``sunk``, ``fresh``, ``total``), each with its 95% interval over seeds (or over the past runs they reuse), its
verdict (beats, loses, cannot tell), the interval at the level its verdict was tested at, the accuracy difference to
the frontier at equal compute, and the multiplier of the median run on the frontier of the baseline's medians (which
a collapsed run does not drag down); and the team's own metric, the time and FLOPs to first reach the baseline's mean
final accuracy of each budget.

Verdicts are adjusted for the number of comparisons a table makes (:func:`holm`, per accounting): a sweep's
``primary`` comparison is judged at the plain 95% level, every other one within its family. The p-values are counted
from the resamples, so every comparison of a family gets the resamples its first Holm threshold needs
(:func:`family_resamples`); :class:`Family` says what that came to.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from recipes.study.frontier import (
    RESAMPLES,
    Frontier,
    Placement,
    frontier_of,
    interval_units,
    mean_or_nan,
    place_runs,
    placeable,
    resamples_for,
)
from recipes.study.results import ACCOUNTINGS, Groups
from recipes.study.spec import budget_label

__all__ = [
    'ALPHA',
    'Difference',
    'Family',
    'Reach',
    'RecipeRow',
    'Summary',
    'VersusReference',
    'accuracy_table',
    'Table',
    'build_rows',
    'build_table',
    'csv_columns',
    'csv_records',
    'csv_text',
    'families',
    'family_resamples',
    'holm',
    'holm_levels',
    'plural',
    'multiplier_cell',
    'multiplier_text',
    'reach_table',
    'reference_differences',
    'reference_records_table',
    'reference_table',
    'reference_verdicts',
    'resampling_text',
    'summary_table',
    'summarize',
    'verdict',
    'verdict_cell',
    'welch',
]

LEVEL = 0.95
ALPHA = 1 - LEVEL  # the family-wise error rate of each table's verdicts
NAN = math.nan


def holm_levels(p_values: Sequence[float], alpha: float = ALPHA) -> list[float]:
    """The level Holm's step-down procedure tests each of ``p_values`` at, the family-wise error rate held at
    ``alpha``: sorted ascending, the i-th smallest (from 0) is tested at ``alpha / (m - i)`` and rejected while
    ``p <= alpha / (m - i)``; the first that is not stops the procedure, and it and every later one keep the level
    where it stopped, ``alpha / (m - k)`` with ``k`` rejections. A p-value is rejected exactly when it is at most its
    level, so an interval read at that level excludes the null exactly when the verdict rejects it. NaN p-values (no
    test) get NaN and do not count in ``m``."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(tested)
    levels = [NAN] * len(p_values)
    rejected = 0
    for rank, (p, i) in enumerate(tested):
        if p > alpha / (m - rank):
            break
        levels[i] = alpha / (m - rank)
        rejected += 1
    for _, i in tested[rejected:]:
        levels[i] = alpha / (m - rejected)
    return levels


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down procedure: which of ``p_values`` are rejected with the family-wise error rate held at
    ``alpha`` (:func:`holm_levels`). NaN p-values (no test) are never rejected and do not count in ``m``."""
    return [p <= level for p, level in zip(p_values, holm_levels(p_values, alpha), strict=True)]


@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation (ddof 1) and 95% t interval of the mean of n values; nan where n is too small."""

    n: int
    mean: float
    std: float
    low: float
    high: float


def summarize(values: Sequence[float]) -> Summary:
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return Summary(n, float(x[0]) if n else NAN, NAN, NAN, NAN)
    mean, std = float(x.mean()), float(x.std(ddof=1))
    if std == 0:
        return Summary(n, mean, std, mean, mean)
    low, high = stats.t.interval(LEVEL, n - 1, loc=mean, scale=std / math.sqrt(n))
    return Summary(n, mean, std, float(low), float(high))


@dataclass(frozen=True)
class Difference:
    """``mean(a) - mean(b)`` with its 95% Welch interval, degrees of freedom and two-sided p-value."""

    diff: float
    low: float
    high: float
    df: float
    p_value: float = NAN


def welch(a: Sequence[float], b: Sequence[float]) -> Difference:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else NAN
    if len(x) < 2 or len(y) < 2:
        return Difference(diff, NAN, NAN, NAN)
    if x.var() == 0 and y.var() == 0:
        return Difference(diff, diff, diff, math.inf, 0.0 if diff else 1.0)
    test = stats.ttest_ind(x, y, equal_var=False)
    interval = test.confidence_interval(LEVEL)
    return Difference(diff, float(interval.low), float(interval.high), float(test.df), float(test.pvalue))


@dataclass(frozen=True)
class Reach:
    """Over a group's runs: mean time and FLOPs spent to first reach a target accuracy, among those that do."""

    target: float
    time: float
    flops: float
    reached: int


@dataclass(frozen=True)
class RecipeRow:
    recipe: str
    budget: float
    final: Summary
    median: float  # of the final accuracies
    collapsed: int  # runs whose final accuracy lies within 10 points of chance (kept in every statistic)
    best: Summary
    final_vs_baseline: Difference | None  # against the baseline at the same budget; None on the baseline's rows
    best_vs_baseline: Difference | None
    wall_seconds: float  # mean over runs
    spent: float  # mean FLOPs; nan unless every run has compute.json
    reused: float
    placements: dict[str, Placement | None]  # per accounting; None on the baseline's rows or without compute
    reach: tuple[Reach, ...]  # one per target: the baseline's mean final accuracy at each of its budgets
    verdicts: dict[str, str] = field(default_factory=dict)  # per accounting: beats, loses or cannot tell (Holm)
    primary: bool = False  # the sweep's primary comparison: judged at the plain level, outside the family
    # per accounting: (level, lo, hi), the interval at the level its verdict was tested at (Holm's, in its family)
    adjusted: dict[str, tuple[float, float, float]] = field(default_factory=dict)


def judge(rows: list[RecipeRow], baseline: str) -> list[RecipeRow]:
    """``rows`` with each recipe's verdict per accounting, and its interval at the level the verdict was tested at:
    the primary row at the plain level, the others Holm-adjusted within their accounting's family (every non-baseline
    row with a placement). ``beats`` or ``loses`` where the test of M = 1 is rejected (its 95% interval, and its
    interval at the verdict's level, then lie above or below 1), else ``cannot tell``; their placements must hold
    their intervals at every level Holm may test them at (:func:`build_rows` computes them so)."""
    verdicts = {id(r): dict.fromkeys(ACCOUNTINGS, '') for r in rows}
    adjusted: dict[int, dict[str, tuple[float, float, float]]] = {id(r): {} for r in rows}
    for accounting in ACCOUNTINGS:
        placed = [r for r in rows if r.recipe != baseline and r.placements[accounting] is not None]
        for family in ([r for r in placed if not r.primary], [r for r in placed if r.primary]):
            intervals = [r.placements[accounting].interval for r in family]  # type: ignore[union-attr]
            p_values = [interval.p_value for interval in intervals]
            levels = holm_levels(p_values)
            for r, interval, p, level in zip(family, intervals, p_values, levels, strict=True):
                verdicts[id(r)][accounting] = ('cannot tell' if not p <= level else
                                               'beats' if interval.lo > 1 else 'loses')
                adjusted[id(r)][accounting] = (1 - level, *interval.at(level))
    return [replace(r, verdicts=verdicts[id(r)], adjusted=adjusted[id(r)]) for r in rows]


def family_size(rows: Sequence[RecipeRow], baseline: str) -> int:
    """How many comparisons each accounting's verdicts are adjusted for."""
    return sum(1 for r in rows if r.recipe != baseline and not r.primary and r.placements['sunk'] is not None)


def family_resamples(size: int, units: Sequence[int]) -> int:
    """The resamples every comparison of a Holm family of ``size`` gets, its comparisons having ``units`` units each
    (seeds, or past runs): the most any of them needs for a p-value below Holm's first threshold
    (:func:`recipes.study.frontier.resamples_for`), or, where none up to the cap gets there (too few units), for one
    below the plain level, so that its 95% interval can be read; at least :data:`RESAMPLES`."""
    return max((resamples_for(size, n) or resamples_for(1, n) or RESAMPLES for n in units if n >= 2), default=RESAMPLES)


@dataclass(frozen=True)
class Family:
    """What a family of comparisons rests on: ``comparisons`` (m), the ``resamples`` each gets, the fewest
    ``units`` any has, the smallest p-value that one can count (``p_floor``; the others can count less) and Holm's
    first threshold (alpha / m): where the floor lies above it, no comparison with that few units can be rejected."""

    comparisons: int
    resamples: int
    units: int
    p_floor: float
    threshold: float


def families(rows: Sequence[RecipeRow], baseline: str, primary: bool = False) -> dict[str, Family]:
    """Per accounting, the family its verdicts are adjusted within (``primary``: the primary comparison's, judged
    alone): its comparisons with an interval (those Holm counts), where it has one."""
    out = {}
    for accounting in ACCOUNTINGS:
        intervals = [r.placements[accounting].interval for r in rows  # type: ignore[union-attr]
                     if r.recipe != baseline and r.primary == primary and r.placements[accounting] is not None]
        tested = [i for i in intervals if not math.isnan(i.p_value)]  # Holm counts these
        if tested:
            fewest = min(tested, key=lambda i: i.units)
            out[accounting] = Family(len(tested), fewest.resamples, fewest.units, fewest.p_floor, ALPHA / len(tested))
    return out


def resampling_text(rows: Sequence[RecipeRow], baseline: str) -> str:
    """A sentence per family on its resamples and the smallest p-value they count, against Holm's first threshold."""
    out = []
    for primary in (False, True):
        grouped: dict[Family, list[str]] = {}
        for accounting, family in families(rows, baseline, primary).items():
            grouped.setdefault(family, []).append(accounting)
        for family, accountings in grouped.items():
            what = 'The primary comparison' if primary else (
                f'The {plural(family.comparisons, "comparison")} in {", ".join(accountings)}')
            where = 'below' if family.p_floor < family.threshold else 'above'
            out.append(
                f'{what}: {family.resamples:,} resamples each; the smallest p-value they can count with '
                f'{family.units} units (seeds, or the past runs they reuse) is {family.p_floor:.2g}, {where} Holm\'s '
                f'first threshold {family.threshold:.2g}'
                + ('.' if where == 'below' else ', so none with that few can be rejected.'))
    return ' '.join(out)


def plural(n: int, noun: str) -> str:
    return f'{n} {noun}{"" if n == 1 else "s"}'


def build_rows(baseline: str, groups: Groups, unit: str, primary: tuple[str, float] | None = None, *,
               clusters: Mapping[str, Mapping[int, Hashable]] | None = None) -> tuple[Frontier, list[RecipeRow]]:
    """The rows of every recipe and budget with finished runs, placed on ``baseline``'s frontier and judged
    (:func:`judge`); ``primary`` is the sweep's primary comparison, ``(recipe, budget)``; ``clusters`` maps a recipe
    to the past run each of its seeds reuses (its intervals then resample past runs). Each family's comparisons get
    :func:`family_resamples` resamples, and their intervals at every level Holm may test them at."""
    clusters = clusters or {}
    frontier = frontier_of(baseline, groups)
    targets = [mean_or_nan([r.final for r in rs]) for (name, _), rs in groups.items() if name == baseline and rs]
    sizing: dict[tuple[str, bool], tuple[int, tuple[float, ...]]] = {}  # (accounting, primary): resamples, alphas
    for accounting in ACCOUNTINGS:
        for is_primary in (False, True):
            family = [(name, rs) for (name, budget), rs in groups.items() if name != baseline and rs
                      and ((name, budget) == primary) == is_primary and placeable(frontier, rs, accounting)]
            units = [interval_units(frontier.by_seed, [r.seed for r in rs], clusters.get(name)) for name, rs in family]
            sizing[accounting, is_primary] = (family_resamples(len(family), units),
                                              tuple(ALPHA / k for k in range(1, len(family) + 1)))
    rows = []
    for (name, budget), rs in groups.items():
        if not rs:
            continue
        base = groups.get((baseline, budget), [])
        finals, bests = [r.final for r in rs], [r.best for r in rs]
        reach = []
        for target in targets:
            reached = [t for t in (r.reach(target, unit) for r in rs) if t is not None]
            reach.append(Reach(target, mean_or_nan([t for t, _ in reached]), mean_or_nan([f for _, f in reached]), len(reached)))
        rows.append(RecipeRow(
            recipe=name,
            budget=budget,
            final=summarize(finals),
            median=float(np.median(finals)),
            collapsed=sum(r.collapsed for r in rs),
            best=summarize(bests),
            final_vs_baseline=None if name == baseline else welch(finals, [r.final for r in base]),
            best_vs_baseline=None if name == baseline else welch(bests, [r.best for r in base]),
            wall_seconds=mean_or_nan([r.wall_seconds for r in rs]),
            spent=mean_or_nan([r.spent for r in rs]),
            reused=mean_or_nan([r.reused for r in rs]),
            placements={a: None if name == baseline else place_runs(
                frontier, rs, a, clusters=clusters.get(name), resamples=sizing[a, (name, budget) == primary][0],
                alphas=sizing[a, (name, budget) == primary][1]) for a in ACCOUNTINGS},
            reach=tuple(reach),
            primary=(name, budget) == primary,
        ))
    return frontier, judge(rows, baseline)


def _pct(x: float) -> str:
    return '—' if math.isnan(x) else f'{100 * x:.2f}'


def _signed(x: float) -> str:
    return '—' if math.isnan(x) else f'{100 * x:+.2f}'


def _interval(low: float, high: float, fmt=_pct) -> str:
    return '—' if math.isnan(low) else f'[{fmt(low)}, {fmt(high)}]'


def _flops(x: float) -> str:
    return '—' if math.isnan(x) else f'{x:.2e}'


def _times(x: float) -> str:
    return f'{x:.2f}'


def interval_text(lo: float, hi: float) -> str:
    """``[1.08, 1.51]``; ``[≥ 1.54, one-sided]`` where the frontier cannot price the upper end (above its best),
    ``[≤ 0.91, one-sided]`` where it cannot price the lower one (below its lowest point), ``[unbounded]`` where
    neither end can be read (too few units for the level: :func:`recipes.study.frontier.p_floor`)."""
    if math.isnan(lo):
        return '[—]'
    if lo == 0 and math.isinf(hi):
        return '[unbounded]'
    if math.isinf(hi):
        return f'[≥ {_times(lo)}, one-sided]'
    if lo == 0:
        return f'[≤ {_times(hi)}, one-sided]'
    return f'[{_times(lo)}, {_times(hi)}]'


def multiplier_cell(value: float, lo: float, hi: float, bound: str) -> str:
    """``2.83 [2.10, 3.41]``; ``> 4.00 [≥ 3.10, one-sided]`` above the frontier's best accuracy (the value is a lower
    bound), ``< 1.00 [...]`` below its lowest point (an upper bound)."""
    return f'{f"{bound} " if bound else ""}{_times(value)} {interval_text(lo, hi)}'


def multiplier_text(p: Placement | None) -> str:
    """:func:`multiplier_cell` of a placement; ``—`` for none."""
    return '—' if p is None else multiplier_cell(p.multiplier, p.interval.lo, p.interval.hi, p.bound)


def _diff(d: Difference | None) -> str:
    return '— (baseline)' if d is None else f'{_signed(d.diff)} {_interval(d.low, d.high, _signed)}'


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    out = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return '\n'.join(out + ['| ' + ' | '.join(cells) + ' |' for cells in lines])


def _number(text: str) -> float:
    return float(text) if text else NAN


def level_text(level: float) -> str:
    """A confidence level in %: ``95%``, ``98.75%``, ``99.17%``."""
    return f'{100 * level:.4g}%'


def verdict_cell(row: Mapping[str, str], a: str, adjusted: bool, prefix: str = '', label_plain: bool = False) -> str:
    """``0.94 [0.65, 1.28] (99.58%): cannot tell``: a row's multiplier in accounting ``a`` (its columns named with
    ``prefix``, the transfer table's ``digits_``) with its interval at the level its verdict was tested at
    (``adjusted``: the ``_adj_`` columns and their level), or its 95% interval, labelled ``(95%)`` with
    ``label_plain`` (where no header says so); then the verdict."""
    key = f'{prefix}multiplier_{a}'
    ends = ('_adj_lo', '_adj_hi') if adjusted else ('_lo', '_hi')
    cell = multiplier_cell(*(_number(row[f'{key}{end}']) for end in ('', *ends)), row[f'{key}_bound'])
    if adjusted and row[f'{key}_adj_level']:
        cell += f' ({level_text(_number(row[f"{key}_adj_level"]))})'
    elif label_plain:
        cell += ' (95%)'
    return f'{cell}: {row[f"{prefix}verdict_{a}"]}'


def summary_table(records: Sequence[Mapping[str, str]]) -> str:
    """The answer first, from the rows of ``results.csv`` (:func:`csv_text`), so that the report and the results page
    built from a committed CSV print the same table: per recipe and budget, the final accuracy (mean ± sd, median,
    collapsed runs), the compute multiplier in each accounting with its interval at the level its verdict was tested
    at (Holm's, in its family; the CSV keeps the 95% one too) and the verdict, and the multiplier of the median runs
    (sunk). A CSV written before the adjusted intervals (``multiplier_sunk_adj_lo``) prints its 95% intervals, so
    headed."""
    adjusted = bool(records) and 'multiplier_sunk_adj_lo' in records[0]

    def judged(row: Mapping[str, str], a: str) -> str:
        if not row[f'multiplier_{a}']:
            return '—'
        return verdict_cell(row, a, adjusted) + (' (primary)' if row['primary'] else '')

    def median(row: Mapping[str, str]) -> list[str]:
        if not adjusted:
            return []
        value, bound = row['multiplier_sunk_median'], row['multiplier_sunk_median_bound']
        return [f'{f"{bound} " if bound else ""}{_times(_number(value))}' if value else '—']

    lines = [[
        row['recipe'], row['budget'], row['n'], f'{_pct(_number(row["final_mean"]))} ± {_pct(_number(row["final_std"]))}',
        _pct(_number(row['final_median'])), f'{row["collapsed"]} of {row["n"]}', *(judged(row, a) for a in ACCOUNTINGS),
        *median(row), _signed(_number(row['acc_vs_frontier_sunk'])) if row['multiplier_sunk'] else '—',
    ] for row in records]
    header = [
        'recipe', 'budget', 'n', 'final acc % (mean ± sd)', 'median %', 'collapsed',
        *(f'M {a} [{"CI at its Holm level" if adjusted else "95%"}]: verdict' for a in ACCOUNTINGS),
        *(['M sunk of medians'] if adjusted else []), 'Δ frontier pp (sunk)',
    ]
    return _table(header, lines)


def csv_records(text: str) -> list[dict[str, str]]:
    """The rows of a ``results.csv`` text."""
    return list(csv.DictReader(io.StringIO(text)))


def verdict(d: Difference, rejected: bool | None = None) -> str:
    """``beats`` or ``loses`` where the difference is significant, else ``cannot tell``: where the 95% interval
    excludes 0, or, given ``rejected`` (a Holm decision on its p-value), where it was rejected."""
    if math.isnan(d.low):
        return 'cannot tell'
    significant = (d.low > 0 or d.high < 0) if rejected is None else rejected
    return 'cannot tell' if not significant else 'beats' if d.diff > 0 else 'loses'


@dataclass(frozen=True)
class VersusReference:
    """A recipe at a budget against its reference recipe (a reuse baseline) at that budget."""

    recipe: str
    budget: float
    n: int
    reference: str
    difference: Difference  # final accuracy minus the reference's


def reference_differences(references: Mapping[str, str], baseline: str, groups: Groups) -> list[VersusReference]:
    """Every recipe that has a reference (``references``: recipe -> its reference) against it, at each budget where
    both have finished runs; neither the baseline nor a reference against itself."""
    out = []
    for (name, budget), rs in groups.items():
        reference = references.get(name)
        ref = groups.get((reference, budget), []) if reference else []
        if name in (reference, baseline) or not rs or not ref:
            continue
        out.append(VersusReference(name, budget, len(rs), reference, welch([r.final for r in rs], [r.final for r in ref])))
    return out


def reference_verdicts(differences: Sequence[VersusReference]) -> list[str]:
    """Each difference's verdict, Holm-adjusted over all of them (one table, one family)."""
    rejected = holm([v.difference.p_value for v in differences])
    return [verdict(v.difference, reject) for v, reject in zip(differences, rejected, strict=True)]


REFERENCE_HEADER = ['recipe', 'budget', 'n', 'reference', 'Δ final pp vs reference (95% CI)', 'verdict (Holm)']


def reference_table(differences: Sequence[VersusReference]) -> str:
    """The differences with their verdicts, Holm-adjusted over the table's rows."""
    lines = [[v.recipe, budget_label(v.budget), str(v.n), f'`{v.reference}`', _diff(v.difference), judged]
             for v, judged in zip(differences, reference_verdicts(differences), strict=True)]
    return _table(REFERENCE_HEADER, lines)


def reference_records_table(records: Sequence[Mapping[str, str]]) -> str:
    """:func:`reference_table` from the rows of ``results.csv`` that have a reference, or '' where none has."""
    lines = [[row['recipe'], row['budget'], row['n'], f'`{row["reference"]}`',
              _diff(Difference(*(_number(row[f'reference_diff{end}']) for end in ('', '_low', '_high')), 0)),
              row['reference_verdict']] for row in records if row.get('reference')]
    return _table(REFERENCE_HEADER, lines) if lines else ''


def accuracy_table(rows: Sequence[RecipeRow]) -> str:
    lines = [
        [
            r.recipe, budget_label(r.budget), str(r.final.n),
            f'{_pct(r.final.mean)} ± {_pct(r.final.std)}', _interval(r.final.low, r.final.high),
            f'{_pct(r.best.mean)} ± {_pct(r.best.std)}', _interval(r.best.low, r.best.high),
            _diff(r.final_vs_baseline), _diff(r.best_vs_baseline),
            f'{r.wall_seconds:.0f}', _flops(r.spent), _flops(r.reused),
        ]
        for r in rows
    ]
    header = [
        'recipe', 'budget', 'n', 'final acc %', 'final 95% CI', 'best acc %', 'best 95% CI',
        'Δ final pp vs baseline, same budget (95% CI)', 'Δ best pp (95% CI)', 'wall s', 'FLOPs spent', 'FLOPs reused',
    ]
    return _table(header, lines)


def reach_table(rows: Sequence[RecipeRow], baseline_budgets: Sequence[float], unit: str) -> str:
    def cell(x: Reach, n: int) -> str:
        if not x.reached:
            return f'never (0/{n})'
        return f'{x.time:.1f}, {_flops(x.flops)} ({x.reached}/{n})'

    header = ['recipe', 'budget'] + [
        f'to {_pct(t.target)}% (baseline b{budget_label(b)})' for t, b in zip(rows[0].reach, baseline_budgets, strict=True)
    ] if rows and rows[0].reach else ['recipe', 'budget']
    return _table(header, [[r.recipe, budget_label(r.budget), *(cell(x, r.final.n) for x in r.reach)] for r in rows])


def csv_columns(baseline_budgets: Sequence[float]) -> list[str]:
    placement = [
        f'{name}{suffix}' for a in ACCOUNTINGS
        for name, suffix in ((f'multiplier_{a}', ''), (f'multiplier_{a}', '_lo'), (f'multiplier_{a}', '_hi'),
                             (f'multiplier_{a}', '_bound'), (f'multiplier_{a}', '_p'), (f'verdict_{a}', ''),
                             (f'compute_{a}', ''), (f'acc_vs_frontier_{a}', ''), (f'multiplier_{a}', '_adj_lo'),
                             (f'multiplier_{a}', '_adj_hi'), (f'multiplier_{a}', '_adj_level'),
                             (f'multiplier_{a}', '_median'), (f'multiplier_{a}', '_median_bound'))
    ]
    reach = [
        f'reach_b{budget_label(b)}_{what}' for b in baseline_budgets for what in ('target', 'time', 'flops', 'reached')
    ]
    return [
        'recipe', 'budget', 'n', 'primary', 'collapsed', 'final_median',
        'final_mean', 'final_std', 'final_ci_low', 'final_ci_high',
        'best_mean', 'best_std', 'best_ci_low', 'best_ci_high',
        'final_diff', 'final_diff_low', 'final_diff_high', 'best_diff', 'best_diff_low', 'best_diff_high',
        'wall_seconds_mean', 'compute_spent_mean', 'compute_reused_mean', *placement, 'time_unit', *reach,
        'reference', 'reference_diff', 'reference_diff_low', 'reference_diff_high', 'reference_p_value',
        'reference_verdict',
    ]


@dataclass(frozen=True)
class Table:
    """What a report's tables rest on: the judged rows, the baseline's budgets, the comparisons with references, and
    ``results.csv`` written from them."""

    rows: list[RecipeRow]
    baseline_budgets: list[float]
    differences: list[VersusReference]
    csv: str


def build_table(baseline: str, groups: Groups, unit: str, primary: tuple[str, float] | None,
                references: Mapping[str, str], clusters: Mapping[str, Mapping[int, Hashable]] | None = None) -> Table:
    """:func:`build_rows`, :func:`reference_differences` and :func:`csv_text` over ``groups``: the report writes it
    from a results folder, :mod:`recipes.study.recheck` from a published runs CSV."""
    _, rows = build_rows(baseline, groups, unit, primary, clusters=clusters)
    baseline_budgets = [b for (name, b), rs in groups.items() if name == baseline and rs]
    differences = reference_differences(references, baseline, groups)
    return Table(rows, baseline_budgets, differences, csv_text(rows, baseline_budgets, unit, differences))


def csv_text(
    rows: Sequence[RecipeRow], baseline_budgets: Sequence[float], unit: str,
    vs_reference: Sequence[VersusReference] = (),
) -> str:
    """One row per recipe and budget, accuracies as fractions; empty cells where a value is undefined. Per accounting,
    ``multiplier_{a}_lo`` and ``_hi`` are the 95% interval, ``_adj_lo``, ``_adj_hi`` and ``_adj_level`` the interval
    at the level its verdict was tested at (Holm's, in its family: it excludes 1 exactly when the verdict is beats or
    loses), ``_median`` and ``_median_bound`` the multiplier of the median runs. The ``reference*`` columns: the
    difference to the recipe's reference recipe, where it has one, with its p-value and its verdict Holm-adjusted
    over all of them, as :func:`reference_table` has it."""
    judged = dict(zip(((v.recipe, v.budget) for v in vs_reference), reference_verdicts(vs_reference), strict=True))
    by_row = {(v.recipe, v.budget): v for v in vs_reference}

    def cell(x: float) -> str:
        return '' if math.isnan(x) else repr(x)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(csv_columns(baseline_budgets))
    for r in rows:
        diffs = []
        for d in (r.final_vs_baseline, r.best_vs_baseline):
            diffs += ['', '', ''] if d is None else [cell(d.diff), cell(d.low), cell(d.high)]
        placements = []
        for a in ACCOUNTINGS:
            p = r.placements[a]
            level, lo, hi = r.adjusted.get(a, (NAN, NAN, NAN))
            placements += [''] * 13 if p is None else [
                cell(p.multiplier), cell(p.interval.lo), cell(p.interval.hi), p.bound, cell(p.interval.p_value),
                r.verdicts.get(a, ''), cell(p.compute), cell(p.vs_frontier), cell(lo), cell(hi), cell(level),
                cell(p.median.value), p.median.bound,
            ]
        reach = [x for t in r.reach for x in (cell(t.target), cell(t.time), cell(t.flops), t.reached)]
        ref = by_row.get((r.recipe, r.budget))
        writer.writerow([
            r.recipe, budget_label(r.budget), r.final.n, 'yes' if r.primary else '', r.collapsed, cell(r.median),
            *(cell(x) for s in (r.final, r.best) for x in (s.mean, s.std, s.low, s.high)),
            *diffs, cell(r.wall_seconds), cell(r.spent), cell(r.reused), *placements, unit, *reach,
            *([''] * 6 if ref is None else [
                ref.reference, cell(ref.difference.diff), cell(ref.difference.low), cell(ref.difference.high),
                cell(ref.difference.p_value), judged[r.recipe, r.budget]]),
        ])
    return buf.getvalue()
