"""``docs/results.md``: the studies' tables, generated from their reports, and everything they rest on.

A study's report (:mod:`recipes.study.report`) writes ``results.csv`` and ``meta.json``. :func:`publish` copies both
into ``docs/results/NAME.csv`` and ``NAME.json`` (the JSON with the study's measured time and registration added) and
writes beside them what they rest on, from the study's results folder (:mod:`recipes.study.publish`):
``NAME-runs.csv`` (every evaluation run), ``NAME-tuning.csv`` (every tuning run) and ``NAME-steps.csv`` (each step's
times, :mod:`recipes.study.steps`); then it rewrites ``transfer.csv`` (:mod:`recipes.study.transfer`). A study
registered before it ran (:mod:`recipes.study.registration`) is published only where its committed sweep file
(:func:`study_file`) still makes the comparisons it registered. :func:`results_tables` renders the page's generated
block from the published files (the report's own first table, :func:`recipes.study.tables.summary_table`, with what
it rests on: runs, machines, comparisons, measured time; then what transfers from digits to Fashion-MNIST).
``python -m recipes.reference`` rewrites the block and ``tests/test_docs.py`` fails when the page differs from its
CSVs; ``tests/test_published.py`` rebuilds every published table from its runs, so no result is copied by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recipes.core import storage
from recipes.study.publish import runs_csv_text, tuning_csv_text
from recipes.study.registration import check_sweep_file
from recipes.study.report import META, plural
from recipes.study.steps import read_steps, step_seconds
from recipes.study.tables import csv_records, reference_records_table, summary_table
from recipes.study.transfer import DATA, transfer_table, write_transfer

__all__ = ['DATA', 'STUDIES', 'publish', 'results_tables', 'study_file', 'study_seconds']

ROOT = Path(__file__).resolve().parents[2]
# The studies of `make study`, in the page's order: name -> heading.
STUDIES = {
    'clean': 'Clean labels: the tuned frontier, reuse of a past run of the same data, and the retraining scenarios',
    'noisy': '40% noisy labels',
    'new-model': 'New model: resnet_20 past runs teach a larger student',
    'fashion-clean': 'Fashion-MNIST, clean labels: the tuned frontier, reuse of a past run of the same data, and the '
                     'retraining scenarios',
    'fashion-noisy': 'Fashion-MNIST, 40% noisy labels',
    'fashion-new-model': 'Fashion-MNIST, new model: resnet_20 past runs grown into or teaching a resnet_32',
}


def study_file(name: str) -> Path:
    """The committed sweep file of study ``name``: ``yamls/sweeps/study/NAME.yaml``, dashes as underscores."""
    return ROOT / 'yamls' / 'sweeps' / 'study' / f'{name.replace("-", "_")}.yaml'


def publish(name: str, report: str, data: Path = DATA, *, results: str | None = None,
            sweep_file: Path | None = None) -> list[Path]:
    """Publish study ``name``: its report's ``results.csv`` and ``meta.json`` (``report``, local or s3://) to
    ``data/NAME.csv`` and ``NAME.json``, with ``NAME-runs.csv``, ``NAME-tuning.csv`` and ``NAME-steps.csv`` from its
    results folder (``results``; default: the one the report names), then ``transfer.csv``; the paths written.

    ``NAME.json`` is ``meta.json`` with ``study_seconds`` (the sum of the study's steps; null without any),
    ``step_seconds`` (per step) and ``registration`` (its sha256, when it was registered and whether before any run;
    null for a study never registered). A registered study whose committed sweep file (``sweep_file``; default
    :func:`study_file`) makes other comparisons than it registered is refused, before anything is written.
    """
    meta: dict[str, Any] = json.loads(storage.read_bytes(storage.join(report, META)))
    results = results or meta['results']
    registration = check_sweep_file(results, sweep_file or study_file(name))
    steps = read_steps(results)
    seconds = step_seconds(steps)
    meta.update(study_seconds=sum(seconds.values()) if seconds else None, step_seconds=seconds,
                registration=None if registration is None else {
                    k: registration[k] for k in ('sha256', 'registered', 'before_runs')})
    files = {
        f'{name}.csv': storage.read_bytes(storage.join(report, 'results.csv')).decode(),
        f'{name}.json': json.dumps(meta, indent=1),
        f'{name}-runs.csv': runs_csv_text(results),
        f'{name}-tuning.csv': tuning_csv_text(results),
        f'{name}-steps.csv': steps,
    }
    data.mkdir(parents=True, exist_ok=True)
    for file, text in files.items():
        (data / file).write_text(text)
    return [data / file for file in files] + [write_transfer(data)]


def study_seconds(name: str, data: Path = DATA) -> float | None:
    """The measured time of published study ``name``: the sum of its steps (``NAME-steps.csv``), in seconds; None
    where it is unpublished or recorded no step."""
    path = data / f'{name}-steps.csv'
    seconds = step_seconds(path.read_text()) if path.exists() else {}
    return sum(seconds.values()) if seconds else None


def _hours(seconds: float) -> str:
    """``1.5 h`` from 6 minutes on, ``4 min`` from a minute, ``5 s`` below."""
    return (f'{seconds / 3600:.1f} h' if seconds >= 360 else f'{seconds / 60:.0f} min' if seconds >= 60 else
            f'{seconds:.0f} s')


def results_tables(data: Path = DATA) -> str:
    """Each published study's first table, under its heading, with the runs, machines and comparisons it rests on,
    its measured time and registration (where its JSON records them), and its comparisons with the reuse baselines
    the recipes name (warm starting, say); then what transfers from each digits study to its Fashion-MNIST twin."""
    out = []
    for name, heading in STUDIES.items():
        table, meta_file = data / f'{name}.csv', data / f'{name}.json'
        make = 'make study-fashion' if name.startswith('fashion') else 'make study'
        if not table.exists():
            out += [f'### {heading}', '', f'Not run yet: `{make}` publishes it to docs/results/{name}.csv.', '']
            continue
        meta = json.loads(meta_file.read_text())
        records = csv_records(table.read_text())
        versus = reference_records_table(records)
        out += [
            f'### {heading}', '',
            *([f'An earlier design\'s table, published before every run was (no `{name}-runs.csv`), so nothing below '
               f'can be rebuilt from its runs; `{make}` publishes it again under the current design.', '']
              if not (data / f'{name}-runs.csv').exists() else []),
            f'`{meta["results"]}`: {meta["runs"]} runs; the frontier is `{meta["baseline"]}` at budgets '
            f'{", ".join(meta["baseline_budgets"])}; verdicts Holm-adjusted over {plural(meta["comparisons"], "comparison")} per '
            f'accounting. Ran on: {meta["machines"]}.{_rests_on(meta)}', '',
            *([f'Tuned schedules{_split_note(meta)}: {"; ".join(meta["tuned"])}.', ''] if meta.get('tuned') else []),
            summary_table(records), '',
            *([f'Beyond the frontier: {"; ".join(meta["unpriced"])}.', ''] if meta.get('unpriced') else []),
            *(['Against the reuse baseline each recipe names (`reference`): mean final accuracy minus the '
               "reference's at the same budget, 95% Welch interval, verdicts Holm-adjusted over this table.", '',
               versus, ''] if versus else []),
        ]
    transfer = transfer_table(data)
    out += ['### What transfers: digits and Fashion-MNIST', '',
            *(['Each digits study beside its Fashion-MNIST twin (`docs/results/transfer.csv`, generated from the '
               'tables above): per recipe and budget, the multiplier in sunk compute with its interval at the level its '
               'verdict was tested at (95% for a table published before those) and its verdict on each data set, '
               'and in each accounting whether the recipe beats the frontier on `both`, on one only (`digits only`, '
               '`fashion only`: cannot tell on the other), on one while losing on the other (`differs`), on '
               '`neither`, or was `not run` on one.', '', transfer] if transfer else
              ['Not run yet: publishing a digits study or its Fashion-MNIST twin fills it.'])]
    return '\n'.join(out).rstrip('\n')


def _rests_on(meta: dict[str, Any]) -> str:
    """The measured time and the registration a published study's JSON records ('' for a study published before
    they were)."""
    text = ''
    if meta.get('study_seconds') is not None:
        steps = ', '.join(f'{step.replace("_", " ")} {_hours(s)}' for step, s in meta['step_seconds'].items())
        text += f' Measured time: {_hours(meta["study_seconds"])} ({steps}).'
    if meta.get('registration'):
        when = 'before its first run' if meta['registration']['before_runs'] else 'after its runs had started'
        text += f' Registered {when}: comparisons sha256 `{meta["registration"]["sha256"][:12]}`.'
    return text


def _split_note(meta: dict) -> str:
    """Which split chose the tuned schedules: the report's ``tuned_split`` (``val``); a study published before
    tuning chose on the validation split says nothing (it chose on the test split, as its lines say)."""
    split = meta.get('tuned_split')
    return ' (chosen on the validation split; the test accuracy beside it)' if split == 'val' else (
        f' (chosen on the {split} split)' if split else '')
