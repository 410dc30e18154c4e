"""The report's plots: the frontier with each recipe placed on it, and test accuracy over training time."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from recipes.core.run_files import COMPUTE_FILE
from recipes.study.frontier import ABOVE, BELOW, fit_frontier, frontier_of
from recipes.study.results import ACCOUNTINGS, Groups
from recipes.study.spec import budget_label
from recipes.study.tables import RecipeRow, multiplier_text

__all__ = ['PLOTS', 'plot_accuracy_vs_time', 'plot_frontier']

PLOTS = ('frontier.png', 'accuracy_vs_epoch.png')  # the files of plot_frontier and plot_accuracy_vs_time
# Per accounting: what the compute axis counts, and what M > 1 then beats.
READINGS = {
    'sunk': ('own FLOPs (the past run and its by-products are paid for)', 'a fresh run of equal new compute'),
    'fresh': ('own FLOPs + the by-products made anew (scores, banks, caches)', 'it, making the by-products anew'),
    'total': ('own + every reused FLOP', "spending the past run's compute afresh"),
}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=120, bbox_inches='tight')
    return buf.getvalue()


def _colors(groups: Groups) -> dict[str, str]:
    names = list(dict.fromkeys(name for name, _ in groups))
    return {name: f'C{i % 10}' for i, name in enumerate(names)}


def plot_frontier(baseline: str, groups: Groups, rows: Sequence[RecipeRow]) -> bytes:
    """One panel per accounting (sunk, fresh, total compute), log x: the baseline's isotonic frontier with its seed
    band (min to max seed per budget), each recipe's mean at each budget with its 95% t interval of accuracy."""
    fig = Figure(figsize=(6 * len(ACCOUNTINGS), 4.8))
    axes = fig.subplots(1, len(ACCOUNTINGS), sharey=True)
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
        what, reading = READINGS[accounting]
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
