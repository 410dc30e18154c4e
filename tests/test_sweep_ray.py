"""launcher: ray against a real Ray cluster on loopback: the same results as a local sweep, a run whose worker is
killed retried and resumed, Ctrl-C and SIGTERM cancelling the tasks, a local results folder refused on two nodes.

Ray listens on every interface and replaces 127.0.0.1 with the machine's routable address, so the cluster, the sweeps
that talk to it and their runs live in a network namespace of their own that holds only loopback: the head is
``ray start --head`` under ``unshare -n`` (after ``ip link set lo up``), and every sweep joins it with ``nsenter``.
Nothing in it reaches beyond loopback. Two fake GPUs (``--num-gpus 2``) let two one-GPU runs train at once on the
CPU. Every run gets ``OMP_NUM_THREADS=1``, as Ray gives a one-CPU task: the float results depend on the thread count.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY

from recipes.core.run_files import read_history
from recipes.study.runner import RunState, run_state

RECIPE = 'yamls/digits/baseline.yaml'
SMOOTHING = 'algorithms.label_smoothing.smoothing=0.1'
PORT = 6379  # the namespace's own: nothing else listens there
LONG = ['max_duration=24ba', 'save_interval=4ba', 'eval_interval=24ba']  # long enough to be killed mid-run


def processes(netns: str) -> dict[int, str]:
    """The live processes in the network namespace ``netns`` (``net:[inode]``), with their command lines."""
    found = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                if os.readlink(f'/proc/{entry}/ns/net') == netns:
                    found[int(entry)] = Path(f'/proc/{entry}/cmdline').read_bytes().replace(b'\0', b' ').decode()
            except OSError:  # gone meanwhile
                pass
    return found


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f'timed out waiting for {what}'
        time.sleep(0.1)


@dataclass
class Cluster:
    """A single-node Ray head in a loopback-only network namespace."""

    head: subprocess.Popen
    netns: str
    temp: str
    env: dict[str, str]

    def enter(self, *argv: str) -> list[str]:
        """``argv`` run inside the cluster's network namespace."""
        return ['nsenter', f'--net=/proc/{self.head.pid}/ns/net', *argv]

    def start(self, *argv: str, log: Path) -> subprocess.Popen:
        """A process inside the namespace, in a session of its own, its output in ``log``."""
        with open(log, 'w') as out:
            return subprocess.Popen(self.enter(*argv), cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def sweep(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """``launch/sweep.py`` inside the namespace, as a user on the head node runs it."""
        return subprocess.run(self.enter(sys.executable, str(ROOT / 'launch' / 'sweep.py'), *args), cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=timeout)


def stop_group(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM to ``ray start --block`` and its group (it stops the node's processes), SIGKILL after ``timeout`` s (a
    head waits a minute for the GCS it has already stopped)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope='module')
def cluster() -> Iterator[Cluster]:
    pytest.importorskip('ray', reason="the cluster extra: pip install -e '.[cluster]'")
    for tool in ('unshare', 'nsenter', 'ip'):
        assert shutil.which(tool), f'{tool} is needed to give the test cluster a loopback-only network namespace'
    temp = tempfile.mkdtemp(prefix='ray', dir='/tmp')  # short: Ray's socket paths must fit in 107 bytes
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    ray = Path(sys.executable).with_name('ray')
    start = (f'ip link set lo up && exec {ray} start --head --block --port {PORT} --num-cpus 2 --num-gpus 2 '
             f'--include-dashboard false --disable-usage-stats --object-store-memory 100000000 --temp-dir {temp}')
    with open(Path(temp) / 'head.log', 'w') as log:
        head = subprocess.Popen(['unshare', '-n', 'sh', '-c', start], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_for(lambda: 'Ray runtime started' in (Path(temp) / 'head.log').read_text() or head.poll() is not None,
                 180, 'the Ray head')
        assert head.poll() is None, (Path(temp) / 'head.log').read_text()[-3000:]
        netns = os.readlink(f'/proc/{head.pid}/ns/net')
        links = subprocess.run(['nsenter', f'--net=/proc/{head.pid}/ns/net', 'ip', '-o', 'link'], capture_output=True,
                               text=True, check=True).stdout.splitlines()
        assert netns != os.readlink('/proc/self/ns/net') and [line.split(':')[1].strip() for line in links] == ['lo']
        yield Cluster(head, netns, temp, env)
    finally:
        left = os.readlink(f'/proc/{head.pid}/ns/net') if head.poll() is None else None
        stop_group(head, timeout=3)
        if left:  # whatever is left in the namespace was started by this fixture: workers have groups of their own
            for pid in processes(left):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(temp, ignore_errors=True)


def write_sweep(folder: Path, seeds: list[int], overrides: Sequence[str] = (), **changes) -> str:
    body = {
        'results': str(folder / 'results'),
        'parallel': 2,
        'seeds': seeds,
        'baseline': 'baseline',
        'overrides': [*TINY, *overrides],
        'recipes': {'baseline': {'yaml': RECIPE}, 'smoothing': {'yaml': RECIPE, 'overrides': [SMOOTHING]}},
        'ray': {'address': f'127.0.0.1:{PORT}'},
        **changes,
    }
    path = folder / 'sweep.yaml'
    path.write_text(yaml.safe_dump(body))
    return str(path)


def finals(results: Path) -> dict[str, list]:
    """Each finished run folder (relative to ``results``) and its evaluations."""
    return {str(p.parent.relative_to(results)): json.loads(p.read_text())['eval']
            for p in sorted(results.glob('*/b*/seed*/metrics.json'))}


@pytest.mark.slow  # 8 runs: about 2 minutes on 2 cores
def test_a_ray_sweep_gives_the_local_sweeps_runs_and_metrics_and_skips_them_when_started_again(cluster, tmp_path):
    local, remote = tmp_path / 'local', tmp_path / 'ray'
    local.mkdir(), remote.mkdir()
    done = subprocess.run([sys.executable, str(ROOT / 'launch' / 'sweep.py'), write_sweep(local, [1, 2])], cwd=ROOT,
                          env=cluster.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    done = cluster.sweep(write_sweep(remote, [1, 2]), 'launcher=ray', 'parallel=1')  # the same sweep, the same YAML
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    expected = finals(local / 'results')
    assert list(expected) == [f'{r}/b1/seed{s}' for r in ('baseline', 'smoothing') for s in (1, 2)]
    assert finals(remote / 'results') == expected  # the same runs, the same final metrics, run for run
    assert done.stdout.count('--- ') == 4 and '4 done, 0 running, 0 queued, 0 retried, 0 failed' in done.stdout
    for run in ('baseline-b1-s1', 'smoothing-b1-s2'):  # each run's output in its log, as a parallel local sweep's
        log = (remote / 'results' / 'logs' / f'{run}.log').read_text()
        assert log.startswith('--- ray: attempt 1 on ') and 'final test accuracy: ' in log
    assert 'report: ' in done.stdout and (remote / 'results' / 'report' / 'results.csv').exists()

    again = cluster.sweep(write_sweep(remote, [1, 2]), 'launcher=ray', 'parallel=1')
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count('skipped (finished)') == 4 and '\n$ ' not in again.stdout
    assert 'sweep: 4 runs, 4 already finished, 0 trained' in again.stdout


@pytest.mark.slow  # 2 runs of 24 batches, one of them twice: about a minute
def test_a_run_whose_worker_is_killed_is_retried_and_resumes_from_its_checkpoint(cluster, tmp_path):
    recipes = {'baseline': {'yaml': RECIPE}}
    reference = tmp_path / 'reference'
    reference.mkdir()
    done = subprocess.run([sys.executable, str(ROOT / 'launch' / 'sweep.py'),
                           write_sweep(reference, [1], LONG, recipes=recipes, parallel=1)],
                          cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    sweep = write_sweep(tmp_path, [1], LONG, recipes=recipes, launcher='ray', parallel=1)
    process = cluster.start(sys.executable, str(ROOT / 'launch' / 'sweep.py'), sweep, log=tmp_path / 'sweep.log')
    folder = tmp_path / 'results' / 'baseline' / 'b1' / 'seed1'
    try:
        wait_for(lambda: (folder / 'latest-rank0.pt').exists() or process.poll() is not None, 300, 'a checkpoint')
        assert process.poll() is None, (tmp_path / 'sweep.log').read_text()[-3000:]
        [worker] = [pid for pid, cmd in processes(cluster.netns).items() if cmd.startswith('ray::baseline-b1-s1')]
        [run] = [pid for pid, cmd in processes(cluster.netns).items() if 'launch/train.py' in cmd]
        os.kill(worker, signal.SIGKILL)  # as a node's death takes its worker
        wait_for(lambda: not Path(f'/proc/{run}').exists() or b'launch/train.py' not in
                 Path(f'/proc/{run}/cmdline').read_bytes(), 30, 'the run to die with its worker')
        assert process.wait(timeout=600) == 0, (tmp_path / 'sweep.log').read_text()[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = (tmp_path / 'sweep.log').read_text()
    assert '--- baseline-b1-s1: attempt 2 on ' in output and '1 done, 0 running, 0 queued, 1 retried, 0 failed' in output
    history = read_history(str(folder))
    assert history['finished'] and len(history['resumed_at']) == 1 and 4 <= history['resumed_at'][0] < 24
    assert read_history(str(reference / 'results' / 'baseline' / 'b1' / 'seed1'))['resumed_at'] == []
    assert finals(tmp_path / 'results') == finals(reference / 'results')  # as if it had never died
    log = (tmp_path / 'results' / 'logs' / 'baseline-b1-s1.log').read_text()
    assert '\n--- ray: attempt 2 on ' in log and f'resumed at batch {history["resumed_at"][0]} ' in log


@pytest.mark.parametrize('stop', [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_ctrl_c_or_sigterm_to_the_sweep_cancels_its_tasks_and_leaves_no_run_behind(cluster, tmp_path, stop):
    sweep = write_sweep(tmp_path, [1, 2], ['max_duration=400ba', 'save_interval=4ba'], launcher='ray', parallel=1)
    process = cluster.start(sys.executable, str(ROOT / 'launch' / 'sweep.py'), sweep, log=tmp_path / 'sweep.log')
    try:
        runs = lambda: [pid for pid, cmd in processes(cluster.netns).items() if 'launch/train.py' in cmd]  # noqa: E731
        started = lambda: list((tmp_path / 'results').glob('*/b1/seed*/config.yaml'))  # noqa: E731
        wait_for(lambda: len(started()) == 2 or process.poll() is not None, 300, 'two runs training')
        assert process.poll() is None, (tmp_path / 'sweep.log').read_text()[-3000:]
        os.kill(process.pid, stop)  # Ctrl-C, or a scheduler's SIGTERM
        assert process.wait(timeout=120) != 0
        wait_for(lambda: not runs(), 10, 'no run left')
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = (tmp_path / 'sweep.log').read_text()
    assert 'sweep: stopped; its 4 unfinished Ray tasks were cancelled (run it again to continue)' in output
    assert not [cmd for cmd in processes(cluster.netns).values() if cmd.startswith(('ray::baseline', 'ray::smoothing'))]
    results = tmp_path / 'results'
    logs = {p.stem: p.read_text() for p in (results / 'logs').glob('*.log')}
    assert sorted(logs) == ['baseline-b1-s1', 'baseline-b1-s2', 'smoothing-b1-s1', 'smoothing-b1-s2']
    trained = [name for name, log in logs.items() if log.startswith('--- ray: attempt 1 on ')]
    assert len(trained) == 2 and all(log.endswith('--- ray: cancelled: the sweep was stopped\n') for log in logs.values())
    for name in trained:  # started, not finished: the next start resumes them
        recipe, budget, seed = name.split('-')
        assert run_state(str(results / recipe / budget / f'seed{seed[1:]}')) is RunState.DIED


def test_a_local_results_folder_is_refused_on_two_nodes_before_any_run_is_submitted(cluster, tmp_path):
    node = cluster.start(str(Path(sys.executable).with_name('ray')), 'start', '--address', f'127.0.0.1:{PORT}',
                         '--block', '--num-cpus', '1', '--num-gpus', '0', '--disable-usage-stats',
                         '--object-store-memory', '100000000', '--temp-dir', cluster.temp, log=tmp_path / 'node.log')
    try:
        wait_for(lambda: 'Ray runtime started' in (tmp_path / 'node.log').read_text() or node.poll() is not None,
                 180, 'the second node')
        assert node.poll() is None, (tmp_path / 'node.log').read_text()[-3000:]
        done = cluster.sweep(write_sweep(tmp_path, [1]), 'launcher=ray', 'parallel=1', timeout=300)
    finally:
        stop_group(node, timeout=30)
    results = tmp_path / 'results'
    errors = [line for line in done.stderr.splitlines() if line.startswith('error: ')]
    assert done.returncode == 2 and errors == [
        f"error: results={results} is a local folder, and every run's save_folder lies in it, but with launcher=ray "
        'the cluster has 2 nodes and a run trains on any of them: use s3://BUCKET/PREFIX for results, so a run '
        'resumes on any node',
    ]
    assert not results.exists() and '\n$ ' not in done.stdout  # nothing written, nothing submitted


@pytest.mark.slow  # 3 runs of 40 batches: about 3 minutes on 2 cores
def test_a_run_gives_the_same_result_under_either_launcher_as_its_thread_count_is_part_of_its_config(cluster, tmp_path):
    long = ['max_duration=40ba', 'eval_interval=40ba', 'save_interval=40ba']  # long enough to diverge across threads
    recipes = {'baseline': {'yaml': RECIPE}}
    # Locally, one run at a time, torch would take every core (two here); a Ray task is given its one CPU
    env = {key: value for key, value in cluster.env.items() if key != 'OMP_NUM_THREADS'}
    local, remote, two = tmp_path / 'local', tmp_path / 'ray', tmp_path / 'two'
    for folder, changes in ((local, {}), (two, {'threads_per_run': 2})):
        folder.mkdir()
        done = subprocess.run([sys.executable, str(ROOT / 'launch' / 'sweep.py'),
                               write_sweep(folder, [1], long, recipes=recipes, parallel=1, **changes)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    remote.mkdir()
    done = cluster.sweep(write_sweep(remote, [1], long, recipes=recipes, parallel=1), 'launcher=ray')
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert finals(remote / 'results') == finals(local / 'results')  # bit for bit: every metric of every evaluation
    for folder in (local, remote):
        run = folder / 'results' / 'baseline' / 'b1' / 'seed1'
        assert yaml.safe_load((run / 'config.yaml').read_text())['threads'] == 1
        assert json.loads((run / 'fingerprint.json').read_text())['config']['threads'] == 1
    # the thread count is what made them differ: the same run on two threads ends elsewhere
    assert finals(two / 'results') != finals(local / 'results')
