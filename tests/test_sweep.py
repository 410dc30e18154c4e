"""launch/sweep.py: a real digits sweep and its report, a sweep killed mid-run and started again, sweep YAML errors."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY, run_cli

from recipes.config import load_config
from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.core.run_files import read_history
from recipes.study.report import PLOTS
from recipes.study.sweep import RunState, command, load_sweep, parse_sweep, plan, run_state

RECIPE = 'yamls/digits/baseline.yaml'
SMOOTHING = 'algorithms.label_smoothing.smoothing=0.1'


def write_sweep(tmp_path, seeds, **changes) -> str:
    body = {
        'results': str(tmp_path / 'results'),
        'seeds': seeds,
        'baseline': 'baseline',
        'overrides': TINY,
        'recipes': {'baseline': {'yaml': RECIPE}, 'smoothing': {'yaml': RECIPE, 'overrides': [SMOOTHING]}},
        **changes,
    }
    path = tmp_path / 'sweep.yaml'
    path.write_text(yaml.safe_dump(body))
    return str(path)


def test_sweep_trains_every_recipe_and_seed_then_reports(tmp_path):
    sweep = write_sweep(tmp_path, [1, 2])
    result = run_cli('sweep.py', sweep, 'optimizer.lr=0.07')  # a command-line override reaches every run
    assert result.returncode == 0, result.stderr[-3000:]
    headers = [line for line in result.stdout.splitlines() if line.startswith('=== [')]
    assert [h.split('] ')[1].split(':')[0] for h in headers] == [
        'baseline seed 1', 'smoothing seed 1', 'baseline seed 2', 'smoothing seed 2',
    ]
    results = tmp_path / 'results'
    finals = {}
    for recipe in ('baseline', 'smoothing'):
        for seed in (1, 2):
            folder = results / recipe / f'seed{seed}'
            history = read_history(str(folder))
            assert history['finished'] and history['eval'][-1]['batch'] == 4
            finals.setdefault(recipe, []).append(history['eval'][-1]['accuracy'])
            cfg = load_config(str(folder / 'config.yaml'))
            assert (cfg.seed, cfg.run_name, cfg.optimizer.lr) == (seed, f'{recipe}-s{seed}', 0.07)
            assert ('label_smoothing' in cfg.algorithms) == (recipe == 'smoothing')

    report = results / 'report'
    assert sorted(os.listdir(report)) == sorted(['results.md', 'results.csv', *PLOTS])
    assert all((report / p).read_bytes().startswith(b'\x89PNG') for p in PLOTS)
    with open(report / 'results.csv', newline='') as f:
        rows = {row['recipe']: row for row in csv.DictReader(f)}
    assert list(rows) == ['baseline', 'smoothing']
    for recipe, accuracies in finals.items():
        assert (rows[recipe]['n'], rows[recipe]['to_baseline_unit']) == ('2', 'batch')  # one eval, mid-epoch
        assert float(rows[recipe]['final_mean']) == pytest.approx(sum(accuracies) / 2, abs=1e-12)
    table = [line for line in result.stdout.splitlines() if line.startswith(('| baseline | 2 |', '| smoothing | 2 |'))]
    assert len(table) == 2  # the table is printed
    assert f'report: {report}/results.md' in result.stdout


def test_a_killed_sweep_started_again_skips_finished_runs_and_resumes_the_dead_one(tmp_path):
    sweep = write_sweep(tmp_path, [1])
    first, second = tmp_path / 'results' / 'baseline' / 'seed1', tmp_path / 'results' / 'smoothing' / 'seed1'
    log = tmp_path / 'first.log'
    with open(log, 'w') as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / 'launch' / 'sweep.py'), sweep],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.time() + 240
    while not (second / 'config.yaml').exists():  # the second run has started training
        assert process.poll() is None and time.time() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the sweep and the run it started, as a preemption would
    process.wait()
    assert read_history(str(first))['finished']
    assert run_state(str(second)) is RunState.DIED
    kept = {name: (first / name).stat().st_mtime_ns for name in os.listdir(first)}
    assert {'metrics.json', 'ep0-ba2-rank0.pt', 'ep0-ba4-rank0.pt'} <= set(kept)

    again = run_cli('sweep.py', sweep)
    assert again.returncode == 0, again.stderr[-3000:]
    assert '=== [1/2] baseline seed 1: skipped (finished)' in again.stdout
    assert '=== [2/2] smoothing seed 1: resume (started, not finished)' in again.stdout
    assert again.stdout.count('\n$ ') == 1  # one run started
    assert {name: (first / name).stat().st_mtime_ns for name in os.listdir(first)} == kept
    assert read_history(str(second))['finished']
    assert 'sweep: 2 runs, 1 already finished, 1 trained' in again.stdout


def group(pgid: int) -> dict[int, str]:
    """The live processes of a process group, with their command lines."""
    members = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    members[int(entry)] = (Path('/proc') / entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
            except (ProcessLookupError, FileNotFoundError):
                pass
    return members


def test_sigterm_to_the_sweep_alone_stops_its_run_too(tmp_path):
    sweep = write_sweep(tmp_path, [1], recipes={'baseline': {'yaml': RECIPE}})
    process = subprocess.Popen(
        [sys.executable, str(ROOT / 'launch' / 'sweep.py'), sweep],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while not (runs := [pid for pid, cmd in group(process.pid).items() if 'launch/train.py' in cmd]):
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.05)
        [run] = runs
        process.send_signal(signal.SIGTERM)  # to the sweep only, as `kill PID` does
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
        with pytest.raises(ProcessLookupError):
            os.kill(run, 0)
    finally:
        if group(process.pid):
            os.killpg(process.pid, signal.SIGKILL)


def test_plan_orders_runs_by_seed_and_layers_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    sweep = load_sweep(write_sweep(tmp_path, [3, 4], ranks=2), ['optimizer.lr=0.07'])
    runs = plan(sweep)
    assert [r.name for r in runs] == ['baseline-s3', 'smoothing-s3', 'baseline-s4', 'smoothing-s4']
    folder = str(tmp_path / 'results' / 'smoothing' / 'seed4')
    assert runs[3].overrides == (
        *TINY, SMOOTHING, 'optimizer.lr=0.07', 'seed=4', 'run_name=smoothing-s4', f'save_folder={folder}',
        'autoresume=true',
    )
    argv = command(runs[3], sweep.ranks, 'launch/train.py')
    assert argv[1:5] == ['-n', '2', 'launch/train.py', RECIPE] and argv[0].endswith('composer')
    assert run_state(folder) is RunState.NEW


def test_run_state_reads_s3_run_folders(s3_bucket):
    folder = f'{s3_bucket}/sweep/kd/seed1'
    assert run_state(folder) is RunState.NEW
    storage.write_bytes(f'{folder}/config.yaml', b'seed: 1\n')
    assert run_state(folder) is RunState.DIED
    storage.write_bytes(f'{folder}/metrics.json', json.dumps({'eval': [], 'finished': False}).encode())
    assert run_state(folder) is RunState.DIED
    storage.write_bytes(f'{folder}/metrics.json', json.dumps({'eval': [], 'finished': True}).encode())
    assert run_state(folder) is RunState.FINISHED


GOOD = {'results': 'r', 'seeds': [1], 'baseline': 'b', 'recipes': {'b': {'yaml': RECIPE}}}


@pytest.mark.parametrize(('changes', 'message'), [
    ({'sead': [1]}, "unknown key 'sead' (did you mean 'seeds'?)"),
    ({'seeds': [1, 1]}, 'seeds [1, 1] repeat a seed: each seed is one independent run'),
    ({'seeds': None}, 'seeds needs a value (see the sweep YAML format in the README)'),
    ({'ranks': 0}, 'ranks=0 must be a whole number >= 1 (processes per run)'),
    ({'baseline': 'base'}, "baseline 'base' is not one of the recipes (b)"),
    ({'recipes': {'b': {'yml': RECIPE}}}, "unknown key recipes.b.'yml' (did you mean recipes.b.'yaml'?)"),
    ({'recipes': {'b/c': {'yaml': RECIPE}}}, "recipe name 'b/c' must be letters, digits, _ . or - (it names a folder)"),
    ({'overrides': ['seed=3']}, "overrides sets 'seed', which the sweep sets for every run (seed, run_name, "
                                'save_folder, autoresume): remove it (seeds go in seeds:, folders under results:)'),
    ({'overrides': ['lr']}, "overrides entry 'lr' is not key=value (for example seed=3)"),
])
def test_sweep_yaml_mistakes_are_one_line_errors(changes, message):
    with pytest.raises(UsageError) as e:
        parse_sweep({**GOOD, **changes}, 'study.yaml')
    assert str(e.value) == f'study.yaml: {message}'


def test_every_recipe_config_is_checked_before_any_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    recipes = {'baseline': {'yaml': RECIPE}, 'late': {'yaml': RECIPE, 'overrides': ['optimizer.lrr=0.1']}}
    with pytest.raises(UsageError) as e:
        load_sweep(write_sweep(tmp_path, [1], recipes=recipes))
    assert str(e.value) == f"{tmp_path}/sweep.yaml: recipe 'late': unknown config key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"
    with pytest.raises(UsageError) as e:
        load_sweep(write_sweep(tmp_path, [1], recipes={'baseline': {'yaml': 'yamls/none.yaml'}}))
    assert str(e.value) == (
        f'{tmp_path}/sweep.yaml: recipes.baseline.yaml=yamls/none.yaml does not exist (paths are relative to {ROOT})'
    )
