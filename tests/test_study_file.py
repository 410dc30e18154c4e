"""A study in one file: past runs, the artifacts made of them (EL2N scores, an adversarial bank, a teacher cache), the
recipes that read them, run by ``launch/sweep.py FILE`` from nothing to the report, locally and on a Ray cluster in
a loopback-only namespace (tests/test_sweep_ray.py), killed during an artifact build and started again, and the
file's mistakes refused in one line before anything runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY
from test_sweep_ray import PORT, cluster, finals, wait_for  # noqa: F401  (cluster: the Ray fixture)

from recipes.core.errors import UsageError
from recipes.study.spec import artifact_plan, parse_sweep, past_run_plan, plan

# A past run long enough to hold two checkpoints (2 and 6 batches); the builders read its latest one.
PAST = ['max_duration=6ba', 'eval_interval=2ba', 'save_interval=2ba', 'data.num_workers=0', 'callbacks={}']


def study(results: str, **changes) -> dict:
    """Two past runs (seeds 17 and 18) of one family, the three artifacts of each, three recipes reading them."""
    return {
        'results': results, 'parallel': 2, 'seeds': [1], 'baseline': 'baseline', 'past': [17, 18],
        'overrides': TINY,
        'past_runs': {'clean': {'yaml': 'yamls/digits/baseline.yaml', 'overrides': PAST}},
        'artifacts': {
            'el2n': {'builder': 'score', 'run': 'clean', 'args': {'method': 'el2n', 'checkpoints': 'latest'}},
            'bank': {'builder': 'adv_bank', 'run': 'clean',
                     'args': {'checkpoints': 'latest', 'eps': '8/255', 'steps': 2, 'step_size': '4/255',
                              'fraction': 0.1, 'seed': '{past}', 'num_workers': 0}},
            'cache': {'builder': 'teacher_cache', 'run': 'clean',
                      'args': {'checkpoint': 'latest', 'top_k': 10, 'views': 2, 'seed': '{past}'}},
        },
        'recipes': {
            'baseline': {'yaml': 'yamls/digits/baseline.yaml'},
            'kd': {'yaml': 'yamls/digits/kd.yaml', 'overrides': [
                'algorithms.past_run_distillation.run={past_runs.clean}',
                'algorithms.past_run_distillation.cache={artifacts.cache}', 'data.augment_on=device']},
            'curriculum': {'yaml': 'yamls/digits/grand_curriculum.yaml',
                           'overrides': ['algorithms.grand_curriculum.scores={artifacts.el2n}']},
            'adv': {'yaml': 'yamls/digits/adv_replay.yaml',
                    'overrides': ['algorithms.adversarial_replay.bank={artifacts.bank}']},
        },
        **changes,
    }


def refusal(**changes) -> str:
    content = study('r')
    content.update({key: {**content[key], **value} if key in ('artifacts', 'recipes') else value
                    for key, value in changes.items()})
    with pytest.raises(UsageError) as e:
        parse_sweep(content, 'study.yaml')
    return str(e.value)


def test_placeholders_fill_each_seeds_past_run_and_artifact_and_name_what_they_wait_on():
    sweep = parse_sweep(study('r', seeds=[1, 2]), 'study.yaml')
    assert [(r.name, r.folder) for r in past_run_plan(sweep)] == [
        ('past-clean-s17', 'r/past/clean/seed17'), ('past-clean-s18', 'r/past/clean/seed18')]
    assert past_run_plan(sweep)[0].overrides == (
        *PAST, 'seed=17', 'run_name=past-clean-s17', 'save_folder=r/past/clean/seed17', 'autoresume=true', 'threads=1')
    builds = artifact_plan(sweep)
    assert [(b.name, b.out) for b in builds[:3]] == [
        ('artifact-el2n-s17', 'r/past/artifacts/el2n-s17.npy'), ('artifact-bank-s17', 'r/past/artifacts/bank-s17'),
        ('artifact-cache-s17', 'r/past/artifacts/cache-s17')]
    assert builds[1].argv() == [
        'launch/build_adv_bank.py', '--run', 'r/past/clean/seed17', '--checkpoints', 'latest', '--eps', '8/255',
        '--steps', '2', '--step_size', '4/255', '--fraction', '0.1', '--seed', '17', '--num_workers', '0',
        '--out', 'r/past/artifacts/bank-s17']
    kd = {r.seed: r for r in plan(sweep) if r.recipe == 'kd'}  # seed s reuses past[s mod 2]: 1 -> 18, 2 -> 17
    assert 'algorithms.past_run_distillation.run=r/past/clean/seed18' in kd[1].overrides
    assert 'algorithms.past_run_distillation.cache=r/past/artifacts/cache-s17' in kd[2].overrides
    assert kd[1].needs == ('past-clean-s18', 'artifact-cache-s18')
    shared = parse_sweep(study('r', past_root='s3://bucket/past'), 'study.yaml')  # several studies share them
    assert artifact_plan(shared)[0].out == 's3://bucket/past/artifacts/el2n-s17.npy'


@pytest.mark.parametrize(('changes', 'message'), [
    ({'recipes': {'baseline': {'yaml': 'yamls/digits/baseline.yaml'},
                  'kd': {'yaml': 'yamls/digits/kd.yaml', 'overrides': ['algorithms.past_run_distillation.cache={artifacts.cahce}']}}},
     "recipes.kd.overrides names {artifacts.cahce}, which artifacts does not declare (did you mean {artifacts.cache}?): "
     'declare it under artifacts:, or name one that is'),
    ({'recipes': {'baseline': {'yaml': 'yamls/digits/baseline.yaml'},
                  'kd': {'yaml': 'yamls/digits/kd.yaml', 'overrides': ['algorithms.past_run_distillation.run={past_runs.noisy}']}}},
     'recipes.kd.overrides names {past_runs.noisy}, which past_runs does not declare (it declares clean): declare it '
     'under past_runs:, or name one that is'),
    ({'artifacts': {'el2n': {'builder': 'score', 'run': 'noisy', 'args': {'method': 'el2n', 'checkpoints': 'auto'}}}},
     "artifacts.el2n.run 'noisy' is not a family of past_runs (it declares clean): name one, or declare it under "
     'past_runs:'),
    ({'artifacts': {'el2n': {'builder': 'scores', 'run': 'clean', 'args': {'method': 'el2n'}}}},
     "artifacts.el2n.builder='scores' is unknown (did you mean 'score'?): choose one of score, adv_bank, teacher_cache"),
    ({'artifacts': {'bank': {'builder': 'adv_bank', 'run': 'clean', 'args': {'checkpoints': 'auto', 'eps': '300/255'}}}},
     'artifacts.bank.args.eps=1.176 (300/255) is out of range: use a value in (0, 1] of the pixel range, e.g. 8/255'),
    ({'artifacts': {'bank': {'builder': 'adv_bank', 'run': 'clean', 'args': {'checkpoints': 'auto', 'steps': 0}}}},
     'artifacts.bank.args.steps=0 is out of range: use a whole number in [1, 10000]'),
    ({'artifacts': {'el2n': {'builder': 'score', 'run': 'clean', 'args': {'method': 'el3n', 'checkpoints': 'auto'}}}},
     "artifacts.el2n.args.method='el3n' is unknown (did you mean 'el2n'?): choose one of grand, el2n, loss, "),
    ({'artifacts': {'el2n': {'builder': 'score', 'run': 'clean', 'args': {'methd': 'el2n', 'checkpoints': 'auto'}}}},
     "artifacts.el2n.args.methd: score takes no argument 'methd' (did you mean 'method'?) (it takes "
     'method, checkpoints, batch_size, num_workers, strict)'),
    ({'artifacts': {'cache': {'builder': 'teacher_cache', 'run': 'clean', 'args': {'checkpoint': 'latest'}}}},
     'artifacts.cache.args.top_k needs a value: teacher_cache needs top_k'),
    ({'artifacts': {'el2n': {'builder': 'score', 'run': 'clean', 'args': {'method': 'el2n', 'checkpoints': 'auto',
                                                                            'out': 'x.npy'}}}},
     "artifacts.el2n.args.out: the sweep gives score its --run (the past run of the artifact's family) and its --out "
     "(a path under the past runs' folder): remove it"),
    ({'past': ['a', 'b']}, "past value 'a' is the seed of a past run (past_runs): make every value of past a whole number"),
    ({'past': None}, 'past_runs and artifacts are made once per value of past: list the past runs\' seeds'),
])
def test_a_study_files_mistakes_are_one_line_before_anything_runs(changes, message):
    text = refusal(**changes)
    assert text.startswith('study.yaml: ') and message in text and '\n' not in text


def test_a_dry_run_of_a_study_in_s3_lists_every_step_in_order_without_credentials(tmp_path):
    path = tmp_path / 'study.yaml'
    path.write_text(yaml.safe_dump(sort_keys=False, data=study('s3://no-such-bucket/study')))
    env = {k: v for k, v in os.environ.items() if not k.startswith('AWS_') and k != 'S3_ENDPOINT_URL'}
    env.update(AWS_CONFIG_FILE='/nonexistent', AWS_SHARED_CREDENTIALS_FILE='/nonexistent',
               AWS_EC2_METADATA_DISABLED='true')
    done = subprocess.run([sys.executable, str(ROOT / 'launch' / 'sweep.py'), str(path), '--dry_run'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    heads = [line.split(':')[0] for line in done.stdout.splitlines() if line.startswith('=== ')]
    assert heads == [
        '=== past run [1/2] past run clean seed 17', '=== past run [2/2] past run clean seed 18',
        '=== artifact [1/6] artifact el2n (score) of past run clean seed 17',
        '=== artifact [2/6] artifact bank (adv_bank) of past run clean seed 17',
        '=== artifact [3/6] artifact cache (teacher_cache) of past run clean seed 17',
        '=== artifact [4/6] artifact el2n (score) of past run clean seed 18',
        '=== artifact [5/6] artifact bank (adv_bank) of past run clean seed 18',
        '=== artifact [6/6] artifact cache (teacher_cache) of past run clean seed 18',
        '=== [1/4] baseline budget 1 seed 1', '=== [2/4] kd budget 1 seed 1', '=== [3/4] curriculum budget 1 seed 1',
        '=== [4/4] adv budget 1 seed 1']
    assert done.stdout.count('\n$ ') == 12 and 'waits on: past-clean-s17\n' in done.stdout
    assert 'waits on: past-clean-s18, artifact-cache-s18\n' in done.stdout
    assert ('launch/score.py --run s3://no-such-bucket/study/past/clean/seed17 --method el2n --checkpoints latest --out '
            's3://no-such-bucket/study/past/artifacts/el2n-s17.npy') in done.stdout


def sweep_command(path: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / 'launch' / 'sweep.py'), str(path), *args]


def artifact_files(results: Path) -> dict[str, int]:
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in (results / 'past' / 'artifacts').rglob('*')
            if p.is_file()}


def report_rows(results: Path) -> list[list[str]]:
    """The report's table, without the wall-clock and FLOPs columns' values that differ between two machines' runs."""
    with open(results / 'report' / 'results.csv') as f:
        lines = f.read().splitlines()
    head = lines[0].split(',')
    keep = [i for i, name in enumerate(head) if 'acc' in name or name in ('recipe', 'budget', 'n')]
    return [[row.split(',')[i] for i in keep] for row in lines]


@pytest.fixture(scope='module')
def local_study(tmp_path_factory) -> Path:
    """The study run locally: killed while its artifacts build, started again to its report, and a third time."""
    folder = tmp_path_factory.mktemp('local')
    path = folder / 'study.yaml'
    path.write_text(yaml.safe_dump(sort_keys=False, data=study(str(folder / 'results'))))
    results = folder / 'results'
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}  # threads_per_run sets them
    with open(folder / 'first.log', 'w') as log:
        first = subprocess.Popen(sweep_command(path), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:  # killed once an artifact is built and others are building
        wait_for(lambda: len(list((results / 'past' / 'artifacts').glob('*.artifact.json'))) >= 1
                 or first.poll() is not None, 900, 'a first artifact')
        assert first.poll() is None, (folder / 'first.log').read_text()[-3000:]
        os.kill(first.pid, signal.SIGTERM)
        assert first.wait(timeout=120) != 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    built = {p.name for p in (results / 'past' / 'artifacts').glob('*.artifact.json')}
    before = artifact_files(results)
    assert 1 <= len(built) < 6 and not (results / 'baseline').exists()

    second = subprocess.run(sweep_command(path), cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert 'past runs: 2, 2 already finished, 0 trained' in second.stdout
    assert f'artifacts: 6, {len(built)} already built, {6 - len(built)} built' in second.stdout
    after = artifact_files(results)
    for name in built:  # nothing that had finished was built again
        out = name.removesuffix('.artifact.json')
        assert {k: v for k, v in after.items() if k.startswith(f'artifacts/{out}')} == {
            k: v for k, v in before.items() if k.startswith(f'artifacts/{out}')}
    assert len(list((results / 'past' / 'artifacts').glob('*.artifact.json'))) == 6
    assert 'sweep: 4 runs, 0 already finished, 4 trained' in second.stdout and 'report: ' in second.stdout

    third = subprocess.run(sweep_command(path), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count('\n$ ') == 0 and 'artifacts: 6, 6 already built, 0 built' in third.stdout
    assert 'past runs: 2, 2 already finished, 0 trained' in third.stdout
    assert 'sweep: 4 runs, 4 already finished, 0 trained' in third.stdout
    assert artifact_files(results) == after
    return results


@pytest.mark.slow  # 2 past runs, 6 artifacts and 4 runs, twice: about 6 minutes on 2 cores
def test_a_study_file_runs_from_nothing_to_its_report_resumes_after_a_kill_and_then_makes_nothing(local_study):
    rows = report_rows(local_study)
    assert [row[:3] for row in rows[1:]] == [['baseline', '1', '1'], ['kd', '1', '1'], ['curriculum', '1', '1'],
                                            ['adv', '1', '1']]
    for run in ('kd', 'curriculum', 'adv'):
        config = yaml.safe_load((local_study / run / 'b1' / 'seed1' / 'config.yaml').read_text())
        assert json.dumps(config['algorithms']).count(str(local_study / 'past')) >= 1
    marker = json.loads((local_study / 'past' / 'artifacts' / 'bank-s18.artifact.json').read_text())
    fingerprint = json.loads((local_study / 'past' / 'clean' / 'seed18' / 'fingerprint.json').read_text())
    assert marker['run'] == str(local_study / 'past' / 'clean' / 'seed18') and marker['args']['seed'] == '18'
    assert marker['run_fingerprint'] == fingerprint['sha256']


@pytest.mark.slow  # the same study as Ray tasks: about 5 minutes on 2 cores
def test_the_same_study_file_on_ray_gives_the_same_runs_and_report(local_study, cluster, tmp_path):  # noqa: F811
    path = tmp_path / 'study.yaml'
    path.write_text(yaml.safe_dump(sort_keys=False, data=study(str(tmp_path / 'results'), launcher='ray', parallel=1,
                                         ray={'address': f'127.0.0.1:{PORT}'})))
    done = cluster.sweep(str(path), timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = tmp_path / 'results'
    assert 'past runs: 2, 0 already finished, 2 trained' in done.stdout
    assert 'artifacts: 6, 0 already built, 6 built' in done.stdout
    log = (results / 'logs' / 'artifact-bank-s17.log').read_text()
    assert log.startswith('--- ray: attempt 1 on ') and 'adversarial bank from' in log
    assert finals(results) == finals(local_study)  # the same runs, the same final metrics, run for run
    assert report_rows(results) == report_rows(local_study)
    again = cluster.sweep(str(path), timeout=600)
    assert again.returncode == 0 and again.stdout.count('\n$ ') == 0
