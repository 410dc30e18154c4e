"""The answer of a study: per recipe and budget, where its runs land against the fresh-compute frontier.

Reads a results folder of :mod:`recipes.study.sweep` (local or ``s3://``): its ``sweep.yaml`` for the recipes,
budgets, seeds and baseline, and each finished run folder's ``metrics.json`` and ``compute.json``. Runs that have
not finished are listed under the tables. Writes ``results.md``, ``results.csv``, ``frontier.png`` and
``accuracy_vs_epoch.png``.

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
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy import stats

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.core.run_files import COMPUTE_FILE, read_compute, read_history
from recipes.study.frontier import (
    ABOVE,
    BELOW,
    accuracy_at_compute,
    bootstrap_multiplier,
    compute_multiplier,
    fit_frontier,
    place,
)
from recipes.study.runner import RunState, run_state
from recipes.study.spec import budget_label, read_manifest, run_folder

__all__ = [
    'ACCOUNTINGS',
    'Difference',
    'Placement',
    'RecipeRow',
    'Report',
    'RunResult',
    'Summary',
    'accuracy_at_compute',
    'collect',
    'compute_multiplier',
    'default_out',
    'reference_differences',
    'summarize',
    'verdict',
    'welch',
    'write_report',
]

LEVEL = 0.95
PLOTS = ('frontier.png', 'accuracy_vs_epoch.png')
ACCOUNTINGS = ('sunk', 'total')
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
class RunResult:
    """One finished run: its evaluations, wall time and, where recorded, the compute it spent and reused."""

    recipe: str
    budget: float
    seed: int
    epochs: tuple[int, ...]
    batches: tuple[int, ...]
    accuracies: tuple[float, ...]
    wall_seconds: float
    spent: float  # FLOPs; nan without compute.json
    reused: float

    @property
    def final(self) -> float:
        return self.accuracies[-1]

    @property
    def best(self) -> float:
        return max(self.accuracies)

    def compute(self, accounting: str) -> float:
        """FLOPs of the run: ``sunk`` counts what it spent, ``total`` adds what it reused."""
        return self.spent if accounting == 'sunk' else self.spent + self.reused

    def times(self, unit: str) -> tuple[int, ...]:
        return self.epochs if unit == 'epoch' else self.batches

    def reach(self, threshold: float, unit: str) -> tuple[float, float] | None:
        """``(time, FLOPs spent)`` at the first evaluation at or above ``threshold``; None if none is.

        The FLOPs are the run's, pro rata by batches (the ledger records the run's total).
        """
        for time, batch, accuracy in zip(self.times(unit), self.batches, self.accuracies, strict=True):
            if accuracy >= threshold:
                return float(time), self.spent * batch / self.batches[-1]
        return None


Groups = dict[tuple[str, float], list[RunResult]]  # (recipe, budget) -> its finished runs, in sweep order


def _read_run(recipe: str, budget: float, seed: int, folder: str, history: dict) -> RunResult:
    evals = history['eval']
    spent = reused = NAN
    compute = read_compute(folder)
    if compute is not None:
        spent, reused = float(compute['spent_total']), float(compute['reused_total'])
    return RunResult(
        recipe=recipe,
        budget=budget,
        seed=seed,
        epochs=tuple(int(e['epoch']) for e in evals),
        batches=tuple(int(e['batch']) for e in evals),
        accuracies=tuple(float(e['accuracy']) for e in evals),
        wall_seconds=float(history['wall_seconds']),
        spent=spent,
        reused=reused,
    )


def collect(results: str) -> tuple[str, Groups, list[str]]:
    """``(baseline, finished runs per recipe and budget, 'recipe bB seed S (why)' for each run left out)``."""
    sweep = read_manifest(results)
    groups: Groups = {}
    left_out: list[str] = []
    for name in sweep.recipes:
        for budget in sweep.budgets_of(name):
            runs = groups.setdefault((name, budget), [])
            for seed in sweep.seeds:
                folder = run_folder(results, name, budget, seed)
                where = f'{name} b{budget_label(budget)} seed {seed}'
                state = run_state(folder)
                if state is not RunState.FINISHED:
                    left_out.append(f'{where} ({"not started" if state is RunState.NEW else "not finished"})')
                    continue
                history = read_history(folder)
                if not history.get('eval'):
                    left_out.append(f'{where} (no evaluation)')
                    continue
                runs.append(_read_run(name, budget, seed, folder, history))
    if not any(groups.values()):
        raise UsageError(f'no finished runs in {results}: run launch/sweep.py on its sweep YAML first')
    return sweep.baseline, groups, left_out


def time_unit(runs: Sequence[RunResult]) -> str:
    """'epoch' when every run evaluates at the ends of epochs (batch = epoch x batches per epoch), else 'batch'."""
    at_epoch_ends = all(
        r.epochs[0] >= 1 and all(b * r.epochs[0] == e * r.batches[0] for e, b in zip(r.epochs, r.batches, strict=True))
        for r in runs
    )
    return 'epoch' if at_epoch_ends else 'batch'


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else NAN


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
        compute=tuple(_mean([r.spent for r in rs]) for rs in points),
        accuracy=tuple(_mean([r.final for r in rs]) for rs in points),
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
    computes = [r.compute(accounting) for r in runs]
    if not frontier.usable or not runs or not all(math.isfinite(c) and c > 0 for c in computes):
        return None
    compute, accuracy = _mean(computes), _mean([r.final for r in runs])
    where = place(frontier.compute, frontier.accuracy, compute, accuracy)
    low, high = bootstrap_multiplier(frontier.runs, list(zip(computes, [r.final for r in runs], strict=True)))
    at = accuracy_at_compute(frontier.compute, frontier.accuracy, compute)
    return Placement(compute, where.value, where.bound, low, high, accuracy - at)


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
    targets = [_mean([r.final for r in rs]) for (name, _), rs in groups.items() if name == baseline and rs]
    rows = []
    for (name, budget), rs in groups.items():
        if not rs:
            continue
        base = groups.get((baseline, budget), [])
        finals, bests = [r.final for r in rs], [r.best for r in rs]
        reach = []
        for target in targets:
            reached = [t for t in (r.reach(target, unit) for r in rs) if t is not None]
            reach.append(Reach(target, _mean([t for t, _ in reached]), _mean([f for _, f in reached]), len(reached)))
        rows.append(RecipeRow(
            recipe=name,
            budget=budget,
            final=summarize(finals),
            best=summarize(bests),
            final_vs_baseline=None if name == baseline else welch(finals, [r.final for r in base]),
            best_vs_baseline=None if name == baseline else welch(bests, [r.best for r in base]),
            wall_seconds=_mean([r.wall_seconds for r in rs]),
            spent=_mean([r.spent for r in rs]),
            reused=_mean([r.reused for r in rs]),
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


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=120, bbox_inches='tight')
    return buf.getvalue()


def _colors(groups: Groups) -> dict[str, str]:
    names = list(dict.fromkeys(name for name, _ in groups))
    return {name: f'C{i % 10}' for i, name in enumerate(names)}


def plot_frontier(baseline: str, groups: Groups, rows: Sequence[RecipeRow]) -> bytes:
    """Two panels (sunk, total compute), log x: the baseline's isotonic frontier with its seed band (min to max
    seed per budget), each recipe's mean at each budget with its 95% t interval of accuracy."""
    fig = Figure(figsize=(12, 4.8))
    axes = fig.subplots(1, 2, sharey=True)
    colors = _colors(groups)
    frontier = frontier_of(baseline, groups)
    for ax, accounting in zip(axes, ACCOUNTINGS, strict=True):
        if frontier.usable:
            log_c, fitted = fit_frontier(frontier.compute, frontier.accuracy)
            order = np.argsort(frontier.compute)
            lows = [100 * min(a for _, a in frontier.runs[i]) for i in order]
            highs = [100 * max(a for _, a in frontier.runs[i]) for i in order]
            xs = np.asarray(frontier.compute)[order]
            ax.fill_between(xs, lows, highs, color=colors[baseline], alpha=0.15, linewidth=0, label='baseline seeds')
            ax.plot(np.exp(log_c), 100 * fitted, color=colors[baseline], marker='o', label=f'{baseline} frontier')
        for r in rows:
            p = r.placements[accounting]
            if p is None:
                continue
            err = None if math.isnan(r.final.low) else 100 * (r.final.mean - r.final.low)
            marker = {ABOVE: '^', BELOW: 'v'}.get(p.bound, 'osDP*'[sorted({b for _, b in groups}).index(r.budget) % 5])
            ax.errorbar(p.compute, 100 * r.final.mean, yerr=err, color=colors[r.recipe], marker=marker, capsize=3,
                        linestyle='none', label=f'{r.recipe} b{budget_label(r.budget)}: M {multiplier_text(p)}')
        if not frontier.usable:
            ax.text(0.5, 0.5, f'no finished baseline run with {COMPUTE_FILE}', ha='center', va='center',
                    transform=ax.transAxes)
        else:
            ax.set_xscale('log')
        what = 'own FLOPs (the past run is paid for)' if accounting == 'sunk' else 'own + reused FLOPs'
        reading = 'a fresh run of equal new compute' if accounting == 'sunk' else "spending the past run's compute afresh"
        ax.set(xlabel=f'compute per run: {what}', title=f'{accounting}: M > 1 beats {reading}')
        ax.grid(alpha=0.3, which='both')
        ax.legend(fontsize='x-small')
    axes[0].set_ylabel('final test accuracy (%)')
    return _png(fig)


def plot_accuracy_vs_time(groups: Groups, unit: str) -> bytes:
    """Mean test accuracy per recipe and budget over the evaluations all its seeds share; the band spans the seeds."""
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    colors = _colors(groups)
    budgets = sorted({b for _, b in groups})
    for (name, budget), rs in groups.items():
        if not rs:
            continue
        common = sorted(set.intersection(*(set(r.times(unit)) for r in rs)))
        curves = np.array([[dict(zip(r.times(unit), r.accuracies, strict=True))[t] for t in common] for r in rs]) * 100
        style = ('-', '--', '-.', ':')[budgets.index(budget) % 4]
        color = colors[name]
        ax.plot(common, curves.mean(axis=0), color=color, linestyle=style, marker='.',
                label=f'{name} b{budget_label(budget)} (n={len(rs)})')
        ax.fill_between(common, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.1, linewidth=0)
    ax.set(xlabel=unit, ylabel='test accuracy (%)', title='Test accuracy: mean over seeds, band from min to max seed')
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize='x-small', ncol=2)
    return _png(fig)


def default_out(results: str) -> str:
    """``RESULTS/report`` for a local results folder; ``reports/BUCKET/PREFIX`` here for an S3 one."""
    if storage.is_s3(results):
        bucket, key = storage.split_s3(results)
        return os.path.join('reports', bucket, *key.strip('/').split('/'))
    return os.path.join(results, 'report')


@dataclass(frozen=True)
class Report:
    markdown: str  # the whole results.md
    summary: str  # its first table: the multipliers
    files: list[str]
    rows: list[RecipeRow]
    unit: str


READING = (
    'M: the compute a fresh baseline run needs to reach the recipe\'s mean final accuracy on the baseline\'s '
    'frontier (isotonic in accuracy, linear in log-compute between its budgets, never extrapolated), divided by the '
    'recipe\'s compute. Sunk counts the run\'s own FLOPs (the past run is already paid for), total adds the FLOPs it '
    'reuses. M > 1 in sunk: reuse beats a fresh run of the same new compute; M > 1 in total: it also beats '
    'spending the past run\'s compute afresh. "> x": above the frontier\'s best accuracy, so at least x; "< x": '
    'below its lowest point. [95%]: bootstrap over seeds (each baseline budget\'s seeds and the recipe\'s, '
    '1,000 seeded resamples, percentile interval); where it includes 1, this study cannot tell. Δ frontier: mean '
    'final accuracy minus the frontier\'s at the same compute (— outside the frontier).'
)


def write_report(results: str, out: str | None = None) -> Report:
    """Read the results folder, write results.md, results.csv and the plots into ``out`` (local or s3://)."""
    results = results.rstrip('/')
    out = out or default_out(results)
    baseline, groups, left_out = collect(results)
    all_runs = [r for rs in groups.values() for r in rs]
    unit = time_unit(all_runs)
    _, rows = build_rows(baseline, groups, unit)
    baseline_budgets = [b for (name, b), rs in groups.items() if name == baseline and rs]

    summary = multiplier_table(rows)
    text = [
        f'# Results: {results}',
        '',
        f'{len(all_runs)} finished runs; baseline `{baseline}` at budgets '
        f'{", ".join(budget_label(b) for b in baseline_budgets) or "none"} (ratios of max_duration).',
        '',
        '## Compute multipliers against the fresh-compute frontier',
        '',
        READING,
        '',
        summary,
        '',
        '## Test accuracy',
        '',
        'In %: mean ± standard deviation over seeds (ddof 1) and the 95% t interval of the mean, for the final '
        'evaluation and for the best evaluation of each run. Δ: difference of means to the baseline at the same '
        f'budget in percentage points, 95% Welch interval. Wall s: mean per run. FLOPs per run from {COMPUTE_FILE}, '
        'mean over runs.',
        '',
        accuracy_table(rows),
        '',
        '## Time and FLOPs to first reach the baseline\'s accuracy at each budget',
        '',
        f'Per target (the baseline\'s mean final accuracy at one budget): the first evaluation at or above it, in '
        f'{unit}s, and the FLOPs spent by then (pro rata by batches), mean over the runs that reach it (reached/n).',
        '',
        reach_table(rows, baseline_budgets, unit),
        '',
    ]
    reference = read_manifest(results).reference
    differences = reference_differences(reference, baseline, groups) if reference else []
    if differences:
        text += [
            f'## Against `{reference}`, the reuse baseline to beat',
            '',
            f'Mean final test accuracy minus `{reference}`\'s at the same budget, in percentage points, 95% Welch '
            'interval; beats / loses where the interval excludes 0, else cannot tell.',
            '',
            reference_table(differences),
            '',
        ]
    if left_out:
        text += [f'Not in the tables: {", ".join(left_out)}.', '']
    markdown = '\n'.join(text)

    files = {
        'results.md': markdown.encode(),
        'results.csv': csv_text(rows, baseline_budgets, unit, {(n, b): d for n, b, _, d in differences}).encode(),
        PLOTS[0]: plot_frontier(baseline, groups, rows),
        PLOTS[1]: plot_accuracy_vs_time(groups, unit),
    }
    paths = []
    for name, data in files.items():
        paths.append(storage.join(out, name))
        storage.write_bytes(paths[-1], data)
    return Report(markdown, summary, paths, rows, unit)
