"""Fashion-MNIST (Xiao, Rasul and Vollgraf 2017) from the four gzipped IDX files Zalando publishes.

Debian ships them as the package ``dataset-fashion-mnist`` (``apt-get install -y dataset-fashion-mnist`` puts them
under ``/usr/share/datasets/fashion-mnist/``); any folder holding the same four files works (``data.path``, or the
environment's ``PASTRUN_FASHION_MNIST``, to carry the 31 MB to a machine without Debian's packages). Nothing is
downloaded.

IDX is big-endian: a magic number (2051 for unsigned-byte images of 3 dimensions, 2049 for 1-D labels), one int32
per dimension, then the bytes row-major. :func:`read_idx` checks each file's magic number, counts, shape and the
labels' range, and names the file and the fix in one line when one is missing, truncated or foreign.

60,000 training and 10,000 test images, 28x28 grey (kept at that size and one channel), 10 balanced classes.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from recipes.core.errors import UsageError

__all__ = [
    'CLASSES',
    'DEFAULT_PATH',
    'ENV',
    'FILES',
    'MEAN',
    'PACKAGE',
    'SIZES',
    'STD',
    'check_files',
    'fashion_arrays',
    'fashion_path',
    'read_idx',
]

PACKAGE = 'dataset-fashion-mnist'
DEFAULT_PATH = '/usr/share/datasets/fashion-mnist'
ENV = 'PASTRUN_FASHION_MNIST'
FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
SIZES = {'train': 60_000, 'test': 10_000}
SHAPE = (28, 28)
CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
MEAN = (0.2860,)  # of the training images' pixels in [0, 1]
STD = (0.3530,)
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def fashion_path(path: str | None = None) -> str:
    """The folder of the four files: ``path``, else ``$PASTRUN_FASHION_MNIST``, else Debian's."""
    return path or os.environ.get(ENV) or DEFAULT_PATH


def _fix(folder: str) -> str:
    return (f'install them with `apt-get install -y {PACKAGE}` (into {DEFAULT_PATH}), or put the four files Zalando '
            f'publishes ({", ".join(f for pair in FILES.values() for f in pair)}) in one folder and set data.path (or '
            f'{ENV}) to it; data.path is now {folder}')


def _header(path: str, folder: str) -> tuple[int, tuple[int, ...]]:
    """The magic number and dimensions of an IDX file, read from its first bytes."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise UsageError(f'Fashion-MNIST file {name} is missing from {folder}: {_fix(folder)}')
    try:
        with gzip.open(path, 'rb') as f:
            head = f.read(8)
            if len(head) < 8:
                raise EOFError
            magic, first = struct.unpack('>II', head)
            dims = [first]
            if magic == IMAGES_MAGIC:
                rest = f.read(8)
                if len(rest) < 8:
                    raise EOFError
                dims += struct.unpack('>II', rest)
    except (OSError, EOFError, zlib.error):
        raise UsageError(f'Fashion-MNIST file {path} is not a whole gzipped IDX file (truncated or foreign): {_fix(folder)}') from None
    return magic, tuple(dims)


def check_files(folder: str) -> None:
    """Each of the four files is there with the magic number, count and shape of Fashion-MNIST (reads headers only)."""
    for split, (images, labels) in FILES.items():
        n = SIZES[split]
        for name, magic, dims in ((images, IMAGES_MAGIC, (n, *SHAPE)), (labels, LABELS_MAGIC, (n,))):
            found_magic, found_dims = _header(os.path.join(folder, name), folder)
            if found_magic != magic:
                raise UsageError(f'{os.path.join(folder, name)} has IDX magic number {found_magic}, not {magic}: it is '
                                 f'not the Fashion-MNIST file of that name; {_fix(folder)}')
            if found_dims != dims:
                raise UsageError(f'{os.path.join(folder, name)} holds shape {found_dims}, not {dims}: it is not the '
                                 f'Fashion-MNIST file of that name; {_fix(folder)}')


def read_idx(path: str, magic: int, dims: tuple[int, ...], folder: str | None = None) -> np.ndarray:
    """The uint8 array of IDX file ``path`` (gzipped), checked: its magic number, its dimensions, every byte there."""
    folder = folder or os.path.dirname(path)
    found_magic, found_dims = _header(path, folder)
    if found_magic != magic or found_dims != dims:
        raise UsageError(f'{path} holds IDX magic {found_magic} with shape {found_dims}, not magic {magic} with shape '
                         f'{dims}: {_fix(folder)}')
    offset = 4 + 4 * len(dims)
    try:
        with gzip.open(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError, zlib.error):
        raise UsageError(f'Fashion-MNIST file {path} is truncated (its gzip stream ends early): {_fix(folder)}') from None
    expected = offset + int(np.prod(dims))
    if len(data) != expected:
        raise UsageError(f'{path} holds {len(data)} bytes, not the {expected} its header says: truncated or foreign; {_fix(folder)}')
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def fashion_arrays(path: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST as uint8 (N, 28, 28, 1) images and int64 labels per split, read from ``path``'s four files."""
    folder = fashion_path(path)
    out = {}
    for split, (images_name, labels_name) in FILES.items():
        n = SIZES[split]
        images = read_idx(os.path.join(folder, images_name), IMAGES_MAGIC, (n, *SHAPE), folder)
        labels = read_idx(os.path.join(folder, labels_name), LABELS_MAGIC, (n,), folder).astype(np.int64)
        if labels.max() >= len(CLASSES):
            bad = int(np.flatnonzero(labels >= len(CLASSES))[0])
            raise UsageError(f'{os.path.join(folder, labels_name)} holds label {labels[bad]} at {bad}, outside 0..'
                             f'{len(CLASSES) - 1}: it is not Fashion-MNIST; {_fix(folder)}')
        out[split] = (images[..., None].copy(), labels)
    return out
