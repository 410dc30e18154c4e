"""Running a sweep (:mod:`recipes.study.spec`): every run of its plan not yet finished, through its launcher.

A sweep with ``tune`` trains its tuning runs first, chooses each tuned recipe's settings per budget and writes
them to ``tuned.yaml`` (:mod:`recipes.study.tuning`), then trains the evaluation runs with them; a resumed sweep
reads ``tuned.yaml`` back and trains no tuning run for a choice it holds.

Each run is ``launch/train.py YAML overrides...`` in its own process (under ``composer -n ranks`` when ranks > 1),
named, grouped and tagged in the trackers its config uses (:mod:`recipes.study.tracking`). A run's state is read off
its folder: new, died (started, not finished: ``autoresume`` continues it from its newest checkpoint) or finished
(skipped), so starting a sweep again continues it. :func:`run_sweep` decides which runs start and when; a
:class:`Launcher` executes them: :class:`LocalProcesses` here, one or ``parallel`` at a time (``parallel`` runs write
their output to ``{logs}/{run name}.log``), or ``launcher: ray``'s tasks on a Ray cluster
(:mod:`recipes.study.ray_launcher`, imported only then).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Protocol

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.core.run_files import CONFIG_FILE, METRICS_FILE, read_history
from recipes.study.spec import SWEEP_FILE, Run, SweepSpec, plan, tuned_pairs, tuning_plan
from recipes.study.tracking import tracker_overrides
from recipes.study.tuning import TUNED_FILE, Tuned, check_tuned, choose, read_tuned, with_choices, write_tuned

__all__ = ['Launcher', 'LocalProcesses', 'RunState', 'command', 'logs_folder', 'open_launcher', 'run_state', 'run_sweep']


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
    """Where runs write their output when the sweep's own output cannot hold it (``parallel`` runs, Ray tasks):
    ``{results}/logs``, or ``./sweep-logs`` beside an s3:// results."""
    return Path('sweep-logs') if storage.is_s3(results) else Path(results) / 'logs'


class Launcher(Protocol):
    """How a sweep's runs are executed: :func:`run_sweep` decides which runs start and when; a launcher starts each
    as a process here (:class:`LocalProcesses`) or as a task on a cluster (:mod:`recipes.study.ray_launcher`)."""

    slots: int  # how many runs may be in flight at once

    def header(self) -> str | None:
        """What the sweep prints before its first run about how runs are executed, or None."""

    def start(self, run: Run, argv: list[str]) -> None:
        """Start ``argv`` (the run's command, :func:`command`) for ``run``; it is in flight until :meth:`wait` returns it."""

    def running(self) -> int:
        """How many runs are in flight."""

    def wait(self) -> tuple[Run, int]:
        """Block until a run in flight ends; that run and its exit status (0: it finished)."""

    def stop(self) -> None:
        """Stop every run in flight (the sweep was stopped, or failed): none is left writing its folder."""

    def output_of(self, run: Run) -> Path | None:
        """The file that holds ``run``'s output, or None when it went to the terminal."""


class LocalProcesses:
    """Runs as processes on this machine, ``parallel`` at a time: one run's output streams to the terminal; several
    write theirs to ``{logs}/{run name}.log``, each with ``OMP_NUM_THREADS`` its share of the cores."""

    def __init__(self, parallel: int, logs: Path) -> None:
        self.slots, self.logs = parallel, logs
        self.active: dict[subprocess.Popen, tuple[Run, float]] = {}

    def header(self) -> str | None:
        if self.slots == 1:
            return None
        return f'sweep: {self.slots} runs at a time, each writing its output to {self.logs}/RUN.log'

    def start(self, run: Run, argv: list[str]) -> None:
        if self.slots == 1:
            child = subprocess.Popen(argv)
        else:
            env = dict(os.environ)
            env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // self.slots)))
            self.logs.mkdir(parents=True, exist_ok=True)
            with open(self.logs / f'{run.name}.log', 'ab') as log:
                child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.active[child] = (run, time.monotonic())

    def running(self) -> int:
        return len(self.active)

    def wait(self) -> tuple[Run, int]:
        while True:
            for child, (run, started) in list(self.active.items()):
                code = child.poll()
                if code is None:
                    continue
                del self.active[child]
                if self.slots > 1 and not code:
                    print(f'--- {run.name} finished in {time.monotonic() - started:.0f} s; {len(self.active)} running',
                          flush=True)
                return run, code
            time.sleep(0.2)

    def stop(self) -> None:
        for child in self.active:
            if child.poll() is None:
                child.terminate()
                child.wait()
        self.active.clear()

    def output_of(self, run: Run) -> Path | None:
        return self.logs / f'{run.name}.log' if self.slots > 1 else None


def open_launcher(sweep: SweepSpec, logs: Path) -> Launcher:
    """The launcher ``sweep.launcher`` names; for ``ray``, connected to its cluster, with the sweep checked against
    the cluster (a local results folder on several nodes is refused) before any run is submitted."""
    if sweep.launcher == 'local':
        return LocalProcesses(sweep.parallel, logs)
    try:
        from recipes.study.ray_launcher import RayTasks
    except ModuleNotFoundError as e:
        if e.name != 'ray':
            raise
        raise UsageError(
            "launcher=ray needs Ray, which is not installed here: pip install -e '.[cluster]' (the cluster extra, "
            'resolved with the project)',
        ) from None
    return RayTasks(sweep, logs)


def _train(runs: list[Run], sweep: SweepSpec, launcher: Launcher, train_script: str, dry_run: bool,
           phase: str) -> tuple[int, int]:
    """Train every run of ``runs`` that has not finished through ``launcher``: ``(exit status of the first failure or
    0, runs skipped as finished)``. Runs start in plan order while the launcher has a free slot (``parallel`` here;
    every run on a Ray cluster, which queues them); after a failure no further run starts and the runs in flight
    finish. ``phase`` heads each run's line (``tuning ``, or '')."""
    skipped, code = 0, 0
    failed: Run | None = None
    try:
        for number, run in enumerate(runs, 1):
            while launcher.running() >= launcher.slots and not failed:
                finished, status = launcher.wait()
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
                launcher.start(run, argv)
        while launcher.running():
            finished, status = launcher.wait()
            if status and not failed:
                failed, code = finished, status
    finally:
        launcher.stop()  # the sweep was stopped: stop its runs, so no second writer meets them on restart
    if failed:
        output = launcher.output_of(failed)
        where = f' (its output: {output})' if output else ''
        print(
            f'run {failed.name} failed with exit status {code}{where}: fix the cause and start the sweep again; '
            'finished runs are skipped and this one resumes',
            file=sys.stderr, flush=True,
        )
    return code, skipped


def _tune(sweep: SweepSpec, launcher: Launcher, train_script: str, dry_run: bool) -> tuple[Tuned | None, int]:
    """Train the tuning runs of every choice ``tuned.yaml`` lacks, choose, and write ``tuned.yaml``: ``(what it
    holds, 0)``, or ``(None, exit status)`` after a failure; ``(None, 0)`` for a dry run with tuning runs to train."""
    earlier = read_tuned(sweep.results)
    if earlier is not None:
        check_tuned(sweep, earlier)
    pending = [pair for pair in tuned_pairs(sweep) if earlier is None or pair not in earlier.choices]
    if not pending:
        print(f'tuning: {storage.join(sweep.results, TUNED_FILE)} holds every choice; no tuning run trains', flush=True)
    runs = tuning_plan(sweep, pending)
    code, skipped = _train(runs, sweep, launcher, train_script, dry_run, 'tuning ')
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
    """Train every run that has not finished through the sweep's launcher; the exit status of the first failure, or 0.

    With ``tune``, the tuning runs train first and their choice (``tuned.yaml``, :mod:`recipes.study.tuning`) goes
    into every evaluation run's overrides. After a failure no further run starts and the runs in flight finish. An
    exception while runs train (Ctrl-C, or SIGTERM turned into SystemExit by ``launch/sweep.py``) stops them
    (:meth:`Launcher.stop`) before it propagates. ``dry_run`` prints each run's state and command and starts, connects
    to and writes nothing; the evaluation runs of a sweep whose tuning runs have not all finished wait on them.
    """
    storage.check_reachable(sweep.results)
    logs = logs_folder(sweep.results)
    launcher = LocalProcesses(sweep.parallel, logs) if dry_run else open_launcher(sweep, logs)
    if not dry_run:
        storage.write_bytes(storage.join(sweep.results, SWEEP_FILE), sweep.to_yaml().encode())
        if launcher.header():
            print(launcher.header(), flush=True)
    tuned: Tuned | None = None
    if sweep.tune is not None:
        tuned, code = _tune(sweep, launcher, train_script, dry_run)
        if code:
            return code
        if tuned is None:
            print(f'sweep: {len(plan(sweep))} evaluation runs wait on tuning: they train with the settings chosen from '
                  f'the tuning runs above ({storage.join(sweep.results, TUNED_FILE)})', flush=True)
            return 0
    runs = plan(sweep, tuned.overrides() if tuned else sweep.fixed_settings())
    code, skipped = _train(runs, sweep, launcher, train_script, dry_run, '')
    if code:
        return code
    verb = 'to train' if dry_run else 'trained'
    print(f'\nsweep: {len(runs)} runs, {skipped} already finished, {len(runs) - skipped} {verb}', flush=True)
    return 0
