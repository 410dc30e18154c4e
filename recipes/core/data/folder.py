"""A folder of class sub-folders of JPEG/PNG images (ImageNet, Caltech-101 layout) to MDS splits.

Layout read (as torchvision's ``ImageFolder``): ``IN/<class>/<image>``, or ``IN/train/<class>/<image>`` with
``IN/val/<class>/<image>`` (``IN/test/`` is accepted for ``val/``). Classes are the sub-folder names in sorted order;
class id ``c`` is ``classes[c]``. Without ``val/`` every class (of ``IN/train/`` if there is one) is split with a seed:
``round(val_fraction * n_c)`` images of a class with ``n_c`` (at least one, when ``n_c > 1``) go to ``test``.

Written: ``OUT/train`` and ``OUT/test`` with columns ``x`` (streaming's ``jpeg`` encoding), ``y`` (class id) and
``i`` (position in the split), ``OUT/{split}_labels.npy`` (every label of the split in index order, so subsets and
score artifacts need not read the shards) and ``OUT/classes.json`` (the class names, counts and how the splits were
made), written last, so a data root with ``classes.json`` is whole.

Pixels: a JPEG file in RGB or greyscale is stored byte for byte (no re-encoding loss). Every other image (PNG,
a CMYK JPEG, ...) is converted to RGB and encoded as JPEG at quality :data:`JPEG_QUALITY` (Pillow, 4:4:4 chroma):
JPEG is lossy, so a PNG comes back within a few grey levels of its pixels, not exactly. Greyscale JPEGs are
decoded to RGB when read (:func:`decode_rgb`). Each image is decoded once while converting: a file that does not
decode stops the conversion with its path, before any split is published.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from tqdm import tqdm

from recipes.core import storage
from recipes.core.data.mds import split_writer
from recipes.core.errors import UsageError, place

__all__ = [
    'CLASSES_FILE',
    'COLUMNS',
    'EXTENSIONS',
    'JPEG_QUALITY',
    'LABELS_FILE',
    'convert_image_folder',
    'decode_rgb',
    'read_classes',
    'read_split_labels',
    'scan_image_folder',
]

CLASSES_FILE = 'classes.json'
LABELS_FILE = '{split}_labels.npy'  # every label of a split, in index order, beside it
COLUMNS = {'x': 'jpeg', 'y': 'int', 'i': 'int'}
EXTENSIONS = ('.jpg', '.jpeg', '.png')
JPEG_QUALITY = 95
VAL_FOLDERS = ('val', 'test')


@dataclass(frozen=True)
class Sample:
    path: str
    label: int


def _images_in(folder: str) -> list[str]:
    names = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        names += [os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(EXTENSIONS) and not f.startswith('.')]
    return names


def _class_folders(root: str) -> list[str]:
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith('.'))


def _read_split(root: str, classes: Sequence[str]) -> list[Sample]:
    samples = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        if os.path.isdir(folder):
            samples += [Sample(path, label) for path in _images_in(folder)]
    return samples


def scan_image_folder(in_root: str, val_fraction: float = 0.1, seed: int = 0) -> tuple[list[str], dict[str, list[Sample]], str]:
    """The classes, the ``train`` and ``test`` samples, and how the split was made (``folders`` or ``seeded``)."""
    if not os.path.isdir(in_root):
        raise UsageError(f'--in_root {in_root} is not a folder: point it at a folder of class sub-folders of images')
    if not 0 < val_fraction < 1:
        raise UsageError(f'--val_fraction={val_fraction} is out of range: use a share in (0, 1), e.g. 0.1')
    train_root = os.path.join(in_root, 'train')
    val_root = next((os.path.join(in_root, v) for v in VAL_FOLDERS if os.path.isdir(os.path.join(in_root, v))), None)
    if os.path.isdir(train_root) and val_root is not None:
        classes = _class_folders(train_root)
        unknown = sorted(set(_class_folders(val_root)) - set(classes))
        if unknown:
            raise UsageError(f'{os.path.join(val_root, unknown[0])} is a class that {train_root} lacks: give both splits the same class folders')
        splits = {'train': _read_split(train_root, classes), 'test': _read_split(val_root, classes)}
        how = 'folders'
    else:
        train_root = train_root if os.path.isdir(train_root) else in_root  # train/ alone: split it
        classes = _class_folders(train_root)
        every = _read_split(train_root, classes)
        labels = np.array([s.label for s in every], dtype=np.int64)
        rng = np.random.default_rng(seed)
        test = np.zeros(len(every), dtype=bool)
        for c in range(len(classes)):
            members = rng.permutation(np.flatnonzero(labels == c))
            count = round(val_fraction * len(members))
            count = min(max(count, 1), len(members) - 1) if len(members) > 1 else 0
            test[members[:count]] = True
        splits = {'train': [s for s, t in zip(every, test, strict=True) if not t], 'test': [s for s, t in zip(every, test, strict=True) if t]}
        how = 'seeded'
    if not classes or not splits['train']:
        raise UsageError(
            f'{train_root} holds no {"/".join(e[1:].upper() for e in EXTENSIONS)} images in class sub-folders '
            f'({train_root}/<class>/<image>): point --in_root at an image folder',
        )
    counts = np.bincount([s.label for s in splits['train']], minlength=len(classes))
    if (counts == 0).any():
        empty = classes[int(np.flatnonzero(counts == 0)[0])]
        raise UsageError(f'class folder {os.path.join(train_root, empty)} holds no training images: add images or remove the folder')
    if not splits['test']:
        raise UsageError(f'{in_root}: no image is left for the test split: add images (a class needs two to be split)')
    return classes, splits, how


def _encoded(path: str, tmp: str) -> Image.Image:
    """The image at ``path`` as streaming's ``jpeg`` encoding stores it: a JPEG file object it copies byte for byte."""
    try:
        with Image.open(path) as image:
            image.load()  # decode it all: a truncated or corrupt file fails here, with its name
            if image.format == 'JPEG' and image.mode in ('RGB', 'L'):
                return Image.open(path)  # streaming reads the file's own bytes
            rgb = image.convert('RGB')
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UsageError(f'{path} is not a readable image ({type(e).__name__}: {e}): fix or remove the file, then convert again') from None
    # Streaming copies a JpegImageFile's file as it is; others it would encode at Pillow's default quality (75).
    out = os.path.join(tmp, 'image.jpg')
    rgb.save(out, format='JPEG', quality=JPEG_QUALITY, subsampling=0)
    with open(out, 'rb') as f:
        data = f.read()
    reread = Image.open(io.BytesIO(data))
    reread.filename = out  # the bytes written just now: streaming's JPEG encoding reads them back from this file
    return reread


def decode_rgb(image: Image.Image) -> Image.Image:
    """A decoded ``x`` as RGB (greyscale JPEGs are stored as they came)."""
    return image if image.mode == 'RGB' else image.convert('RGB')


def read_classes(root: str) -> dict:
    """``classes.json`` of an image-folder data root: ``classes`` (names by id), ``num_classes`` and the split sizes."""
    uri = storage.join(root, CLASSES_FILE)
    storage.check_reachable(root)
    if not storage.exists(uri):
        raise UsageError(
            f'{uri} is missing: data.name=images reads the class list {place("convert_images")} writes; convert the '
            f'folder with `python {place("convert_images")} --in_root DIR --out_root ROOT` and set data.remote to ROOT',
        )
    try:
        meta = json.loads(storage.read_bytes(uri))
        classes = [str(c) for c in meta['classes']]
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f'{uri} is not a class list ({type(e).__name__}: {e}): convert the folder again') from None
    if len(classes) < 2:
        raise UsageError(f'{uri} lists {len(classes)} class(es): a classifier needs at least two')
    return {**meta, 'classes': classes, 'num_classes': len(classes)}


def convert_image_folder(in_root: str, out_root: str, val_fraction: float = 0.1, seed: int = 0, progress: bool = True) -> dict:
    """Write ``{out_root}/train``, ``{out_root}/test`` and ``{out_root}/classes.json``; returns what it wrote there."""
    classes, splits, how = scan_image_folder(in_root, val_fraction, seed)
    if storage.exists(storage.join(out_root, CLASSES_FILE)):
        raise UsageError(f'{storage.join(out_root, CLASSES_FILE)} exists: {out_root} already holds a converted folder; choose another --out_root')
    with tempfile.TemporaryDirectory(prefix='convert-images-') as tmp:
        for split, samples in splits.items():
            with split_writer(out_root, split, COLUMNS) as writer:
                for i, sample in enumerate(tqdm(samples, desc=f'writing {split}', disable=not progress, unit='img')):
                    writer.write({'x': _encoded(sample.path, tmp), 'y': sample.label, 'i': i})
    meta = {
        'classes': classes,
        'num_classes': len(classes),
        'splits': {split: len(samples) for split, samples in splits.items()},
        'split_from': how,  # 'folders': train/ and val/ as given; 'seeded': a class-stratified share of each class
        'val_fraction': val_fraction if how == 'seeded' else None,
        'seed': seed if how == 'seeded' else None,
        'jpeg_quality': JPEG_QUALITY,
        'source': os.path.abspath(in_root),
    }
    for split, samples in splits.items():  # every label of a split without reading its shards (subsets, scores)
        buffer = io.BytesIO()
        np.save(buffer, np.array([s.label for s in samples], dtype=np.int64))
        storage.write_bytes(storage.join(out_root, LABELS_FILE.format(split=split)), buffer.getvalue())
    storage.write_bytes(storage.join(out_root, CLASSES_FILE), json.dumps(meta, indent=1).encode())
    return meta


def read_split_labels(root: str, split: str, size: int) -> np.ndarray | None:
    """The labels of ``split`` from the converter's ``{split}_labels.npy``; None if absent or not ``size`` long."""
    uri = storage.join(root, LABELS_FILE.format(split=split))
    if not storage.exists(uri):
        return None
    try:
        labels = np.load(io.BytesIO(storage.read_bytes(uri)), allow_pickle=False)
    except (ValueError, OSError):
        return None
    return labels.astype(np.int64) if labels.ndim == 1 and len(labels) == size else None
