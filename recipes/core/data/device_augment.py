"""Augmentation as batched tensor ops on the training device (``data.augment_on: device``).

With ``augment_on: device`` the loader's workers only read samples: each training batch arrives as uint8 images
(N, C, H, W), labels and indices. :class:`DeviceAugment` moves it to the device at Composer's ``AFTER_DATALOADER``
and there, for the whole batch at once, takes the random crop of the ``pad``-pixel zero-padded image, the random
horizontal flip, and divides by 255 (:func:`augment_batch`): the same views :func:`augment_cifar` makes one sample at
a time inside the workers, without the per-sample Python work and with a quarter of the bytes through the workers.

Each row's crop offsets and flip come from a generator seeded by ``(seed, rank, epoch, batch in epoch)``
(:func:`batch_generator`): a resumed run (Composer restores the timestamp) draws the same views mid-epoch as the
uninterrupted one. Each row keeps its label and index.

A view is one of ``(2 * pad + 1)**2 * 2`` crops and flips of an image (162 for ``pad=4``), numbered
``(top * (2 * pad + 1) + left) * 2 + flip`` (:func:`view_ids`, :func:`view_parts`). A reader of per-view data (the
teacher cache of :mod:`algorithms.distillation.cache`) may restrict each example to a table of its views
(:meth:`DeviceAugment.draw_from`): each row then draws one entry of its example's row of the table. After every
batch ``last_views`` holds the indices and view ids of the rows it augmented.

``DeviceAugment`` must see the batch before any algorithm that adds rows to it (adversarial replay appends bank
examples, already finished images, at ``AFTER_DATALOADER``): the trainer lists it last, and Composer runs
``AFTER_*`` events in reverse order, so it runs first there. It also checks that the batch still is uint8.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from composer.core import Algorithm, Event, State
from composer.loggers import Logger
from composer.utils import dist
from torch import Tensor

__all__ = ['AUGMENT_ON', 'DeviceAugment', 'apply_views', 'augment_batch', 'batch_generator', 'draw_views', 'num_views',
           'view_ids', 'view_parts']

AUGMENT_ON = ('workers', 'device')


def batch_generator(seed: int, rank: int, epoch: int, batch: int, device: torch.device | str = 'cpu') -> torch.Generator:
    """A torch generator on ``device`` seeded from ``(seed, rank, epoch, batch)`` only."""
    state = np.random.SeedSequence([seed, rank, epoch, batch]).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state))


def num_views(pad: int = 4) -> int:
    """How many views a ``pad``-pixel crop and a flip make of an image: ``(2 * pad + 1)**2 * 2``."""
    return (2 * pad + 1) ** 2 * 2


def view_ids(top: Tensor, left: Tensor, flip: Tensor, pad: int = 4) -> Tensor:
    """The number of each view: ``(top * (2 * pad + 1) + left) * 2 + flip``, int64."""
    return (top.long() * (2 * pad + 1) + left.long()) * 2 + flip.long()


def view_parts(views: Tensor, pad: int = 4) -> tuple[Tensor, Tensor, Tensor]:
    """The offsets ``top``, ``left`` and the ``flip`` of each numbered view (the inverse of :func:`view_ids`)."""
    views = views.long()
    return views // 2 // (2 * pad + 1), views // 2 % (2 * pad + 1), views % 2 == 1


def apply_views(images: Tensor, views: Tensor, pad: int = 4) -> Tensor:
    """Float images in [0, 1]: row ``n`` of uint8 ``images`` (N, C, H, W) seen through view ``views[n]``: zero-padded
    by ``pad`` pixels, the (H, W) window at the view's offsets ``(top, left)``, mirrored left-right if it flips."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f'apply_views takes uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}')
    n, c, h, w = images.shape
    device = images.device
    top, left, flip = view_parts(views.to(device), pad)
    padded = F.pad(images, (pad, pad, pad, pad))
    rows = top[:, None] + torch.arange(h, device=device)  # (N, H)
    cols = torch.arange(w, device=device).expand(n, w)
    cols = left[:, None] + torch.where(flip[:, None], w - 1 - cols, cols)  # (N, W)
    out = padded[
        torch.arange(n, device=device)[:, None, None, None],
        torch.arange(c, device=device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    return out.float().div_(255)


def draw_views(n: int, generator: torch.Generator | None, pad: int = 4, device: torch.device | str = 'cpu') -> Tensor:
    """The views of ``n`` rows drawn from ``generator``: the offsets top, then left, in ``0 .. 2 * pad``, then the flip."""
    top = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
    left = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    return view_ids(top, left, flip, pad)


def augment_batch(images: Tensor, generator: torch.Generator | None, pad: int = 4, crop_flip: bool = True) -> Tensor:
    """Float images in [0, 1] from uint8 ``images`` (N, C, H, W), each row a random view (:func:`draw_views`).

    ``crop_flip=False`` only converts (``x / 255``).
    """
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f'augment_batch takes uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}')
    if not crop_flip:
        return images.float().div_(255)
    return apply_views(images, draw_views(images.shape[0], generator, pad, images.device), pad)


class DeviceAugment(Algorithm):
    """Crop, flip and scale the uint8 training batch on the device at ``AFTER_DATALOADER`` (:func:`augment_batch`).

    Args:
        seed: the run's seed (the generator of each batch is keyed by it, the rank, the epoch and the batch).
        crop_flip: False only converts to floats in [0, 1] (``data.augment: false``).
        pad: padding of the random crop.
    """

    def __init__(self, seed: int, crop_flip: bool = True, pad: int = 4) -> None:
        self.seed = seed
        self.crop_flip = crop_flip
        self.pad = pad
        self.view_table: Tensor | None = None
        self.last_views: tuple[Tensor, Tensor] | None = None

    def __repr__(self) -> str:
        return f'DeviceAugment(seed={self.seed}, crop_flip={self.crop_flip}, pad={self.pad})'

    def draw_from(self, table: Tensor) -> None:
        """Draw each row's view among its example's row of ``table`` (whole split x V view ids), uniformly."""
        if not self.crop_flip:
            raise ValueError('a table of views needs the crop and flip: set data.augment: true')
        self.view_table = table

    def match(self, event: Event, state: State) -> bool:
        return event == Event.AFTER_DATALOADER

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        batch: Any = state.batch
        images = batch[0] if isinstance(batch, (list, tuple)) and batch else None
        if not isinstance(images, Tensor) or images.dtype != torch.uint8:
            what = f'{images.dtype} images' if isinstance(images, Tensor) else type(batch).__name__
            raise RuntimeError(
                f'DeviceAugment expects the raw uint8 batch the loader yields with data.augment_on=device, got {what}: '
                'an algorithm that runs before it at AFTER_DATALOADER changed the batch',
            )
        images = state.device.tensor_to_device(images)
        if not self.crop_flip:
            augmented = augment_batch(images, None, self.pad, crop_flip=False)
        else:
            generator = batch_generator(self.seed, dist.get_global_rank(), int(state.timestamp.epoch),
                                        int(state.timestamp.batch_in_epoch), images.device)
            indices = batch[2]
            if self.view_table is None:
                views = draw_views(images.shape[0], generator, self.pad, images.device)
            else:
                rows = self.view_table[indices.to(self.view_table.device).long()]
                slot = torch.randint(0, rows.shape[1], (rows.shape[0],), generator=generator, device=images.device)
                views = rows.to(images.device).gather(1, slot[:, None])[:, 0].long()
            augmented = apply_views(images, views, self.pad)
            self.last_views = (indices, views)
        state.batch = [augmented, *batch[1:]] if isinstance(batch, list) else (augmented, *batch[1:])
