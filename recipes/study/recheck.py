"""A published table rebuilt from its runs: every number of ``docs/results/NAME.csv`` that the runs decide, recomputed
from ``NAME-runs.csv`` (:mod:`recipes.study.publish`) and ``NAME.json`` alone, by the functions the report calls.

:func:`read_runs` turns the runs CSV into the report's groups (recipe, budget) -> runs; :func:`rebuild` places them
on the baseline's frontier, judges them, compares each recipe with the reference the published table names and
writes the table with :func:`recipes.study.tables.build_table`, as :func:`recipes.study.report.write_report` does (a
recipe's intervals resampling the past runs its seeds reuse, the runs CSV's ``past``, as the report clusters them);
:func:`recheck` lists every published cell the rebuilt table does not reproduce. The runs CSV holds each run's final
evaluation only, so the columns that read a run's other evaluations (:data:`UNCHECKED`: the best evaluation, the
time to reach the baseline's accuracies) are not rebuilt; every other column is, the means, medians, intervals,
differences, multipliers with their intervals, bounds and p-values, and the verdicts.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from recipes.study.results import ACCOUNTINGS
from recipes.study.tables import build_table, csv_records

__all__ = ['UNCHECKED', 'PublishedRun', 'read_runs', 'rebuild', 'recheck']

UNCHECKED = ('best_', 'reach_')  # column prefixes the runs CSV cannot rebuild: they read every evaluation of a run
REL_TOL = 1e-9  # a number matches its rebuilt value to this relative tolerance (another machine's last bits)


@dataclass(frozen=True)
class PublishedRun:
    """One row of ``NAME-runs.csv``, with the attributes of :class:`recipes.study.results.RunResult` the report's
    statistics read."""

    recipe: str
    budget: float
    seed: int
    past: str
    final: float
    collapsed: bool
    flops: Mapping[str, float]  # per accounting
    wall_seconds: float

    @property
    def best(self) -> float:
        """The final accuracy: the runs CSV has no other evaluation (the ``best_*`` columns are not rebuilt)."""
        return self.final

    @property
    def spent(self) -> float:
        return self.flops['sunk']

    @property
    def reused(self) -> float:
        return self.flops['total'] - self.flops['sunk']

    def compute(self, accounting: str) -> float:
        return self.flops[accounting]

    def reach(self, threshold: float, unit: str) -> None:
        """Not known from the final evaluation alone (the ``reach_*`` columns are not rebuilt)."""
        return None


def _number(text: str) -> float:
    return float(text) if text else math.nan


def read_runs(text: str) -> dict[tuple[str, float], list[PublishedRun]]:
    """The rows of a ``NAME-runs.csv`` text as the report's groups: (recipe, budget) -> its runs, in the file's order."""
    groups: dict[tuple[str, float], list[PublishedRun]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        run = PublishedRun(row['recipe'], float(row['budget']), int(row['seed']), row['past'],
                           float(row['test_accuracy']), row['collapsed'] == 'yes',
                           {a: _number(row[f'flops_{a}']) for a in ACCOUNTINGS}, float(row['wall_seconds']))
        groups.setdefault((run.recipe, run.budget), []).append(run)
    return groups


def rebuild(table: Sequence[Mapping[str, str]], runs: str, baseline: str) -> str:
    """The ``results.csv`` text the report writes for the runs of ``runs`` (a runs CSV text), with the primary
    comparison, references and time unit the published ``table`` (its rows) names, against ``baseline``; a recipe's
    intervals resample the past runs its seeds reuse (the ``past`` column), as the report's do."""
    groups = read_runs(runs)
    primary = next(((r['recipe'], float(r['budget'])) for r in table if r['primary'] == 'yes'), None)
    unit = table[0]['time_unit'] if table else 'epoch'
    clusters: dict[str, dict[int, str]] = {}  # per recipe that reuses past runs, the one each seed reuses
    for rs in groups.values():
        for r in rs:
            if r.past:
                clusters.setdefault(r.recipe, {})[r.seed] = r.past
    references = {r['recipe']: r['reference'] for r in table if r['reference']}
    return build_table(baseline, groups, unit, primary, references, clusters).csv  # type: ignore[arg-type]


def _same(published: str, rebuilt: str) -> bool:
    if published == rebuilt:
        return True
    try:
        a, b = float(published), float(rebuilt)
    except ValueError:
        return False
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))


def recheck(table: str, runs: str, baseline: str) -> list[str]:
    """Each cell of the published ``table`` (a ``results.csv`` text) that the rows rebuilt from ``runs`` (a runs CSV
    text) do not reproduce, as ``recipe budget column: published X, rebuilt Y``, and each row only one side has;
    empty when every checked cell matches."""
    published = csv_records(table)
    rebuilt = {(r['recipe'], r['budget']): r for r in csv_records(rebuild(published, runs, baseline))}
    problems = []
    for row in published:
        key = (row['recipe'], row['budget'])
        other = rebuilt.pop(key, None)
        if other is None:
            problems.append(f'{key[0]} {key[1]}: published, not rebuilt from the runs')
            continue
        for column, value in row.items():
            if not column.startswith(UNCHECKED) and not _same(value, other.get(column, '')):
                problems.append(f'{key[0]} {key[1]} {column}: published {value!r}, rebuilt {other.get(column, "")!r}')
    problems += [f'{recipe} {budget}: rebuilt from the runs, not published' for recipe, budget in rebuilt]
    return problems
