"""``docs/results.md``: the studies' tables, generated from their reports.

A study's report (:mod:`recipes.study.report`) writes ``results.csv`` and ``meta.json``. :func:`publish` copies both into
``docs/results/NAME.*``, where they are committed with the page; :func:`results_tables` renders the page's generated
block from those copies (the report's own first table, :func:`recipes.study.tables.summary_table`, with what it rests
on: runs, machines, comparisons). ``python -m recipes.reference`` rewrites the block and ``tests/test_docs.py`` fails
when the page differs from its CSVs, so no result is copied by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from recipes.core import storage
from recipes.study.report import META, plural
from recipes.study.tables import csv_records, reference_records_table, summary_table

__all__ = ['DATA', 'STUDIES', 'publish', 'results_tables']

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / 'docs' / 'results'  # the committed copies of each study's results.csv and meta.json
# The studies of `make study`, in the page's order: name -> heading.
STUDIES = {
    'clean': 'Clean labels: the tuned frontier, reuse of a past run of the same data, and the retraining scenarios',
    'noisy': '40% noisy labels',
    'new-model': 'New model: resnet_20 past runs teach a larger student',
}


def publish(name: str, report: str, data: Path = DATA) -> None:
    """Copy a report's ``results.csv`` and ``meta.json`` (local or s3://) to ``data/NAME.csv`` and ``NAME.json``."""
    data.mkdir(parents=True, exist_ok=True)
    for source, suffix in (('results.csv', 'csv'), (META, 'json')):
        (data / f'{name}.{suffix}').write_bytes(storage.read_bytes(storage.join(report, source)))


def results_tables(data: Path = DATA) -> str:
    """Each published study's first table, under its heading, with the runs, machines and comparisons it rests on,
    and its comparisons with the reuse baselines the recipes name (warm starting, say)."""
    out = []
    for name, heading in STUDIES.items():
        table, meta_file = data / f'{name}.csv', data / f'{name}.json'
        if not table.exists():
            out += [f'### {heading}', '', f'Not run yet: `make study` publishes it to docs/results/{name}.csv.', '']
            continue
        meta = json.loads(meta_file.read_text())
        records = csv_records(table.read_text())
        versus = reference_records_table(records)
        out += [
            f'### {heading}', '',
            f'`{meta["results"]}`: {meta["runs"]} runs; the frontier is `{meta["baseline"]}` at budgets '
            f'{", ".join(meta["baseline_budgets"])}; verdicts Holm-adjusted over {plural(meta["comparisons"], "comparison")} per '
            f'accounting. Ran on: {meta["machines"]}.', '',
            *([f'Tuned schedules{_split_note(meta)}: {"; ".join(meta["tuned"])}.', ''] if meta.get('tuned') else []),
            summary_table(records), '',
            *(['Against the reuse baseline each recipe names (`reference`): mean final accuracy minus the '
               "reference's at the same budget, 95% Welch interval, verdicts Holm-adjusted over this table.", '',
               versus, ''] if versus else []),
        ]
    return '\n'.join(out).rstrip('\n')


def _split_note(meta: dict) -> str:
    """Which split chose the tuned schedules: the report's ``tuned_split`` (``val``); a study published before
    tuning chose on the validation split says nothing (it chose on the test split, as its lines say)."""
    split = meta.get('tuned_split')
    return ' (chosen on the validation split; the test accuracy beside it)' if split == 'val' else (
        f' (chosen on the {split} split)' if split else '')
