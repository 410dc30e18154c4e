"""launch/sweep.py: a real digits sweep over budgets and its report, a sweep killed mid-run and started again, sweep YAML
errors."""

import csv
import dataclasses
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
from recipes.study.plots import PLOTS
from recipes.study.runner import RunState, command, logs_folder, run_state, run_sweep
from recipes.study.spec import SweepSpec, load_sweep, parse_sweep, plan, split_overrides

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


def test_sweep_trains_every_budget_and_seed_then_reports_the_multipliers(tmp_path):
    recipes = {'baseline': {'yaml': RECIPE}, 'smoothing': {'yaml': RECIPE, 'overrides': [SMOOTHING], 'budgets': [1]}}
    sweep = write_sweep(tmp_path, [1, 2], budgets=[1, 0.5], recipes=recipes)
    result = run_cli('sweep.py', sweep, 'optimizer.lr=0.07', timeout=900)  # an override reaches every run; 6 runs
    assert result.returncode == 0, result.stderr[-3000:]
    headers = [line for line in result.stdout.splitlines() if line.startswith('=== [')]
    assert [h.split('] ')[1].split(':')[0] for h in headers] == [
        'baseline budget 0.5 seed 1', 'baseline budget 1 seed 1', 'smoothing budget 1 seed 1',
        'baseline budget 0.5 seed 2', 'baseline budget 1 seed 2', 'smoothing budget 1 seed 2',
    ]
    results = tmp_path / 'results'
    finals = {}
    for recipe, budget in (('baseline', 0.5), ('baseline', 1), ('smoothing', 1)):
        for seed in (1, 2):
            folder = results / recipe / f'b{budget:g}' / f'seed{seed}'
            history = read_history(str(folder))
            assert history['finished'] and history['eval'][-1]['batch'] == 4 * budget  # max_duration=4ba, scaled
            finals.setdefault((recipe, f'{budget:g}'), []).append(history['eval'][-1]['accuracy'])
            cfg = load_config(str(folder / 'config.yaml'))
            assert (cfg.seed, cfg.run_name, cfg.optimizer.lr) == (seed, f'{recipe}-b{budget:g}-s{seed}', 0.07)
            assert cfg.scale_schedule_ratio == budget
            assert ('label_smoothing' in cfg.algorithms) == (recipe == 'smoothing')

    report = results / 'report'
    assert sorted(os.listdir(report)) == sorted(['results.md', 'results.csv', 'meta.json', *PLOTS])
    assert all((report / p).read_bytes().startswith(b'\x89PNG') for p in PLOTS)
    with open(report / 'results.csv', newline='') as f:
        rows = {(row['recipe'], row['budget']): row for row in csv.DictReader(f)}
    assert list(rows) == list(finals)
    for key, accuracies in finals.items():
        assert (rows[key]['n'], rows[key]['time_unit']) == ('2', 'batch')  # one eval, mid-epoch
        assert float(rows[key]['final_mean']) == pytest.approx(sum(accuracies) / 2, abs=1e-12)
    smoothing = rows['smoothing', '1']
    for accounting in ('sunk', 'total'):  # placed on the two-budget frontier, with a bootstrap interval
        value, low, high = (float(smoothing[f'multiplier_{accounting}{s}']) for s in ('', '_lo', '_hi'))
        bound = smoothing[f'multiplier_{accounting}_bound']
        assert value > 0 and 0 <= low <= high and bound in ('', '>', '<')
        assert low > 0 or bound == '<'  # below the frontier's lowest point the interval reaches down to 0
    assert rows['baseline', '1']['multiplier_sunk'] == ''  # the frontier itself
    table = [line for line in result.stdout.splitlines() if line.startswith('| ')]
    assert table[0].startswith('| recipe | budget | n | final acc % (mean ± sd) | median % | collapsed | M sunk [CI at '
                               'its Holm level]: verdict | M fresh [CI at its Holm level]: verdict | M total [CI at its '
                               'Holm level]: verdict | M sunk of medians |')
    assert [line.split(' | ')[:3] for line in table[1:]] == [  # the '|---|' rule does not start with '| '
        ['| baseline', '0.5', '2'], ['| baseline', '1', '2'], ['| smoothing', '1', '2'],
    ]
    assert f'report: {report}/results.md' in result.stdout


def test_a_killed_sweep_started_again_skips_finished_runs_and_resumes_the_dead_one(tmp_path):
    sweep = write_sweep(tmp_path, [1])
    first, second = (tmp_path / 'results' / recipe / 'b1' / 'seed1' for recipe in ('baseline', 'smoothing'))
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
    assert '=== [1/2] baseline budget 1 seed 1: skipped (finished)' in again.stdout
    assert '=== [2/2] smoothing budget 1 seed 1: resume (started, not finished)' in again.stdout
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
    assert [r.name for r in runs] == ['baseline-b1-s3', 'smoothing-b1-s3', 'baseline-b1-s4', 'smoothing-b1-s4']
    folder = str(tmp_path / 'results' / 'smoothing' / 'b1' / 'seed4')
    assert runs[3].overrides == (
        *TINY, SMOOTHING, 'optimizer.lr=0.07', 'seed=4', 'scale_schedule_ratio=1', 'run_name=smoothing-b1-s4',
        f'save_folder={folder}', 'autoresume=true', 'threads=1',
    )
    argv = command(runs[3], sweep.ranks, 'launch/train.py')
    assert argv[1:5] == ['-n', '2', 'launch/train.py', RECIPE] and argv[0].endswith('composer')
    assert run_state(folder) is RunState.NEW


def test_plan_runs_the_baseline_at_every_budget_and_the_others_at_theirs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    recipes = {'baseline': {'yaml': RECIPE}, 'smoothing': {'yaml': RECIPE, 'overrides': [SMOOTHING], 'budgets': [0.25]}}
    sweep = load_sweep(write_sweep(tmp_path, [7], budgets=[2, 0.25, 1], recipes=recipes))
    assert sweep.budgets == (0.25, 1.0, 2.0)
    runs = plan(sweep)
    assert [r.name for r in runs] == ['baseline-b0.25-s7', 'smoothing-b0.25-s7', 'baseline-b1-s7', 'baseline-b2-s7']
    assert [r.folder for r in runs][:2] == [
        str(tmp_path / 'results' / 'baseline' / 'b0.25' / 'seed7'), str(tmp_path / 'results' / 'smoothing' / 'b0.25' / 'seed7'),
    ]
    assert [o for r in runs for o in r.overrides if o.startswith('scale_schedule_ratio=')] == [
        'scale_schedule_ratio=0.25', 'scale_schedule_ratio=0.25', 'scale_schedule_ratio=1', 'scale_schedule_ratio=2',
    ]
    written = parse_sweep(yaml.safe_load(sweep.to_yaml()), 'sweep.yaml')  # the manifest the report reads back
    assert (written.budgets, written.budgets_of('smoothing'), written.budgets_of('baseline')) == (
        (0.25, 1.0, 2.0), (0.25,), (0.25, 1.0, 2.0),
    )


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
    ({'reference': 'b'}, "reference 'b' must be one of the recipes other than the baseline (none), e.g. warm_start"),
    ({'parallel': 0}, 'parallel=0 must be a whole number >= 1 (runs trained at once)'),
    ({'parallel': 2, 'ranks': 2}, 'parallel=2 with ranks=2: runs of several ranks already share the machine, so '
                                  'train them one at a time (parallel: 1), or use ranks: 1'),
    ({'baseline': 'base'}, "baseline 'base' is not one of the recipes (b)"),
    ({'recipes': {'b': {'yml': RECIPE}}}, "unknown key recipes.b.'yml' (did you mean recipes.b.'yaml'?)"),
    ({'recipes': {'b/c': {'yaml': RECIPE}}}, "recipe name 'b/c' must be letters, digits, _ . or - (it names a folder)"),
    ({'overrides': ['seed=3']}, "overrides sets 'seed', which the sweep sets for every run (seed, "
                                'scale_schedule_ratio, run_name, save_folder, autoresume, threads): remove it (seeds go in '
                                'seeds:, folders under results:)'),
    ({'budgets': [0.5, 0]}, 'budgets=[0.5, 0] must be a list of ratios of max_duration in (0, 100], e.g. '
                            '[0.25, 0.5, 1, 2]'),
    ({'budgets': [1, 1.0]}, 'budgets=[1, 1.0] repeats a budget'),
    ({'budgets': [1], 'recipes': {'b': {'yaml': RECIPE}, 'k': {'yaml': RECIPE, 'budgets': [0.5]}}},
     "recipes.k.budgets has 0.5, not in budgets [1.0]: a recipe may only narrow the sweep's budgets"),
    ({'budgets': [0.5, 1], 'recipes': {'b': {'yaml': RECIPE, 'budgets': [1]}}},
     'recipes.b.budgets narrows the baseline: it trains at every budget (the frontier), so remove its budgets'),
    ({'overrides': ['lr']}, "overrides entry 'lr' is not key=value (for example seed=3)"),
    ({'launcher': 'slurm'}, "launcher='slurm' is unknown: choose one of local, ray"),
    ({'ray': {'adress': 'auto'}}, "unknown key ray.'adress' (did you mean ray.'address'?)"),
    ({'ray': 'auto'}, "ray='auto' must be a mapping {address: auto, gpus_per_run: 8, ...}"),
    ({'ray': {'address': 'localhost'}}, "ray.address='localhost' must be auto, HOST:PORT of the head (e.g. "
                                        '10.0.0.5:6379) or ray://HOST:10001'),
    ({'ray': {'max_retries': -1}}, 'ray.max_retries=-1 must be a whole number >= 0 (retries of a run whose worker or '
                                   'node died)'),
    ({'ray': {'runtime_env': ['pip']}}, "ray.runtime_env=['pip'] must be a mapping such as {env_vars: {NAME: value}}"),
    ({'launcher': 'ray', 'parallel': 2}, 'parallel=2 is for launcher local: a Ray cluster runs as many runs at once as '
                                         'its resources allow (ray.gpus_per_run, ray.cpus_per_run each), so pass '
                                         'parallel=1'),
    ({'launcher': 'ray', 'ranks': 8, 'ray': {'gpus_per_run': 4}},
     'ray.gpus_per_run=4 with ranks=8: give each rank of composer -n 8 a GPU (gpus_per_run: 8), or 0 for runs on CPUs'),
    ({'launcher': 'ray', 'ray': {'gpus_per_run': 1.5}},
     'ray.gpus_per_run=1.5: Ray grants whole GPUs, or a fraction of one: use a whole number'),
])
def test_sweep_yaml_mistakes_are_one_line_errors(changes, message):
    with pytest.raises(UsageError) as e:
        parse_sweep({**GOOD, **changes}, 'study.yaml')
    assert str(e.value) == f'study.yaml: {message}'


def test_the_ray_keys_default_to_the_sweeps_ranks_and_round_trip_through_sweep_yaml():
    sweep = parse_sweep({**GOOD, 'ranks': 8, 'launcher': 'ray', 'ray': {'runtime_env': {'env_vars': {'A': '1'}}}}, 's')
    assert (sweep.ray.address, sweep.gpus_per_run(), sweep.ray.cpus_per_run, sweep.ray.max_retries) == ('auto', 8, 1, 3)
    assert parse_sweep(yaml.safe_load(sweep.to_yaml()), 'sweep.yaml') == sweep
    assert parse_sweep(GOOD, 's').launcher == 'local'


def test_sweep_keys_on_the_command_line_set_the_sweep_and_the_rest_go_to_every_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    sweep = load_sweep(write_sweep(tmp_path, [1], ray={'address': 'auto', 'cpus_per_run': 4}),
                       ['launcher=ray', 'ray.address=10.0.0.5:6379', 'ray.gpus_per_run=0', 'optimizer.lr=0.07'])
    assert (sweep.launcher, sweep.ray.address, sweep.gpus_per_run(), sweep.ray.cpus_per_run) == (
        'ray', '10.0.0.5:6379', 0, 4)  # the YAML's other ray keys stay
    assert all(r.overrides[-1] == 'optimizer.lr=0.07' for r in sweep.recipes.values())
    assert split_overrides(['seeds=[3, 4]', 'ray.runtime_env={env_vars: {A: b}}', 'seed=3']) == (
        {'seeds': [3, 4], 'ray': {'runtime_env': {'env_vars': {'A': 'b'}}}}, ('seed=3',))
    with pytest.raises(UsageError) as e:
        load_sweep(write_sweep(tmp_path, [1]), ['launcher=rya'])
    assert str(e.value) == f"{tmp_path}/sweep.yaml: launcher='rya' is unknown (did you mean 'ray'?): choose one of local, ray"


def test_no_config_key_shares_a_name_with_a_sweep_key():  # split_overrides routes a key=value by its first name
    from recipes.config import TrainConfig

    assert not {f.name for f in dataclasses.fields(TrainConfig)} & {f.name for f in dataclasses.fields(SweepSpec)}


def test_launcher_ray_without_ray_installed_names_the_extra_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'ray', None)  # import ray: ModuleNotFoundError, as where it is not installed
    monkeypatch.delitem(sys.modules, 'recipes.study.ray_launcher', raising=False)
    sweep = parse_sweep({**GOOD, 'results': str(tmp_path / 'results'), 'launcher': 'ray'}, 's.yaml')
    with pytest.raises(UsageError) as e:
        run_sweep(sweep, 'launch/train.py')
    assert str(e.value) == ("launcher=ray needs Ray, which is not installed here: pip install -e '.[cluster]' (the "
                            'cluster extra, resolved with the project)')
    assert not (tmp_path / 'results').exists()


def test_every_recipe_config_is_checked_before_any_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    recipes = {'baseline': {'yaml': RECIPE}, 'late': {'yaml': RECIPE, 'overrides': ['optimizer.lrr=0.1']}}
    with pytest.raises(UsageError) as e:
        load_sweep(write_sweep(tmp_path, [1], recipes=recipes))
    assert str(e.value) == f"{tmp_path}/sweep.yaml: recipe 'late' at budget 1: unknown config key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"
    with pytest.raises(UsageError) as e:
        load_sweep(write_sweep(tmp_path, [1], recipes={'baseline': {'yaml': 'yamls/none.yaml'}}))
    assert str(e.value) == (
        f'{tmp_path}/sweep.yaml: recipes.baseline.yaml=yamls/none.yaml does not exist (paths are relative to {ROOT})'
    )


# The scheduler's own behaviour, timed by a stand-in for train.py: it records when its run started and ended and the
# threads it was given, and fails when its run name is in FAIL, after 1 s where the others take 0.6 s: the run beside
# it has finished by then, and the next one is in flight.
STAND_IN = """
import json, os, sys, time
name = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('run_name='))
folder = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('save_folder='))
fail = name in os.environ.get('FAIL', '').split(',')
start = time.time()
print('training', name, flush=True)
time.sleep(1.0 if fail else 0.6)
with open(os.environ['STAND_IN_LOG'], 'a') as f:
    f.write(json.dumps([name, start, time.time(), os.environ.get('OMP_NUM_THREADS')]) + '\\n')
if fail:
    sys.exit(3)
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, 'metrics.json'), 'w') as f:
    json.dump({'eval': [], 'finished': True}, f)
"""


def stand_in_sweep(tmp_path, monkeypatch, fail: str = '') -> tuple[int, list]:
    script, record = tmp_path / 'train.py', tmp_path / 'record.jsonl'
    script.write_text(STAND_IN)
    monkeypatch.setenv('STAND_IN_LOG', str(record))
    monkeypatch.setenv('FAIL', fail)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    sweep = parse_sweep({**GOOD, 'results': str(tmp_path / 'results'), 'seeds': [1, 2, 3, 4, 5], 'parallel': 2}, 's.yaml')
    code = run_sweep(sweep, str(script))
    return code, [json.loads(line) for line in record.read_text().splitlines()]


def test_parallel_sweep_trains_two_runs_at_once_each_with_half_the_cores(tmp_path, monkeypatch):
    code, record = stand_in_sweep(tmp_path, monkeypatch)
    assert code == 0
    assert sorted(r[0] for r in record) == [f'b-b1-s{s}' for s in range(1, 6)]
    events = sorted([(start, 1) for _, start, _, _ in record] + [(end, -1) for _, _, end, _ in record])
    running = [sum(step for _, step in events[: i + 1]) for i in range(len(events))]
    assert max(running) == 2  # never a third run beside two
    assert {threads for *_, threads in record} == {str(max(1, (os.cpu_count() or 1) // 2))}
    logs = logs_folder(str(tmp_path / 'results'))
    assert logs == tmp_path / 'results' / 'logs'
    assert (logs / 'b-b1-s3.log').read_text() == 'training b-b1-s3\n'
    assert logs_folder('s3://bucket/sweep') == Path('sweep-logs')


def test_parallel_sweep_starts_nothing_after_a_failure_and_lets_the_run_in_flight_finish(tmp_path, monkeypatch, capsys):
    code, record = stand_in_sweep(tmp_path, monkeypatch, fail='b-b1-s2')
    assert code == 3
    assert sorted(r[0] for r in record) == ['b-b1-s1', 'b-b1-s2', 'b-b1-s3']  # s3 had started beside s2 and finished
    assert run_state(str(tmp_path / 'results' / 'b' / 'b1' / 'seed3')) is RunState.FINISHED
    log = tmp_path / 'results' / 'logs' / 'b-b1-s2.log'
    assert f'run b-b1-s2 failed with exit status 3 (its output: {log}): fix the cause' in capsys.readouterr().err
