"""What a published study rests on, beside its table: every evaluation run, every tuning run and every step's time.

:func:`recipes.study.results_page.publish` writes these three CSVs from a study's results folder (local or ``s3://``)
next to its ``docs/results/NAME.csv``, so anyone can rebuild the table's numbers from the published files alone
(:mod:`recipes.study.recheck`) and see what the study cost. Accuracies are fractions and every number is Python's
``repr`` of the float (full precision); an undefined value is an empty cell.

``NAME-runs.csv``: one row per finished evaluation run the report counts (not tuning runs, not past runs), in the
report's order (recipe, budget, seed), with :data:`RUNS_COLUMNS`: ``past`` is the value of the sweep's ``past`` the
seed reuses where the recipe (not the baseline) reuses a past run (``{past}``, ``{past_runs.NAME}``,
``{artifacts.NAME}`` in its or the sweep's overrides: :func:`recipes.study.report.past_clusters`, what the report's
intervals resample), else empty; ``val_accuracy`` the last validation accuracy of the run's history (empty without a validation split),
``test_accuracy`` its final test accuracy; ``collapsed`` ``yes`` where that lies within 10 points of chance, else
empty; ``flops_*`` its compute in each accounting of :mod:`recipes.study.results` (empty without ``compute.json``).

``NAME-tuning.csv``: one row per tuning run of ``tuned.yaml`` (:mod:`recipes.study.tuning`), with
:data:`TUNING_COLUMNS`: ``point`` its grid point (p1, ...), ``overrides`` the point's settings joined by a space
(the header alone for a study that did not tune).

``NAME-steps.csv``: the study's ``steps.csv`` (:mod:`recipes.study.steps`) as it stands.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence

from recipes.study.report import past_clusters
from recipes.study.results import ACCOUNTINGS, collect
from recipes.study.spec import budget_label, read_manifest
from recipes.study.tuning import read_tuned

__all__ = ['RUNS_COLUMNS', 'TUNING_COLUMNS', 'runs_csv_text', 'tuning_csv_text']

RUNS_COLUMNS = ('recipe', 'budget', 'seed', 'past', 'val_accuracy', 'test_accuracy', 'collapsed',
                *(f'flops_{a}' for a in ACCOUNTINGS), 'wall_seconds')
TUNING_COLUMNS = ('recipe', 'budget', 'point', 'overrides', 'seed', 'val_accuracy', 'test_accuracy')


def _cell(x: float | None) -> str:
    return '' if x is None or math.isnan(x) else repr(x)


def _text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def runs_csv_text(results: str) -> str:
    """``NAME-runs.csv`` of the sweep in ``results``: its finished evaluation runs, as :func:`collect` reads them."""
    _, groups, _ = collect(results)
    past = past_clusters(read_manifest(results), groups)  # the past run each seed reuses, as the report clusters them
    rows = [
        [r.recipe, budget_label(r.budget), r.seed, past.get(r.recipe, {}).get(r.seed, ''), _cell(r.val_accuracy),
         _cell(r.final),
         'yes' if r.collapsed else '', *(_cell(r.compute(a)) for a in ACCOUNTINGS), _cell(r.wall_seconds)]
        for runs in groups.values() for r in runs
    ]
    return _text(RUNS_COLUMNS, rows)


def tuning_csv_text(results: str) -> str:
    """``NAME-tuning.csv`` of the sweep in ``results``: every tuning run ``tuned.yaml`` chose from."""
    tuned = read_tuned(results)
    choices = sorted(tuned.choices.items()) if tuned is not None else []
    rows = [
        [recipe, budget_label(budget), point.label, ' '.join(point.overrides), seed,
         _cell(point.val_accuracy.get(seed)), _cell(point.accuracy.get(seed))]
        for (recipe, budget), choice in choices for point in choice.points for seed in choice.seeds
    ]
    return _text(TUNING_COLUMNS, rows)
