"""What an algorithm may offer the run beyond Composer's events, declared as Protocols instead of probed by name.

The trainer, the presets, the compute ledger and distillation test ``isinstance(algorithm, Protocol)``; an
algorithm opts in by defining the method with this signature.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor
from torch.utils.data import Dataset, Sampler

__all__ = ['ChoosesTrainingOrder', 'ReusesCompute', 'WeightsExamples']


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
    """Reuses the compute of past runs; the compute ledger books it once per source, and experiment tracking names
    the checkpoints it came from."""

    def reused_compute(self) -> dict[str, float]:
        """FLOPs reused, by source (a past run's checkpoint, a bank's attacks)."""
        ...

    def reused_checkpoints(self) -> list[str]:
        """``RUN:CHECKPOINT`` of every past-run checkpoint reused, directly or through an artifact made from it."""
        ...
