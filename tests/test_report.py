"""The report's statistics and multipliers against hand-computed numbers, on results folders written by hand."""

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.study.frontier import p_floor, place, resamples_for
from recipes.study.plots import PLOTS
from recipes.study.report import default_out, tuning_effort, write_report
from recipes.study.results import RunResult
from recipes.study.results_page import publish, results_tables
from recipes.study.tables import (
    ALPHA,
    Difference,
    Family,
    build_rows,
    csv_columns,
    csv_records,
    csv_text,
    families,
    holm_levels,
    reference_records_table,
    summarize,
    summary_table,
    verdict,
    welch,
)

# t quantiles (two-sided 95%), from a t table: 2 degrees of freedom, and the Welch-Satterthwaite degrees of freedom
# of the final (50/17) and best (578/185) accuracies below.
T_2 = 4.302652729749462
T_FINAL = 3.218758614532882
T_BEST = 3.111990769705277

# recipe -> seed -> (accuracy after epochs 1, 2, 3; wall seconds; compute.json or None; finished)
RUNS = {
    'baseline': {
        1: ([0.50, 0.80, 0.90], 30.0, {'spent_total': 1.0e12, 'reused_total': 0.0}, True),
        2: ([0.60, 0.93, 0.92], 30.0, {'spent_total': 1.1e12, 'reused_total': 0.0}, True),
        3: ([0.55, 0.85, 0.94], 33.0, {'spent_total': 1.2e12, 'reused_total': 0.0}, True),
    },
    'kd': {
        1: ([0.70, 0.91, 0.95], 40.0, {'spent_total': 1.3e12, 'reused_total': 5.0e11}, True),
        2: ([0.75, 0.97, 0.96], 42.0, {'spent_total': 1.3e12, 'reused_total': 5.0e11}, True),
        3: ([0.72, 0.93, 0.97], 44.0, {'spent_total': 1.3e12, 'reused_total': 5.0e11}, True),
    },
    'weak': {  # never reaches the baseline; no compute.json; seed 3 died mid-run
        1: ([0.40, 0.60, 0.70], 20.0, None, True),
        2: ([0.45, 0.65, 0.80], 22.0, None, True),
        3: ([0.41], 5.0, None, False),
    },
}
SWEEP = """results: {results}
ranks: 1
seeds: [1, 2, 3]
baseline: baseline
overrides: []
recipes:
  baseline: {{yaml: yamls/digits/baseline.yaml}}
  kd: {{yaml: yamls/digits/kd.yaml}}
  weak: {{yaml: yamls/digits/baseline.yaml, overrides: [optimizer.lr=0.001]}}
"""


def fabricate(results: str) -> None:
    """A sweep's results folder: sweep.yaml, then per run config.yaml, metrics.json and (some) compute.json."""
    storage.write_bytes(storage.join(results, 'sweep.yaml'), SWEEP.format(results=results).encode())
    for recipe, seeds in RUNS.items():
        for seed, (accuracies, wall, compute, finished) in seeds.items():
            folder = storage.join(results, recipe, 'b1', f'seed{seed}')
            storage.write_bytes(storage.join(folder, 'config.yaml'), f'seed: {seed}\nrun_name: {recipe}-s{seed}\n'.encode())
            evals = [
                {'epoch': e, 'batch': 10 * e, 'accuracy': a, 'cross_entropy': 1.0 - a}
                for e, a in enumerate(accuracies, 1)
            ]
            metrics = {'eval': evals, 'finished': finished, 'wall_seconds': wall}
            storage.write_bytes(storage.join(folder, 'metrics.json'), json.dumps(metrics).encode())
            if compute is not None:
                body = {'spent': {'student': compute['spent_total']}, 'reused': {}, 'wall_seconds': wall, 'samples': 1}
                storage.write_bytes(storage.join(folder, 'compute.json'), json.dumps({**body, **compute}).encode())


def read_csv(path) -> dict[str, dict[str, str]]:
    with open(path, newline='') as f:
        return {row['recipe']: row for row in csv.DictReader(f)}


def test_statistics_match_hand_computed_values(tmp_path):
    results = str(tmp_path / 'sweep')
    fabricate(results)
    report = write_report(results)
    out = Path(results) / 'report'
    assert sorted(p.name for p in out.iterdir()) == sorted(['results.md', 'results.csv', 'meta.json', *PLOTS])
    assert report.unit == 'epoch'
    rows = read_csv(out / 'results.csv')
    assert list(rows) == ['baseline', 'kd', 'weak']

    def value(recipe, column):
        return float(rows[recipe][column])

    # Final accuracy. baseline: 0.90, 0.92, 0.94 -> mean 0.92, std 0.02; kd: 0.95, 0.96, 0.97 -> 0.96, 0.01.
    for recipe, mean, std in (('baseline', 0.92, 0.02), ('kd', 0.96, 0.01)):
        half = T_2 * std / math.sqrt(3)
        assert rows[recipe]['n'] == '3'
        assert value(recipe, 'final_mean') == pytest.approx(mean, abs=1e-12)
        assert value(recipe, 'final_std') == pytest.approx(std, abs=1e-12)
        assert value(recipe, 'final_ci_low') == pytest.approx(mean - half, abs=1e-12)
        assert value(recipe, 'final_ci_high') == pytest.approx(mean + half, abs=1e-12)
    # Best accuracy. baseline: 0.90, 0.93, 0.94 -> mean 2.77/3, variance 13/30000; kd: 0.95, 0.97, 0.97 -> 2.89/3, 1/7500.
    for recipe, mean, variance in (('baseline', 2.77 / 3, 13 / 30000), ('kd', 2.89 / 3, 1 / 7500)):
        half = T_2 * math.sqrt(variance / 3)
        assert value(recipe, 'best_mean') == pytest.approx(mean, abs=1e-12)
        assert value(recipe, 'best_std') == pytest.approx(math.sqrt(variance), abs=1e-12)
        assert (value(recipe, 'best_ci_low'), value(recipe, 'best_ci_high')) == pytest.approx(
            (mean - half, mean + half), abs=1e-12,
        )
    # kd - baseline, Welch: final se^2 = 0.0001/3 + 0.0004/3, best se^2 = (1/7500)/3 + (13/30000)/3 = 17/90000.
    for column, se, t in (('final', math.sqrt(0.0005 / 3), T_FINAL), ('best', math.sqrt(17 / 90000), T_BEST)):
        assert value('kd', f'{column}_diff') == pytest.approx(0.04, abs=1e-12)
        assert value('kd', f'{column}_diff_low') == pytest.approx(0.04 - t * se, abs=1e-9)
        assert value('kd', f'{column}_diff_high') == pytest.approx(0.04 + t * se, abs=1e-9)
        assert rows['baseline'][f'{column}_diff'] == ''  # the baseline is the reference, not compared with itself

    # Wall time and compute: means over runs; blank where runs have no compute.json.
    assert value('baseline', 'wall_seconds_mean') == pytest.approx(31.0)
    assert value('kd', 'wall_seconds_mean') == pytest.approx(42.0)
    assert value('baseline', 'compute_spent_mean') == pytest.approx(1.1e12)
    assert (value('kd', 'compute_spent_mean'), value('kd', 'compute_reused_mean')) == pytest.approx((1.3e12, 5.0e11))
    assert rows['weak']['compute_spent_mean'] == rows['weak']['compute_reused_mean'] == ''

    # Time to the baseline's mean final accuracy 0.92: baseline seeds reach it at epochs never, 2, 3 (FLOPs
    # 1.1e12*20/30 and 1.2e12); kd at epochs 3, 2, 2 (FLOPs 1.3e12 x 1, 2/3, 2/3); weak never.
    assert value('baseline', 'reach_b1_target') == pytest.approx(0.92, abs=1e-12)
    assert (value('baseline', 'reach_b1_time'), rows['baseline']['reach_b1_reached']) == (2.5, '2')
    assert value('baseline', 'reach_b1_flops') == pytest.approx((1.1e12 * 2 / 3 + 1.2e12) / 2)
    assert value('kd', 'reach_b1_time') == pytest.approx(7 / 3)
    assert value('kd', 'reach_b1_flops') == pytest.approx(1.3e12 * 7 / 9)
    assert (rows['weak']['reach_b1_time'], rows['weak']['reach_b1_reached']) == ('', '0')

    # One baseline budget: the frontier is one point (1.1e12, 0.92); kd lies above it, so M is a lower bound:
    # sunk 1.1e12 / 1.3e12, total 1.1e12 / 1.8e12. Weak has no compute.json: no multiplier.
    assert (value('kd', 'multiplier_sunk'), rows['kd']['multiplier_sunk_bound']) == (pytest.approx(1.1 / 1.3), '>')
    assert (value('kd', 'multiplier_total'), rows['kd']['multiplier_total_bound']) == (pytest.approx(1.1 / 1.8), '>')
    assert rows['weak']['multiplier_sunk'] == rows['baseline']['multiplier_sunk'] == ''

    # Unfinished runs do not count: weak has n=2 (finals 0.70, 0.80 -> mean 0.75, std sqrt(0.005)).
    assert rows['weak']['n'] == '2'
    assert value('weak', 'final_std') == pytest.approx(math.sqrt(0.005), abs=1e-12)
    assert value('weak', 'final_diff') == pytest.approx(0.75 - 0.92, abs=1e-12)

    markdown = (out / 'results.md').read_text()
    assert markdown == report.markdown
    tables = [[line for line in part.splitlines() if line.startswith('| ')] for part in markdown.split('\n## ')[1:]]
    multipliers, accuracy, reach = ({line.split(' | ')[0]: line for line in table} for table in tables)
    assert multipliers['| kd'].startswith('| kd | 1 | 3 | 96.00 ± 1.00 | 96.00 | 0 of 3 | > 0.85 [')
    assert '| > 0.61 [' in multipliers['| kd']
    assert multipliers['| weak'] == '| weak | 1 | 2 | 75.00 ± 7.07 | 75.00 | 0 of 2 | — | — | — | — | — |'
    assert accuracy['| kd'].startswith(f'| kd | 1 | 3 | 96.00 ± 1.00 | [{96 - 100 * T_2 * 0.01 / math.sqrt(3):.2f}, ')
    assert '| +4.00 [' in accuracy['| kd'] and '| — (baseline) | — (baseline) |' in accuracy['| baseline']
    assert accuracy['| weak'].endswith('| — | — |')
    assert reach['| kd'] == '| kd | 1 | 2.3, 1.01e+12 (3/3) |'
    assert reach['| baseline'] == '| baseline | 1 | 2.5, 9.67e+11 (2/3) |'
    assert reach['| weak'] == '| weak | 1 | never (0/2) |'
    assert 'Not in the tables: weak b1 seed 3 (not finished).' in markdown
    # kd lies above the frontier's best in every accounting: the report names the budget that would price it
    assert ("Beyond the frontier: `kd` at budget 1 (sunk, fresh, total): its mean final accuracy 96.00% lies above the "
            "frontier's best, so M is only at least its value; a baseline budget above 1 (say 2) would price it.") in markdown
    assert json.loads((out / 'meta.json').read_text())['unpriced'] == [markdown.split('Beyond the frontier: ')[1].split('.\n')[0]]
    assert report.summary in markdown
    assert report.summary.startswith('| recipe | budget | n | final acc % (mean ± sd) | median % | collapsed | M sunk')

    for name in PLOTS:
        data = (out / name).read_bytes()
        assert data.startswith(b'\x89PNG\r\n\x1a\n')
        height, width, channels = imread(out / name).shape
        assert height > 200 and width > 300 and channels in (3, 4)


def test_s3_results_give_the_same_table(tmp_path, s3_bucket):
    local, remote = str(tmp_path / 'local'), f'{s3_bucket}/sweeps/study'
    fabricate(local)
    fabricate(remote)
    assert default_out(remote) == f'reports/{s3_bucket.removeprefix("s3://")}/sweeps/study'
    write_report(local)
    write_report(remote, out=str(tmp_path / 'from-s3'))
    assert read_csv(tmp_path / 'from-s3' / 'results.csv') == read_csv(Path(local) / 'report' / 'results.csv')
    assert {p.name for p in (tmp_path / 'from-s3').iterdir()} == {'results.md', 'results.csv', 'meta.json', *PLOTS}


def test_too_few_seeds_give_no_interval_and_equal_runs_a_point_interval():
    one = summarize([0.9])
    assert one.n == 1 and one.mean == 0.9 and all(math.isnan(x) for x in (one.std, one.low, one.high))
    assert math.isnan(welch([0.9], [0.8, 0.7]).low)
    same = welch([0.9, 0.9], [0.8, 0.8])
    assert (same.diff, same.low, same.high) == pytest.approx((0.1, 0.1, 0.1))


def test_results_without_a_sweep_or_finished_runs_are_one_line_errors(tmp_path):
    with pytest.raises(UsageError) as e:
        write_report(str(tmp_path))
    assert str(e.value) == f'no sweep.yaml in {tmp_path}: pass the results folder of launch/sweep.py'
    storage.write_bytes(str(tmp_path / 'sweep.yaml'), SWEEP.format(results=tmp_path).encode())
    with pytest.raises(UsageError) as e:
        write_report(str(tmp_path))
    assert str(e.value) == f'no finished runs in {tmp_path}: run launch/sweep.py on its sweep YAML first'


FRONTIER_SWEEP = """results: {results}
seeds: [1, 2, 3]
budgets: [0.5, 1, 2]
baseline: baseline
recipes:
  baseline: {{yaml: yamls/digits/baseline.yaml}}
  kd: {{yaml: yamls/digits/kd.yaml, budgets: [0.5]}}
"""


def test_multipliers_place_a_recipe_on_the_baseline_frontier(tmp_path):
    """The issue's example as a results folder: the baseline at 1e12, 2e12, 4e12 FLOPs reaches 0.50, 0.60, 0.70 (mean
    of three seeds); kd spends 1e12, reuses 1e12 and reaches 0.65: M sunk = 2**1.5, M total = 2**1.5 / 2."""
    results = str(tmp_path / 'frontier')
    storage.write_bytes(f'{results}/sweep.yaml', FRONTIER_SWEEP.format(results=results).encode())
    runs = {('baseline', b): (c, 0.0, a) for b, c, a in ((0.5, 1e12, 0.50), (1, 2e12, 0.60), (2, 4e12, 0.70))}
    runs['kd', 0.5] = (1e12, 1e12, 0.65)
    for (recipe, budget), (spent, reused, accuracy) in runs.items():
        # kd's seeds deviate otherwise than the baseline's: paired resampling does not cancel their spread
        for seed, noise in zip((1, 2, 3), (0.02, -0.02, 0.0) if recipe == 'kd' else (-0.02, 0.0, 0.02), strict=True):
            folder = f'{results}/{recipe}/b{budget:g}/seed{seed}'
            evals = [{'epoch': 1, 'batch': 10, 'accuracy': accuracy + noise}]
            storage.write_bytes(f'{folder}/config.yaml', b'seed: 1\n')
            storage.write_bytes(f'{folder}/metrics.json', json.dumps(
                {'eval': evals, 'finished': True, 'wall_seconds': 1.0}).encode())
            storage.write_bytes(f'{folder}/compute.json', json.dumps(
                {'spent_total': spent, 'reused_total': reused}).encode())
    report = write_report(results)
    out = Path(results) / 'report'
    assert sorted(p.name for p in out.iterdir()) == sorted(['results.md', 'results.csv', 'meta.json', *PLOTS])
    with open(out / 'results.csv', newline='') as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == csv_columns([0.5, 1.0, 2.0])
        rows = {(row['recipe'], row['budget']): row for row in reader}
    assert list(rows) == [('baseline', '0.5'), ('baseline', '1'), ('baseline', '2'), ('kd', '0.5')]
    kd = {key: float(value) for key, value in rows['kd', '0.5'].items() if key.startswith(('multiplier', 'acc_vs'))
          and not key.endswith('bound')}
    assert kd['multiplier_sunk'] == pytest.approx(2**1.5)
    assert kd['multiplier_total'] == pytest.approx(2**1.5 / 2)
    assert rows['kd', '0.5']['multiplier_sunk_bound'] == rows['kd', '0.5']['multiplier_total_bound'] == ''
    for accounting in ('sunk', 'total'):
        assert kd[f'multiplier_{accounting}_lo'] < kd[f'multiplier_{accounting}'] < kd[f'multiplier_{accounting}_hi']
    assert kd['acc_vs_frontier_sunk'] == pytest.approx(0.65 - 0.50)  # the frontier at 1e12
    assert kd['acc_vs_frontier_total'] == pytest.approx(0.65 - 0.60)  # the frontier at 2e12
    assert float(rows['kd', '0.5']['final_diff']) == pytest.approx(0.15)  # against the baseline at budget 0.5
    assert report.summary.splitlines()[-1].startswith('| kd | 0.5 | 3 | 65.00 ± 2.00 | 65.00 | 0 of 3 | 2.83 [')
    # the first reach target (the baseline's 0.50 at budget 0.5) is met at the first evaluation by every kd seed
    assert rows['kd', '0.5']['reach_b0.5_reached'] == '3' and rows['kd', '0.5']['reach_b2_reached'] == '0'


def test_a_reference_recipe_gets_its_own_table_with_a_verdict(tmp_path):
    """weak (finals 0.70, 0.80: seed 3 died) against kd (0.95, 0.96, 0.97): -21 pp, but with 2 seeds of spread 0.07
    the Welch interval (about 1 degree of freedom) holds 0, so this study cannot tell."""
    results = str(tmp_path / 'sweep')
    fabricate(results)
    manifest = storage.join(results, 'sweep.yaml')
    storage.write_bytes(manifest, storage.read_bytes(manifest).replace(b'baseline: baseline\n', b'baseline: baseline\nreference: kd\n'))
    report = write_report(results)
    section = report.markdown.split('## Against `kd`, the reuse baseline to beat')[1].split('\n## ')[0]
    rows = [line for line in section.splitlines() if line.startswith('| weak')]
    assert len(rows) == 1 and rows[0].startswith('| weak | 1 | 2 | `kd` | -21.00 [') and rows[0].endswith('| cannot tell |')
    expected = welch([0.70, 0.80], [0.95, 0.96, 0.97])
    row = read_csv(Path(results) / 'report' / 'results.csv')['weak']
    assert [float(row[k]) for k in ('reference_diff', 'reference_diff_low', 'reference_diff_high', 'reference_p_value')
            ] == pytest.approx([expected.diff, expected.low, expected.high, expected.p_value])
    assert (row['reference'], row['reference_verdict']) == ('kd', 'cannot tell')
    assert read_csv(Path(results) / 'report' / 'results.csv')['kd']['reference_diff'] == ''
    records = csv_records((Path(results) / 'report' / 'results.csv').read_text())
    assert reference_records_table(records).splitlines()[2] == rows[0]  # the results page's table is the report's
    publish('clean', str(Path(results) / 'report'), data=tmp_path / 'published')
    page = results_tables(tmp_path / 'published')
    assert rows[0] in page.split('Against the reuse baseline each recipe names')[1]
    assert 'Not run yet: `make study` publishes it to docs/results/noisy.csv.' in page
    assert 'Not run yet: `make study-fashion` publishes it to docs/results/fashion-noisy.csv.' in page
    assert 'An earlier design' not in page  # published with its runs
    (tmp_path / 'published' / 'clean-runs.csv').unlink()  # as the studies published before runs were
    assert ("An earlier design's table, published before every run was (no `clean-runs.csv`)"
            in results_tables(tmp_path / 'published').split('### 40% noisy labels')[0])
    assert [verdict(Difference(0.1, 0.02, 0.2, 4)), verdict(Difference(-0.1, -0.2, -0.01, 4)), verdict(expected)] == [
        'beats', 'loses', 'cannot tell']


ACCOUNTING_SWEEP = """results: {results}
seeds: [1, 2]
budgets: [0.5, 1]
baseline: baseline
primary: {{recipe: cached, budget: 0.5}}
recipes:
  baseline: {{yaml: yamls/digits/baseline.yaml}}
  curriculum: {{yaml: yamls/digits/grand_curriculum.yaml, budgets: [0.5]}}
  cached: {{yaml: yamls/digits/kd.yaml, budgets: [0.5]}}
"""


def test_three_accountings_and_collapsed_runs(tmp_path):
    """Sunk counts a run's own FLOPs; fresh adds its scores (all of them, each run) and a teacher cache divided over the
    runs that read it (two here); total adds the past run's training. Runs within 10 points of chance (10 classes:
    below 0.20) are counted as collapsed and kept in every statistic."""
    results = str(tmp_path / 'accountings')
    storage.write_bytes(f'{results}/sweep.yaml', ACCOUNTING_SWEEP.format(results=results).encode())
    reused = {'baseline': {}, 'curriculum': {'past run P': 8e12, 'scores S': 1e12},
              'cached': {'past run P': 8e12, 'cache C': 6e12}}
    finals = {('baseline', 0.5): (0.50, 0.60), ('baseline', 1): (0.70, 0.80), ('curriculum', 0.5): (0.15, 0.85),
              ('cached', 0.5): (0.62, 0.66)}
    for (recipe, budget), accuracies in finals.items():
        spent = 2e12 if budget == 1 else 1e12
        for seed, accuracy in zip((1, 2), accuracies, strict=True):
            folder = f'{results}/{recipe}/b{budget:g}/seed{seed}'
            storage.write_bytes(f'{folder}/config.yaml', b'seed: 1\nmodel: {name: resnet_20, num_classes: 10}\n')
            storage.write_bytes(f'{folder}/metrics.json', json.dumps({
                'eval': [{'epoch': 1, 'batch': 10, 'accuracy': accuracy}], 'finished': True, 'wall_seconds': 1.0,
                'machine': {'cpu': 'CPU X (2 cores)', 'gpu': 'none', 'torch': '2.7.0'}}).encode())
            storage.write_bytes(f'{folder}/compute.json', json.dumps({
                'spent_total': spent, 'reused_total': sum(reused[recipe].values()), 'reused': reused[recipe]}).encode())
    report = write_report(results)
    with open(Path(results) / 'report' / 'results.csv', newline='') as f:
        rows = {(row['recipe'], row['budget']): row for row in csv.DictReader(f)}
    curriculum, cached = rows['curriculum', '0.5'], rows['cached', '0.5']
    assert [float(curriculum[f'compute_{a}']) for a in ('sunk', 'fresh', 'total')] == [1e12, 2e12, 10e12]
    assert [float(cached[f'compute_{a}']) for a in ('sunk', 'fresh', 'total')] == [1e12, 4e12, 15e12]
    assert (curriculum['collapsed'], cached['collapsed'], rows['baseline', '0.5']['collapsed']) == ('1', '0', '0')
    assert float(curriculum['final_mean']) == pytest.approx(0.50)  # the collapsed run counts: (0.15 + 0.85) / 2
    assert float(curriculum['final_median']) == pytest.approx(0.50)
    # cached reaches 0.64 on a frontier (1e12, 0.55), (2e12, 0.75): c* = 2**0.45 * 1e12; fresh compute 4e12
    assert float(cached['multiplier_sunk']) == pytest.approx(2**0.45)
    assert float(cached['multiplier_fresh']) == pytest.approx(2**0.45 / 4)
    assert 'Ran on: CPU X (2 cores), GPU none; Python ?, torch 2.7.0, mosaicml ?, numpy ? (8 runs).' in report.markdown
    assert '| curriculum | 0.5 | 2 | 50.00 ± 49.50 | 50.00 | 1 of 2 |' in report.summary
    assert 'This table makes 1 comparison per accounting.' in report.markdown  # the primary is judged on its own
    assert (cached['primary'], curriculum['primary']) == ('yes', '')
    assert report.summary.count('(primary)') == 3  # in each accounting's cell of the cached row


def result(recipe: str, budget: float, seed: int, accuracy: float, spent: float, reused: float = 0.0) -> RunResult:
    """A finished run with one evaluation; ``reused`` FLOPs of a past run's training (total counts them)."""
    return RunResult(recipe, budget, seed, (1,), (10,), (accuracy,), 1.0, spent, reused,
                     {'past run P': reused} if reused else {}, chance=0.1)


def judged_study() -> tuple[list, dict]:
    """A baseline at 1e12, 2e12, 4e12 FLOPs (0.50, 0.60, 0.70) over 10 seeds, and recipes at 2**0.5 * 1e12 FLOPs, on
    the frontier at 0.55 plus a shift (M = 1 at none), each reusing 2e12 FLOPs of a past run; `collapse` is `clear`
    with seed 0 collapsed; `pasts` reuses 3 past runs over its seeds; `prim` is the primary comparison."""
    rng = np.random.default_rng(4)
    seeds, effect = range(10), rng.normal(0, 0.02, 10)
    groups = {('baseline', b): [result('baseline', b, s, a + effect[s] + rng.normal(0, 0.01), c) for s in seeds]
              for b, c, a in ((0.25, 1e12, 0.50), (0.5, 2e12, 0.60), (1, 4e12, 0.70))}
    shifts = {'far': 0.06, 'clear': 0.03, 'edge': 0.012, 'faint': 0.011, 'faint2': 0.0095, 'none': 0.0, 'worse': -0.03,
              'pasts': 0.05, 'collapse': 0.03, 'prim': 0.01}
    for name, shift in shifts.items():
        groups[name, 0.25] = [result(name, 0.25, s, 0.55 + shift + effect[s] + rng.normal(0, 0.01), 2**0.5 * 1e12, 2e12)
                              for s in seeds]
    groups['collapse', 0.25][0] = replace(groups['collapse', 0.25][0], accuracies=(0.1,))
    _, rows = build_rows('baseline', groups, 'epoch', ('prim', 0.25), clusters={'pasts': {s: s % 3 for s in seeds}})
    return rows, groups


def test_each_interval_at_its_verdicts_level_excludes_1_exactly_when_the_verdict_says_beats_or_loses():
    rows, _ = judged_study()
    by_name = {r.recipe: r for r in rows}
    for accounting in ('sunk', 'fresh', 'total'):
        family = [r for r in rows if r.recipe not in ('baseline', 'prim')]
        levels = holm_levels([r.placements[accounting].interval.p_value for r in family])
        for r, level in zip(family, levels, strict=True):
            confidence, lo, hi = r.adjusted[accounting]
            assert confidence == pytest.approx(1 - level)
            verdict = r.verdicts[accounting]
            assert (lo > 1 or hi < 1) == (verdict in ('beats', 'loses')), (r.recipe, accounting, verdict, lo, hi)
            assert (verdict != 'beats' or lo > 1) and (verdict != 'loses' or hi < 1)
            # the family's resamples: what 9 comparisons of 10 seeds need, the 3-past-run one included
            assert r.placements[accounting].interval.resamples == resamples_for(9, 10) == 15000
        primary = by_name['prim']
        assert primary.adjusted[accounting][0] == pytest.approx(0.95)
        assert primary.adjusted[accounting][1:] == (primary.placements[accounting].interval.lo,
                                                    primary.placements[accounting].interval.hi)
        assert primary.placements[accounting].interval.resamples == 2000  # alone at 5%: 2,000 resolve it
    sunk = {name: r.placements['sunk'].interval for name, r in by_name.items() if name != 'baseline'}
    assert [by_name[name].verdicts['sunk'] for name in ('far', 'clear', 'edge', 'worse', 'none', 'prim')] == [
        'beats', 'beats', 'beats', 'loses', 'cannot tell', 'beats']
    # faint's 95% interval excludes 1, but Holm's level at that step does not: its verdict and printed interval agree
    assert sunk['faint'].lo > 1 and by_name['faint'].verdicts['sunk'] == 'cannot tell'
    assert by_name['faint'].adjusted['sunk'][0] == pytest.approx(1 - 0.05 / 5)  # stopped after 4 rejections of 9
    assert by_name['faint'].adjusted['sunk'][1] < 1 < by_name['faint'].adjusted['sunk'][2]
    # three past runs under ten seeds: the interval resamples them, and cannot resolve any level
    assert (sunk['pasts'].units, sunk['pasts'].lo, sunk['pasts'].hi) == (3, 0, math.inf)
    assert by_name['pasts'].verdicts['sunk'] == 'cannot tell'
    fams = families(rows, 'baseline')
    assert fams['sunk'] == Family(9, 15000, 3, p_floor(15000, 3), ALPHA / 9)
    assert families(rows, 'baseline', primary=True)['sunk'] == Family(1, 2000, 10, p_floor(2000, 10), ALPHA)


def test_the_median_runs_multiplier_is_not_dragged_down_by_a_collapsed_run():
    rows, groups = judged_study()
    by_name = {r.recipe: r for r in rows}
    collapse, clear = by_name['collapse'].placements['sunk'], by_name['clear'].placements['sunk']
    assert collapse.multiplier < 1 < clear.multiplier  # one run at 10% pulls the mean below the frontier
    assert collapse.median.value > 1 and collapse.median.bound == ''
    finals = sorted(r.final for r in groups['clear', 0.25])
    baseline = [float(np.median([r.final for r in groups['baseline', b]])) for b in (0.25, 0.5, 1)]
    expected = place([1e12, 2e12, 4e12], baseline, 2**0.5 * 1e12, (finals[4] + finals[5]) / 2)
    assert clear.median.value == pytest.approx(expected.value)
    records = csv_records(csv_text(rows, [0.25, 0.5, 1], 'epoch'))
    row = next(r for r in records if r['recipe'] == 'collapse')
    assert float(row['multiplier_sunk_median']) == pytest.approx(collapse.median.value)
    assert float(row['multiplier_sunk_adj_level']) == pytest.approx(by_name['collapse'].adjusted['sunk'][0])
    assert float(row['multiplier_sunk_lo']) == pytest.approx(collapse.interval.lo)  # the 95% interval stays
    table = summary_table(records)
    assert '| M sunk [CI at its Holm level]: verdict |' in table and '| M sunk of medians |' in table
    line = next(line for line in table.splitlines() if line.startswith('| faint |'))
    assert '(99%): cannot tell' in line


def test_a_summary_table_published_before_the_adjusted_intervals_prints_its_95_percent_ones():
    published = csv_records((Path(__file__).parents[1] / 'docs' / 'results' / 'clean.csv').read_text())
    records = [{k: v for k, v in r.items() if '_adj_' not in k and not k.startswith('multiplier_sunk_median')}
               for r in published]  # as published before
    table = summary_table(records)
    assert '| M sunk [95%]: verdict |' in table and 'of medians' not in table
    judged = next(r for r in published if r['multiplier_sunk'] and r['multiplier_sunk_lo'] != r['multiplier_sunk_adj_lo'])
    assert f'[{float(judged["multiplier_sunk_lo"]):.2f}, ' in table
    assert f'[{float(judged["multiplier_sunk_adj_lo"]):.2f}, ' in summary_table(published)


PAST_SWEEP = SWEEP.replace("  kd: {{yaml: yamls/digits/kd.yaml}}", "  kd: {{yaml: yamls/digits/kd.yaml, overrides: "
                           "['algorithms.past_run_distillation.run=runs/digits-s{{past}}']}}") + 'past: [17, 18]\n'


def test_seeds_that_share_a_past_run_are_resampled_by_past_run(tmp_path):
    """kd's seeds 1, 2, 3 reuse past[1], past[0], past[1] of past: [17, 18]: two past runs, so its interval has two
    units (and no level can be read); meta.json says so, with each family's resamples and floor."""
    results = str(tmp_path / 'sweep')
    fabricate(results)
    storage.write_bytes(storage.join(results, 'sweep.yaml'), PAST_SWEEP.format(results=results).encode())
    report = write_report(results)
    kd = next(r for r in report.rows if r.recipe == 'kd')
    assert kd.placements['sunk'].interval.units == 2
    meta = json.loads((Path(results) / 'report' / 'meta.json').read_text())
    assert meta['past_runs'] == {'kd': 2}
    assert meta['families']['sunk'] == {'comparisons': 1, 'resamples': 2000, 'units': 2,
                                        'p_floor': pytest.approx(p_floor(2000, 2)), 'threshold': pytest.approx(0.05)}
    assert 'with 2 units (seeds, or the past runs they reuse) is 0.' in report.markdown and 'so none with that few can be rejected.' in report.markdown


def test_seeds_that_share_one_past_run_get_no_interval_and_the_caption_says_why(tmp_path):
    """Every seed of kd reuses the one past run of past: [17] (as the demo's do): one unit, so no interval ("[—]"),
    a verdict of cannot tell, and a caption that says what "[—]" means."""
    results = str(tmp_path / 'sweep')
    fabricate(results)
    storage.write_bytes(storage.join(results, 'sweep.yaml'),
                        PAST_SWEEP.replace('past: [17, 18]', 'past: [17]').format(results=results).encode())
    report = write_report(results)
    kd = next(r for r in report.rows if r.recipe == 'kd')
    assert kd.placements['sunk'].interval.units == 1 and kd.verdicts['sunk'] == 'cannot tell'
    row = next(line for line in report.markdown.splitlines() if line.startswith('| kd |'))
    assert row.count('[—]: cannot tell') == 3, row
    assert '"[—]": no interval at all, as there are fewer than two independent units' in report.markdown


def test_the_tuned_schedules_say_which_recipes_were_tuned_and_which_borrow_a_choice():
    everyone = {'baseline': 'baseline', 'kd': 'kd', 'curriculum': 'curriculum'}
    assert tuning_effort(everyone, 'baseline') == (
        'Every other recipe was tuned the same way, over its own grid, on the same seeds (equal tuning effort).')
    some = {**everyone, 'warm_start': 'baseline'}
    assert tuning_effort(some, 'baseline') == (
        "`warm_start` trains with `baseline`'s choice; `curriculum`, `kd`: each tuned the same way, over its own grid, "
        'on the same seeds.')
    assert tuning_effort({'baseline': 'baseline', 'kd': 'baseline'}, 'baseline') == "`kd` trains with `baseline`'s choice."
