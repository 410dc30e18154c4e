"""Data sets that need no download, written to MDS on first use.

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 real images, 10 classes), upsampled to 32x32x3,
  with a fixed 1,437 / 360 train/test split. The embedded default for demos and real-data tests.
* ``synthetic``: CIFAR-100-shaped random images and labels (50,000 / 10,000, CIFAR-100's split sizes), for
  throughput benchmarks: at batch 1024 an epoch is 48 batches, so a timed window does not cross the epoch starts
  where the compute ledger counts a batch.
* ``fashion_mnist``: Fashion-MNIST, 60,000 / 10,000 28x28 grey images, read from Debian's package or any folder of
  the four IDX files (:mod:`recipes.core.data.fashion`), kept at 28x28x1.

Beside each split goes ``{split}_labels.npy`` (every label in index order), so holdouts and subsets need not read
the shards. A cached split whose size is not the one stated here (written by an older version), or without its label
file, is written again.
"""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock

from recipes.core import storage
from recipes.core.data.fashion import SIZES as FASHION_SIZES
from recipes.core.data.fashion import fashion_arrays
from recipes.core.data.folder import LABELS_FILE
from recipes.core.data.mds import split_exists, split_samples, write_split

__all__ = ['BUILTIN', 'builtin_root', 'default_cache', 'digits_arrays', 'synthetic_arrays']

DIGITS_TEST_SIZE = 360
SYNTHETIC_SIZES = {'train': 50_000, 'test': 10_000}


def default_cache() -> str:
    return os.environ.get('PASTRUN_CACHE', os.path.join(os.path.expanduser('~'), '.cache', 'pastrun'))


def digits_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The digits as uint8 (N, 32, 32, 3) images and int64 labels, split with a fixed seed."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    big = F.interpolate(small, size=(32, 32), mode='bilinear', align_corners=False).clamp_(0, 1)
    images = (big * 255).round().to(torch.uint8).permute(0, 2, 3, 1).repeat(1, 1, 1, 3).numpy()
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    test, train = order[:DIGITS_TEST_SIZE], np.sort(order[DIGITS_TEST_SIZE:])
    return {'train': (images[train], labels[train]), 'test': (images[np.sort(test)], labels[np.sort(test)])}


def synthetic_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random CIFAR-100-shaped images and labels, the same on every machine."""
    rng = np.random.default_rng(0)
    return {
        split: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 100, n, dtype=np.int64))
        for split, n in SYNTHETIC_SIZES.items()
    }


BUILTIN = {'digits': digits_arrays, 'synthetic': synthetic_arrays, 'fashion_mnist': fashion_arrays}
SIZES = {'digits': {'train': 1797 - DIGITS_TEST_SIZE, 'test': DIGITS_TEST_SIZE}, 'synthetic': SYNTHETIC_SIZES,
         'fashion_mnist': FASHION_SIZES}
SOURCED = ('fashion_mnist',)  # read from files on the machine (``source``); the others are made in memory


def _whole(root: str, split: str, size: int) -> bool:
    return (split_exists(root, split) and split_samples(root, split) == size
            and os.path.isfile(os.path.join(root, LABELS_FILE.format(split=split))))


def builtin_root(name: str, cache: str | None = None, source: str | None = None) -> str:
    """The MDS root of a built-in data set, converting it under ``cache`` the first time (safe across ranks);
    ``source`` is the folder of the files a sourced set (:data:`SOURCED`) is read from (None: its default)."""
    root = os.path.join(cache or default_cache(), 'mds', name)
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with FileLock(root + '.lock'):
        stale = [split for split, size in SIZES[name].items() if not _whole(root, split, size)]
        if stale:
            arrays = BUILTIN[name](source) if name in SOURCED else BUILTIN[name]()
            for split in stale:
                if os.path.exists(os.path.join(root, split)):
                    shutil.rmtree(os.path.join(root, split))
                images, labels = arrays[split]
                write_split(root, split, images, labels, progress=False)
                buffer = io.BytesIO()
                np.save(buffer, labels.astype(np.int64), allow_pickle=False)
                storage.write_bytes(os.path.join(root, LABELS_FILE.format(split=split)), buffer.getvalue())
    return root
