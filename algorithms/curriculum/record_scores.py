"""Scores a training run already pays for: each example's loss, EL2N and forgetting events, from training's forward.

:class:`ScoreRecord` holds, for every training example (by dataset index):

* ``loss`` and ``el2n`` at its last visit in the current epoch (NaN until it is visited), and ``visits``, how many
  times the epoch has drawn it;
* ``forgetting``: its forgetting events so far (Toneva et al. 2019: a correct prediction followed, at a later visit,
  by a wrong one), ``last_correct`` (-1 before the first visit) and ``learned`` (ever predicted correctly).

:class:`RecordScores` fills it from ``state.outputs`` and keeps it in its ``state_dict``, so every checkpoint of the
run carries the record as of that moment: checkpoint ``ep2`` holds the losses and EL2N of epoch 2, and
``launch/score.py --method recorded_el2n|forgetting`` turns them into a scores artifact with no forward pass.
The recorded values come from the training forward pass (train-mode BatchNorm, augmented views); EL2N from a
checkpoint in eval mode (``--method el2n``) is what Data Diet defines, the recorded one is its free approximation.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import torch
from composer.core import Callback, State
from composer.loggers import Logger
from composer.utils import dist
from torch import Tensor

from algorithms.curriculum.grand import el2n, per_example_loss
from recipes.core.declare import FromRun
from recipes.core.errors import UsageError

__all__ = ['RecordScores', 'ScoreRecord', 'example_stats', 'forgetting_scores']


class ScoreRecord:
    """Per-example training statistics over ``num_samples`` examples, on one device."""

    FIELDS = ('loss', 'el2n', 'visits', 'forgetting', 'last_correct', 'learned')

    def __init__(self, num_samples: int, device: torch.device | str = 'cpu') -> None:
        self.num_samples = num_samples
        self.loss = torch.full((num_samples,), float('nan'), device=device)
        self.el2n = torch.full((num_samples,), float('nan'), device=device)
        self.visits = torch.zeros(num_samples, dtype=torch.int32, device=device)
        self.forgetting = torch.zeros(num_samples, dtype=torch.int32, device=device)
        self.last_correct = torch.full((num_samples,), -1, dtype=torch.int8, device=device)
        self.learned = torch.zeros(num_samples, dtype=torch.bool, device=device)

    def to(self, device: torch.device) -> ScoreRecord:
        for name in self.FIELDS:
            setattr(self, name, getattr(self, name).to(device))
        return self

    def new_epoch(self) -> None:
        """Forget the per-epoch values; forgetting statistics carry on."""
        self.loss.fill_(float('nan'))
        self.el2n.fill_(float('nan'))
        self.visits.zero_()

    def update(self, indices: Tensor, stats: Tensor) -> None:
        """Record the :func:`example_stats` rows ``stats`` [B, 3] of the examples ``indices`` [B]."""
        loss, el2n_, correct = stats[:, 0], stats[:, 1], stats[:, 2] > 0.5
        previous = self.last_correct[indices]
        self.forgetting[indices] += ((previous == 1) & ~correct).to(torch.int32)
        self.last_correct[indices] = correct.to(torch.int8)
        self.learned[indices] |= correct
        self.loss[indices] = loss.to(self.loss.dtype)
        self.el2n[indices] = el2n_.to(self.el2n.dtype)
        self.visits.index_add_(0, indices, torch.ones_like(indices, dtype=torch.int32))

    def state_dict(self) -> dict[str, Tensor]:
        return {name: getattr(self, name).cpu() for name in self.FIELDS}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        device = self.loss.device
        for name in self.FIELDS:
            value = state[name]
            if value.shape != (self.num_samples,):
                raise UsageError(
                    f'the checkpoint records scores of {value.shape[0]} examples but this data set has '
                    f'{self.num_samples}: resume on the data set the run started with',
                )
            setattr(self, name, value.to(device))


def forgetting_scores(record: dict[str, Tensor]) -> np.ndarray:
    """Forgetting events per example as float32; never-learned examples rank above all (max count + 1).

    Toneva et al. count an example never predicted correctly as forgotten infinitely often; one more than the
    largest count keeps that order and the score finite.
    """
    counts = record['forgetting'].numpy().astype(np.float32)
    never = ~record['learned'].numpy()
    counts[never] = counts.max(initial=0.0) + 1.0
    return counts


def example_stats(logits: Tensor, targets: Tensor) -> Tensor:
    """Each example's ``(loss, el2n, correct)`` as float64 rows [B, 3]."""
    logits = logits.detach()
    columns = (per_example_loss(logits, targets), el2n(logits, targets), logits.argmax(dim=1) == targets)
    return torch.stack([c.to(torch.float64) for c in columns], dim=1)


def _gather(batch: Tensor) -> Tensor:
    return torch.cat(list(dist.all_gather(batch))) if dist.get_world_size() > 1 else batch


class RecordScores(Callback):
    """Record each training example's loss, EL2N and forgetting events from the forward pass training already does.

    Events: ``EPOCH_START`` clears the per-epoch values; ``AFTER_FORWARD`` (each microbatch) reads
    ``state.outputs``, the targets and the dataset indices (``batch[2]``), computes each example's loss, EL2N and
    correctness (:func:`example_stats`), gathers them with the indices (4 numbers per example) over ranks with one
    ``all_gather`` and updates every rank's copy of the record. The record is thus the same on every rank and the
    rank-0 checkpoint restores it exactly; it stays on the training device, so no step waits on a host copy.
    """

    def __init__(self, num_samples: Annotated[int, FromRun('train_split_size')]) -> None:
        self.record = ScoreRecord(num_samples)

    def epoch_start(self, state: State, logger: Logger) -> None:
        self.record.new_epoch()

    def after_forward(self, state: State, logger: Logger) -> None:
        batch = state.batch
        if not isinstance(batch, (tuple, list)) or len(batch) < 3:
            raise UsageError('record_scores needs batches (inputs, targets, indices): train on an MDSImageDataset')
        logits, targets, indices = state.outputs, batch[1], batch[2]
        if targets.ndim != 1:
            raise UsageError('record_scores needs class-index targets; an algorithm made them soft before the forward')
        if self.record.loss.device != logits.device:
            self.record.to(logits.device)
        rows = torch.cat([indices.unsqueeze(1).to(torch.float64), example_stats(logits, targets)], dim=1)
        gathered = _gather(rows)
        gathered = gathered[gathered[:, 0] >= 0]  # replayed rows carry negative indices: they are no training example
        self.record.update(gathered[:, 0].long(), gathered[:, 1:])

    def state_dict(self) -> dict[str, Any]:
        return {'record': self.record.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.record.load_state_dict(state['record'])
