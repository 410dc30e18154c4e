"""The answer of a study: per recipe, test accuracy over seeds against the baseline, beside the compute it took.

Reads a results folder of :mod:`recipes.study.sweep` (local or ``s3://``): its ``sweep.yaml`` for the recipes, seeds and
baseline, and each run folder's ``metrics.json`` (and ``compute.json`` where the run has one). Only finished runs
count; the others are listed under the table. Writes ``results.md``, ``results.csv`` and three PNG plots.

Statistics, per recipe over its seeds: mean, standard deviation (ddof 1) and the 95% t interval of the mean, for the
final evaluation and for the best evaluation of each run (papers report the best; both, always); the difference of
means to the baseline with the 95% Welch interval (unequal variances, Welch-Satterthwaite degrees of freedom).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy import stats

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.core.run_files import COMPUTE_FILE, METRICS_FILE, read_compute, read_history
from recipes.study.sweep import read_manifest, run_folder

__all__ = [
    'Difference',
    'RecipeRow',
    'Report',
    'RunResult',
    'Summary',
    'collect',
    'default_out',
    'summarize',
    'welch',
    'write_report',
]

LEVEL = 0.95
PLOTS = ('accuracy_vs_epoch.png', 'accuracy_vs_compute.png', 'time_to_baseline.png')
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
    half = float(stats.t.ppf((1 + LEVEL) / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


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
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    if se == 0:
        return Difference(diff, diff, diff, math.inf)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(stats.t.ppf((1 + LEVEL) / 2, df)) * se
    return Difference(diff, diff - half, diff + half, float(df))


@dataclass(frozen=True)
class RunResult:
    """One finished run: its evaluations, wall time and, where recorded, the compute it spent and reused."""

    recipe: str
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

    def times(self, unit: str) -> tuple[int, ...]:
        return self.epochs if unit == 'epoch' else self.batches

    def reach(self, threshold: float, unit: str) -> tuple[float, float] | None:
        """``(time, wall seconds)`` of the first evaluation at or above ``threshold``; None if none is.

        The wall seconds are the run's, pro rata by batches (the history records wall time per run, not per eval).
        """
        for time, batch, accuracy in zip(self.times(unit), self.batches, self.accuracies, strict=True):
            if accuracy >= threshold:
                return float(time), self.wall_seconds * batch / self.batches[-1]
        return None


def _read_run(recipe: str, seed: int, folder: str, history: dict) -> RunResult:
    evals = history['eval']
    spent = reused = NAN
    compute = read_compute(folder)
    if compute is not None:
        spent, reused = float(compute['spent_total']), float(compute['reused_total'])
    return RunResult(
        recipe=recipe,
        seed=seed,
        epochs=tuple(int(e['epoch']) for e in evals),
        batches=tuple(int(e['batch']) for e in evals),
        accuracies=tuple(float(e['accuracy']) for e in evals),
        wall_seconds=float(history['wall_seconds']),
        spent=spent,
        reused=reused,
    )


def collect(results: str) -> tuple[str, dict[str, list[RunResult]], list[str]]:
    """``(baseline, finished runs per recipe in sweep order, 'recipe seed S (why)' for each run left out)``."""
    sweep = read_manifest(results)
    runs: dict[str, list[RunResult]] = {name: [] for name in sweep.recipes}
    left_out: list[str] = []
    for name in sweep.recipes:
        for seed in sweep.seeds:
            folder = run_folder(results, name, seed)
            if not storage.exists(storage.join(folder, METRICS_FILE)):
                left_out.append(f'{name} seed {seed} (not started)')
                continue
            history = read_history(folder)
            if not history.get('finished') or not history.get('eval'):
                left_out.append(f'{name} seed {seed} (not finished)')
                continue
            runs[name].append(_read_run(name, seed, folder, history))
    if not any(runs.values()):
        raise UsageError(f'no finished runs in {results}: run launch/sweep.py on its sweep YAML first')
    return sweep.baseline, runs, left_out


def time_unit(runs: Sequence[RunResult]) -> str:
    """'epoch' when every run evaluates at the ends of epochs (batch = epoch x batches per epoch), else 'batch'."""
    at_epoch_ends = all(
        r.epochs[0] >= 1 and all(b * r.epochs[0] == e * r.batches[0] for e, b in zip(r.epochs, r.batches, strict=True))
        for r in runs
    )
    return 'epoch' if at_epoch_ends else 'batch'


@dataclass(frozen=True)
class RecipeRow:
    recipe: str
    final: Summary
    best: Summary
    final_vs_baseline: Difference | None  # None on the baseline's own row
    best_vs_baseline: Difference | None
    wall_seconds: float  # mean over runs
    spent: float  # mean FLOPs; nan unless every run has compute.json
    reused: float
    to_baseline: float  # mean time (in the report's unit) to reach the baseline's mean final accuracy, over runs that do
    to_baseline_seconds: float
    reached: int  # runs that reach it


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else NAN


def build_rows(baseline: str, runs: dict[str, list[RunResult]], unit: str) -> tuple[float, list[RecipeRow]]:
    """The baseline's mean final accuracy (the bar every recipe is timed against) and one row per recipe."""
    base_final = [r.final for r in runs[baseline]]
    base_best = [r.best for r in runs[baseline]]
    threshold = _mean(base_final)
    rows = []
    for name, rs in runs.items():
        if not rs:
            continue
        finals, bests = [r.final for r in rs], [r.best for r in rs]
        reached = [t for t in (r.reach(threshold, unit) for r in rs) if t is not None]
        rows.append(RecipeRow(
            recipe=name,
            final=summarize(finals),
            best=summarize(bests),
            final_vs_baseline=None if name == baseline else welch(finals, base_final),
            best_vs_baseline=None if name == baseline else welch(bests, base_best),
            wall_seconds=_mean([r.wall_seconds for r in rs]),
            spent=_mean([r.spent for r in rs]),
            reused=_mean([r.reused for r in rs]),
            to_baseline=_mean([t for t, _ in reached]),
            to_baseline_seconds=_mean([s for _, s in reached]),
            reached=len(reached),
        ))
    return threshold, rows


def _pct(x: float) -> str:
    return '—' if math.isnan(x) else f'{100 * x:.2f}'


def _signed(x: float) -> str:
    return '—' if math.isnan(x) else f'{100 * x:+.2f}'


def _interval(low: float, high: float, fmt: Callable[[float], str] = _pct) -> str:
    return '—' if math.isnan(low) else f'[{fmt(low)}, {fmt(high)}]'


def _flops(x: float) -> str:
    return '—' if math.isnan(x) else f'{x:.2e}'


def _to_baseline(row: RecipeRow, threshold: float) -> str:
    if math.isnan(threshold):
        return '—'
    if not row.reached:
        return f'never (0/{row.final.n})'
    return f'{row.to_baseline:.1f}, {row.to_baseline_seconds:.0f} s ({row.reached}/{row.final.n})'


def markdown_table(rows: Sequence[RecipeRow], threshold: float, unit: str) -> str:
    header = [
        'recipe', 'n', 'final acc %', 'final 95% CI', 'best acc %', 'best 95% CI', 'Δ final pp (95% CI)',
        'Δ best pp (95% CI)', f'to baseline final ({unit}, wall)', 'wall s', 'compute spent', 'compute reused',
    ]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in rows:
        diffs = [
            '— (baseline)' if d is None else f'{_signed(d.diff)} {_interval(d.low, d.high, _signed)}'
            for d in (r.final_vs_baseline, r.best_vs_baseline)
        ]
        cells = [
            r.recipe, str(r.final.n),
            f'{_pct(r.final.mean)} ± {_pct(r.final.std)}', _interval(r.final.low, r.final.high),
            f'{_pct(r.best.mean)} ± {_pct(r.best.std)}', _interval(r.best.low, r.best.high),
            *diffs, _to_baseline(r, threshold), f'{r.wall_seconds:.0f}', _flops(r.spent), _flops(r.reused),
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


CSV_COLUMNS = [
    'recipe', 'n',
    'final_mean', 'final_std', 'final_ci_low', 'final_ci_high',
    'best_mean', 'best_std', 'best_ci_low', 'best_ci_high',
    'final_diff', 'final_diff_low', 'final_diff_high', 'best_diff', 'best_diff_low', 'best_diff_high',
    'wall_seconds_mean', 'compute_spent_mean', 'compute_reused_mean',
    'to_baseline_time', 'to_baseline_unit', 'to_baseline_wall_seconds', 'reached_baseline',
]


def csv_text(rows: Sequence[RecipeRow], unit: str) -> str:
    """One row per recipe, accuracies as fractions; empty cells where a value is undefined (n < 2, no compute.json)."""

    def cell(x: float) -> str:
        return '' if math.isnan(x) else repr(x)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        diffs = []
        for d in (r.final_vs_baseline, r.best_vs_baseline):
            diffs += ['', '', ''] if d is None else [cell(d.diff), cell(d.low), cell(d.high)]
        writer.writerow([
            r.recipe, r.final.n,
            *(cell(x) for s in (r.final, r.best) for x in (s.mean, s.std, s.low, s.high)),
            *diffs,
            cell(r.wall_seconds), cell(r.spent), cell(r.reused),
            cell(r.to_baseline), unit, cell(r.to_baseline_seconds), r.reached,
        ])
    return buf.getvalue()


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=120, bbox_inches='tight')
    return buf.getvalue()


def _colors(runs: dict[str, list[RunResult]]) -> dict[str, str]:
    return {name: f'C{i % 10}' for i, name in enumerate(runs)}


def plot_accuracy_vs_time(runs: dict[str, list[RunResult]], threshold: float, unit: str) -> bytes:
    """Mean test accuracy per recipe over the evaluations all its seeds share; the band spans the seeds."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    colors = _colors(runs)
    for name, rs in runs.items():
        if not rs:
            continue
        common = sorted(set.intersection(*(set(r.times(unit)) for r in rs)))
        curves = np.array([[dict(zip(r.times(unit), r.accuracies, strict=True))[t] for t in common] for r in rs]) * 100
        color = colors[name]
        ax.plot(common, curves.mean(axis=0), color=color, marker='.', label=f'{name} (n={len(rs)})')
        ax.fill_between(common, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.2, linewidth=0)
    if not math.isnan(threshold):
        ax.axhline(100 * threshold, color='gray', linestyle='--', linewidth=1, label="baseline's mean final")
    ax.set(xlabel=unit, ylabel='test accuracy (%)', title='Test accuracy: mean over seeds, band from min to max seed')
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def plot_accuracy_vs_compute(rows: Sequence[RecipeRow], runs: dict[str, list[RunResult]]) -> bytes:
    """Mean final accuracy (95% interval) against mean compute: spent (filled) and spent plus reused (hollow)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    colors = _colors(runs)
    shown = [r for r in rows if not math.isnan(r.spent)]
    for r in shown:
        y = 100 * r.final.mean
        err = None if math.isnan(r.final.low) else 100 * (r.final.mean - r.final.low)
        total = r.spent + r.reused
        c = colors[r.recipe]
        ax.plot([r.spent, total], [y, y], color=c, linestyle=':', linewidth=1)
        ax.errorbar(total, y, yerr=err, color=c, marker='o', markerfacecolor='white', capsize=3,
                    label=f'{r.recipe}: spent + reused')
        ax.errorbar(r.spent, y, yerr=err, color=c, marker='o', markersize=4, capsize=3, label=f'{r.recipe}: spent')
    if shown:
        ax.set_xlim(left=0)
        ax.legend(fontsize='small')
    else:
        ax.text(0.5, 0.5, f'no {COMPUTE_FILE} in the run folders', ha='center', va='center', transform=ax.transAxes)
    ax.set(xlabel='compute per run (FLOPs)', ylabel='final test accuracy (%)',
           title='Final accuracy against compute (mean over seeds, 95% interval)')
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_time_to_baseline(rows: Sequence[RecipeRow], runs: dict[str, list[RunResult]], threshold: float,
                          unit: str) -> bytes:
    """Per recipe, the mean time to first reach the baseline's mean final accuracy; recipes that never do say so."""
    fig = Figure(figsize=(10, 4.5))
    axes = fig.subplots(1, 2)
    colors = _colors(runs)
    for ax, label, which in ((axes[0], f'{unit}s', 0), (axes[1], 'wall seconds (pro rata)', 1)):
        for i, r in enumerate(rows):
            times = [t[which] for t in (run.reach(threshold, unit) for run in runs[r.recipe]) if t is not None]
            if times:
                ax.bar(i, np.mean(times), color=colors[r.recipe], alpha=0.7)
                ax.plot([i] * len(times), times, 'k.')
                ax.annotate(f'{len(times)}/{r.final.n}', (i, max(times)), ha='center', va='bottom',
                            textcoords='offset points', xytext=(0, 3))
            else:
                ax.text(i, 0, 'never' if not math.isnan(threshold) else 'no baseline', ha='center', va='bottom',
                        color='red', fontweight='bold')
        ax.set_xticks(range(len(rows)), [r.recipe for r in rows], rotation=30, ha='right')
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_ylabel(label)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
        ax.grid(axis='y', alpha=0.3)
    goal = '—' if math.isnan(threshold) else f'{100 * threshold:.2f}%'
    fig.suptitle(f"Time to first reach the baseline's mean final accuracy ({goal}); dots: seeds, k/n: seeds that reach it")
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
    files: list[str]
    rows: list[RecipeRow]
    threshold: float
    unit: str


def write_report(results: str, out: str | None = None) -> Report:
    """Read the results folder, write results.md, results.csv and the plots into ``out`` (local or s3://)."""
    results = results.rstrip('/')
    out = out or default_out(results)
    baseline, runs, left_out = collect(results)
    all_runs = [r for rs in runs.values() for r in rs]
    unit = time_unit(all_runs)
    threshold, rows = build_rows(baseline, runs, unit)

    goal = 'undefined: no finished baseline run' if math.isnan(threshold) else f'{100 * threshold:.2f}%'
    text = [
        f'# Results: {results}',
        '',
        f'{len(all_runs)} finished runs; baseline `{baseline}`. Test accuracy in %: mean ± standard deviation over '
        'seeds (ddof 1) and the 95% t interval of the mean, for the final evaluation and for the best evaluation of '
        'each run. Δ: difference of means to the baseline in percentage points, 95% Welch interval. To baseline '
        f"final: first evaluation at or above the baseline's mean final accuracy ({goal}), in {unit}s and wall "
        'seconds (pro rata by batches), mean over the runs that reach it (reached/n). Wall s: mean per run. Compute: '
        f'FLOPs per run from {COMPUTE_FILE}, mean over runs (— where a run has none).',
        '',
        markdown_table(rows, threshold, unit),
        '',
    ]
    if left_out:
        text += [f'Not in the table: {", ".join(left_out)}.', '']
    markdown = '\n'.join(text)

    files = {
        'results.md': markdown.encode(),
        'results.csv': csv_text(rows, unit).encode(),
        PLOTS[0]: plot_accuracy_vs_time(runs, threshold, unit),
        PLOTS[1]: plot_accuracy_vs_compute(rows, runs),
        PLOTS[2]: plot_time_to_baseline(rows, runs, threshold, unit),
    }
    paths = []
    for name, data in files.items():
        paths.append(storage.join(out, name))
        storage.write_bytes(paths[-1], data)
    return Report(markdown, paths, rows, threshold, unit)
