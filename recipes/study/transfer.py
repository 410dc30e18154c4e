"""What transfers from digits to Fashion-MNIST: each digits study beside its Fashion-MNIST twin, generated from the
published tables (``docs/results/NAME.csv``), never written by hand.

Each digits study (``clean``, ``noisy``, ``new-model``) has a twin ``fashion-NAME`` on Fashion-MNIST
(:data:`TWINS`). For every recipe and budget with a multiplier in either (the baseline, the frontier itself, has
none), :func:`transfer_rows` holds, per accounting, the multiplier, its 95% interval, the interval at its verdict's
Holm level, its bound and the verdict on each data set, and :func:`transfers`' word for the pair: ``both`` (it beats
the frontier on both), ``digits only``, ``fashion only`` (it beats it on one, cannot tell on the other), ``differs``
(it beats it on one and loses on the other), ``neither`` (it beats it on none) or ``not run`` (a data set has no
verdict for it: the study is not published, or the recipe was not in it). :func:`write_transfer` writes them to ``docs/results/transfer.csv``
(:data:`COLUMNS`), which publishing rewrites; :func:`transfer_table` is the results page's table of them.
``python -m recipes.study.transfer`` rewrites ``transfer.csv`` from the published tables.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from recipes.study.results import ACCOUNTINGS
from recipes.study.tables import csv_records, verdict_cell

__all__ = ['COLUMNS', 'DATA', 'TRANSFER_FILE', 'TWINS', 'transfer_rows', 'transfer_table', 'transfer_text', 'transfers',
           'write_transfer']

DATA = Path(__file__).resolve().parents[2] / 'docs' / 'results'  # where the studies are published (results_page)
TRANSFER_FILE = 'transfer.csv'
TWINS = {name: f'fashion-{name}' for name in ('clean', 'noisy', 'new-model')}  # digits study -> its Fashion-MNIST twin
SIDES = ('digits', 'fashion')


def _sourced(a: str) -> tuple[str, ...]:
    """The published table's columns of accounting ``a`` that the transfer table copies for each data set."""
    return (f'multiplier_{a}', f'multiplier_{a}_lo', f'multiplier_{a}_hi', f'multiplier_{a}_bound',
            f'multiplier_{a}_adj_lo', f'multiplier_{a}_adj_hi', f'multiplier_{a}_adj_level', f'verdict_{a}')


# study, recipe, budget; per accounting, each data set's copies of its columns (digits_multiplier_sunk, ...) and
# what transfers (transfer_sunk)
COLUMNS = ('study', 'recipe', 'budget', *(column for a in ACCOUNTINGS for column in (
    *(f'{side}_{source}' for side in SIDES for source in _sourced(a)), f'transfer_{a}')))


def transfers(digits: str, fashion: str) -> str:
    """The word for a recipe's verdicts on digits and on Fashion-MNIST ('' where a data set has none)."""
    if not digits or not fashion:
        return 'not run'
    if digits == fashion == 'beats':
        return 'both'
    if {digits, fashion} == {'beats', 'loses'}:
        return 'differs'
    return 'digits only' if digits == 'beats' else 'fashion only' if fashion == 'beats' else 'neither'


def _records(data: Path, name: str) -> dict[tuple[str, str], dict[str, str]]:
    """The published table's rows with a multiplier in some accounting, by (recipe, budget); none if unpublished."""
    path = data / f'{name}.csv'
    rows = csv_records(path.read_text()) if path.exists() else []
    return {(r['recipe'], r['budget']): r for r in rows if any(r[f'multiplier_{a}'] for a in ACCOUNTINGS)}


def transfer_rows(data: Path) -> list[dict[str, str]]:
    """One row (:data:`COLUMNS`) per digits study, recipe and budget with a multiplier on either data set: the
    digits study's order first, then the recipes only its twin has."""
    out = []
    for study, twin in TWINS.items():
        sides = {'digits': _records(data, study), 'fashion': _records(data, twin)}
        for recipe, budget in dict.fromkeys([*sides['digits'], *sides['fashion']]):
            row = {'study': study, 'recipe': recipe, 'budget': budget}
            for a in ACCOUNTINGS:
                for side, records in sides.items():
                    found = records.get((recipe, budget), {})
                    judged = bool(found.get(f'multiplier_{a}'))  # the baseline's own rows have none
                    # a table published before the adjusted intervals has no _adj_ columns: left empty
                    row.update({f'{side}_{source}': found.get(source, '') if judged else '' for source in _sourced(a)})
                row[f'transfer_{a}'] = transfers(row[f'digits_verdict_{a}'], row[f'fashion_verdict_{a}'])
            out.append(row)
    return out


def transfer_text(data: Path) -> str:
    """``transfer.csv`` as :func:`write_transfer` writes it from the tables published in ``data``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, lineterminator='\n')
    writer.writeheader()
    writer.writerows(transfer_rows(data))
    return buf.getvalue()


def write_transfer(data: Path) -> Path:
    """Write ``data/transfer.csv`` from the tables published in ``data``; its path."""
    path = data / TRANSFER_FILE
    path.write_text(transfer_text(data))
    return path


def _cell(row: dict[str, str], side: str, a: str) -> str:
    """``0.94 [0.72, 1.16] (99.58%): cannot tell`` as the results page prints a multiplier, its interval at its
    verdict's level (95%, so labelled, for a table published before the adjusted intervals); ``not run`` where there
    is none."""
    if not row[f'{side}_multiplier_{a}']:
        return 'not run'
    adjusted = bool(row[f'{side}_multiplier_{a}_adj_lo'])
    return verdict_cell(row, a, adjusted, prefix=f'{side}_', label_plain=not adjusted)


def transfer_table(data: Path) -> str:
    """The results page's table: per digits study, recipe and budget, the sunk multiplier and verdict on each data
    set and what transfers in each accounting; '' where no study has a multiplier yet."""
    rows = transfer_rows(data)
    if not rows:
        return ''
    header = ['study', 'recipe', 'budget', 'digits M sunk [CI at its level]: verdict',
              'Fashion-MNIST M sunk [CI at its level]: verdict',
              *(f'beats the frontier ({a})' for a in ACCOUNTINGS)]
    lines = [[r['study'], r['recipe'], r['budget'], _cell(r, 'digits', 'sunk'), _cell(r, 'fashion', 'sunk'),
              *(r[f'transfer_{a}'] for a in ACCOUNTINGS)] for r in rows]
    out = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return '\n'.join(out + ['| ' + ' | '.join(cells) + ' |' for cells in lines])


if __name__ == '__main__':
    print(f'wrote {write_transfer(DATA)}', file=sys.stderr)
