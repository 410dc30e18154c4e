"""A training split held in device memory (``data.resident: true``): read once, served by index, no workers.

:func:`load_resident` reads the kept samples of an :class:`MDSImageDataset` once (in order, with loader workers)
into one uint8 tensor (N, C, H, W) on the device, with their labels (label noise applied) and split indices.
:func:`resident_loader` serves batches from it: the sampler (Composer's ``DistributedSampler`` or a curriculum
sampler, which gives each rank its share and chooses the order) yields positions, and one indexing op per batch
gathers the rows (``__getitems__``), so there are no worker processes and no per-sample Python. Batches are uint8
like the ``augment_on: device`` path's and go through :class:`~recipes.core.data.device_augment.DeviceAugment`.

Every rank holds the whole split (CIFAR-100's training split is 150 MiB); a split above ``budget_bytes``
(:data:`RESIDENT_BUDGET_BYTES` unless given) is not loaded: :func:`load_resident` logs one line and returns None,
and the run streams it through workers instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from recipes.core.data.dataset import MDSImageDataset

__all__ = ['RESIDENT_BUDGET_BYTES', 'ResidentImages', 'load_resident', 'resident_loader']

log = logging.getLogger(__name__)

RESIDENT_BUDGET_BYTES = 4 * 2**30  # the most device memory a resident training split may take


class ResidentImages(Dataset):
    """uint8 images (N, C, H, W), labels (N,) and split indices (N,), on one device, addressed by position."""

    def __init__(self, images: Tensor, labels: Tensor, indices: Tensor) -> None:
        if not len(images) == len(labels) == len(indices):
            raise ValueError('images, labels and indices must have one row per sample')
        self.images, self.labels, self.indices = images, labels, indices

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, position: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.images[position], self.labels[position], self.indices[position]

    def __getitems__(self, positions: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
        """A whole batch in one indexing op per tensor (the DataLoader calls this with a batch's positions)."""
        rows = torch.as_tensor(positions, dtype=torch.int64).to(self.images.device, non_blocking=True)
        return self.images[rows], self.labels[rows], self.indices[rows]


def load_resident(dataset: MDSImageDataset, device: torch.device | str, num_workers: int = 0,
                  budget_bytes: int | None = None) -> ResidentImages | None:
    """``dataset``'s samples (as it keeps them: subset, label noise) in one tensor on ``device``; None (and one
    logged line) when the images take more than ``budget_bytes``."""
    budget = RESIDENT_BUDGET_BYTES if budget_bytes is None else budget_bytes
    raw = dataset if dataset.raw else _raw_view(dataset)
    shape = tuple(raw[0][0].shape)
    need = len(raw) * int(np.prod(shape))
    if need > budget:
        log.warning('data.resident: the training split takes %.2f GiB, above the %.2f GiB budget: streaming it instead',
                    need / 2**30, budget / 2**30)
        return None
    images = torch.empty((len(raw), *shape), dtype=torch.uint8, device=device)
    labels = torch.empty(len(raw), dtype=torch.int64)
    indices = torch.empty(len(raw), dtype=torch.int64)
    start = 0
    for x, y, i in DataLoader(raw, batch_size=1024, shuffle=False, num_workers=num_workers):
        images[start : start + len(x)] = x.to(device)
        labels[start : start + len(x)] = y
        indices[start : start + len(x)] = i
        start += len(x)
    return ResidentImages(images, labels.to(device), indices.to(device))


def _raw_view(dataset: MDSImageDataset) -> MDSImageDataset:
    """The same samples as ``dataset`` (split, subset, label noise), as stored uint8 images."""
    raw = object.__new__(MDSImageDataset)
    raw.__dict__.update(dataset.__dict__)
    raw.augment, raw.raw = False, True
    return raw


def resident_loader(data: ResidentImages, batch_size: int, sampler: Sampler, drop_last: bool) -> DataLoader:
    """Batches of ``data`` in ``sampler``'s order, gathered on its device in the main process."""
    return DataLoader(data, batch_size=batch_size, sampler=sampler, drop_last=drop_last, num_workers=0,
                      collate_fn=_as_batch)


def _as_batch(batch: tuple[Tensor, Tensor, Tensor]) -> list[Tensor]:
    return list(batch)  # __getitems__ already stacked the rows; a list, as default_collate gives
