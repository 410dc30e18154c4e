"""The time a study took, step by step: ``{results}/steps.csv``.

A study's steps are :data:`STEPS`: its past runs, the artifacts made of them, tuning, the evaluation runs (each a
phase of :func:`recipes.study.runner.run_sweep`) and the report (``launch/report.py``). Each time a step does work it
records one row, ``step,start,end`` (ISO-8601 UTC, to the second): the row is written when the step starts its first
job, its end is moved forward each time a job starts or finishes, and once more when the step ends (finished, failed
or stopped), so a session killed outright (SIGKILL, a lost machine) keeps its row up to its last job event. A phase
that finds everything done (its runs finished, its artifacts built) records no row, and a dry run records none, so a
study resumed in several sessions holds one row per session that worked on a step, and the study's measured time is
the sum of its rows (:func:`step_seconds`). Local and ``s3://`` results alike: a row is written by reading the file
and writing it whole.

``steps.csv``::

    step,start,end
    past_runs,2025-05-01T09:00:00Z,2025-05-01T09:41:12Z
    evaluation,2025-05-01T10:02:31Z,2025-05-01T12:30:05Z
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from recipes.core import storage

__all__ = ['COLUMNS', 'STEPS', 'STEPS_FILE', 'StepClock', 'append_step', 'read_steps', 'step_seconds', 'timed_step']

STEPS_FILE = 'steps.csv'
STEPS = ('past_runs', 'artifacts', 'tuning', 'evaluation', 'report')  # a study's steps, in the order they run
COLUMNS = ('step', 'start', 'end')


def _now() -> str:
    return datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def read_steps(results: str) -> str:
    """``{results}/steps.csv`` as text; the header alone where no step has recorded a row."""
    uri = storage.join(results, STEPS_FILE)
    return storage.read_bytes(uri).decode() if storage.exists(uri) else ','.join(COLUMNS) + '\n'


def _check(step: str) -> None:
    if step not in STEPS:
        raise ValueError(f'step={step!r}: one of {", ".join(STEPS)}')


def append_step(results: str, step: str, start: str, end: str) -> None:
    """Append the row ``step,start,end`` to ``{results}/steps.csv`` (written with its header if new)."""
    _write(results, read_steps(results), step, start, end)


def _write(results: str, before: str, step: str, start: str, end: str) -> None:
    """Write ``{results}/steps.csv`` as ``before`` and the row ``step,start,end``."""
    _check(step)
    buf = io.StringIO()
    csv.writer(buf, lineterminator='\n').writerow([step, start, end])
    storage.write_bytes(storage.join(results, STEPS_FILE), (before + buf.getvalue()).encode())


@dataclass
class StepClock:
    """One step's clock and its row of ``{results}/steps.csv``: :meth:`worked` marks that the step did work (a job
    started or finished, a build, the report) and moves the row's end to now, writing the row the first time."""

    results: str
    step: str
    start: str
    before: str | None = None  # the file's text before this step's row, once the row is written

    @property
    def did_work(self) -> bool:
        return self.before is not None

    def worked(self) -> None:
        if self.before is None:
            self.before = read_steps(self.results)
        _write(self.results, self.before, self.step, self.start, _now())


@contextmanager
def timed_step(results: str, step: str) -> Iterator[StepClock]:
    """Time the block as ``step`` of the study in ``results``: its row is written at the block's first
    :meth:`StepClock.worked` and ends when the block ends (however it ends) or, if the process is killed, at its last
    :meth:`StepClock.worked`. A block that did no work records no row."""
    _check(step)
    clock = StepClock(results, step, _now())
    try:
        yield clock
    finally:
        if clock.did_work:
            clock.worked()


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end.replace('Z', '+00:00'))
            - datetime.fromisoformat(start.replace('Z', '+00:00'))).total_seconds()


def step_seconds(text: str) -> dict[str, float]:
    """Seconds per step, summed over the rows of a ``steps.csv`` text, in :data:`STEPS` order (steps without a row
    left out); their sum is the study's measured time."""
    totals = dict.fromkeys(STEPS, 0.0)
    seen: set[str] = set()
    for row in csv.DictReader(io.StringIO(text)):
        totals[row['step']] += _seconds(row['start'], row['end'])
        seen.add(row['step'])
    return {step: seconds for step, seconds in totals.items() if step in seen}
