"""Composer's SelectiveBackprop (Jiang et al. 2019) on this project's batches, which carry each row's dataset index.

Composer's :class:`~composer.algorithms.SelectiveBackprop` replaces the input and the target of a batch by the rows
it keeps and leaves the batch's other items as they were: a batch ``(inputs, targets, indices)`` would then hold
more indices than rows, and the curriculum's loss weights, looked up by those indices, would fail or misalign.
:class:`IndexedSelectiveBackprop` keeps Composer's algorithm as it is (its arguments, its schedule, its per-example
losses, its draw from numpy's global generator) and applies the kept rows to every item of the batch.

Functional form: :func:`selected_rows`, the rows Composer's ``select_using_loss`` keeps, as positions in the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from composer.algorithms import SelectiveBackprop
from composer.algorithms.selective_backprop import select_using_loss
from composer.core import Event, State
from composer.core.precision import get_precision_context
from composer.loggers import Logger
from torch import Tensor

from algorithms.batches import keep_rows
from algorithms.ledger import spend

__all__ = ['IndexedSelectiveBackprop', 'selected_rows']


def selected_rows(
    inputs: Tensor,
    targets: Tensor,
    model: Callable[[Tensor], Tensor],
    loss_fn: Callable[..., Tensor],
    keep: float,
    scale_factor: float = 1.0,
) -> Tensor:
    """The positions of the rows Composer's ``select_using_loss(inputs, targets, model, loss_fn, keep, scale_factor)``
    keeps, in the order it returns them.

    Composer's function itself runs, on the real inputs, with the row positions ``0 .. N-1`` in place of the targets
    and a loss that reads each row's target by its position: the same forward, the same per-example losses and the
    same draw from numpy's global generator, and what it returns as targets are the kept positions.
    """
    positions = torch.arange(len(targets), device=targets.device)

    def loss_by_position(outputs: Tensor, rows: Tensor, reduction: str = 'none') -> Tensor:
        return loss_fn(outputs, targets[rows], reduction=reduction)

    _, kept = select_using_loss(inputs, positions, model, loss_by_position, keep, scale_factor)
    return kept


class IndexedSelectiveBackprop(SelectiveBackprop):
    """Composer's SelectiveBackprop, every item of the batch pruned alike (its dataset indices included).

    Arguments and events as Composer's (``start``, ``end``, ``keep``, ``scale_factor``, ``interrupt``): ``INIT``
    keeps the model's loss; ``AFTER_DATALOADER`` of the batches Composer's schedule picks runs the extra forward
    (no gradients, the model in train mode, so BatchNorm's running statistics move, as in Composer) and keeps
    ``int(keep * N)`` rows drawn by loss rank (:func:`selected_rows`), in every item of the batch
    (:func:`algorithms.batches.keep_rows`). Listed before the curriculum, nothing changes for it: its loss weights
    are looked up by the indices of the kept rows. The selection forward is booked by the compute ledger as
    ``selection``. Its draw comes from numpy's global generator, which Composer's checkpoints restore.
    """

    def apply(self, event: Event, state: State, logger: Logger | None = None) -> None:
        if event == Event.INIT:
            super().apply(event, state, logger)
            return
        state.batch = state.device.batch_to_device(state.batch)
        inputs, targets = state.batch_get_item(key=self.input_key), state.batch_get_item(key=self.target_key)
        assert self._loss_fn is not None, 'INIT keeps the loss function first'
        loss_fn: Any = self._loss_fn

        def model(x: Tensor) -> Tensor:
            return state.model((x, None))

        def loss(outputs: Tensor, y: Tensor, reduction: str = 'none') -> Tensor:
            return loss_fn(outputs, (torch.Tensor(), y), reduction=reduction)

        with get_precision_context(state.precision, state.precision_config), spend('selection'):
            rows = selected_rows(inputs, targets, model, loss, self.keep, self.scale_factor)
        state.batch = keep_rows(state.batch, rows)
