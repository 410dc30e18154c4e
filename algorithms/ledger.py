"""The compute ledger: floating-point operations a run spends, by purpose, and those it reuses from past runs.

Counting uses ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions, forward and backward) on
the first training batch and the first evaluation batch of every epoch; FLOPs per sample times the samples
processed gives the totals. A training batch is counted from ``BEFORE_DATALOADER`` to ``BATCH_END``, so work an
algorithm does on the loader's batch at ``AFTER_DATALOADER`` (a selection forward) is counted with the step; the
samples are those the loader gave (Composer's ``state.timestamp.sample``). Code that spends compute for a purpose
other than the student's own step marks it:

    with spend('teacher'):
        teacher_logits = teacher(inputs)

While a batch is being counted, FLOPs inside such a block go to that purpose; the rest of the step is the
student's forward and backward. Outside counted batches ``spend`` costs one context-manager call.

Compute spent once, outside the training steps (DASH's gradient pass before training), is booked under its own
purpose when the fit starts: an algorithm that spends it implements ``one_off_compute() -> dict[str, float]``
(:class:`~algorithms.protocols.SpendsOnce`).

Reused compute is what the artifacts a run consumes cost when they were made: an algorithm that consumes one
implements ``reused_compute() -> dict[str, float]`` (FLOPs by source), read from the past run's ``compute.json`` or
the artifact's metadata; a source two algorithms share (the same past run) counts once, at the larger of the two.

:class:`ComputeLedger` uses ``BEFORE_DATALOADER``/``BATCH_END`` and ``EVAL_BATCH_START``/``EVAL_BATCH_END`` to
open and close the counter, ``EPOCH_END``/``FIT_END`` to write ``{run}/compute.json``; its totals are in its
``state_dict``, so a resumed run continues them. Through Composer's Logger (so in every tracker) it logs the totals
as metrics (``compute/spent_flops``, ``compute/reused_flops`` every batch; ``compute/spent/PURPOSE`` at each epoch's
and the fit's end) and the FLOPs reused by source as the hyperparameter ``compute/reused_by_source`` (JSON).
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import torch
from composer.core import Callback, State
from composer.loggers import Logger
from composer.utils import dist
from torch.utils.flop_counter import FlopCounterMode

from algorithms.protocols import ReusesCompute, SpendsOnce
from recipes.core import storage
from recipes.core.run_files import COMPUTE_FILE

__all__ = ['ComputeLedger', 'count_flops', 'spend']

STUDENT = 'student'

_active: dict[str, Any] = {'measurement': None}  # the batch this process is counting, if any


@contextlib.contextmanager
def spend(purpose: str) -> Iterator[None]:
    """Attribute the FLOPs of the enclosed code to ``purpose`` while the ledger counts a batch."""
    measurement = _active['measurement']
    if measurement is None:
        yield
        return
    before = measurement.counter.get_total_flops()
    try:
        yield
    finally:
        measurement.spent[purpose] += measurement.counter.get_total_flops() - before


def count_flops(fn: Any, *args: Any, **kwargs: Any) -> int:
    """FLOPs of one call ``fn(*args, **kwargs)`` (forward, and backward if ``fn`` runs one)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


class _Measurement:
    """One counted batch: FLOPs by purpose for ``samples`` samples.

    At most one is open in a process. A fit that raised in the middle of a counted batch leaves its measurement open
    (FlopCounterMode stays on the dispatch stack, and its hooks would meet later backward passes): the next one to
    start, or the ledger when its trainer closes, ends it first. Closing twice is harmless.
    """

    def __init__(self) -> None:
        self.counter = FlopCounterMode(display=False)
        # A compiled model meeting FlopCounterMode (a dispatch mode dynamo does not support) is marked never to
        # compile again: counted batches run eagerly instead, and the others stay compiled.
        self.eager = torch.compiler.set_stance('force_eager')
        self.spent: dict[str, float] = defaultdict(float)
        self.open = False

    def start(self) -> _Measurement:
        if _active['measurement'] is not None:
            _active['measurement'].close()
        self.eager.__enter__()
        self.counter.__enter__()
        self.open = True
        _active['measurement'] = self
        return self

    def close(self) -> dict[str, float]:
        if self.open:
            self.open = False
            if _active['measurement'] is self:
                _active['measurement'] = None
            self.counter.__exit__(None, None, None)
            self.eager.__exit__(None, None, None)
        total = float(self.counter.get_total_flops())
        by_purpose = dict(self.spent)
        by_purpose[STUDENT] = total - sum(by_purpose.values())
        return by_purpose


class ComputeLedger(Callback):
    """Count FLOPs spent (student, teacher, attack, eval, ...) and reused, and write ``compute.json``.

    Args:
        run_folder: where ``compute.json`` goes (local or s3://); None keeps the numbers in the logs only.
    """

    def __init__(self, run_folder: str | None = None) -> None:
        self.run_folder = run_folder
        self.per_sample: dict[str, float] = {}  # FLOPs per training sample by purpose, newest measurement
        self.eval_per_sample = 0.0
        self.spent: dict[str, float] = defaultdict(float)  # by the training steps and evaluation
        self.once: dict[str, float] = {}  # outside the steps, once (SpendsOnce): DASH's gradient pass
        self.reused: dict[str, float] = {}
        self.by_epoch: list[float] = []  # FLOPs spent when each epoch's training ended: what its checkpoint cost
        self.wall_seconds = 0.0  # Composer's training wall clock (total_wct): evaluation excluded, resumes continue
        self.samples = 0
        self._measure: _Measurement | None = None
        self._measured_epoch = -1
        self._measured_eval = -1

    # training ---------------------------------------------------------------------------------------------------
    def fit_start(self, state: State, logger: Logger) -> None:
        self._discard()  # a previous fit of this trainer that raised mid-batch
        for algorithm in state.algorithms:
            if isinstance(algorithm, ReusesCompute):
                for source, flops in algorithm.reused_compute().items():  # a past run two algorithms share counts once
                    self.reused[source] = max(flops, self.reused.get(source, 0.0))
            if isinstance(algorithm, SpendsOnce):  # set, not added: a second fit() or a resumed run asks again
                self.once.update(algorithm.one_off_compute())
        logger.log_hyperparameters({'compute/reused_by_source': json.dumps(self.reused, sort_keys=True)})

    def before_dataloader(self, state: State, logger: Logger) -> None:
        if int(state.timestamp.epoch) != self._measured_epoch and self._measure is None:
            self._measure = _Measurement().start()

    def batch_end(self, state: State, logger: Logger) -> None:
        samples = int(state.timestamp.sample) - self.samples
        self.samples = int(state.timestamp.sample)
        if self._measure is not None:
            rank_samples = max(1, samples // dist.get_world_size())
            self.per_sample = {k: v / rank_samples for k, v in self._measure.close().items()}
            self._measure = None
            self._measured_epoch = int(state.timestamp.epoch)
        for purpose, flops in self.per_sample.items():
            self.spent[purpose] += flops * samples
        self.wall_seconds = state.timestamp.total_wct.total_seconds()
        logger.log_metrics({'compute/spent_flops': self.spent_total, 'compute/reused_flops': sum(self.reused.values())})

    # evaluation ---------------------------------------------------------------------------------------------------
    def eval_batch_start(self, state: State, logger: Logger) -> None:
        if self._measured_eval != int(state.timestamp.epoch) and self._measure is None:
            self._measure = _Measurement().start()

    def eval_batch_end(self, state: State, logger: Logger) -> None:
        batch_samples = len(state.batch[0]) if isinstance(state.batch, (list, tuple)) else 0
        if self._measure is not None:
            self.eval_per_sample = sum(self._measure.close().values()) / max(1, batch_samples)
            self._measure = None
            self._measured_eval = int(state.timestamp.epoch)
        self.spent['eval'] += self.eval_per_sample * batch_samples * dist.get_world_size()

    # bookkeeping --------------------------------------------------------------------------------------------------
    @property
    def spent_total(self) -> float:
        return float(sum(self.spent.values()) + sum(self.once.values()))

    def spent_by_purpose(self) -> dict[str, float]:
        """FLOPs spent by purpose: the steps', the evaluation's and those spent once."""
        merged = dict(self.spent)
        for purpose, flops in self.once.items():
            merged[purpose] = merged.get(purpose, 0.0) + flops
        return merged

    def _discard(self) -> None:
        """End a measurement no batch closed (an epoch whose loader gave no batch, a fit that raised mid-batch)."""
        if self._measure is not None:
            self._measure.close()
            self._measure = None

    def epoch_end(self, state: State, logger: Logger) -> None:
        self._discard()
        self.by_epoch.append(self.spent_total)
        self._log_totals(logger)
        self._write()

    def fit_end(self, state: State, logger: Logger) -> None:
        self._log_totals(logger)
        self._write()

    def close(self, state: State, logger: Logger) -> None:
        self._discard()

    def _log_totals(self, logger: Logger) -> None:
        """Spent by purpose and in all, reused in all, as metrics (trackers show them beside the accuracy)."""
        logger.log_metrics({
            **{f'compute/spent/{purpose}': flops for purpose, flops in self.spent_by_purpose().items()},
            'compute/spent_flops': self.spent_total,
            'compute/reused_flops': float(sum(self.reused.values())),
        })

    def summary(self) -> dict[str, Any]:
        return {
            'spent': self.spent_by_purpose(),
            'reused': dict(self.reused),
            'spent_total': self.spent_total,
            'reused_total': float(sum(self.reused.values())),
            'by_epoch': list(self.by_epoch),
            'wall_seconds': self.wall_seconds,
            'samples': self.samples,
            'samples_per_second': self.samples / self.wall_seconds if self.wall_seconds else 0.0,
        }

    def _write(self) -> None:
        if self.run_folder and dist.get_global_rank() == 0:
            body = json.dumps(self.summary(), indent=1).encode()
            storage.write_bytes(storage.join(self.run_folder, COMPUTE_FILE), body)

    def state_dict(self) -> dict[str, Any]:
        return {
            'spent': dict(self.spent),
            'once': dict(self.once),
            'by_epoch': list(self.by_epoch),
            'samples': self.samples,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.spent = defaultdict(float, state.get('spent', {}))
        self.once = dict(state.get('once', {}))
        self.by_epoch = list(state.get('by_epoch', []))
        self.samples = int(state.get('samples', 0))
