"""The report's numbers and tables: per recipe and budget, the statistics over seeds, the placements on the frontier,
and their markdown tables and CSV.

Per recipe and budget, over its seeds: final- and best-evaluation test accuracy (mean, standard deviation with ddof
1, 95% t interval of the mean: ``scipy.stats.t.interval``); the difference to the baseline at the same budget with
the 95% Welch interval (``scipy.stats.ttest_ind(equal_var=False)``); the compute multipliers against the baseline's
frontier (:mod:`recipes.study.frontier`), counting compute two ways: ``sunk`` (the run's own FLOPs; the past run is
already paid for) and ``total`` (its own plus the FLOPs it reuses), each with a 95% bootstrap interval over seeds,
and the accuracy difference to the frontier at equal compute; and the team's own metric, the time and FLOPs to
first reach the baseline's mean final accuracy of each budget.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from recipes.study.frontier import Frontier, Placement, frontier_of, mean_or_nan, place_runs
from recipes.study.results import ACCOUNTINGS, Groups
from recipes.study.spec import budget_label

__all__ = [
    'Difference',
    'Reach',
    'RecipeRow',
    'Summary',
    'accuracy_table',
    'build_rows',
    'csv_columns',
    'csv_text',
    'multiplier_table',
    'multiplier_text',
    'reach_table',
    'reference_differences',
    'reference_table',
    'summarize',
    'verdict',
    'welch',
]

LEVEL = 0.95
NAN = math.nan


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
    """``mean(a) - mean(b)`` with its 95% Welch interval and degrees of freedom."""

    diff: float
    low: float
    high: float
    df: float


def welch(a: Sequence[float], b: Sequence[float]) -> Difference:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else NAN
    if len(x) < 2 or len(y) < 2:
        return Difference(diff, NAN, NAN, NAN)
    if x.var() == 0 and y.var() == 0:
        return Difference(diff, diff, diff, math.inf)
    test = stats.ttest_ind(x, y, equal_var=False)
    interval = test.confidence_interval(LEVEL)
    return Difference(diff, float(interval.low), float(interval.high), float(test.df))


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
    best: Summary
    final_vs_baseline: Difference | None  # against the baseline at the same budget; None on the baseline's rows
    best_vs_baseline: Difference | None
    wall_seconds: float  # mean over runs
    spent: float  # mean FLOPs; nan unless every run has compute.json
    reused: float
    placements: dict[str, Placement | None]  # per accounting; None on the baseline's rows or without compute
    reach: tuple[Reach, ...]  # one per target: the baseline's mean final accuracy at each of its budgets


def build_rows(baseline: str, groups: Groups, unit: str) -> tuple[Frontier, list[RecipeRow]]:
    frontier = frontier_of(baseline, groups)
    targets = [mean_or_nan([r.final for r in rs]) for (name, _), rs in groups.items() if name == baseline and rs]
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
            best=summarize(bests),
            final_vs_baseline=None if name == baseline else welch(finals, [r.final for r in base]),
            best_vs_baseline=None if name == baseline else welch(bests, [r.best for r in base]),
            wall_seconds=mean_or_nan([r.wall_seconds for r in rs]),
            spent=mean_or_nan([r.spent for r in rs]),
            reused=mean_or_nan([r.reused for r in rs]),
            placements={a: None if name == baseline else place_runs(frontier, rs, a) for a in ACCOUNTINGS},
            reach=tuple(reach),
        ))
    return frontier, rows


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


def multiplier_text(p: Placement | None) -> str:
    """``2.83 [2.10, 3.41]``; ``> 4.00 [...]`` above the frontier's best accuracy, ``< 1.00 [...]`` below its lowest."""
    if p is None:
        return '—'
    bound = f'{p.bound} ' if p.bound else ''
    return f'{bound}{_times(p.multiplier)} {_interval(p.low, p.high, _times)}'


def _diff(d: Difference | None) -> str:
    return '— (baseline)' if d is None else f'{_signed(d.diff)} {_interval(d.low, d.high, _signed)}'


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    out = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return '\n'.join(out + ['| ' + ' | '.join(cells) + ' |' for cells in lines])


def multiplier_table(rows: Sequence[RecipeRow]) -> str:
    """The answer first: per recipe and budget, the compute multipliers and the accuracy gap at equal compute."""
    lines = []
    for r in rows:
        sunk, total = r.placements['sunk'], r.placements['total']
        lines.append([
            r.recipe, budget_label(r.budget), str(r.final.n), f'{_pct(r.final.mean)} ± {_pct(r.final.std)}',
            multiplier_text(sunk), multiplier_text(total),
            '—' if sunk is None else _signed(sunk.vs_frontier), '—' if total is None else _signed(total.vs_frontier),
        ])
    header = [
        'recipe', 'budget', 'n', 'final acc %', 'M sunk [95%]', 'M total [95%]', 'Δ frontier pp (sunk)',
        'Δ frontier pp (total)',
    ]
    return _table(header, lines)


def verdict(d: Difference) -> str:
    """``beats`` or ``loses`` where the 95% interval of a difference excludes 0, else ``cannot tell``."""
    if math.isnan(d.low):
        return 'cannot tell'
    return 'beats' if d.low > 0 else 'loses' if d.high < 0 else 'cannot tell'


def reference_differences(reference: str, baseline: str, groups: Groups) -> list[tuple[str, float, int, Difference]]:
    """``(recipe, budget, n, final accuracy minus the reference's at that budget)`` for every recipe but the two
    baselines, at each budget where the reference has finished runs."""
    out = []
    for (name, budget), rs in groups.items():
        ref = groups.get((reference, budget), [])
        if name in (reference, baseline) or not rs or not ref:
            continue
        out.append((name, budget, len(rs), welch([r.final for r in rs], [r.final for r in ref])))
    return out


def reference_table(differences: Sequence[tuple[str, float, int, Difference]]) -> str:
    lines = [[name, budget_label(b), str(n), _diff(d), verdict(d)] for name, b, n, d in differences]
    return _table(['recipe', 'budget', 'n', 'Δ final pp vs reference (95% CI)', 'verdict'], lines)


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
                             (f'multiplier_{a}', '_bound'), (f'compute_{a}', ''), (f'acc_vs_frontier_{a}', ''))
    ]
    reach = [
        f'reach_b{budget_label(b)}_{what}' for b in baseline_budgets for what in ('target', 'time', 'flops', 'reached')
    ]
    return [
        'recipe', 'budget', 'n',
        'final_mean', 'final_std', 'final_ci_low', 'final_ci_high',
        'best_mean', 'best_std', 'best_ci_low', 'best_ci_high',
        'final_diff', 'final_diff_low', 'final_diff_high', 'best_diff', 'best_diff_low', 'best_diff_high',
        'wall_seconds_mean', 'compute_spent_mean', 'compute_reused_mean', *placement, 'time_unit', *reach,
        'reference_diff', 'reference_diff_low', 'reference_diff_high',
    ]


def csv_text(
    rows: Sequence[RecipeRow], baseline_budgets: Sequence[float], unit: str,
    vs_reference: dict[tuple[str, float], Difference] | None = None,
) -> str:
    """One row per recipe and budget, accuracies as fractions; empty cells where a value is undefined (the
    ``reference_diff`` columns: the difference to the sweep's reference recipe, where it has one)."""

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
            placements += [''] * 6 if p is None else [
                cell(p.multiplier), cell(p.low), cell(p.high), p.bound, cell(p.compute), cell(p.vs_frontier),
            ]
        reach = [x for t in r.reach for x in (cell(t.target), cell(t.time), cell(t.flops), t.reached)]
        ref = (vs_reference or {}).get((r.recipe, r.budget))
        writer.writerow([
            r.recipe, budget_label(r.budget), r.final.n,
            *(cell(x) for s in (r.final, r.best) for x in (s.mean, s.std, s.low, s.high)),
            *diffs, cell(r.wall_seconds), cell(r.spent), cell(r.reused), *placements, unit, *reach,
            *(['', '', ''] if ref is None else [cell(ref.diff), cell(ref.low), cell(ref.high)]),
        ])
    return buf.getvalue()
