"""Reducible-loss selection (RHO-LOSS, Mindermann et al., ICML 2022): a past run's model is the irreducible-loss
model, and each step trains on the examples of a larger batch whose loss the current model can still reduce most.

For each example ``i`` of the loader's batch the reducible loss is ``L(current model, i) - IL(i)``: the current
model's cross-entropy (one forward, no gradients) minus the irreducible loss ``IL(i)``, the loss of a model trained
without ``i``, read from a scores artifact (``launch/score.py --method loss``). The step trains on exactly the top
``k`` (``k`` the run's batch). Examples that are already learnt (low loss), noisy or unlearnable (high ``IL``) are
skipped.

Functional form: :func:`select_reducible`. Algorithm: :class:`ReducibleLossSelection`, which asks the trainer for a
loader batch of ``1 / keep`` times the batch it trains on (:meth:`~ReducibleLossSelection.loader_batch_size`).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import torch
from composer.core import Algorithm, Event, State
from composer.core.precision import get_precision_context
from composer.loggers import Logger
from composer.utils import dist
from torch import Tensor

from algorithms.batches import keep_rows
from algorithms.curriculum.grand import per_example_loss
from algorithms.curriculum.scores import array_sha256, check_labels, dataset_labels, read_scores, scores_cost
from algorithms.ledger import spend
from recipes.core.artifacts import ScoresFile
from recipes.core.data import MDSImageDataset
from recipes.core.declare import FromRun, checked
from recipes.core.errors import UsageError, place
from recipes.core.rules import Number

__all__ = ['ReducibleLossSelection', 'select_reducible']


def select_reducible(losses: Tensor, irreducible: Tensor, k: int) -> Tensor:
    """The indices of the ``k`` largest ``losses - irreducible`` (1-D tensors of one length), in decreasing order of
    that difference, ties to the lower index. The difference is taken in float64."""
    if losses.ndim != 1 or losses.shape != irreducible.shape:
        raise ValueError(f'losses {tuple(losses.shape)} and irreducible {tuple(irreducible.shape)} must be 1-D and of one length')
    if not 0 <= k <= len(losses):
        raise ValueError(f'k={k} is out of range: keep between 0 and the {len(losses)} examples given')
    reducible = losses.double() - irreducible.to(losses.device, torch.float64)
    return torch.sort(reducible, descending=True, stable=True).indices[:k]


def _trained_on_the_whole_split(metadata: dict[str, Any]) -> bool:
    """Whether every past run the scores came from trained on all of the training split (its metadata says so)."""
    trained = metadata.get('dataset', {}).get('past_runs_trained_on') or {}
    return bool(trained) and all(
        float(t.get('subset_fraction') or 1.0) == 1.0 and t.get('classes') is None for t in trained.values())


@checked
class ReducibleLossSelection(Algorithm):
    """Train each step on the ``k`` examples of a ``k / keep`` batch with the highest reducible loss.

    ``k`` is the run's batch per rank (``data.global_batch_size`` over the ranks: what each step trains on); the
    training loader yields ``k / keep`` per rank instead (:meth:`loader_batch_size`, which the trainer reads), so an
    epoch, one pass of the loader, has ``keep`` times the steps of the baseline's, each on ``k`` examples.

    Events: ``AFTER_DATALOADER`` moves the batch to the device, runs the model on it without gradients in train mode
    (as the authors' default: BatchNorm normalises by the large batch's statistics and its running statistics move),
    takes each row's cross-entropy minus its irreducible loss (looked up by the row's dataset index, the batch's third
    item; a row that is no example of the data set, a negative index, has irreducible loss 0), and keeps the top
    ``k`` rows of every item of the batch (:func:`select_reducible`, :func:`algorithms.batches.keep_rows`), in
    decreasing order of reducible loss. The selection forward is booked by the compute ledger as ``selection``: the
    run's compute pays for it. It draws no random numbers, so resumption is exact. The state dict holds the scores'
    digest: resuming with other scores is refused.
    """

    def __init__(
        self,
        scores: Annotated[str, ScoresFile(), f'the irreducible loss of each training example: `{place("score")} '
                          '--method loss` with checkpoints of a past run (ideally one that did not train on them)'],
        keep: Annotated[float, Number(0, 1, low_open=True, message='is out of range: use a share in (0, 1] (the authors '
                                      'use 0.1)'),
                        'the share of the loader\'s batch each step trains on: the loader gives 1/keep times the batch'] = 0.1,
        *,
        batch_size: Annotated[int, FromRun('train_batch_size')],
        dataset: Annotated[MDSImageDataset | None, FromRun('train_dataset')] = None,
    ) -> None:
        self.scores_uri = scores
        scores_array, self.metadata = read_scores(scores)
        if dataset is not None:
            check_labels(scores, scores_array, self.metadata, dataset_labels(dataset))
        self.irreducible = torch.from_numpy(scores_array)
        self.scores_sha256 = array_sha256(scores_array)
        self.keep = float(keep)
        self.batch_size = int(batch_size)
        if _trained_on_the_whole_split(self.metadata) and dist.get_global_rank() == 0:
            print(f'warning: {scores} came from past runs that trained on every example it scores: their losses on '
                  'them are low, not irreducible (algorithms/reducible_loss/README.md says what to do)',
                  file=sys.stderr, flush=True)

    def loader_batch_size(self, train_batch_size: int) -> int:
        """``round(train_batch_size / keep)``: the batch per rank the training loader yields."""
        return max(train_batch_size, round(train_batch_size / self.keep))

    def reused_compute(self) -> dict[str, float]:
        """What the irreducible losses cost, and what the past-run checkpoints they came from cost (ledger)."""
        return scores_cost(self.scores_uri, self.metadata)

    def match(self, event: Event, state: State) -> bool:
        return event == Event.AFTER_DATALOADER

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        state.batch = state.device.batch_to_device(state.batch)
        batch = state.batch
        if not isinstance(batch, (tuple, list)) or len(batch) < 3:
            raise UsageError(
                'reducible_loss_selection looks up each row\'s irreducible loss by its dataset index: the batch must be '
                '(inputs, targets, indices), as recipes.core.data.MDSImageDataset yields',
            )
        indices = batch[2]
        if self.irreducible.device != indices.device:
            self.irreducible = self.irreducible.to(indices.device)
        irreducible = torch.where(indices >= 0, self.irreducible[indices.clamp(min=0)], 0.0)
        with torch.no_grad(), get_precision_context(state.precision, state.precision_config), spend('selection'):
            losses = per_example_loss(state.model(batch), batch[1])
        state.batch = keep_rows(batch, select_reducible(losses, irreducible, min(self.batch_size, len(indices))))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), 'scores_sha256': self.scores_sha256}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get('scores_sha256') != self.scores_sha256:
            raise UsageError(
                f'the checkpoint selected by other irreducible losses than {self.scores_uri} (their digests differ): '
                'resume with the scores artifact the run started with',
            )
