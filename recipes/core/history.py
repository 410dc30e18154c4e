"""A callback that keeps the run's evaluation history in its run folder as ``metrics.json``.

Uses ``Event.EVAL_END`` (after each evaluator: all ranks compute its synchronised metrics), ``Event.EVAL_AFTER_ALL``
(after the evaluators of one evaluation: rank 0 writes a row with the test split's ``accuracy`` and
``cross_entropy`` and, for a run with a validation split, its ``val_accuracy`` and ``val_cross_entropy``; where ``test_interval`` evaluates the
test split less often, rows without it hold only the ``val_`` keys, and evaluators that fire at the same batch share
one row) and
``Event.FIT_END`` (marks the run finished). The history is part of the callback's ``state_dict``, so a resumed
run continues it instead of starting over, and ``resumed_at`` lists the batch each resumption started from (empty for
a run that never died). ``wall_seconds`` is Composer's training wall clock
(``state.timestamp.total_wct``: evaluation excluded; a checkpoint restores it, so a resumed run continues it). Reports and ``make demo`` read this file; a run folder therefore
describes itself: ``config.yaml`` for what ran, ``metrics.json`` for what it reached, and on what machine
(:func:`machine`: the CPU, the GPU, the library versions), since exact figures depend on the floating-point path.
"""

from __future__ import annotations

import json
import os
import platform
from functools import cache
from importlib import metadata
from typing import Any

from composer.core import Callback, State
from composer.loggers import Logger
from composer.utils import dist

from recipes.core import storage
from recipes.core.run_files import METRICS_FILE

__all__ = ['VALIDATION', 'RunHistory', 'machine']

VALIDATION = 'val'  # the evaluator label of the held-out validation split; its metrics are recorded as val_*
METRICS = (('accuracy', 'MulticlassAccuracy'), ('cross_entropy', 'CrossEntropy'))

LIBRARIES = ('torch', 'mosaicml', 'numpy')  # the versions a run's floating-point results depend on


def _cpu() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
    except OSError:
        names = []
    return f'{names[0] if names else platform.processor() or platform.machine()} ({os.cpu_count()} cores)'


@cache
def machine() -> dict[str, str]:
    """What a run's exact figures depend on: the CPU, the GPU (or none) and the versions of Python and
    :data:`LIBRARIES`."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'
    versions = {name: metadata.version(name) for name in LIBRARIES}
    return {'cpu': _cpu(), 'gpu': gpu, 'python': platform.python_version(), **versions}


class RunHistory(Callback):
    """Write ``{'eval': [{'epoch', 'batch', 'accuracy', 'cross_entropy'[, 'val_accuracy', 'val_cross_entropy']}...],
    'finished': bool, 'resumed_at': [batch...], 'wall_seconds': float}`` after each evaluation."""

    def __init__(self, run_folder: str | None) -> None:
        self.run_folder = run_folder
        self.evals: list[dict[str, Any]] = []
        self.resumed_at: list[int] = []
        self.finished = False
        self.wall_seconds = 0.0
        self._row: dict[str, Any] = {}

    def _write(self) -> None:
        if self.run_folder is None or dist.get_global_rank() != 0:
            return
        body = {'eval': self.evals, 'finished': self.finished, 'resumed_at': self.resumed_at,
                'wall_seconds': self.wall_seconds, 'machine': machine()}
        storage.write_bytes(storage.join(self.run_folder, METRICS_FILE), json.dumps(body, indent=1).encode())

    def fit_start(self, state: State, logger: Logger) -> None:
        if int(state.timestamp.batch):  # the checkpoint it resumed from has restored the clock
            self.resumed_at.append(int(state.timestamp.batch))

    def eval_before_all(self, state: State, logger: Logger) -> None:
        self._row = {'epoch': int(state.timestamp.epoch), 'batch': int(state.timestamp.batch)}

    def eval_end(self, state: State, logger: Logger) -> None:
        label = state.dataloader_label
        if label not in ('eval', VALIDATION):
            return
        prefix = 'val_' if label == VALIDATION else ''
        metrics = state.eval_metrics.get(label, {})
        for key, metric in METRICS:
            if metric in metrics:
                self._row[prefix + key] = float(metrics[metric].compute())

    def eval_after_all(self, state: State, logger: Logger) -> None:
        if self.evals and self.evals[-1]['batch'] == self._row['batch']:
            # evaluators on different intervals (test_interval) that fire at the same batch: one row
            self.evals[-1].update(self._row)
        else:
            self.evals.append(self._row)
        self.wall_seconds = state.timestamp.total_wct.total_seconds()
        self._write()

    def fit_end(self, state: State, logger: Logger) -> None:
        self.finished = True
        self.wall_seconds = state.timestamp.total_wct.total_seconds()
        self._write()

    def state_dict(self) -> dict[str, Any]:
        return {'evals': list(self.evals), 'resumed_at': list(self.resumed_at)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.evals = list(state.get('evals', []))
        self.resumed_at = list(state.get('resumed_at', []))

