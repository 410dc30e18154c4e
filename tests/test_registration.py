"""A study registered before it runs (``registration.json``) and timed step by step (``steps.csv``): the hash of its
comparisons, the refusal of a sweep that changes them in the same results folder, and the rows each phase records."""

import csv
import dataclasses
import io
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.study.registration import (
    COMPARISON_KEYS,
    EXECUTION_KEYS,
    REGISTRATION_FILE,
    canonical_text,
    read_registration,
    register,
    registration_hash,
)
from recipes.study.runner import run_sweep
from recipes.study.spec import SweepSpec, parse_sweep
from recipes.study.steps import STEPS_FILE, append_step, read_steps, step_seconds, timed_step

RECIPE = 'yamls/digits/baseline.yaml'
BASE = {
    'results': 'runs/r', 'seeds': [1, 2, 3], 'budgets': [0.5, 1], 'baseline': 'b', 'past': [17, 18],
    'past_runs': {'clean': {'yaml': RECIPE, 'cpus': 2}},
    'recipes': {'b': {'yaml': RECIPE}, 'kd': {'yaml': 'yamls/digits/kd.yaml', 'budgets': [0.5],
                                             'overrides': ['algorithms.past_run_distillation.run={past_runs.clean}']}},
}
BASE_HASH = '3509ff73bb46ccb37e78fc2b9b591634c572491e7b021acdb39f92517f84d704'  # of BASE's canonical text


def sha(content: dict) -> str:
    return registration_hash(parse_sweep(content, 's.yaml'))


def test_every_sweep_key_either_defines_the_comparisons_or_says_how_they_run():
    fields = {f.name for f in dataclasses.fields(SweepSpec)}
    assert set(COMPARISON_KEYS) | set(EXECUTION_KEYS) == fields
    assert not set(COMPARISON_KEYS) & set(EXECUTION_KEYS)


def test_the_hash_is_of_the_comparisons_alone():
    base = sha(BASE)
    text = canonical_text(parse_sweep(BASE, 's.yaml'))
    assert list(json.loads(text)) == sorted(COMPARISON_KEYS)  # every comparison key, null where unset
    assert json.loads(text)['past_runs'] == {'clean': {'yaml': RECIPE, 'overrides': []}}  # no Ray resources
    assert json.loads(text)['budgets'] == [0.5, 1.0] and json.loads(text)['reference'] is None
    assert base == BASE_HASH  # a change to the canonical text would re-register every study
    how_it_runs = [
        {'results': 's3://bucket/elsewhere'}, {'parallel': 2}, {'threads_per_run': 4}, {'ranks': 2},
        {'launcher': 'ray', 'ray': {'address': 'head:6379', 'cpus_per_run': 8}}, {'past_root': 'runs/shared-past'},
        {'past_runs': {'clean': {'yaml': RECIPE, 'cpus': 8, 'gpus': 1}}}, {'budgets': [0.50, 1.0]},
    ]
    assert [sha({**BASE, **change}) for change in how_it_runs] == [base] * len(how_it_runs)
    what_it_compares = [
        {'seeds': [1, 2, 3, 4]}, {'seeds': [1, 2]}, {'budgets': [0.5, 1, 2]}, {'past': [17, 18, 19]},
        {'overrides': ['data.label_noise=0.4']}, {'primary': {'recipe': 'kd', 'budget': 0.5}},
        {'schedules': {0.5: ['optimizer.lr=0.1'], 1: ['optimizer.lr=0.1']}},
        {'past_runs': {'clean': {'yaml': RECIPE, 'overrides': ['optimizer.lr=0.02']}}},
        {'recipes': {**BASE['recipes'], 'kd': {**BASE['recipes']['kd'], 'budgets': [0.5, 1]}}},
    ]
    hashes = [sha({**BASE, **change}) for change in what_it_compares]
    assert base not in hashes and len(set(hashes)) == len(hashes)


def test_the_hash_is_the_sha256_of_the_canonical_text():
    import hashlib

    sweep = parse_sweep(BASE, 's.yaml')
    assert registration_hash(sweep) == hashlib.sha256(canonical_text(sweep).encode()).hexdigest()
    small = {'results': 'x', 'seeds': [1], 'baseline': 'b', 'recipes': {'b': {'yaml': RECIPE}}}
    assert canonical_text(parse_sweep(small, 's.yaml')) == (
        '{\n "artifacts": null,\n "baseline": "b",\n "budgets": [\n  1.0\n ],\n "overrides": [],\n "past": null,\n'
        ' "past_runs": null,\n "primary": null,\n "recipes": {\n  "b": {\n   "overrides": [],\n'
        f'   "yaml": "{RECIPE}"\n  }}\n }},\n "reference": null,\n "schedules": null,\n "seeds": [\n  1\n ],\n'
        ' "tune": null\n}')
    assert sha(small) == '192e8ed96b9ed6007acddf2534a6dc5861b746c12c33690f3082e27cdc953e7b'


# A stand-in for train.py: it finishes its run at once with a final accuracy of 0.5.
STAND_IN = """
import json, os, sys
args = dict(a.split('=', 1) for a in sys.argv[2:])
os.makedirs(args['save_folder'], exist_ok=True)
with open(os.path.join(args['save_folder'], 'metrics.json'), 'w') as f:
    json.dump({'eval': [{'epoch': 1, 'batch': 1, 'val_accuracy': 0.5, 'accuracy': 0.5}], 'finished': True,
               'wall_seconds': 0.1}, f)
"""


def steps_of(results: Path) -> list[str]:
    return [row['step'] for row in csv.DictReader(io.StringIO(read_steps(str(results))))]


def test_a_sweep_registers_before_it_runs_records_its_steps_and_refuses_other_comparisons(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    script, results = tmp_path / 'train.py', tmp_path / 'results'
    script.write_text(STAND_IN)
    content = {'results': str(results), 'seeds': [1, 2], 'baseline': 'b', 'recipes': {'b': {'yaml': RECIPE}}}

    def sweep(changes: dict, dry_run: bool = False) -> int:
        return run_sweep(parse_sweep({**content, **changes}, 's.yaml'), str(script), dry_run)

    assert sweep({}, dry_run=True) == 0 and not results.exists()  # a dry run registers and records nothing
    assert sweep({}) == 0
    recorded = read_registration(str(results))
    assert recorded['sha256'] == sha(content) and recorded['before_runs'] is True
    assert recorded['text'] == canonical_text(parse_sweep(content, 's.yaml')) and recorded['keys'] == list(COMPARISON_KEYS)
    assert steps_of(results) == ['evaluation']
    row = next(csv.DictReader(io.StringIO(read_steps(str(results)))))
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', row['start']) and row['start'] <= row['end']

    assert sweep({'parallel': 2}) == 0  # how it runs may change; everything is finished: no row
    assert steps_of(results) == ['evaluation']
    assert read_registration(str(results)) == recorded
    (results / 'b' / 'b1' / 'seed2' / 'metrics.json').unlink()  # a run to train again: a second session's row
    (results / 'b' / 'b1' / 'seed2' / 'fingerprint.json').unlink()
    assert sweep({}) == 0 and steps_of(results) == ['evaluation', 'evaluation']

    with pytest.raises(UsageError) as e:
        sweep({'seeds': [1, 2, 3]})
    assert str(e.value) == (
        f'this sweep makes other comparisons than {results}/{REGISTRATION_FILE} registered: first changed key seeds '
        '(registered: [1, 2], now: [1, 2, 3]): a study\'s comparisons are fixed when it first runs, so give the '
        'changed sweep a new results folder')
    assert not (results / 'b' / 'b1' / 'seed3').exists() and steps_of(results) == ['evaluation', 'evaluation']


def test_a_results_folder_that_ran_before_registration_is_registered_after_its_runs(tmp_path):
    results = tmp_path / 'old'
    storage.write_bytes(str(results / 'sweep.yaml'), b'seeds: [1]\n')  # what an earlier sweep wrote
    recorded = register(parse_sweep({**BASE, 'results': str(results)}, 's.yaml'))
    assert recorded['before_runs'] is False and read_registration(str(results)) == recorded


def test_steps_sum_per_step_and_a_step_records_only_the_work_it_did(tmp_path):
    text = ('step,start,end\npast_runs,2025-05-01T09:00:00Z,2025-05-01T09:30:00Z\n'
            'evaluation,2025-05-01T10:00:00Z,2025-05-01T11:00:00Z\nevaluation,2025-05-02T12:00:00Z,2025-05-02T12:15:00Z\n'
            'report,2025-05-02T12:15:00Z,2025-05-02T12:15:04Z\n')
    assert step_seconds(text) == {'past_runs': 1800.0, 'evaluation': 4500.0, 'report': 4.0}
    assert step_seconds('step,start,end\n') == {}
    results = str(tmp_path / 'r')
    with timed_step(results, 'tuning'):
        pass  # found everything done: no row
    assert not (tmp_path / 'r' / STEPS_FILE).exists() and read_steps(results) == 'step,start,end\n'
    with pytest.raises(RuntimeError), timed_step(results, 'tuning') as clock:
        clock.worked()
        raise RuntimeError('stopped')  # a step that started work and was stopped still took its time
    assert steps_of(tmp_path / 'r') == ['tuning']
    with pytest.raises(ValueError, match='one of past_runs, artifacts, tuning, evaluation, report'):
        append_step(results, 'training', 'a', 'b')


def test_a_step_killed_outright_keeps_its_row_up_to_its_last_job(tmp_path):
    """A session lost to SIGKILL runs no ``finally``: the row written at the first job and moved at each job event
    is still there, ending at the last one."""
    results = tmp_path / 'r'
    append_step(str(results), 'past_runs', '2025-05-01T09:00:00Z', '2025-05-01T09:30:00Z')
    script = (
        'import os, signal, time\n'
        'from recipes.study.steps import timed_step\n'
        f'with timed_step({str(results)!r}, "tuning") as clock:\n'
        '    clock.worked()\n'
        '    time.sleep(1.2)\n'
        '    clock.worked()\n'
        '    os.kill(os.getpid(), signal.SIGKILL)\n'
    )
    killed = subprocess.run([sys.executable, '-c', script], cwd=ROOT, check=False)
    assert killed.returncode == -signal.SIGKILL
    rows = list(csv.DictReader(io.StringIO(read_steps(str(results)))))
    assert [row['step'] for row in rows] == ['past_runs', 'tuning']
    assert step_seconds(read_steps(str(results)))['tuning'] >= 1.0  # its end moved past its start


def test_registration_and_steps_in_s3(s3_bucket):
    results = f'{s3_bucket}/studies/x'
    sweep = parse_sweep({**BASE, 'results': results}, 's.yaml')
    recorded = register(sweep)
    assert recorded['before_runs'] is True and read_registration(results) == recorded
    assert register(sweep) == recorded  # the same comparisons: accepted, unchanged
    with pytest.raises(UsageError, match=r'first changed key past \(registered: \[17, 18\], now: \[17\]\)'):
        register(parse_sweep({**BASE, 'results': results, 'past': [17]}, 's.yaml'))
    append_step(results, 'past_runs', '2025-05-01T09:00:00Z', '2025-05-01T09:00:30Z')
    append_step(results, 'artifacts', '2025-05-01T09:00:30Z', '2025-05-01T09:01:00Z')
    assert step_seconds(read_steps(results)) == {'past_runs': 30.0, 'artifacts': 30.0}
    assert storage.exists(storage.join(results, STEPS_FILE))
