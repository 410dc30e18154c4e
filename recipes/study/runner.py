"""Running a sweep (:mod:`recipes.study.spec`): every run of its plan not yet finished, one or ``parallel`` at a time.

Each run is ``launch/train.py YAML overrides...`` in its own process (under ``composer -n ranks`` when ranks > 1),
named, grouped and tagged in the trackers its config uses (:mod:`recipes.study.tracking`). A run's state is read off
its folder: new, died (started, not finished: ``autoresume`` continues it from its newest checkpoint) or finished
(skipped), so starting a sweep again continues it. ``parallel`` runs write their output to ``{logs}/{run name}.log``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from enum import Enum
from pathlib import Path

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.core.run_files import CONFIG_FILE, METRICS_FILE, read_history
from recipes.study.spec import SWEEP_FILE, Run, SweepSpec, budget_label, plan
from recipes.study.tracking import tracker_overrides

__all__ = ['RunState', 'command', 'logs_folder', 'run_state', 'run_sweep']


class RunState(str, Enum):
    NEW = 'new'  # no metrics.json and no config.yaml yet
    DIED = 'died'  # started, not finished: autoresume continues it
    FINISHED = 'finished'


def run_state(folder: str) -> RunState:
    if storage.exists(storage.join(folder, METRICS_FILE)):
        return RunState.FINISHED if read_history(folder).get('finished') else RunState.DIED
    return RunState.DIED if storage.exists(storage.join(folder, CONFIG_FILE)) else RunState.NEW


def command(run: Run, ranks: int, train_script: str) -> list[str]:
    """``python train.py YAML overrides...``, under ``composer -n ranks`` when ranks > 1."""
    if ranks == 1:
        return [sys.executable, train_script, run.yaml, *run.overrides]
    launcher = Path(sys.executable).with_name('composer')
    if not launcher.exists():
        raise UsageError(f'ranks={ranks} needs the composer launcher at {launcher}: install mosaicml in this environment')
    return [str(launcher), '-n', str(ranks), train_script, run.yaml, *run.overrides]


def logs_folder(results: str) -> Path:
    """Where ``parallel`` runs write their output: ``{results}/logs``, or ``./sweep-logs`` beside an s3:// results."""
    return Path('sweep-logs') if storage.is_s3(results) else Path(results) / 'logs'


def _start(argv: list[str], run: Run, parallel: int, logs: Path) -> subprocess.Popen:
    """One run: its output streams to the terminal when the sweep trains one at a time, else to its own log."""
    if parallel == 1:
        return subprocess.Popen(argv)
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // parallel)))
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f'{run.name}.log', 'ab') as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def _wait_for_one(active: dict[subprocess.Popen, tuple[Run, float]], parallel: int) -> tuple[Run, int]:
    """Block until a run of ``active`` exits; remove it and return it with its exit status."""
    while True:
        for child, (run, started) in list(active.items()):
            code = child.poll()
            if code is None:
                continue
            del active[child]
            if parallel > 1 and not code:
                print(f'--- {run.name} finished in {time.monotonic() - started:.0f} s; {len(active)} running', flush=True)
            return run, code
        time.sleep(0.2)


def run_sweep(sweep: SweepSpec, train_script: str, dry_run: bool = False) -> int:
    """Train every run that has not finished, ``sweep.parallel`` at a time; the exit status of the first failure, or 0.

    After a failure no further run starts and the runs in flight finish. An exception while runs train (Ctrl-C, or
    SIGTERM turned into SystemExit by ``launch/sweep.py``) terminates them before it propagates. ``dry_run`` prints
    each run's state and command and starts nothing.
    """
    storage.check_reachable(sweep.results)
    runs = plan(sweep)
    if not dry_run:
        storage.write_bytes(storage.join(sweep.results, SWEEP_FILE), sweep.to_yaml().encode())
    logs = logs_folder(sweep.results)
    if sweep.parallel > 1 and not dry_run:
        print(f'sweep: {sweep.parallel} runs at a time, each writing its output to {logs}/RUN.log', flush=True)
    active: dict[subprocess.Popen, tuple[Run, float]] = {}
    skipped, code = 0, 0
    failed: Run | None = None
    try:
        for number, run in enumerate(runs, 1):
            while len(active) >= sweep.parallel and not failed:
                finished, status = _wait_for_one(active, sweep.parallel)
                if status:
                    failed, code = finished, status
            if failed:
                break
            state = run_state(run.folder)
            argv = command(replace(run, overrides=(*run.overrides, *tracker_overrides(sweep, run))), sweep.ranks, train_script)
            action = {RunState.NEW: 'start', RunState.DIED: 'resume (started, not finished)', RunState.FINISHED: 'skipped (finished)'}
            print(
                f'\n=== [{number}/{len(runs)}] {run.recipe} budget {budget_label(run.budget)} seed {run.seed}: '
                f'{action[state]}  {run.folder}', flush=True,
            )
            if state is RunState.FINISHED:
                skipped += 1
                continue
            print('$ ' + ' '.join(argv), flush=True)
            if not dry_run:
                active[_start(argv, run, sweep.parallel, logs)] = (run, time.monotonic())
        while active:
            finished, status = _wait_for_one(active, sweep.parallel)
            if status and not failed:
                failed, code = finished, status
    finally:
        for child in active:  # the sweep was stopped: stop its runs, so no second writer meets them on restart
            if child.poll() is None:
                child.terminate()
                child.wait()
    if failed:
        where = f' (its output: {logs / failed.name}.log)' if sweep.parallel > 1 else ''
        print(
            f'run {failed.name} failed with exit status {code}{where}: fix the cause and start the sweep again; '
            'finished runs are skipped and this one resumes',
            file=sys.stderr, flush=True,
        )
        return code
    verb = 'to train' if dry_run else 'trained'
    print(f'\nsweep: {len(runs)} runs, {skipped} already finished, {len(runs) - skipped} {verb}', flush=True)
    return 0
