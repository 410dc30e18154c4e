"""Every published number rebuilt from the published runs: a study's table (``docs/results/NAME.csv``) recomputed
from ``NAME-runs.csv`` alone by the report's own functions (:mod:`recipes.study.recheck`), on a study made here and
on every study in ``docs/results``; what publishing writes beside a table (its runs, tuning runs, steps, measured
time and registration); and the transfer table generated from the published tables."""

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.study.recheck import UNCHECKED, recheck
from recipes.study.registration import register, registration_hash
from recipes.study.report import write_report
from recipes.study.results_page import DATA, STUDIES, publish, results_tables, study_file, study_seconds
from recipes.study.spec import parse_sweep
from recipes.study.steps import append_step
from recipes.study.tables import csv_records
from recipes.study.transfer import COLUMNS, TRANSFER_FILE, transfer_text, transfers
from recipes.study.tuning import Choice, Point, Tuned, write_tuned

SWEEP = """results: {results}
parallel: 1
seeds: [1, 2, 3, 4]
budgets: [0.5, 1]
baseline: baseline
reference: warm
primary: {{recipe: kd, budget: 0.5}}
tune: {{seeds: [101, 102], grid: {{optimizer.lr: [0.05, 0.1]}}}}
past: [17, 18, 19, 20]
recipes:
  baseline: {{yaml: yamls/digits/baseline.yaml}}
  warm: {{yaml: yamls/digits/warm_start.yaml, budgets: [0.5], overrides: ['algorithms.warm_start.run=runs/p-s{{past}}']}}
  kd: {{yaml: yamls/digits/kd.yaml, budgets: [0.5], overrides: ['algorithms.past_run_distillation.run=runs/p-s{{past}}']}}
  smooth: {{yaml: yamls/digits/baseline.yaml, budgets: [0.5], overrides: [algorithms.label_smoothing.smoothing=0.1]}}
"""
# (recipe, budget) -> final test accuracy per seed 1..4; the first evaluation is 0.1 lower, validation 0.02 higher.
# kd's seed 4 collapses (within 10 points of chance, 0.1).
FINALS = {
    ('baseline', 0.5): (0.60, 0.64, 0.58, 0.62), ('baseline', 1.0): (0.80, 0.83, 0.79, 0.82),
    ('warm', 0.5): (0.75, 0.78, 0.74, 0.77), ('kd', 0.5): (0.70, 0.73, 0.69, 0.15),
    ('smooth', 0.5): (0.61, 0.66, 0.60, 0.63),
}
# recipe -> (FLOPs spent, reused by source): the baseline's grow 1% a seed; kd's 4 runs share one teacher cache
COMPUTE = {'baseline': (1e12, {}), 'warm': (1e12, {'past run P': 8e12}),
           'kd': (1.2e12, {'past run P': 8e12, 'cache C': 6e12}), 'smooth': (1e12, {})}
STEPS = [('tuning', '2025-05-01T09:00:00Z', '2025-05-01T09:20:00Z'),
         ('evaluation', '2025-05-01T09:20:00Z', '2025-05-01T10:20:00Z'),
         ('evaluation', '2025-05-02T08:00:00Z', '2025-05-02T08:10:00Z'),
         ('report', '2025-05-02T08:10:00Z', '2025-05-02T08:10:05Z')]


def fabricate(results: str) -> None:
    """A tuned study's results folder, registered before its sweep.yaml: every run's config.yaml, metrics.json and
    compute.json, tuned.yaml and steps.csv."""
    text = SWEEP.format(results=results)
    register(parse_sweep(yaml.safe_load(text), 'clean.yaml'))
    storage.write_bytes(storage.join(results, 'sweep.yaml'), text.encode())
    for (recipe, budget), finals in FINALS.items():
        for seed, final in enumerate(finals, 1):
            folder = storage.join(results, recipe, f'b{budget:g}', f'seed{seed}')
            storage.write_bytes(storage.join(folder, 'config.yaml'), b'model: {num_classes: 10}\n')
            evals = [{'epoch': e, 'batch': 10 * e, 'accuracy': a, 'val_accuracy': a + 0.02}
                     for e, a in ((1, final - 0.1), (2, final))]
            history = {'eval': evals, 'finished': True, 'wall_seconds': 10.0 * budget + seed}
            storage.write_bytes(storage.join(folder, 'metrics.json'), json.dumps(history).encode())
            spent, reused = COMPUTE[recipe]
            spent *= 1 + 0.01 * seed if recipe == 'baseline' else 1
            spent *= 2 if budget == 1 else 1
            body = {'spent_total': spent, 'reused_total': sum(reused.values()), 'reused': reused}
            storage.write_bytes(storage.join(folder, 'compute.json'), json.dumps(body).encode())
    points = {budget: (Point('p1', ('optimizer.lr=0.05',), {101: 0.5, 102: 0.52}, {101: 0.55, 102: 0.57}),
                       Point('p2', ('optimizer.lr=0.1',), {101: 0.6, 102: 0.62}, {101: 0.65, 102: 0.6 + budget / 10}))
              for budget in (0.5, 1.0)}
    choices = {('baseline', b): Choice('baseline', b, ps, 1, '', f'{results}/tuning/baseline/b{b:g}', (101, 102))
               for b, ps in points.items()}
    grid = {'optimizer.lr': [0.05, 0.1]}
    uses = {name: 'baseline' for name in ('baseline', 'warm', 'kd', 'smooth')}
    write_tuned(results, Tuned({'seeds': [101, 102], 'grid': grid}, 'val', {'baseline': grid}, uses, choices))
    for step in STEPS:
        append_step(results, *step)


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """The study of :func:`fabricate`, reported and published as ``clean`` into ``tmp_path/published``; its
    committed sweep file runs it elsewhere, two runs at a time (other keys than its comparisons)."""
    results = str(tmp_path / 'study')
    fabricate(results)
    write_report(results)
    committed = tmp_path / 'clean.yaml'
    committed.write_text(SWEEP.format(results='runs/study-clean').replace('parallel: 1', 'parallel: 2'))
    data = tmp_path / 'published'
    written = publish('clean', storage.join(results, 'report'), data, sweep_file=committed)
    assert [p.name for p in written] == ['clean.csv', 'clean.json', 'clean-runs.csv', 'clean-tuning.csv',
                                         'clean-steps.csv', TRANSFER_FILE]
    return data


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_publishing_writes_every_run_every_tuning_run_and_the_steps(published: Path):
    runs = rows((published / 'clean-runs.csv').read_text())
    assert runs[0] == ['recipe', 'budget', 'seed', 'past', 'val_accuracy', 'test_accuracy', 'collapsed', 'flops_sunk',
                       'flops_fresh', 'flops_total', 'wall_seconds']
    assert len(runs) == 1 + 4 * 5
    by_run = {(r[0], r[1], r[2]): r for r in runs[1:]}
    # seed s reuses past[s mod 4]; fresh adds the cache divided over the 4 kd runs; total adds every reused FLOP
    assert by_run['kd', '0.5', '4'] == ['kd', '0.5', '4', '17', repr(0.15 + 0.02), '0.15', 'yes', '1200000000000.0',
                                        '2700000000000.0', '15200000000000.0', '9.0']
    assert by_run['warm', '0.5', '1'] == ['warm', '0.5', '1', '18', repr(0.75 + 0.02), '0.75', '', '1000000000000.0',
                                          '1000000000000.0', '9000000000000.0', '6.0']
    assert by_run['baseline', '1', '3'] == ['baseline', '1', '3', '', repr(0.79 + 0.02), '0.79', '',
                                            *[repr(1e12 * (1 + 0.01 * 3) * 2)] * 3, '13.0']
    assert by_run['smooth', '0.5', '2'][3] == ''  # its overrides name no past run
    assert [r[:3] for r in runs[1:5]] == [['baseline', '0.5', str(s)] for s in range(1, 5)]  # the report's order

    tuning = [['recipe', 'budget', 'point', 'overrides', 'seed', 'val_accuracy', 'test_accuracy']]
    for b in ('0.5', '1'):
        tuning += [['baseline', b, 'p1', 'optimizer.lr=0.05', '101', '0.55', '0.5'],
                   ['baseline', b, 'p1', 'optimizer.lr=0.05', '102', '0.57', '0.52'],
                   ['baseline', b, 'p2', 'optimizer.lr=0.1', '101', '0.65', '0.6'],
                   ['baseline', b, 'p2', 'optimizer.lr=0.1', '102', repr(0.6 + float(b) / 10), '0.62']]
    assert rows((published / 'clean-tuning.csv').read_text()) == tuning
    assert rows((published / 'clean-steps.csv').read_text()) == [['step', 'start', 'end'], *map(list, STEPS)]

    meta = json.loads((published / 'clean.json').read_text())
    assert meta['study_seconds'] == 1200 + 3600 + 600 + 5 == study_seconds('clean', published)
    assert meta['step_seconds'] == {'tuning': 1200.0, 'evaluation': 4200.0, 'report': 5.0}
    sweep = parse_sweep(yaml.safe_load(SWEEP.format(results='x')), 'clean.yaml')
    assert meta['registration']['sha256'] == registration_hash(sweep) and meta['registration']['before_runs'] is True
    page = results_tables(published)
    assert ('Measured time: 1.5 h (tuning 0.3 h, evaluation 1.2 h, report 5 s). Registered before its first run: '
            f'comparisons sha256 `{registration_hash(sweep)[:12]}`.') in page
    assert study_seconds('noisy', published) is None


def test_the_published_table_is_rebuilt_from_its_runs_alone(published: Path):
    table, runs = (published / 'clean.csv').read_text(), (published / 'clean-runs.csv').read_text()
    assert recheck(table, runs, 'baseline') == []
    records = {(r['recipe'], r['budget']): r for r in csv_records(table)}
    kd, warm = records['kd', '0.5'], records['warm', '0.5']
    # not vacuous: multipliers with intervals and p-values, verdicts, a primary, a collapsed run, reference verdicts
    assert all(kd[c] for c in ('multiplier_sunk', 'multiplier_sunk_lo', 'multiplier_sunk_hi', 'multiplier_sunk_p',
                               'verdict_sunk', 'multiplier_fresh', 'multiplier_total', 'reference_verdict'))
    assert (kd['primary'], kd['collapsed'], warm['verdict_sunk'], kd['reference']) == ('yes', '1', 'beats', 'warm')
    assert [c for c in csv_records(table)[0] if c.startswith(UNCHECKED)][:2] == ['best_mean', 'best_std']

    tampered = table.replace(kd['multiplier_sunk_p'], '0.5', 1).replace(f',{warm["verdict_total"]},', ',beats,', 1)
    assert recheck(tampered, runs, 'baseline') == [  # in the table's row order: warm, then kd
        f"warm 0.5 verdict_total: published 'beats', rebuilt {warm['verdict_total']!r}",
        f"kd 0.5 multiplier_sunk_p: published '0.5', rebuilt {kd['multiplier_sunk_p']!r}"]

    other = runs.replace('smooth,0.5,2,,0.68,0.66,', 'smooth,0.5,2,,0.68,0.56,')  # one run's accuracy changed
    assert runs != other
    changed = {p.split(':')[0] for p in recheck(table, other, 'baseline')}
    assert {f'smooth 0.5 {column}' for column in ('final_mean', 'final_median', 'multiplier_sunk', 'multiplier_sunk_p',
                                                  'verdict_sunk', 'reference_diff')} <= changed
    dropped = ''.join(line for line in runs.splitlines(keepends=True) if not line.startswith('smooth,'))
    assert 'smooth 0.5: published, not rebuilt from the runs' in recheck(table, dropped, 'baseline')


def test_publishing_refuses_a_study_whose_committed_file_changed_its_comparisons(tmp_path: Path):
    results = str(tmp_path / 'study')
    fabricate(results)
    write_report(results)
    committed = tmp_path / 'clean.yaml'
    committed.write_text(SWEEP.format(results=results).replace('seeds: [1, 2, 3, 4]', 'seeds: [1, 2, 3, 4, 5]'))
    data = tmp_path / 'published'
    with pytest.raises(UsageError) as e:
        publish('clean', storage.join(results, 'report'), data, sweep_file=committed)
    assert str(e.value) == (
        f'{committed} makes other comparisons than {results}/registration.json registered: first changed key seeds '
        f'(registered: [1, 2, 3, 4], now: [1, 2, 3, 4, 5]): publish results made with the committed comparisons: run '
        f'{committed} in a new results folder, or commit the sweep file the study ran')
    assert not data.exists()
    assert study_file('fashion-new-model').relative_to(DATA.parents[1]) == Path('yamls/sweeps/study/fashion_new_model.yaml')


def test_a_study_in_s3_publishes_what_the_same_study_here_does(published: Path, s3_bucket: str, tmp_path: Path):
    results = f'{s3_bucket}/studies/clean'
    fabricate(results)
    write_report(results, str(tmp_path / 'report'))  # an S3 study's report goes here by default: reports/BUCKET/...
    committed = tmp_path / 'clean.yaml'
    committed.write_text(SWEEP.format(results='runs/study-clean'))
    data = tmp_path / 'from-s3'
    publish('clean', str(tmp_path / 'report'), data, results=results, sweep_file=committed)
    for name in ('clean.csv', 'clean-runs.csv', 'clean-tuning.csv', 'clean-steps.csv'):
        assert (data / name).read_text() == (published / name).read_text(), name
    here, there = (json.loads((d / 'clean.json').read_text()) for d in (published, data))
    assert (there['results'], there['study_seconds'], there['registration']['sha256']) == (
        results, here['study_seconds'], here['registration']['sha256'])


def test_the_report_script_records_the_report_step(tmp_path: Path):
    import importlib.util

    from recipes.study.results_page import ROOT

    results = tmp_path / 'study'
    fabricate(str(results))
    spec = importlib.util.spec_from_file_location('report_script', ROOT / 'launch' / 'report.py')
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(results)]) == 0
    steps = list(csv.DictReader((results / 'steps.csv').open()))
    assert [r['step'] for r in steps] == [step for step, _, _ in STEPS] + ['report']
    assert steps[-1]['start'] <= steps[-1]['end'] and (results / 'report' / 'results.csv').exists()


def test_what_transfers_is_generated_from_the_published_tables(published: Path):
    assert [transfers(d, f) for d, f in (('beats', 'beats'), ('beats', 'cannot tell'), ('cannot tell', 'beats'),
                                         ('beats', 'loses'), ('loses', 'beats'), ('loses', 'cannot tell'),
                                         ('cannot tell', 'cannot tell'), ('beats', ''), ('', 'loses'))] == [
        'both', 'digits only', 'fashion only', 'differs', 'differs', 'neither', 'neither', 'not run', 'not run']
    only_digits = list(csv.DictReader(io.StringIO((published / TRANSFER_FILE).read_text())))
    assert [(r['study'], r['recipe'], r['budget'], r['transfer_sunk']) for r in only_digits] == [
        ('clean', name, '0.5', 'not run') for name in ('warm', 'kd', 'smooth')]  # the baseline's rows have no verdict

    table = (published / 'clean.csv').read_text()  # the twin: warm loses on Fashion-MNIST, smooth is not in it
    twin = [r for r in csv_records(table) if r['recipe'] != 'smooth']
    for r in twin:
        if r['recipe'] == 'warm':
            r.update(verdict_sunk='loses', multiplier_sunk='0.5', multiplier_sunk_lo='0.4', multiplier_sunk_hi='0.6',
                     multiplier_sunk_bound='', multiplier_sunk_adj_lo='0.35', multiplier_sunk_adj_hi='0.65',
                     multiplier_sunk_adj_level='0.99')
    with open(published / 'fashion-clean.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, list(twin[0]), lineterminator='\n')
        writer.writeheader()
        writer.writerows(twin)
    shutil.copy(published / 'clean.json', published / 'fashion-clean.json')
    found = {r['recipe']: r for r in csv.DictReader(io.StringIO(transfer_text(published)), fieldnames=None)}
    digits = {r['recipe']: r for r in csv_records(table)}
    assert found['warm']['transfer_sunk'] == 'differs' and found['warm']['fashion_multiplier_sunk'] == '0.5'
    assert found['warm']['digits_multiplier_sunk'] == digits['warm']['multiplier_sunk']
    assert (digits['kd']['verdict_sunk'], found['kd']['transfer_sunk']) == ('cannot tell', 'neither')
    assert found['smooth']['transfer_sunk'] == found['smooth']['transfer_total'] == 'not run'
    assert list(found['warm']) == list(COLUMNS)
    page = results_tables(published)
    section = page.split('### What transfers: digits and Fashion-MNIST')[1]
    # each interval at its verdict's level, as the tables print it (the 95% one stays in transfer.csv)
    assert '| clean | warm | 0.5 | ' in section and '| 0.50 [0.35, 0.65] (99%): loses | differs |' in section
    assert found['warm']['fashion_multiplier_sunk_lo'] == '0.4'
    assert found['warm']['digits_multiplier_sunk_adj_level'] == digits['warm']['multiplier_sunk_adj_level'] != ''


def _published_studies() -> list:
    """One case per published study: rebuilt from its runs, or skipped where it was published before runs were."""
    cases = []
    for name in STUDIES:
        if not (DATA / f'{name}.csv').exists():
            continue
        runs = DATA / f'{name}-runs.csv'
        marks = () if runs.exists() else pytest.mark.skip(
            reason=f'docs/results/{name}.csv was published before runs were (no {name}-runs.csv): its numbers '
                   'cannot be rebuilt until the study is published again')
        cases.append(pytest.param(name, marks=marks, id=name))
    return cases or [pytest.param('', marks=pytest.mark.skip(reason='no study is published in docs/results'))]


@pytest.mark.parametrize('name', _published_studies())
def test_every_published_study_is_rebuilt_from_its_runs(name: str):
    meta = json.loads((DATA / f'{name}.json').read_text())
    problems = recheck((DATA / f'{name}.csv').read_text(), (DATA / f'{name}-runs.csv').read_text(), meta['baseline'])
    assert problems == [], f'docs/results/{name}.csv differs from what its runs give: ' + '; '.join(problems[:10])


def test_a_published_folder_copied_elsewhere_still_rechecks(published: Path, tmp_path: Path):
    """The check reads the published files alone: no results folder, no sweep file."""
    copy = tmp_path / 'copy'
    shutil.copytree(published, copy)
    shutil.rmtree(tmp_path / 'study')
    meta = json.loads((copy / 'clean.json').read_text())
    assert recheck((copy / 'clean.csv').read_text(), (copy / 'clean-runs.csv').read_text(), meta['baseline']) == []
