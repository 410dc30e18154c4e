"""The report's statistics against hand-computed numbers, on results folders written by hand (local and S3)."""

import csv
import json
import math
from pathlib import Path

import pytest
from matplotlib.image import imread

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.study.report import PLOTS, default_out, summarize, welch, write_report

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
            folder = storage.join(results, recipe, f'seed{seed}')
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
    assert sorted(p.name for p in out.iterdir()) == sorted(['results.md', 'results.csv', *PLOTS])
    assert report.unit == 'epoch'
    assert report.threshold == pytest.approx(0.92, abs=1e-12)
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

    # Time to the baseline's mean final accuracy 0.92: baseline seeds reach it at epochs never, 2, 3 (wall 30*20/30
    # and 33); kd at epochs 3, 2, 2 (wall 40, 42*20/30, 44*20/30); weak never.
    assert (value('baseline', 'to_baseline_time'), rows['baseline']['reached_baseline']) == (2.5, '2')
    assert value('baseline', 'to_baseline_wall_seconds') == pytest.approx((20 + 33) / 2)
    assert value('kd', 'to_baseline_time') == pytest.approx(7 / 3)
    assert value('kd', 'to_baseline_wall_seconds') == pytest.approx((40 + 28 + 44 * 2 / 3) / 3)
    assert (rows['weak']['to_baseline_time'], rows['weak']['reached_baseline']) == ('', '0')

    # Unfinished runs do not count: weak has n=2 (finals 0.70, 0.80 -> mean 0.75, std sqrt(0.005)).
    assert rows['weak']['n'] == '2'
    assert value('weak', 'final_std') == pytest.approx(math.sqrt(0.005), abs=1e-12)
    assert value('weak', 'final_diff') == pytest.approx(0.75 - 0.92, abs=1e-12)

    markdown = (out / 'results.md').read_text()
    assert markdown == report.markdown
    lines = {line.split(' | ')[0]: line for line in markdown.splitlines() if line.startswith('| ')}
    assert lines['| kd'].startswith(f'| kd | 3 | 96.00 ± 1.00 | [{96 - 100 * T_2 * 0.01 / math.sqrt(3):.2f}, ')
    assert '| +4.00 [' in lines['| kd'] and '| 2.3, 32 s (3/3) |' in lines['| kd']
    assert '| — (baseline) | — (baseline) | 2.5, 26 s (2/3) |' in lines['| baseline']
    assert '| never (0/2) |' in lines['| weak'] and lines['| weak'].endswith('| — | — |')
    assert 'Not in the table: weak seed 3 (not finished).' in markdown

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
    assert {p.name for p in (tmp_path / 'from-s3').iterdir()} == {'results.md', 'results.csv', *PLOTS}


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
