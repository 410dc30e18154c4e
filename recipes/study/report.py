"""The answer of a study: per recipe and budget, where its runs land against the fresh-compute frontier.

:func:`write_report` reads a sweep's results folder (local or ``s3://``, :mod:`recipes.study.results`), places each
recipe's runs on the baseline's frontier (:mod:`recipes.study.frontier`), and writes ``results.md`` (the tables of
:mod:`recipes.study.tables`: the compute multipliers first, then test accuracy, the time and FLOPs to the baseline's
accuracies, and the comparison with the sweep's ``reference`` where it names one), ``results.csv``, and the plots of
:mod:`recipes.study.plots` (``frontier.png``, ``accuracy_vs_epoch.png``), and ``meta.json`` (the number of runs, the
machines they ran on, the comparisons the verdicts are adjusted for, and per family of comparisons the resamples
its intervals drew and the smallest p-value they can count). Where a recipe's seeds reuse past runs (the sweep's
``past``), its intervals resample the past runs, then the seeds within them (:func:`past_clusters`). Runs that have
not finished are listed under the tables. The frontier's pure functions, :func:`compute_multiplier` and
:func:`accuracy_at_compute`, are importable from here too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable
from dataclasses import asdict, dataclass

from recipes.core import storage
from recipes.core.run_files import COMPUTE_FILE
from recipes.study.frontier import ABOVE, accuracy_at_compute, compute_multiplier
from recipes.study.plots import PLOTS, plot_accuracy_vs_time, plot_frontier
from recipes.study.results import Groups, collect, time_unit
from recipes.study.spec import SweepSpec, _past_of, _uses_past, budget_label, read_manifest
from recipes.study.tables import (
    RecipeRow,
    accuracy_table,
    build_table,
    csv_records,
    families,
    family_size,
    plural,
    reach_table,
    reference_table,
    resampling_text,
    summary_table,
)
from recipes.study.tuning import TUNED_FILE, read_tuned

__all__ = ['META', 'Report', 'accuracy_at_compute', 'compute_multiplier', 'default_out', 'past_clusters', 'plural',
           'tuning_effort', 'write_report']

META = 'meta.json'  # what the tables rest on: runs, machines, comparisons (the results page reads it)


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
    'recipe\'s compute. Sunk counts the run\'s own FLOPs (the past run and its by-products are already paid for); '
    'fresh adds the by-products a team would make anew for this run (scores, adversarial banks; a teacher cache '
    'divided over the runs that read it); total adds the past run\'s own training too. M > 1 in sunk: reuse beats a '
    'fresh run of the same new compute; in fresh: it does so paying for its by-products; in total: it also beats '
    'spending the past run\'s compute afresh. "> x": above the frontier\'s best accuracy, so at least x; "< x": '
    'below its lowest point. Verdicts: beats or loses where the test of M = 1 rejects, Holm-adjusted over the '
    'table\'s comparisons in each accounting (the sweep\'s primary comparison at the plain 5% level); else cannot '
    'tell. The interval: an expanded percentile bootstrap over seeds (a seed\'s baseline runs and its recipe run '
    'resampled together, as they share an initialisation and a data order; where seeds reuse the same past run, '
    'the past runs resampled, then the seeds within them), printed at the level its verdict was tested at (in '
    'brackets after it): among m comparisons the one with the i-th smallest p-value (from 0) is tested at '
    '0.05/(m - i) and printed at 1 - 0.05/(m - i), those from where Holm\'s procedure stopped at that step\'s level, '
    'the primary at 95%; so the interval excludes 1 exactly when the verdict is beats or loses (results.csv holds the '
    '95% interval too). "[≥ x, one-sided]": the frontier cannot price the upper end; "[unbounded]": too few seeds or '
    'past runs to read that level; "[—]": no interval at all, as there are fewer than two independent units (seeds, '
    'or past runs where the seeds share them: one past run reused by every seed is one unit). The p-values are '
    'counted from the resamples, so they cannot go below 1/(resamples + 1) on the expanded scale '
    '(the resamples per family are below the table). M sunk of medians: the median run\'s compute and accuracy on '
    'the frontier of the baseline\'s per-budget medians, which a collapsed run does not drag down. Collapsed: runs '
    'whose final accuracy lies within 10 points of chance, kept in every statistic. Δ frontier: mean final accuracy '
    'minus the frontier\'s at the same compute (— outside the frontier).'
)


def past_clusters(manifest: SweepSpec, groups: Groups) -> dict[str, dict[int, Hashable]]:
    """Per recipe but the baseline whose overrides reuse past runs (``{past}`` or a past run's placeholder, in the
    sweep's overrides or its own), the past run each of its seeds reuses, ``past[seed mod len(past)]``
    (:func:`recipes.study.spec._past_of`): its intervals resample these. Empty for a sweep without ``past``."""
    if manifest.past is None:
        return {}
    reusing = [name for name, recipe in manifest.recipes.items()
               if name != manifest.baseline and (_uses_past(manifest.overrides) or _uses_past(recipe.overrides))]
    return {name: {r.seed: _past_of(manifest, r.seed) for (recipe, _), rs in groups.items() if recipe == name for r in rs}
            for name in reusing}


def machines_text(runs: list) -> str:
    """The machines the runs ran on, with the library versions: exact figures depend on the floating-point path."""
    seen: dict[str, int] = {}
    for r in runs:
        m = r.machine
        key = (f'{m.get("cpu", "unrecorded CPU")}, GPU {m.get("gpu", "unrecorded")}; Python {m.get("python", "?")}, '
               f'torch {m.get("torch", "?")}, mosaicml {m.get("mosaicml", "?")}, numpy {m.get("numpy", "?")}')
        seen[key] = seen.get(key, 0) + 1
    return '; '.join(f'{key} ({n} runs)' for key, n in seen.items())


def unpriced(rows: list[RecipeRow], baseline_budgets: list[float]) -> list[str]:
    """One line per recipe, budget and accounting whose mean accuracy lies above the frontier's best, so that its
    multiplier is only a lower bound: the budget that would price it is one above the frontier's largest (doubling it
    is the next point of the study's ladder; nothing is extrapolated)."""
    if not baseline_budgets:
        return []
    top = max(baseline_budgets)
    lines = []
    for row in rows:
        above = [a for a, p in row.placements.items() if p is not None and p.bound == ABOVE]
        if above:
            lines.append(f'`{row.recipe}` at budget {budget_label(row.budget)} ({", ".join(above)}): its mean final '
                         f'accuracy {100 * row.final.mean:.2f}% lies above the frontier\'s best, so M is only at least '
                         f'its value; a baseline budget above {budget_label(top)} (say {budget_label(2 * top)}) would '
                         'price it')
    return lines


def tuning_effort(uses: dict[str, str], baseline: str) -> str:
    """Which recipes were tuned like the baseline and which train with another recipe's choice (``uses``: recipe ->
    the tuned recipe whose settings it trains with)."""
    own = sorted(name for name, follows in uses.items() if follows == name and name != baseline)
    borrowed = sorted((name, follows) for name, follows in uses.items() if follows != name)
    if not borrowed:
        return 'Every other recipe was tuned the same way, over its own grid, on the same seeds (equal tuning effort).'
    trains = '; '.join(f'`{name}` trains with `{follows}`\'s choice' for name, follows in borrowed)
    if not own:
        return trains + '.'
    return (f'{trains}; {", ".join(f"`{n}`" for n in own)}: each tuned the same way, over its own grid, on the same '
            'seeds.')


def write_report(results: str, out: str | None = None) -> Report:
    """Read the results folder, write results.md, results.csv and the plots into ``out`` (local or s3://)."""
    results = results.rstrip('/')
    out = out or default_out(results)
    baseline, groups, left_out = collect(results)
    all_runs = [r for rs in groups.values() for r in rs]
    unit = time_unit(all_runs)
    manifest = read_manifest(results)
    primary = (manifest.primary.recipe, manifest.primary.budget) if manifest.primary else None
    clusters = past_clusters(manifest, groups)
    references = {name: recipe.reference or manifest.reference for name, recipe in manifest.recipes.items()
                  if recipe.reference or manifest.reference}
    table = build_table(baseline, groups, unit, primary, references, clusters)
    rows, baseline_budgets, differences, csv_body = table.rows, table.baseline_budgets, table.differences, table.csv
    summary = summary_table(csv_records(csv_body))
    beyond = unpriced(rows, baseline_budgets)
    text = [
        f'# Results: {results}',
        '',
        f'{len(all_runs)} finished runs; baseline `{baseline}` at budgets '
        f'{", ".join(budget_label(b) for b in baseline_budgets) or "none"} (ratios of max_duration). '
        f'Ran on: {machines_text(all_runs)}.',
        '',
        '## Compute multipliers against the fresh-compute frontier',
        '',
        READING,
        f'This table makes {plural(family_size(rows, baseline), "comparison")} per accounting. '
        + resampling_text(rows, baseline),
        '',
        summary,
        '',
        *([f'Beyond the frontier: {"; ".join(beyond)}.', ''] if beyond else []),
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
    tuned = read_tuned(results)
    if tuned is not None:
        text += [
            '## The tuned schedules',
            '',
            f'Before the evaluation runs, each budget\'s settings were chosen on the validation split (the examples '
            f'`data.holdout` keeps out of training), never the test split: the best mean final validation accuracy of '
            f'the baseline over its grid on the tuning seeds (`{TUNED_FILE}`; the test accuracy is shown beside it). '
            + tuning_effort(tuned.uses, baseline),
            '',
            *(f'- {choice.summary()}' for _, choice in sorted(tuned.choices.items())),
            '',
        ]
    if differences:
        named = sorted({v.reference for v in differences})
        text += [
            f'## Against `{named[0]}`, the reuse baseline to beat' if len(named) == 1 else
            '## Against the reuse baselines to beat',
            '',
            'Mean final test accuracy minus the reference recipe\'s at the same budget, in percentage points, 95% '
            f'Welch interval; beats / loses where the Welch test rejects, Holm-adjusted over the table\'s '
            f'{plural(len(differences), "comparison")}, else cannot tell.',
            '',
            reference_table(differences),
            '',
        ]
    if left_out:
        text += [f'Not in the tables: {", ".join(left_out)}.', '']
    markdown = '\n'.join(text)

    meta = {'results': results, 'runs': len(all_runs), 'machines': machines_text(all_runs),
            'tuned': [c.summary() for _, c in sorted(tuned.choices.items())] if tuned else [],
            'tuned_split': tuned.split if tuned else None,
            'comparisons': family_size(rows, baseline), 'baseline': baseline,
            'families': {a: asdict(f) for a, f in families(rows, baseline).items()},
            'primary_family': {a: asdict(f) for a, f in families(rows, baseline, primary=True).items()},
            'past_runs': {name: len(set(seeds.values())) for name, seeds in clusters.items()},
            'baseline_budgets': [budget_label(b) for b in baseline_budgets], 'unpriced': beyond, 'left_out': left_out}
    files = {
        'results.md': markdown.encode(),
        META: json.dumps(meta, indent=1).encode(),
        'results.csv': csv_body.encode(),
        PLOTS[0]: plot_frontier(baseline, groups, rows),
        PLOTS[1]: plot_accuracy_vs_time(groups, unit),
    }
    paths = []
    for name, data in files.items():
        paths.append(storage.join(out, name))
        storage.write_bytes(paths[-1], data)
    return Report(markdown, summary, paths, rows, unit)
