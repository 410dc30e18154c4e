"""What the algorithms that keep part of a batch share: every item of the batch keeps the same rows.

The project's batches are ``(inputs, targets, indices)``: the third item, each row's dataset index, is what the
curriculum's loss weights, the teachers' provenance and the irreducible losses are looked up by, so a selection that
kept the inputs and targets of some rows and the indices of others would misalign them silently.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

__all__ = ['keep_rows']


def keep_rows(batch: Any, rows: Tensor) -> Any:
    """``batch`` with only ``rows`` (positions, in the order given) of each of its per-example items: every tensor
    of a tuple, list or dict batch whose first dimension is the batch's size (that of its first tensor); other items
    are kept as they are."""
    if not isinstance(batch, (tuple, list, dict)):
        raise TypeError(f'a batch of {type(batch).__name__} is no tuple, list or dict: cannot select rows of its items')
    items = list(batch.values()) if isinstance(batch, dict) else list(batch)
    sizes = [item.shape[0] for item in items if isinstance(item, Tensor) and item.ndim > 0]
    if not sizes:
        raise TypeError(f'a batch of {type(batch).__name__} holds no tensor to select rows of')

    def kept(item: Any) -> Any:
        return item[rows] if isinstance(item, Tensor) and item.ndim > 0 and item.shape[0] == sizes[0] else item

    if isinstance(batch, dict):
        return {key: kept(item) for key, item in batch.items()}
    return type(batch)(kept(item) for item in batch)
