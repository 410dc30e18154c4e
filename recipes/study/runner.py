"""Running a sweep (:mod:`recipes.study.spec`): every run of its plan not yet finished, through its launcher.

A sweep with ``tune`` trains its tuning runs first, chooses each tuned recipe's settings per budget and writes
them to ``tuned.yaml`` (:mod:`recipes.study.tuning`), then trains the evaluation runs with them; a resumed sweep
reads ``tuned.yaml`` back and trains no tuning run for a choice it holds.

Each run is ``launch/train.py YAML overrides...`` in its own process (under ``composer -n ranks`` when ranks > 1),
named, grouped and tagged in the trackers its config uses (:mod:`recipes.study.tracking`). A run's state is read off
its folder: new, died (started, not finished: ``autoresume`` continues it from its newest checkpoint) or finished
(skipped), so starting a sweep again continues it. A run is reused (skipped when finished, resumed when it died)
only when the config it was started with is the one the sweep would train now: the sweep records the run's
fingerprint (:func:`planned_config`, the sha256 of its config as the schema's defaults, its YAML and its overrides
give it) in ``{folder}/fingerprint.json`` when it starts the run, and a run whose fingerprint differs, or that has
none, is *stale*: the sweep stops in one line naming it and the first differing key, or, with ``rerun_stale``,
trains it again from nothing. :func:`run_sweep` decides which runs start and when; a
:class:`Launcher` executes them: :class:`LocalProcesses` here, one or ``parallel`` at a time (``parallel`` runs write
their output to ``{logs}/{run name}.log``), or ``launcher: ray``'s tasks on a Ray cluster
(:mod:`recipes.study.ray_launcher`, imported only then).

A results folder holds one study: its first sweep registers the comparisons it makes (``{results}/registration.json``,
:mod:`recipes.study.registration`) and a later sweep with other comparisons is refused. Each phase that starts work
(past runs, artifacts, tuning, evaluation runs) appends its start and end to ``{results}/steps.csv`` when it ends
(:mod:`recipes.study.steps`): the study's measured time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.core.run_files import CONFIG_FILE, METRICS_FILE, read_history
from recipes.study.difference import first_difference
from recipes.study.registration import register
from recipes.study.spec import (
    SWEEP_FILE,
    Build,
    Run,
    SweepSpec,
    artifact_plan,
    budget_label,
    check_run_configs,
    past_run_plan,
    plan,
    tuned_pairs,
    tuning_plan,
)
from recipes.study.steps import StepClock, timed_step
from recipes.study.tracking import tracker_overrides
from recipes.study.tuning import TUNED_FILE, Tuned, check_tuned, choose, read_tuned, with_choices, write_tuned

ROOT = Path(__file__).resolve().parents[2]  # the repository: the builders' scripts are launch/*.py under it

__all__ = ['FINGERPRINT_FILE', 'Launcher', 'LocalProcesses', 'RunState', 'command', 'fingerprint', 'logs_folder',
           'open_launcher', 'planned_config', 'run_state', 'run_sweep', 'stale_reason']

FINGERPRINT_FILE = 'fingerprint.json'  # {"sha256": ..., "config": {...}}: what the sweep started the run with


class RunState(str, Enum):
    NEW = 'new'  # no metrics.json and no config.yaml yet
    DIED = 'died'  # started, not finished: autoresume continues it
    FINISHED = 'finished'


def run_state(folder: str) -> RunState:
    if storage.exists(storage.join(folder, METRICS_FILE)):
        return RunState.FINISHED if read_history(folder).get('finished') else RunState.DIED
    return RunState.DIED if storage.exists(storage.join(folder, CONFIG_FILE)) else RunState.NEW


def planned_config(yaml_path: str, overrides: Sequence[str]) -> dict[str, Any]:
    """The config a run of ``yaml_path`` with ``overrides`` trains with, as a plain mapping: the schema's defaults,
    the YAML, the overrides, checked (:func:`recipes.config.load_config`); what the machine fills in later
    (precision, the data set's classes) is left as the run asked for it, so it is the same on every machine."""
    from omegaconf import OmegaConf

    from recipes.config import load_config

    return OmegaConf.to_container(load_config(yaml_path, list(overrides)), resolve=True)  # type: ignore[return-value]


def fingerprint(config: dict[str, Any]) -> str:
    """The sha256 of ``config`` written as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def read_fingerprint(folder: str) -> dict[str, Any] | None:
    uri = storage.join(folder, FINGERPRINT_FILE)
    if not storage.exists(uri):
        return None
    try:
        recorded = json.loads(storage.read_bytes(uri))
        return recorded if isinstance(recorded, dict) and 'sha256' in recorded else None
    except ValueError:
        return None


def stale_reason(folder: str, planned: dict[str, Any]) -> str | None:
    """Why the run in ``folder`` (started: died or finished) was not trained with ``planned``, or None when it was."""
    recorded = read_fingerprint(folder)
    if recorded is None:
        return f'it records no fingerprint ({FINGERPRINT_FILE}: started before sweeps recorded them, or by hand)'
    if recorded['sha256'] == fingerprint(planned):
        return None
    return f'it was trained with another config: first differing key {first_difference(recorded.get("config") or {}, planned)}'


def write_fingerprint(folder: str, planned: dict[str, Any]) -> None:
    body = {'sha256': fingerprint(planned), 'config': planned}
    storage.write_bytes(storage.join(folder, FINGERPRINT_FILE), json.dumps(body, indent=1, default=str).encode())


def remove_folder(folder: str) -> None:
    """Delete a run folder (local, or every object under an s3:// prefix), so that it trains again from nothing."""
    if not storage.is_s3(folder):
        shutil.rmtree(folder, ignore_errors=True)
        return
    bucket, prefix = storage.split_s3(folder.rstrip('/') + '/')
    client = storage._s3()
    for page in client.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix):
        keys = [{'Key': item['Key']} for item in page.get('Contents', [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={'Objects': keys})


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

    def start(self, run: Run, argv: list[str], resources: dict[str, float | None] | None = None) -> None:
        """Start ``argv`` (the run's command, :func:`command`) for ``run`` (a run, or an artifact's build: anything
        with a ``name``); it is in flight until :meth:`wait` returns it. ``resources``: what a cluster task of it
        asks for (``cpus``, ``gpus``; None or a None value: a run's)."""

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

    def start(self, run: Run, argv: list[str], resources: dict[str, float | None] | None = None) -> None:
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


@dataclass
class Job:
    """One step of a phase as :func:`_execute` runs it: a run (``launch/train.py``) or an artifact's build."""

    step: Run | Build
    argv: list[str]
    action: str  # what the line about it says: 'start', 'resume (...)', 'skipped (finished)', ...
    skip: bool = False
    prepare: Callable[[], None] | None = None  # just before it starts: its fingerprint, a stale folder removed
    done: Callable[[], None] | None = None  # after it finished: an artifact's marker
    resources: dict[str, float] | None = None  # what a Ray task of it asks for (None: a run's)


def _stale(step: Run | Build, reason: str) -> UsageError:
    what = step.title if isinstance(step, Build) else f'run {step.name}'
    redo = 'build it again' if isinstance(step, Build) else 'train it again from nothing'
    return UsageError(f'{what} ({step.folder}) is stale: {reason}: start the sweep with --rerun_stale to {redo}, or '
                      'give the sweep another results folder (or past_root)')


def _run_jobs(runs: list[Run], sweep: SweepSpec, train_script: str, dry_run: bool, rerun_stale: bool,
              read_state: bool) -> list[Job]:
    """Each run's job: its state read off its folder (not read where ``read_state`` is False: a dry run of a sweep
    in S3 touches no storage) and checked against its fingerprint: a stale run stops the sweep before any run of the
    phase starts, or with ``rerun_stale`` trains again from nothing."""
    jobs = []
    for run in runs:
        try:  # a dry run touching no storage leaves out the trackers' overrides: they need the run's config checked
            trackers = tracker_overrides(sweep, run) if read_state else ()
        except UsageError:  # a dry run's config names a past run or an artifact not made yet
            if not dry_run:
                raise
            trackers = ()
        overrides = (*run.overrides, *trackers)
        argv = command(replace(run, overrides=overrides), sweep.ranks, train_script)
        resources = None
        if run.kind == 'past' and sweep.past_runs:
            spec = sweep.past_runs[run.recipe]
            resources = {'cpus': spec.cpus, 'gpus': spec.gpus}
        if not read_state:
            jobs.append(Job(run, argv, 'state not read (a dry run touches no storage)', resources=resources))
            continue
        state = run_state(run.folder)
        job = Job(run, argv, {RunState.NEW: 'start', RunState.DIED: 'resume (started, not finished)',
                              RunState.FINISHED: 'skipped (finished)'}[state], skip=state is RunState.FINISHED,
                  resources=resources)
        planned = lambda run=run, overrides=overrides: planned_config(run.yaml, overrides)  # noqa: E731
        if state is not RunState.NEW:
            try:
                reason = stale_reason(run.folder, planned())
            except UsageError as e:
                if not dry_run:
                    raise
                reason = f'its config cannot be read yet ({e})'
            if reason and dry_run:
                job.action, job.skip = f'stale ({reason}): trains again with --rerun_stale', False
            elif reason and not rerun_stale:
                raise _stale(run, reason)
            elif reason:
                job.action, job.skip = f'train again (stale: {reason})', False
                job.prepare = lambda run=run, planned=planned: (remove_folder(run.folder),
                                                                write_fingerprint(run.folder, planned()))
        else:
            job.prepare = lambda run=run, planned=planned: write_fingerprint(run.folder, planned())
        jobs.append(job)
    return jobs


def _marker(build: Build) -> dict[str, Any] | None:
    if not storage.exists(build.marker):
        return None
    try:
        return json.loads(storage.read_bytes(build.marker))
    except ValueError:
        return None


def _build_jobs(builds: list[Build], sweep: SweepSpec, dry_run: bool, rerun_stale: bool, read_state: bool,
                unread: str = 'state not read (a dry run touches no storage)') -> list[Job]:
    """Each artifact's job: skipped where its marker records the same builder, past run (and its fingerprint) and
    arguments; built where it has none (a build that died starts again: the builders resume or redo their output);
    stale where its marker records another source or arguments."""
    jobs = []
    for build in builds:
        # the builder computes with the sweep's threads, as its runs do (torch reads OMP_NUM_THREADS when it starts)
        argv = ['env', f'OMP_NUM_THREADS={sweep.threads_per_run}', *_script_command(build.argv(), sweep.ranks)]
        spec = (sweep.artifacts or {})[build.artifact]
        resources = {'cpus': spec.cpus, 'gpus': spec.gpus}
        if not read_state:
            jobs.append(Job(build, argv, unread, resources=resources))
            continue
        source = read_fingerprint(build.run)
        record = build.record(source['sha256'] if source else None)
        marker = _marker(build)
        write = lambda build=build: storage.write_bytes(  # noqa: E731
            build.marker, json.dumps(build.record((read_fingerprint(build.run) or {}).get('sha256')), indent=1).encode())
        job = Job(build, argv, 'build', resources=resources, done=write)
        if marker is not None and marker == record:
            job.action, job.skip = 'skipped (built)', True
        elif marker is not None:
            reason = f'its marker {build.marker} records another source or arguments: {first_difference(marker, record, "made with")}'
            if dry_run or rerun_stale:
                job.action = f'stale ({reason}): ' + ('builds again with --rerun_stale' if dry_run else 'build again')
                job.prepare = lambda build=build: (remove_folder(build.out), _remove_file(build.out),
                                                   _remove_file(build.marker))
            else:
                raise _stale(build, reason)
        jobs.append(job)
    return jobs


def _remove_file(uri: str) -> None:
    if not storage.is_s3(uri):
        if os.path.isfile(uri):
            os.remove(uri)
        return
    bucket, key = storage.split_s3(uri)
    storage._s3().delete_object(Bucket=bucket, Key=key)


def _script_command(argv: list[str], ranks: int) -> list[str]:
    """``python SCRIPT args...`` from the repository root, under ``composer -n ranks`` when ranks > 1."""
    script = str(ROOT / argv[0])
    if ranks == 1:
        return [sys.executable, script, *argv[1:]]
    launcher = Path(sys.executable).with_name('composer')
    return [str(launcher), '-n', str(ranks), script, *argv[1:]]


def _execute(jobs: list[Job], launcher: Launcher, dry_run: bool, phase: str,
             clock: StepClock | None = None) -> tuple[int, int]:
    """Start every job not skipped through ``launcher``: ``(exit status of the first failure or 0, jobs skipped)``.
    Jobs start in order while the launcher has a free slot (``parallel`` here; every one on a Ray cluster, which
    queues them); after a failure no further job starts and those in flight finish. ``phase`` heads each line;
    ``clock``, the step's clock (:mod:`recipes.study.steps`), is told when a job starts or finishes."""
    skipped, code = 0, 0
    failed: Run | Build | None = None
    by_name = {job.step.name: job for job in jobs}

    def finish() -> tuple[Run | Build, int]:
        step, status = launcher.wait()
        if clock is not None:
            clock.worked()
        job = by_name.get(step.name)
        if not status and job is not None and job.done is not None:
            job.done()
        return step, status

    try:
        for number, job in enumerate(jobs, 1):
            while launcher.running() >= launcher.slots and not failed:
                finished, status = finish()
                if status:
                    failed, code = finished, status
            if failed:
                break
            step = job.step
            print(f'\n=== {phase}[{number}/{len(jobs)}] {step.title}: {job.action}  {step.folder}', flush=True)
            if job.skip:
                skipped += 1
                continue
            if step.needs and dry_run:
                print('waits on: ' + ', '.join(step.needs), flush=True)
            print('$ ' + ' '.join(job.argv), flush=True)
            if not dry_run:
                if job.prepare is not None:
                    job.prepare()
                launcher.start(step, job.argv, job.resources)
                if clock is not None:
                    clock.worked()
        while launcher.running():
            finished, status = finish()
            if status and not failed:
                failed, code = finished, status
    finally:
        launcher.stop()  # the sweep was stopped: stop its runs, so no second writer meets them on restart
    if failed:
        output = launcher.output_of(failed)
        where = f' (its output: {output})' if output else ''
        what = 'artifact' if isinstance(failed, Build) else 'run'
        print(
            f'{what} {failed.name} failed with exit status {code}{where}: fix the cause and start the sweep again; '
            f'finished {what}s are skipped and this one ' + ('is built again' if isinstance(failed, Build) else 'resumes'),
            file=sys.stderr, flush=True,
        )
    return code, skipped


def _train(runs: list[Run], sweep: SweepSpec, launcher: Launcher, train_script: str, dry_run: bool,
           phase: str, rerun_stale: bool = False, read_state: bool = True,
           clock: StepClock | None = None) -> tuple[int, int]:
    """Train every run of ``runs`` that has not finished (or is stale, with ``rerun_stale``) through ``launcher``."""
    return _execute(_run_jobs(runs, sweep, train_script, dry_run, rerun_stale, read_state), launcher, dry_run, phase,
                    clock)


def _tuning_is_stale(sweep: SweepSpec, tuned: Tuned, train_script: str) -> list[tuple[tuple[str, float], Run, str]]:
    """The ``(recipe, budget)`` choices of ``tuned.yaml`` whose tuning runs were trained with another config than
    the sweep would give them now."""
    stale = []
    for pair in tuned_pairs(sweep):
        if pair not in tuned.choices:
            continue
        for run in tuning_plan(sweep, [pair]):
            if run_state(run.folder) is RunState.NEW:
                continue
            reason = stale_reason(run.folder, planned_config(run.yaml, (*run.overrides, *tracker_overrides(sweep, run))))
            if reason:
                stale.append((pair, run, reason))
                break
    return stale


def _tune(sweep: SweepSpec, launcher: Launcher, train_script: str, dry_run: bool, rerun_stale: bool = False,
          read_state: bool = True, clock: StepClock | None = None) -> tuple[Tuned | None, int]:
    """Train the tuning runs of every choice ``tuned.yaml`` lacks, choose, and write ``tuned.yaml``: ``(what it
    holds, 0)``, or ``(None, exit status)`` after a failure; ``(None, 0)`` for a dry run with tuning runs to train.
    A choice whose tuning runs are stale stops the sweep, or with ``rerun_stale`` is made again."""
    earlier = read_tuned(sweep.results) if read_state else None
    if earlier is not None:
        check_tuned(sweep, earlier)
        stale = _tuning_is_stale(sweep, earlier, train_script)
        if stale and not (rerun_stale or dry_run):
            (_, run, reason), *_ = stale
            raise _stale(run, f'{reason}; {storage.join(sweep.results, TUNED_FILE)} chose from it')
        if stale:
            choices = {pair: c for pair, c in earlier.choices.items() if pair not in {p for p, _, _ in stale}}
            earlier = replace(earlier, choices=choices)
    pending = [pair for pair in tuned_pairs(sweep) if earlier is None or pair not in earlier.choices]
    if not pending:
        print(f'tuning: {storage.join(sweep.results, TUNED_FILE)} holds every choice; no tuning run trains', flush=True)
    runs = tuning_plan(sweep, pending)
    code, skipped = _train(runs, sweep, launcher, train_script, dry_run, 'tuning ', rerun_stale, read_state, clock)
    if code:
        return None, code
    if runs:
        print(f'\ntuning: {len(runs)} runs, ' + _counts(skipped, len(runs), dry_run, read_state, 'finished', 'train'),
              flush=True)
    if dry_run and skipped < len(runs):
        return None, 0
    result = with_choices(sweep, earlier, [choose(sweep, recipe, budget) for recipe, budget in pending])
    if not dry_run:
        write_tuned(sweep.results, result)
    for recipe, budget in pending:
        print('tuned ' + result.choices[recipe, budget].summary(), flush=True)
    return result, 0


def _inputs(sweep: SweepSpec, launcher: Launcher, train_script: str, dry_run: bool, rerun_stale: bool,
            read_state: bool) -> int:
    """Train the past runs, then build the artifacts: each phase's steps in parallel as the launcher allows, each
    timed as a step of the study (:mod:`recipes.study.steps`)."""
    runs = past_run_plan(sweep)
    if runs:
        with timed_step(sweep.results, 'past_runs') as clock:
            code, skipped = _train(runs, sweep, launcher, train_script, dry_run, 'past run ', rerun_stale, read_state,
                                   clock)
        if code:
            return code
        print(f'\npast runs: {len(runs)}, ' + _counts(skipped, len(runs), dry_run, read_state, 'finished', 'train'),
              flush=True)
    builds = artifact_plan(sweep)
    if builds:
        pending = read_state and any(run_state(run.folder) is not RunState.FINISHED for run in runs)
        unread = 'waits on its past run' if read_state else 'state not read (a dry run touches no storage)'
        with timed_step(sweep.results, 'artifacts') as clock:
            code, skipped = _execute(_build_jobs(builds, sweep, dry_run, rerun_stale, read_state and not pending,
                                                 unread), launcher, dry_run, 'artifact ', clock)
        if code:
            return code
        counts = (_counts(skipped, len(builds), dry_run, read_state, 'built', 'build') if not pending else
                  f'{len(builds)} to build after their past runs')
        print(f'\nartifacts: {len(builds)}, {counts}', flush=True)
    return 0


def run_sweep(sweep: SweepSpec, train_script: str, dry_run: bool = False, rerun_stale: bool = False,
              source: str = 'sweep') -> int:
    """Train every run that has not finished through the sweep's launcher; the exit status of the first failure, or 0.

    First the past runs (``past_runs``), then the artifacts made of them (``artifacts``), then with ``tune`` the
    tuning runs, whose choice (``tuned.yaml``, :mod:`recipes.study.tuning`) goes into every evaluation run's
    overrides, then the evaluation runs. After a failure no further run starts and the runs in flight finish. An
    exception while runs train (Ctrl-C, or SIGTERM turned into SystemExit by ``launch/sweep.py``) stops them
    (:meth:`Launcher.stop`) before it propagates. A stale run or artifact (trained with another config than the
    sweep gives it now) stops the sweep in one line, or with ``rerun_stale`` is made again. A sweep whose comparisons
    differ from those its results folder registered is refused before anything starts (the first one registers
    them). Each phase that starts work records its times in ``steps.csv``. ``dry_run`` prints each
    step's state, command and what it waits on, and starts, connects to and writes nothing; with ``results`` in S3
    it reads nothing there either.
    """
    read_state = not (dry_run and storage.is_s3(sweep.results))
    if read_state:
        storage.check_reachable(sweep.results)
    logs = logs_folder(sweep.results)
    launcher = LocalProcesses(sweep.parallel, logs) if dry_run else open_launcher(sweep, logs)
    if not dry_run:
        register(sweep)  # before sweep.yaml: a folder without one had not run
        storage.write_bytes(storage.join(sweep.results, SWEEP_FILE), sweep.to_yaml().encode())
        if launcher.header():
            print(launcher.header(), flush=True)
    code = _inputs(sweep, launcher, train_script, dry_run, rerun_stale, read_state)
    if code:
        return code
    if (sweep.past_runs or sweep.artifacts) and not dry_run:
        check_run_configs(sweep, source)  # their inputs exist now: every run's config, checked whole
    tuned: Tuned | None = None
    if sweep.tune is not None:
        with timed_step(sweep.results, 'tuning') as clock:
            tuned, code = _tune(sweep, launcher, train_script, dry_run, rerun_stale, read_state, clock)
        if code:
            return code
        if tuned is None:
            runs = plan(sweep)
            print(f'sweep: {len(runs)} evaluation runs wait on tuning: they train with the settings chosen from '
                  f'the tuning runs above ({storage.join(sweep.results, TUNED_FILE)})', flush=True)
            for number, run in enumerate(runs, 1):
                print(f'\n=== [{number}/{len(runs)}] {run.title}: waits on tuning  {run.folder}', flush=True)
                print(f'$ {" ".join(command(run, sweep.ranks, train_script))} + the settings tuned for '
                      f'{sweep.tuned_by(run.recipe)} at budget {budget_label(run.budget)}', flush=True)
            return 0
    runs = plan(sweep, tuned.overrides() if tuned else sweep.fixed_settings())
    with timed_step(sweep.results, 'evaluation') as clock:
        code, skipped = _train(runs, sweep, launcher, train_script, dry_run, '', rerun_stale, read_state, clock)
    if code:
        return code
    print(f'\nsweep: {len(runs)} runs, ' + _counts(skipped, len(runs), dry_run, read_state, 'finished', 'train'), flush=True)
    return 0


def _counts(skipped: int, total: int, dry_run: bool, read_state: bool, done: str, make: str) -> str:
    """``2 already finished, 1 trained`` (``to train`` in a dry run), or that a dry run did not read their state."""
    if not read_state:
        return 'their state not read (a dry run touches no storage)'
    made = f'to {make}' if dry_run else ('built' if make == 'build' else 'trained')
    return f'{skipped} already {done}, {total - skipped} {made}'
