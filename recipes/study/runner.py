"""Running a sweep (:mod:`recipes.study.spec`): every run of its plan not yet finished, one or ``parallel`` at a time.

A sweep with ``tune`` trains its tuning runs first, chooses each tuned recipe's settings per budget and writes
them to ``tuned.yaml`` (:mod:`recipes.study.tuning`), then trains the evaluation runs with them; a resumed sweep
reads ``tuned.yaml`` back and trains no tuning run for a choice it holds.

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
from recipes.study.spec import SWEEP_FILE, Run, SweepSpec, plan, tuned_pairs, tuning_plan
from recipes.study.tracking import tracker_overrides
from recipes.study.tuning import TUNED_FILE, Tuned, check_tuned, choose, read_tuned, with_choices, write_tuned

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


def _train(runs: list[Run], sweep: SweepSpec, train_script: str, dry_run: bool, phase: str) -> tuple[int, int]:
    """Train every run of ``runs`` that has not finished, ``sweep.parallel`` at a time; ``(exit status of the first
    failure or 0, runs skipped as finished)``. ``phase`` heads each run's line (``tuning ``, or '')."""
    logs = logs_folder(sweep.results)
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
            print(f'\n=== {phase}[{number}/{len(runs)}] {run.title}: {action[state]}  {run.folder}', flush=True)
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
    return code, skipped


def _tune(sweep: SweepSpec, train_script: str, dry_run: bool) -> tuple[Tuned | None, int]:
    """Train the tuning runs of every choice ``tuned.yaml`` lacks, choose, and write ``tuned.yaml``: ``(what it
    holds, 0)``, or ``(None, exit status)`` after a failure; ``(None, 0)`` for a dry run with tuning runs to train."""
    earlier = read_tuned(sweep.results)
    if earlier is not None:
        check_tuned(sweep, earlier)
    pending = [pair for pair in tuned_pairs(sweep) if earlier is None or pair not in earlier.choices]
    if not pending:
        print(f'tuning: {storage.join(sweep.results, TUNED_FILE)} holds every choice; no tuning run trains', flush=True)
    runs = tuning_plan(sweep, pending)
    code, skipped = _train(runs, sweep, train_script, dry_run, 'tuning ')
    if code:
        return None, code
    if runs:
        verb = 'to train' if dry_run else 'trained'
        print(f'\ntuning: {len(runs)} runs, {skipped} already finished, {len(runs) - skipped} {verb}', flush=True)
    if dry_run and skipped < len(runs):
        return None, 0
    result = with_choices(sweep, earlier, [choose(sweep, recipe, budget) for recipe, budget in pending])
    if not dry_run:
        write_tuned(sweep.results, result)
    for recipe, budget in pending:
        print('tuned ' + result.choices[recipe, budget].summary(), flush=True)
    return result, 0


def run_sweep(sweep: SweepSpec, train_script: str, dry_run: bool = False) -> int:
    """Train every run that has not finished, ``sweep.parallel`` at a time; the exit status of the first failure, or 0.

    With ``tune``, the tuning runs train first and their choice (``tuned.yaml``, :mod:`recipes.study.tuning`) goes
    into every evaluation run's overrides. After a failure no further run starts and the runs in flight finish. An
    exception while runs train (Ctrl-C, or SIGTERM turned into SystemExit by ``launch/sweep.py``) terminates them
    before it propagates. ``dry_run`` prints each run's state and command and starts nothing; the evaluation runs
    of a sweep whose tuning runs have not all finished wait on them.
    """
    storage.check_reachable(sweep.results)
    if not dry_run:
        storage.write_bytes(storage.join(sweep.results, SWEEP_FILE), sweep.to_yaml().encode())
    if sweep.parallel > 1 and not dry_run:
        print(f'sweep: {sweep.parallel} runs at a time, each writing its output to {logs_folder(sweep.results)}/RUN.log',
              flush=True)
    tuned: Tuned | None = None
    if sweep.tune is not None:
        tuned, code = _tune(sweep, train_script, dry_run)
        if code:
            return code
        if tuned is None:
            print(f'sweep: {len(plan(sweep))} evaluation runs wait on tuning: they train with the settings chosen from '
                  f'the tuning runs above ({storage.join(sweep.results, TUNED_FILE)})', flush=True)
            return 0
    runs = plan(sweep, tuned.overrides() if tuned else None)
    code, skipped = _train(runs, sweep, train_script, dry_run, '')
    if code:
        return code
    verb = 'to train' if dry_run else 'trained'
    print(f'\nsweep: {len(runs)} runs, {skipped} already finished, {len(runs) - skipped} {verb}', flush=True)
    return 0
