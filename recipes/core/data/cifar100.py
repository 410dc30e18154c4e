"""CIFAR-100, "python version" (``cifar-100-python/{train,test,meta}``), to MDS.

Each pickled split holds ``data`` (N x 3072 uint8: the R, G and B planes of a 32x32 image, row-major),
``fine_labels`` and ``coarse_labels``, as torchvision's ``CIFAR100`` reads them.
"""

from __future__ import annotations

import os
import pickle

import numpy as np

from recipes.core.data.mds import write_split
from recipes.core.errors import UsageError

__all__ = ['convert_cifar100', 'read_cifar100_split']

FOLDER = 'cifar-100-python'


def _folder(in_root: str) -> str:
    for candidate in (os.path.join(in_root, FOLDER), in_root):
        if os.path.isfile(os.path.join(candidate, 'train')) and os.path.isfile(os.path.join(candidate, 'test')):
            return candidate
    raise UsageError(
        f'no CIFAR-100 python archive under {in_root} (expected {os.path.join(in_root, FOLDER)}/train and /test): '
        'extract cifar-100-python.tar.gz there, or pass --download',
    )


def read_cifar100_split(in_root: str, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 HWC, fine labels and coarse labels of ``split`` ('train' or 'test')."""
    path = os.path.join(_folder(in_root), split)
    with open(path, 'rb') as f:
        # The CIFAR archive is a pickle by definition; only convert archives you trust (the official download).
        entry = pickle.load(f, encoding='latin1')
    try:
        data = np.asarray(entry['data'], dtype=np.uint8)
        fine = np.asarray(entry['fine_labels'], dtype=np.int64)
        coarse = np.asarray(entry['coarse_labels'], dtype=np.int64)
    except (KeyError, TypeError) as e:
        raise UsageError(f'{path} is not a CIFAR-100 split (needs data, fine_labels, coarse_labels): {e}') from e
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), fine, coarse


def convert_cifar100(in_root: str, out_root: str, download: bool = False, progress: bool = True) -> None:
    """Write ``{out_root}/train`` and ``{out_root}/test`` MDS splits from the archive under ``in_root``."""
    if download:
        from torchvision.datasets import CIFAR100

        CIFAR100(root=in_root, train=True, download=True)
    for split in ('train', 'test'):
        images, fine, coarse = read_cifar100_split(in_root, split)
        write_split(out_root, split, images, fine, coarse, progress=progress)
