"""Writing image classification splits as MDS shards (mosaicml-streaming).

Columns: ``x`` uint8 HxWxC (32x32x3 for CIFAR-100 and digits, 28x28x1 for Fashion-MNIST; raw pixels: no decoding on
the read path), ``y`` the label, ``y_coarse`` the
coarse label (CIFAR-100's 20 superclasses; ``-1`` where a data set has none) and ``i`` the index in the split.
A local split is written under a temporary name and renamed into place; on S3 streaming uploads ``index.json``
after the shards, and readers require that index.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator

import numpy as np
from streaming import MDSWriter
from tqdm import tqdm

from recipes.core import storage
from recipes.core.errors import UsageError

__all__ = ['COLUMNS', 'check_folder', 'split_exists', 'split_samples', 'split_writer', 'write_split']

COLUMNS = {'x': 'ndarray:uint8:32,32,3', 'y': 'int', 'y_coarse': 'int', 'i': 'int'}  # of 32x32 RGB images


def check_folder(folder: str) -> None:
    """Refuse an MDS folder whose ``index.json`` is not an index, or (locally) whose shards disagree with it.

    Each local shard must have the size the index records and, uncompressed, begin with the index's sample count
    (an MDS shard starts with it as a little-endian uint32): a truncated or replaced shard is one line naming it.
    """
    index = storage.join(folder, 'index.json')
    fix = 'convert the data again (or restore the folder from its source)'
    try:
        shards = json.loads(storage.read_bytes(index))['shards']
        entries = [(s['raw_data']['basename'], int(s['raw_data']['bytes']), int(s['samples']), s.get('zip_data')) for s in shards]
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f'{index} is not an MDS index ({type(e).__name__}: {e}): {fix}') from None
    if storage.is_s3(folder):
        return  # streaming checks what it downloads
    for basename, size, samples, zipped in entries:
        path = os.path.join(folder, basename)
        if not os.path.isfile(path):
            if zipped:
                continue  # only the compressed shard is kept; streaming unpacks it
            raise UsageError(f'{path} is missing although {index} lists it: {fix}')
        if os.path.getsize(path) != size:
            raise UsageError(f'{path} has {os.path.getsize(path)} bytes but {index} says {size}: it is truncated or was replaced; {fix}')
        with open(path, 'rb') as f:
            header = f.read(4)
        if len(header) < 4 or int.from_bytes(header, 'little') != samples:
            raise UsageError(f'{path} does not hold the {samples} samples {index} says: {fix}')


def split_exists(root: str, split: str) -> bool:
    return storage.exists(storage.join(root, split, 'index.json'))


def split_samples(root: str, split: str) -> int:
    """The number of samples ``{root}/{split}``'s index records."""
    return sum(int(shard['samples']) for shard in json.loads(storage.read_bytes(storage.join(root, split, 'index.json')))['shards'])


def write_split(
    out_root: str,
    split: str,
    images: np.ndarray,
    labels: np.ndarray,
    coarse_labels: np.ndarray | None = None,
    progress: bool = True,
) -> None:
    """Write ``images`` (N, H, W, C) uint8 and their labels as ``{out_root}/{split}``."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in (1, 3):
        raise ValueError(f'images must be uint8 (N, H, W, C) with C 1 or 3, got {images.dtype} {images.shape}')
    if len(labels) != len(images):
        raise ValueError(f'{len(images)} images but {len(labels)} labels')
    coarse = coarse_labels if coarse_labels is not None else np.full(len(labels), -1)
    columns = {**COLUMNS, 'x': 'ndarray:uint8:' + ','.join(str(d) for d in images.shape[1:])}
    with split_writer(out_root, split, columns) as writer:
        for i in tqdm(range(len(images)), desc=f'writing {split}', disable=not progress, unit='img'):
            writer.write({'x': images[i], 'y': int(labels[i]), 'y_coarse': int(coarse[i]), 'i': i})


@contextlib.contextmanager
def split_writer(out_root: str, split: str, columns: dict[str, str]) -> Iterator[MDSWriter]:
    """An MDSWriter for ``{out_root}/{split}`` that publishes the split only if the block finishes.

    Locally the split is written under a temporary name and renamed into place. On S3 the index is written last;
    a block that raises leaves no ``index.json`` (MDSWriter's own ``__exit__`` would write one for the samples
    so far, making a partial split look whole), so readers never see a split that was cut short.
    """
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
        writer = MDSWriter(out=target, columns=columns, size_limit=1 << 26)
        try:
            yield writer
        except BaseException:
            writer.cancel_future_jobs()
            raise
        writer.finish()
        if target != out:
            os.replace(target, out)
    finally:
        if target != out and os.path.exists(target):
            shutil.rmtree(target)
