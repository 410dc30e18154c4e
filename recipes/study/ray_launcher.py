"""A sweep's runs as Ray tasks (``launcher: ray``), one task per run, on the cluster at ``ray.address``.

Each task asks for the resources of one run (``ray.gpus_per_run``, default one GPU per rank; ``ray.cpus_per_run``)
and runs the run's command, the one a local sweep runs, as a subprocess on the node Ray picks, in the directory the
sweep was started in: every node holds the project at the same path (``yamls/cluster/aws.yaml`` syncs it there).
The subprocess's output goes, chunk by chunk, to a small actor on the head node, from which the sweep appends it to
``{logs}/{run name}.log`` (:func:`recipes.study.runner.logs_folder`), as a local sweep's ``parallel`` runs write theirs.

A task whose worker or node dies is retried by Ray, up to ``ray.max_retries`` times (system failures only: a run that
exits non-zero is not retried, its cause is in the run); the retried run resumes from its newest checkpoint, as every
sweep run has ``autoresume``. Stopping the sweep cancels every task with ``force``: Ray kills their workers, and each
run's process goes with its worker (the kernel sends it SIGTERM when the worker dies, ``PR_SET_PDEATHSIG``). Each
attempt, a failure Ray reports and a cancel are lines of the sweep's own in the run's log (``--- ray: ...``).

On a cluster a run may train on any node, so its folder must be reachable from all of them: a local ``results``
folder (which holds every run's ``save_folder``) is refused, before any task is submitted, when the cluster has more
than one node, when the node this sweep runs on lacks the resources of a run (a CPU head whose GPU nodes the
autoscaler adds), and through Ray Client (``ray://``), whose runs train on other machines than the sweep.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.study.spec import Run, SweepSpec

__all__ = ['RayTasks', 'runs_leave_this_node']

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _dies_with_this_process() -> Callable[[], None]:
    """A ``preexec_fn`` that asks the kernel for SIGTERM to the child when this process (the task's worker) dies,
    by a forced cancel or a kill, which Composer's launcher passes on to its ranks; a child whose parent died before
    it asked exits at once. Linux only, as the nodes of a cluster are; prctl is looked up before the fork."""
    prctl, parent = ctypes.CDLL(None, use_errno=True).prctl, os.getpid()

    def ask() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:
            os._exit(1)

    return ask


class _Outputs:
    """What the runs' tasks report, kept in order until the sweep takes it: ``(run name, kind, value)`` with kind
    ``start`` (value: the node), ``output`` (bytes) or ``end`` (the exit status, which the task also returns: it
    waits for this last report, so its output is all in before it returns)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    def put(self, name: str, kind: str, value: Any) -> None:
        self.events.append((name, kind, value))

    def take(self) -> list[tuple[str, str, Any]]:
        events, self.events = self.events, []
        return events


_OutputsActor = ray.remote(num_cpus=0)(_Outputs)


@ray.remote
def _train(argv: list[str], cwd: str, name: str, outputs: Any) -> int:
    """One attempt at one run: its command in ``cwd``, its output streamed to ``outputs``; its exit status."""
    ray.get(outputs.put.remote(name, 'start', f'{socket.gethostname()} ({ray.util.get_node_ip_address()})'))
    child = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             preexec_fn=_dies_with_this_process())
    assert child.stdout is not None  # stdout=PIPE
    while chunk := os.read(child.stdout.fileno(), 1 << 16):  # what the run has written, up to 64 KiB
        outputs.put.remote(name, 'output', chunk)
    code = child.wait()
    ray.get(outputs.put.remote(name, 'end', code))  # calls from one caller run in order: all output is in
    return code


def _connect(address: str) -> None:
    """Connect this process to the cluster as a driver, keeping its SIGTERM handler (``ray.init`` sets its own)."""
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, TimeoutError) as e:
        raise UsageError(
            f'ray.address={address}: no Ray cluster answered ({str(e).strip().splitlines()[0]}): start one '
            '(ray up yamls/cluster/aws.yaml, or ray start --head) and run the sweep on its head, or set ray.address',
        ) from None
    finally:
        signal.signal(signal.SIGTERM, on_sigterm)


def runs_leave_this_node(sweep: SweepSpec) -> str | None:
    """Why a run of ``sweep`` may train on another machine than this one (the cluster must be connected), or None."""
    if sweep.ray.address.startswith('ray://'):
        return f'through Ray Client ({sweep.ray.address}) runs train on the cluster, not on this machine'
    nodes = [node for node in ray.nodes() if node['Alive']]
    if len(nodes) > 1:
        return f'the cluster has {len(nodes)} nodes and a run trains on any of them'
    here = ray.get_runtime_context().get_node_id()
    have = next(node['Resources'] for node in nodes if node['NodeID'] == here)
    for resource, need in (('GPU', sweep.gpus_per_run()), ('CPU', sweep.ray.cpus_per_run)):
        if need > have.get(resource, 0):
            return (f'a run asks for {need:g} {resource}s and this node has {have.get(resource, 0):g}, so runs train '
                    'on nodes the cluster adds')
    return None


class RayTasks:
    """The :class:`recipes.study.runner.Launcher` of ``launcher: ray``: connects to the cluster and checks the sweep
    against it when built; every run is in flight from its start (the cluster queues what does not fit), and each
    run that ends prints the sweep's progress."""

    def __init__(self, sweep: SweepSpec, logs: Path) -> None:
        _connect(sweep.ray.address)
        if not storage.is_s3(sweep.results):
            reason = runs_leave_this_node(sweep)
            if reason:
                raise UsageError(
                    f'results={sweep.results} is a local folder, and every run\'s save_folder lies in it, but with '
                    f'launcher=ray {reason}: use s3://BUCKET/PREFIX for results, so a run resumes on any node',
                )
        self.sweep, self.logs = sweep, logs
        self.slots = sys.maxsize
        # An actor handle (its methods are called with .remote()), on the head node, which outlives spot workers.
        self.outputs: Any = _OutputsActor.options(resources={'node:__internal_head__': 0.001}).remote()
        self.tasks: dict[ray.ObjectRef, Run] = {}
        self.attempts: Counter[str] = Counter()  # starts per run name: a second one is a retry
        self.started: dict[str, float] = {}
        self.ended: set[str] = set()
        self.line_open: set[str] = set()  # runs whose log does not end with a newline (a progress bar's last state)
        self.done = self.failed = 0

    def header(self) -> str | None:
        resources = f'GPUs: {self.sweep.gpus_per_run():g}, CPUs: {self.sweep.ray.cpus_per_run:g}'
        return (f'sweep: each run a Ray task ({resources}) on the cluster at {self.sweep.ray.address}, started again up '
                f'to {self.sweep.ray.max_retries} times if its worker or node dies, its output in {self.logs}/RUN.log')

    def start(self, run: Run, argv: list[str], resources: dict[str, float | None] | None = None) -> None:
        """A task for ``run`` (a run, or an artifact's build), asking for ``resources`` (``cpus``, ``gpus``: a past
        run family's or an artifact's own, where the sweep file gives them), else a run's."""
        cpus, gpus = (resources or {}).get('cpus'), (resources or {}).get('gpus')
        options: dict[str, Any] = {
            'name': run.name, 'num_cpus': self.sweep.ray.cpus_per_run if cpus is None else cpus,
            'num_gpus': self.sweep.gpus_per_run() if gpus is None else gpus,
            'max_retries': self.sweep.ray.max_retries, 'retry_exceptions': False,
        }
        if self.sweep.ray.runtime_env is not None:
            options['runtime_env'] = self.sweep.ray.runtime_env
        self.tasks[_train.options(**options).remote(argv, os.getcwd(), run.name, self.outputs)] = run

    def running(self) -> int:
        return len(self.tasks)

    def wait(self) -> tuple[Run, int]:
        while True:  # polled, so that Ctrl-C and SIGTERM arrive in Python's sleep, not in Ray's wait (SystemExit(1))
            self._take_outputs()
            ready, _ = ray.wait(list(self.tasks), num_returns=1, timeout=0)
            if ready:
                break
            time.sleep(0.5)
        run = self.tasks.pop(ready[0])
        try:
            code = ray.get(ready[0])
        except ray.exceptions.RayError as e:  # its retries spent, or the task itself raised (a missing command)
            code = 1
            self._note(run.name, str(e).strip().splitlines()[0])
        self._take_outputs()
        self.ended.add(run.name)
        self.done, self.failed = self.done + (not code), self.failed + bool(code)
        took = time.monotonic() - self.started.get(run.name, time.monotonic())
        ending = 'finished' if not code else f'failed (exit status {code}, its output: {self.output_of(run)})'
        running = sum(1 for name in self.started if name not in self.ended)
        retried = sum(1 for n in self.attempts.values() if n > 1)
        print(f'--- {run.name} {ending} in {took:.0f} s; {self.done} done, {running} running, '
              f'{len(self.tasks) - running} queued, {retried} retried, {self.failed} failed', flush=True)
        return run, code

    def stop(self) -> None:
        if not self.tasks:
            return
        for ref in self.tasks:
            ray.cancel(ref, force=True)
        ray.wait(list(self.tasks), num_returns=len(self.tasks), timeout=60)  # their workers are gone
        self._take_outputs()
        for run in self.tasks.values():
            self._note(run.name, 'cancelled: the sweep was stopped')
        print(f'sweep: stopped; its {len(self.tasks)} unfinished Ray tasks were cancelled (run it again to continue)',
              file=sys.stderr, flush=True)
        self.tasks.clear()

    def output_of(self, run: Run) -> Path | None:
        return self.logs / f'{run.name}.log'

    def _append(self, name: str, data: bytes) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f'{name}.log', 'ab') as log:
            log.write(data)
        if data.endswith(b'\n'):
            self.line_open.discard(name)
        elif data:
            self.line_open.add(name)

    def _note(self, name: str, text: str) -> None:
        """A line of the sweep's own in ``name``'s log, on a line of its own."""
        start = b'\n' if name in self.line_open else b''
        self._append(name, start + f'--- ray: {text}\n'.encode())

    def _take_outputs(self) -> None:
        """Append what the tasks reported to their runs' logs; note each attempt, and say so for a retry."""
        for name, kind, value in ray.get(self.outputs.take.remote()):
            if kind == 'output':
                self._append(name, value)
            elif kind == 'start':
                self.attempts[name] += 1
                self.started.setdefault(name, time.monotonic())
                attempt = self.attempts[name]
                self._note(name, f'attempt {attempt} on {value}')
                if attempt > 1:
                    print(f'--- {name}: attempt {attempt} on {value}, after its worker or node died; it resumes '
                          'from its newest checkpoint', flush=True)
