"""A map-style, index-addressable view of an MDS image split.

Samples are read by index: from a local folder through streaming's ``LocalDataset``, from ``s3://`` through
``StreamingDataset.__getitem__``, which fetches shards into the local cache on demand, shared by the ranks of a node. Being map-style lets a sampler
choose the order: Composer's ``DistributedSampler`` by default, or a curriculum sampler (a subclass of it, as
Composer's DataSpec requires under DDP) that draws from the easiest examples first. Composer resumes mid-epoch by
replaying the sampler's order for the epoch and skipping the finished batches.

Each item is ``(image, label, index)``: the image float32 (3, H, W) in [0, 1] (normalisation is the model's first
layer): (3, 32, 32) for the raw-pixel splits of CIFAR-100 and the built-in sets, (3, R, R) at ``resolution`` R for
the JPEG splits of an image folder (:func:`image_transform`, decoded in the loader's worker processes); the label
possibly noisy (see :func:`noisy_label_offsets`); the index the sample's position in the split.
A dataset may keep only part of its split (:func:`stratified_subset`, :func:`class_subset`): it is then addressed
by position in that part, and the index it returns stays the sample's position in the whole split, so scores, banks
and label noise made on the whole split still map onto it. A training split may hold out a validation split
(:func:`holdout_indices`, ``data.holdout``), drawn before the subsets: those examples are never served for training
and :meth:`MDSImageDataset.validation` serves them, clean and unaugmented, for evaluation.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from streaming import LocalDataset, StreamingDataset
from torch import Tensor
from torch.utils.data import Dataset

from recipes.core import storage
from recipes.core.data.builtin import default_cache
from recipes.core.data.folder import decode_rgb, read_split_labels
from recipes.core.data.mds import check_folder
from recipes.core.errors import UsageError, place

__all__ = [
    'EVAL_CROP',
    'MDSImageDataset',
    'augment_cifar',
    'class_subset',
    'holdout_indices',
    'image_transform',
    'noisy_label_offsets',
    'open_mds',
    'stratified_subset',
]

EVAL_CROP = 0.875  # evaluation resizes to resolution / EVAL_CROP, then takes the centre crop (ImageNet's 224 of 256)


def noisy_label_offsets(num_samples: int, num_classes: int, p: float, seed: int) -> np.ndarray:
    """Symmetric label noise as offsets: ``noisy = (clean + offset) % num_classes``.

    Exactly ``round(p * num_samples)`` samples, chosen with ``seed``, get an offset drawn uniformly from
    ``1 .. num_classes - 1``, so their label becomes a uniformly drawn *other* class; the rest get 0.
    """
    if not 0.0 <= p < 1.0:
        raise UsageError(f'data.label_noise={p} is out of range: use a share in [0, 1)')
    rng = np.random.default_rng(seed)
    offsets = np.zeros(num_samples, dtype=np.int64)
    flipped = rng.permutation(num_samples)[: round(p * num_samples)]
    offsets[flipped] = rng.integers(1, num_classes, size=len(flipped))
    return offsets


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, class-stratified share of ``labels``: ``round(fraction * n_c)`` (at least one) of
    each class ``c`` with ``n_c`` examples, drawn without replacement with ``seed``."""
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise UsageError(f'data.subset_fraction={fraction} is out of range: use a share in (0, 1] (1 keeps the whole split)')
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        chosen.append(rng.permutation(members)[: max(1, round(fraction * len(members)))])
    return np.sort(np.concatenate(chosen))


def holdout_indices(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded holdout of exactly ``size`` of ``labels``' examples, stratified by class.

    Class ``c`` with ``n_c`` of the ``n`` examples gives ``floor(size * n_c / n)``, and the ``size`` left over go one
    each to the classes with the largest remainders (the lower class id first on a tie); each class's share is drawn
    without replacement with ``seed``, classes in order. 500 of Fashion-MNIST's 60,000 are 50 of each class.
    """
    n = len(labels)
    if not (isinstance(size, int) and 0 <= size < n):
        raise UsageError(f'data.holdout={size} must be a whole number of examples in 0..{n - 1} (the training split '
                         f'has {n}): hold out fewer')
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / n
    quota = np.floor(exact).astype(int)
    order = sorted(range(len(classes)), key=lambda c: (-(exact[c] - quota[c]), c))
    quota[order[: size - int(quota.sum())]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def class_subset(labels: np.ndarray, classes: Sequence[int], num_classes: int, name: str = 'the data set') -> np.ndarray:
    """Sorted indices of the examples whose label is one of ``classes``; an unknown class id is refused."""
    unknown = [c for c in classes if not (isinstance(c, int) and 0 <= c < num_classes)]
    if not len(classes) or unknown:
        what = f'holds {unknown[0]!r}, which is not a class of {name}' if unknown else 'is empty'
        raise UsageError(f'data.classes={list(classes)} {what}: list class ids in 0..{num_classes - 1}')
    return np.flatnonzero(np.isin(labels, list(classes)))


def augment_cifar(image: Tensor, pad: int = 4) -> Tensor:
    """Random 32x32 crop of the ``pad``-pixel zero-padded image and a random horizontal flip (CHW tensor).

    Randomness comes from torch's global generator: the run's seed in the main process, and the per-worker seed
    PyTorch's DataLoader derives from it in worker processes.
    """
    _, h, w = image.shape
    padded = F.pad(image, (pad, pad, pad, pad))
    top, left = torch.randint(0, 2 * pad + 1, (2,)).tolist()
    out = padded[:, top : top + h, left : left + w]
    if torch.rand(()) < 0.5:
        out = out.flip(-1)
    return out


def image_transform(resolution: int, train: bool) -> Any:
    """PIL image to float (3, R, R) in [0, 1]: the ImageNet-style pipeline at resolution ``R``.

    Training: ``RandomResizedCrop(R)`` (scale 0.08-1, aspect 3/4-4/3) and a random horizontal flip; evaluation:
    resize the short side to ``round(R / 0.875)``, then the centre ``R x R`` crop. Randomness comes from torch's
    global generator, as :func:`augment_cifar`'s.
    """
    from torchvision.transforms import v2

    if train:
        steps = [v2.RandomResizedCrop(resolution, antialias=True), v2.RandomHorizontalFlip()]
    else:
        steps = [v2.Resize(round(resolution / EVAL_CROP), antialias=True), v2.CenterCrop(resolution)]
    return v2.Compose([*steps, v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)])


def open_mds(folder: str, cache: str | None = None) -> LocalDataset | StreamingDataset:
    """The MDS data set in ``folder``, read by sample index: a local folder as it is on disk, an ``s3://`` one
    fetched into ``cache`` shard by shard.

    A local folder is read through ``LocalDataset``, which opens a shard file per read and holds nothing else, so a
    folder rewritten in place is read afresh by the next reader. A StreamingDataset (the ``s3://`` case) registers
    shared memory under the first free prefix of ``/dev/shm``, and to find it attaches to every prefix already there
    and keeps those descriptors until the process exits; one instance per remote folder and process is kept
    (:func:`_remote`), so the descriptors a process holds do not grow with the runs it builds.
    """
    check_folder(folder)
    if not storage.is_s3(folder):
        return LocalDataset(local=folder)
    return _remote(folder.rstrip('/'), cache)


@functools.cache
def _remote(folder: str, cache: str | None) -> StreamingDataset:
    key = hashlib.sha1(folder.encode()).hexdigest()[:16]
    return _streaming(remote=folder, local=os.path.join(cache or os.path.join(default_cache(), 'streaming'), key), shuffle=False)


def _streaming(attempts: int = 5, **kwargs: Any) -> StreamingDataset:
    """A StreamingDataset, retried when another process took the same shared-memory prefix in the same instant.

    Streaming picks the first free prefix, then creates it: two runs starting together on one machine (a sweep's
    ``parallel`` runs) can both pick it, and the second fails with ``FileExistsError: '/000044_locals'``. A retry
    after a short random wait finds that prefix taken and picks the next.
    """
    jitter = random.Random()  # its own generator: the run's seeded global one stays untouched
    for _ in range(attempts - 1):
        try:
            return StreamingDataset(**kwargs)
        except FileExistsError:
            time.sleep(jitter.uniform(0.1, 1.0))
    return StreamingDataset(**kwargs)


class MDSImageDataset(Dataset):
    """Images, labels and indices of one split of an MDS data set (columns ``x``, ``y``, ``i``).

    Args:
        root: folder or ``s3://`` URI holding ``{split}/index.json`` and its shards.
        split: ``train`` or ``test``.
        num_classes: the label space (for label noise).
        augment: apply :func:`augment_cifar`.
        label_noise: share of labels replaced by another class (training data only; 0 keeps them clean).
        label_noise_seed: seed of the noise, fixed across runs so every seed of a study sees the same labels.
        cache: local folder for shards fetched from a remote (default under ``$PASTRUN_CACHE``).
        subset_fraction: keep a class-stratified share of the split (:func:`stratified_subset`; 1 keeps it all).
        subset_seed: seed of that share, fixed across runs like the label noise's.
        holdout: hold out this many examples of the split, stratified by class (:func:`holdout_indices`), before the
            subset and the classes are chosen: they are never served; :meth:`validation` serves them.
        holdout_seed: seed of the holdout, fixed across runs (every run of a study holds out the same examples).
        classes: keep only the examples of these class ids (:func:`class_subset`; None keeps every class).
        resolution: side of the images a JPEG split yields (:func:`image_transform`, with ``augment`` for training);
            raw-pixel splits keep their size and ignore it.
        raw: items hold the stored uint8 image (C, H, W), not augmented nor scaled, for augmentation on the device
            (:mod:`recipes.core.data.device_augment`); ``augment`` must then be false.

    ``indices`` holds the kept samples' positions in the whole split (None: all of it); ``held_out`` the held-out
    ones (empty without a holdout); ``split_size`` is the whole split's length. Holdouts and subsets are chosen by the
    clean labels.
    """

    def __init__(
        self,
        root: str,
        split: str,
        num_classes: int,
        augment: bool = False,
        label_noise: float = 0.0,
        label_noise_seed: int = 0,
        cache: str | None = None,
        subset_fraction: float = 1.0,
        subset_seed: int = 0,
        classes: Sequence[int] | None = None,
        resolution: int | None = None,
        raw: bool = False,
        holdout: int = 0,
        holdout_seed: int = 0,
    ) -> None:
        if raw and augment:
            raise ValueError('a raw MDSImageDataset yields stored images: augment them on the device, not here')
        index = storage.join(root, split, 'index.json')
        storage.check_reachable(root)
        if not storage.exists(index):
            raise UsageError(
                f'no MDS split at {storage.join(root, split)} ({index} is missing): convert CIFAR-100 with '
                f'`python {place("convert_cifar100")} --in_root DIR --out_root ROOT` or an image folder with '
                f'`python {place("convert_images")} --in_root DIR --out_root ROOT`, or set data.name to digits',
            )
        self._stream = open_mds(storage.join(root, split), cache)
        missing = {'x', 'y'} - set(self._stream.shards[0].column_names) if self._stream.shards else {'x', 'y'}
        if missing:
            raise UsageError(f'{storage.join(root, split)} has no column(s) {sorted(missing)}: it is not an image split')
        self.encoded = self._stream.shards[0].column_encodings[self._stream.shards[0].column_names.index('x')] == 'jpeg'
        if self.encoded and not resolution:
            raise UsageError(f'{storage.join(root, split)} holds JPEG images: set data.resolution (e.g. 224) to the side they are cropped to')
        self.resolution = resolution
        self._transform = image_transform(resolution, train=augment) if self.encoded else None
        self._labels = read_split_labels(root, split, self.split_size)
        self.root = root
        self.split = split
        self.num_classes = num_classes
        self.augment = augment
        self.raw = raw
        self.label_offsets = (
            noisy_label_offsets(self._stream.num_samples, num_classes, label_noise, label_noise_seed) if label_noise else None
        )
        self.indices: np.ndarray | None = None
        self.held_out = np.zeros(0, np.int64)
        self.holdout_seed = holdout_seed
        self.classes = None if classes is None else list(classes)
        if holdout or classes is not None or subset_fraction != 1:
            labels = self.clean_labels()
            keep = np.arange(len(labels))
            if holdout:
                self.held_out = holdout_indices(labels, holdout, holdout_seed)
                keep = np.setdiff1d(keep, self.held_out)
            if classes is not None:
                keep = keep[class_subset(labels[keep], list(classes), num_classes, os.path.basename(root.rstrip('/')))]
            if subset_fraction != 1:
                keep = keep[stratified_subset(labels[keep], subset_fraction, subset_seed)]
            self.indices = keep

    @property
    def split_size(self) -> int:
        return self._stream.num_samples  # len() of a StreamingDataset is one rank's share

    def __len__(self) -> int:
        return self.split_size if self.indices is None else len(self.indices)

    def unaugmented(self) -> MDSImageDataset:
        """The same examples, labels and indices, as evaluation sees them: float images in [0, 1], not augmented
        (a JPEG split's evaluation crop). Shares this data set's shards; ``self`` is left as it is."""
        plain = copy.copy(self)
        plain.augment, plain.raw = False, False
        plain._transform = image_transform(self.resolution, train=False) if self.encoded else None
        return plain

    def validation(self) -> MDSImageDataset:
        """The held-out examples (of ``data.classes`` only, where set) as evaluation sees them: clean labels, not
        augmented. Shares this data set's shards; ``self`` is left as it is."""
        held = self.unaugmented()
        held.label_offsets = None
        keep = self.held_out
        if self.classes is not None:
            keep = keep[np.isin(self.clean_labels()[keep], self.classes)]
        held.indices = keep
        return held

    def clean_labels(self) -> np.ndarray:
        """The clean label of every sample of the whole split (the converter's label file, else each sample once)."""
        if self._labels is not None:
            return self._labels.copy()
        return np.array([int(self._stream[i]['y']) for i in range(self.split_size)], dtype=np.int64)

    def clean_label(self, index: int) -> int:
        return int(self._labels[index]) if self._labels is not None else int(self._stream[index]['y'])

    def label(self, clean: int, index: int) -> int:
        if self.label_offsets is None:
            return clean
        return (clean + int(self.label_offsets[index])) % self.num_classes

    def __getitem__(self, position: int) -> tuple[Tensor, int, int]:
        index = position if self.indices is None else int(self.indices[position])
        sample = self._stream[index]
        if isinstance(sample['x'], Image.Image):
            return self._transform(decode_rgb(sample['x'])), self.label(int(sample['y']), index), index
        image = torch.from_numpy(sample['x'].copy()).permute(2, 0, 1)
        if self.raw:
            return image, self.label(int(sample['y']), index), index
        if self.augment:
            image = augment_cifar(image)
        return image.float().div_(255), self.label(int(sample['y']), index), index
