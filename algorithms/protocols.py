"""What an algorithm may offer the run beyond Composer's events, declared as Protocols instead of probed by name.

The trainer, the presets, the compute ledger and distillation test ``isinstance(algorithm, Protocol)``; an
algorithm opts in by defining the method with this signature. :func:`loader_batch_size` reads the one protocol the
trainer and the presets both need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from torch import Tensor
from torch.utils.data import Dataset, Sampler

from recipes.core.errors import UsageError

__all__ = [
    'ChoosesTrainingOrder', 'ReusesCompute', 'SelectsFromLargerBatch', 'SpendsOnce', 'WeightsExamples', 'loader_batch_size',
]


@runtime_checkable
class ChoosesTrainingOrder(Protocol):
    """Chooses which training examples each batch holds (a curriculum); at most one algorithm of a run may."""

    def train_sampler(self, dataset: Dataset, seed: int) -> Sampler:
        """The sampler of the training DataLoader, built once the run knows its data set and seed."""
        ...


@runtime_checkable
class WeightsExamples(Protocol):
    """Weighs each example's loss; other algorithms that add a loss term (distillation) weigh theirs the same way."""

    def batch_weights(self, indices: Tensor) -> Tensor | None:
        """Loss weights for the rows whose dataset indices are ``indices`` (negative: not from the data set);
        None when the algorithm does not weigh this batch."""
        ...


@runtime_checkable
class ReusesCompute(Protocol):
    """Reuses the compute of past runs; the compute ledger books it once per source."""

    def reused_compute(self) -> dict[str, float]:
        """FLOPs reused, by source (a past run's checkpoint, a bank's attacks)."""
        ...


@runtime_checkable
class SpendsOnce(Protocol):
    """Spends compute once, outside the training steps (DASH's gradient pass before training); the compute ledger
    books it under its own purpose when the fit starts."""

    def one_off_compute(self) -> dict[str, float]:
        """FLOPs spent outside the training steps so far, by purpose, all ranks together. The same dict each time it
        is asked (the ledger sets, never adds, these purposes), empty before the work has run."""
        ...


@runtime_checkable
class SelectsFromLargerBatch(Protocol):
    """Trains each step on rows it selects from a larger batch (reducible-loss selection): the trainer's loader yields
    that larger batch, and ``data.global_batch_size`` stays the batch each step trains on. At most one algorithm of a
    run may."""

    def loader_batch_size(self, train_batch_size: int) -> int:
        """The batch per rank the training loader yields for a run that trains on ``train_batch_size`` per rank."""
        ...


def loader_batch_size(algorithms: Sequence[Any], train_batch_size: int) -> int:
    """The batch per rank the training loader yields for a run of ``algorithms`` that trains on ``train_batch_size``
    per rank: the larger one an algorithm that selects from it asks for, else ``train_batch_size``."""
    selecting = [alg for alg in algorithms if isinstance(alg, SelectsFromLargerBatch)]
    if len(selecting) > 1:
        raise UsageError('two algorithms both ask for a larger loader batch to select from: keep one of them')
    return selecting[0].loader_batch_size(train_batch_size) if selecting else train_batch_size
