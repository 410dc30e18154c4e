"""A bank of adversarial examples as MDS shards (mosaicml-streaming), local or on S3: build, write, read.

:func:`build_bank` attacks the examples a past run trained on (its training split, or the share of it its
``subset.json`` records; all of them or a seeded fraction) with :func:`pgd` against some of its checkpoints. The
images are the split's images without augmentation, and the labels are the labels the past run trained on: its
``config.yaml`` data section, label noise included. Under ``composer -n N`` each rank attacks every N-th selected
image and writes its own part.

Layout of a bank folder (or ``s3://`` prefix)::

    part-00000/ ... part-{N-1}/   one MDS part per rank that wrote it
    index.json                    the parts' indexes merged (streaming's ``merge_index``): one data set
    bank.json                     metadata, written last: a bank without it is unfinished and is refused

Columns: ``x`` the adversarial image, uint8 HWC; ``y`` its label; ``i`` the index of its source image in the
training split; ``c`` the checkpoint it was made against (a position in ``bank.json``'s ``checkpoints``).

Pixels are stored as ``round(255 * x_adv)``. An attack with radius ``eps`` keeps ``|x_adv - x| <= eps``; rounding
adds at most half a grey level, so a stored example satisfies ``|x_bank - x| <= eps + 0.5/255`` against its clean
source image (itself uint8, read as ``x / 255``).

A local bank is written under a temporary sibling name (``.tmp-NAME``) and renamed into place once complete.
On S3 the parts are uploaded in place; ``bank.json`` goes up after the merged index, so readers never see a
partial bank. Readers access examples by index through ``StreamingDataset``, which fetches shards from S3 into a
local cache on demand.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from composer.utils import dist
from streaming import MDSWriter
from streaming.base.util import merge_index
from torch import Tensor
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from algorithms.adversarial_replay.pgd import ATTACK_TIES, pgd
from algorithms.ledger import count_flops
from algorithms.past_run import PastRun
from recipes.core import storage
from recipes.core.artifacts import BANK_FILE, BUILD_BANK, require_bank
from recipes.core.data.dataset import open_mds
from recipes.core.errors import UsageError
from recipes.core.rules import Number, PixelValue
from recipes.core.ties import Values

__all__ = [
    'BANK_FILE',
    'AdversarialBank',
    'BankPart',
    'build_bank',
    'finish_bank',
    'prepare_output',
    'select_sources',
    'to_uint8',
]

FORMAT = 'pastrun-adversarial-bank/1'


def _part_name(rank: int) -> str:
    return f'part-{rank:05d}'


def _staging(out: str) -> str:
    """Where the parts are written: a hidden sibling for a local bank, the bank itself on S3."""
    if storage.is_s3(out):
        return out
    out = os.path.abspath(out)
    return os.path.join(os.path.dirname(out), f'.tmp-{os.path.basename(out)}')


def prepare_output(out: str) -> None:
    """Refuse an ``out`` that already holds a bank (or other files) and clear the remains of an interrupted write.

    Call on one rank, before any rank opens its :class:`BankPart`.
    """
    storage.check_reachable(out)
    if storage.exists(storage.join(out, BANK_FILE)):
        raise UsageError(f'{out} already holds an adversarial bank: choose another --out or delete it first')
    if storage.is_s3(out):
        return  # parts left by an interrupted write are overwritten; only bank.json makes a bank
    if os.path.isdir(out) and os.listdir(out):
        raise UsageError(f'{out} is not empty and holds no bank: choose another --out or delete it first')
    shutil.rmtree(_staging(out), ignore_errors=True)


def to_uint8(images: Tensor) -> np.ndarray:
    """Float images (N, C, H, W) in ``[0, 1]`` as uint8 (N, H, W, C), rounded to the nearest grey level."""
    return images.detach().mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class BankPart:
    """One rank's share of a bank: a context manager that writes examples as the part ``part-{rank}``."""

    def __init__(self, out: str, rank: int, image_shape: Sequence[int]) -> None:
        channels, height, width = image_shape
        columns = {'x': f'ndarray:uint8:{height},{width},{channels}', 'y': 'int', 'i': 'int', 'c': 'int'}
        self._writer = MDSWriter(
            out=storage.join(_staging(out), _part_name(rank)), columns=columns, size_limit=1 << 26, exist_ok=True,
        )

    def __enter__(self) -> BankPart:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.finish()

    def write(self, images: Tensor, labels: Tensor, sources: Tensor, checkpoint: int) -> None:
        """Write adversarial ``images`` (N, C, H, W in ``[0, 1]``) with their labels and source indices."""
        pixels = to_uint8(images)
        for x, y, i in zip(pixels, labels.tolist(), sources.tolist(), strict=True):
            self._writer.write({'x': x, 'y': int(y), 'i': int(i), 'c': checkpoint})


def finish_bank(out: str, num_parts: int, metadata: dict[str, Any]) -> None:
    """Merge the parts' indexes, write ``bank.json`` (``metadata`` plus ``format`` and ``size``) last.

    Call on one rank, after every rank has closed its :class:`BankPart`. A local bank is then renamed into place.
    """
    staging = _staging(out)
    indexes = [storage.join(staging, _part_name(r), 'index.json') for r in range(num_parts)]
    merge_index(indexes, staging)
    shards = json.loads(storage.read_bytes(storage.join(staging, 'index.json')))['shards']
    body = {'format': FORMAT, 'size': sum(int(s['samples']) for s in shards), **metadata}
    storage.write_bytes(storage.join(staging, BANK_FILE), json.dumps(body, indent=1).encode())
    if staging != out:
        if os.path.isdir(out):
            os.rmdir(out)  # prepare_output allowed only an empty folder here
        os.replace(staging, out)


class AdversarialBank:
    """A finished bank, read by index; items are ``(image, label, source_index, checkpoint_id)``.

    Args:
        root: the bank folder or ``s3://`` URI.
        cache: local folder for shards fetched from S3 (default under ``$PASTRUN_CACHE``).
    """

    def __init__(self, root: str, cache: str | None = None) -> None:
        require_bank(root)
        meta = storage.join(root, BANK_FILE)
        self.metadata: dict[str, Any] = json.loads(storage.read_bytes(meta))
        if self.metadata.get('format') != FORMAT:
            raise UsageError(f'{meta} is not an adversarial bank ({FORMAT}): {BUILD_BANK}')
        if int(self.metadata['size']) == 0:
            raise UsageError(f'adversarial bank {root} is empty: rebuild it with a larger --fraction or more checkpoints')
        self._stream = open_mds(root, cache)
        if self._stream.num_samples != int(self.metadata['size']):
            raise UsageError(
                f'adversarial bank {root} holds {self._stream.num_samples} examples but {BANK_FILE} says '
                f'{self.metadata["size"]}: it was modified after it was built; rebuild it',
            )
        self.root = root

    @property
    def num_classes(self) -> int:
        return int(self.metadata['num_classes'])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images as served."""
        channels, height, width = self.metadata['image_shape']
        return int(channels), int(height), int(width)

    @property
    def checkpoints(self) -> list[str]:
        return list(self.metadata['checkpoints'])

    def __len__(self) -> int:
        return self._stream.num_samples  # len(StreamingDataset) is one rank's share of an epoch

    def __getitem__(self, index: int) -> tuple[Tensor, int, int, int]:
        sample = self._stream[index]
        image = torch.from_numpy(sample['x'].copy()).permute(2, 0, 1).float().div_(255)
        return image, int(sample['y']), int(sample['i']), int(sample['c'])

    def examples(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Images (K, C, H, W) float in ``[0, 1]`` and labels (K,) int64 of the examples at ``indices``."""
        samples = [self._stream[int(i)] for i in indices]
        images = torch.from_numpy(np.stack([s['x'] for s in samples])).permute(0, 3, 1, 2).float().div_(255)
        return images, torch.tensor([int(s['y']) for s in samples], dtype=torch.int64)


def select_sources(num_samples: int, fraction: float, seed: int) -> np.ndarray:
    """The sorted indices of a seeded ``fraction`` of ``num_samples`` (all of them for 1.0)."""
    count = round(fraction * num_samples)
    if not 0 < fraction <= 1 or count == 0:
        raise UsageError(
            f'--fraction={fraction:g} is out of range: use a share in (0, 1] that keeps at least one of '
            f'{num_samples} images (at least {1 / num_samples:.2g})',
        )
    return np.sort(np.random.default_rng(seed).permutation(num_samples)[:count])


def _attack_flops_per_image(model: torch.nn.Module, sample: tuple, steps: int, device: torch.device) -> float:
    """FLOPs of a ``steps``-step attack on one image: a forward and a backward to the input per step.

    Counted on a plain ``backward`` of the frozen model (PGD's ``autograd.grad`` does the same work, but the FLOP
    counter's module hooks do not support ``autograd.grad``).
    """
    image = sample[0].unsqueeze(0).to(device).requires_grad_(True)
    target = torch.tensor([sample[1]], device=device)
    return steps * count_flops(lambda: F.cross_entropy(model(image), target).backward())


def build_bank(
    run: str,
    checkpoints: Sequence[str],
    out: str,
    eps: float,
    step_size: float,
    steps: int,
    fraction: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
    num_workers: int = 2,
    progress: bool = True,
) -> None:
    """Attack the examples past run ``run`` trained on (:meth:`PastRun.trained_data`) against ``checkpoints`` and
    write the bank to ``out``.

    Every rank calls this (``composer -n N``); rank 0 prepares ``out`` and finishes the bank. The random starts
    draw from a generator seeded with ``seed + rank``.
    """
    eps, step_size = PixelValue().check('--eps', eps), PixelValue().check('--step_size', step_size)
    Number(1, 10_000, integer=True).check('--steps', steps)
    ATTACK_TIES.check(Values({'eps': eps, 'step_size': step_size}))
    if not checkpoints:
        raise UsageError('--checkpoints is empty: name checkpoints of the past run, e.g. ep4,ep8')
    past = PastRun(run)
    uris = [past.resolve(name) for name in checkpoints]
    trained_on = past.training_labels
    dataset = past.trained_data()
    sources = select_sources(len(dataset), fraction, seed)
    rank, world = dist.get_global_rank(), dist.get_world_size()
    if rank == 0:
        prepare_output(out)
    dist.barrier()

    device = torch.device('cuda', dist.get_local_rank()) if torch.cuda.is_available() else torch.device('cpu')
    generator = torch.Generator(device=device).manual_seed(seed + rank)
    mine = sources[rank::world].tolist()
    loader = DataLoader(Subset(dataset, mine), batch_size=batch_size, num_workers=num_workers)
    image_shape = tuple(dataset[0][0].shape)
    bar = tqdm(total=len(mine) * len(uris), desc='attacking', unit='img', disable=not progress or rank != 0)
    start = time.time()
    flops_per_image = _attack_flops_per_image(past.load(uris[0], device=device), dataset[int(sources[0])], steps, device)
    with BankPart(out, rank, image_shape) as part:
        for checkpoint_id, uri in enumerate(uris):
            model = past.load(uri, device=device)
            for images, labels, indices in loader:
                adversarial = pgd(model, images.to(device), labels.to(device), eps, step_size, steps, generator=generator)
                part.write(adversarial, labels, indices, checkpoint_id)
                bar.update(len(images))
    bar.close()
    dist.barrier()
    if rank == 0:
        finish_bank(out, world, {
            'num_classes': past.num_classes,
            'image_shape': list(image_shape),
            'run': run,
            'checkpoints': list(checkpoints),
            'checkpoint_uris': uris,
            'attack': {'name': 'pgd_linf', 'eps': eps, 'step_size': step_size, 'steps': steps, 'random_start': True},
            'max_pixel_change': eps + 0.5 / 255,
            'labels': {'data': trained_on['name'], 'remote': trained_on['remote'],
                       'label_noise': trained_on['label_noise'], 'label_noise_seed': trained_on['label_noise_seed'],
                       'holdout': trained_on['holdout'], 'holdout_seed': trained_on['holdout_seed']},
            'fraction': fraction,
            'seed': seed,
            'sources': len(sources),
            'parts': world,
            'compute': {'flops_estimate': flops_per_image * len(sources) * len(uris),
                        'seconds': round(time.time() - start, 3)},
        })
    dist.barrier()
