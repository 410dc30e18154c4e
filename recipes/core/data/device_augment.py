"""Augmentation as batched tensor ops on the training device (``data.augment_on: device``).

With ``augment_on: device`` the loader's workers only read samples: each training batch arrives as uint8 images
(N, C, H, W), labels and indices. :class:`DeviceAugment` moves it to the device at Composer's ``AFTER_DATALOADER``
and there, for the whole batch at once, takes the random crop of the ``pad``-pixel zero-padded image, the random
horizontal flip, and divides by 255 (:func:`augment_batch`): the same views :func:`augment_cifar` makes one sample at
a time inside the workers, without the per-sample Python work and with a quarter of the bytes through the workers.

Each row's crop offsets and flip come from a generator seeded by ``(seed, rank, epoch, batch in epoch)``
(:func:`batch_generator`): a resumed run (Composer restores the timestamp) draws the same views mid-epoch as the
uninterrupted one. Each row keeps its label and index.

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

__all__ = ['AUGMENT_ON', 'DeviceAugment', 'augment_batch', 'batch_generator']

AUGMENT_ON = ('workers', 'device')


def batch_generator(seed: int, rank: int, epoch: int, batch: int, device: torch.device | str = 'cpu') -> torch.Generator:
    """A torch generator on ``device`` seeded from ``(seed, rank, epoch, batch)`` only."""
    state = np.random.SeedSequence([seed, rank, epoch, batch]).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state))


def augment_batch(images: Tensor, generator: torch.Generator | None, pad: int = 4, crop_flip: bool = True) -> Tensor:
    """Float images in [0, 1] from uint8 ``images`` (N, C, H, W), each row randomly cropped and flipped.

    Row ``n`` is the (H, W) window at offsets ``(top[n], left[n])`` in ``0 .. 2 * pad`` of the image zero-padded by
    ``pad`` pixels, mirrored left-right when ``flip[n]``; all drawn from ``generator`` on the images' device, in this
    order: top, left, flip. ``crop_flip=False`` only converts (``x / 255``).
    """
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f'augment_batch takes uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}')
    if not crop_flip:
        return images.float().div_(255)
    n, c, h, w = images.shape
    device = images.device
    top = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
    left = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
    flip = torch.rand(n, generator=generator, device=device) < 0.5
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

    def __repr__(self) -> str:
        return f'DeviceAugment(seed={self.seed}, crop_flip={self.crop_flip}, pad={self.pad})'

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
        generator = None
        if self.crop_flip:
            generator = batch_generator(self.seed, dist.get_global_rank(), int(state.timestamp.epoch),
                                        int(state.timestamp.batch_in_epoch), images.device)
        augmented = augment_batch(images, generator, self.pad, self.crop_flip)
        state.batch = [augmented, *batch[1:]] if isinstance(batch, list) else (augmented, *batch[1:])
