"""Writing image classification splits as MDS shards (mosaicml-streaming).

Columns: ``x`` uint8 32x32x3 (HWC, raw pixels: no decoding on the read path), ``y`` the label, ``y_coarse`` the
coarse label (CIFAR-100's 20 superclasses; ``-1`` where a data set has none) and ``i`` the index in the split.
A local split is written under a temporary name and renamed into place; on S3 streaming uploads ``index.json``
after the shards, and readers require that index.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
from streaming import MDSWriter
from tqdm import tqdm

from recipes.core import storage
from recipes.core.errors import UsageError

__all__ = ['COLUMNS', 'split_exists', 'write_split']

COLUMNS = {'x': 'ndarray:uint8:32,32,3', 'y': 'int', 'y_coarse': 'int', 'i': 'int'}


def split_exists(root: str, split: str) -> bool:
    return storage.exists(storage.join(root, split, 'index.json'))


def write_split(
    out_root: str,
    split: str,
    images: np.ndarray,
    labels: np.ndarray,
    coarse_labels: np.ndarray | None = None,
    progress: bool = True,
) -> None:
    """Write ``images`` (N, 32, 32, 3) uint8 and their labels as ``{out_root}/{split}``."""
    if images.dtype != np.uint8 or images.shape[1:] != (32, 32, 3):
        raise ValueError(f'images must be uint8 (N, 32, 32, 3), got {images.dtype} {images.shape}')
    if len(labels) != len(images):
        raise ValueError(f'{len(images)} images but {len(labels)} labels')
    coarse = coarse_labels if coarse_labels is not None else np.full(len(labels), -1)
    out = storage.join(out_root, split)
    if split_exists(out_root, split):
        raise UsageError(f'{out} already holds an MDS split: choose another --out_root or delete it first')

    target = out
    if not storage.is_s3(out):
        os.makedirs(out_root, exist_ok=True)
        if os.path.exists(out):
            shutil.rmtree(out)  # a split without index.json is the remains of an interrupted write
        target = tempfile.mkdtemp(dir=out_root, prefix=f'.tmp-{split}-')
        os.rmdir(target)
    try:
        with MDSWriter(out=target, columns=COLUMNS, size_limit=1 << 26) as writer:
            for i in tqdm(range(len(images)), desc=f'writing {split}', disable=not progress, unit='img'):
                writer.write({'x': images[i], 'y': int(labels[i]), 'y_coarse': int(coarse[i]), 'i': i})
        if target != out:
            os.replace(target, out)
    finally:
        if target != out and os.path.exists(target):
            shutil.rmtree(target)
