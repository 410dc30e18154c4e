"""DataLoaders for training and evaluation, with the global batch size split over ranks."""

from __future__ import annotations

from composer.utils import dist
from torch.utils.data import DataLoader, Dataset, Sampler

from recipes.core.data import fashion
from recipes.core.data.builtin import BUILTIN, builtin_root
from recipes.core.errors import UsageError, place

__all__ = ['DATA_SETS', 'IMAGES', 'NUM_CLASSES', 'batch_size_per_rank', 'build_loader', 'data_channels',
           'data_num_classes', 'data_stats', 'resolve_root']

NUM_CLASSES = {'cifar100': 100, 'digits': 10, 'synthetic': 100, 'fashion_mnist': 10}  # fixed label spaces
IMAGES = 'images'  # any image folder converted by launch/convert_images.py: its classes are in its classes.json
DATA_SETS = (*NUM_CLASSES, IMAGES)
CHANNELS = {'fashion_mnist': 1}  # the others are RGB (image folders are decoded to RGB)
STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {'fashion_mnist': (fashion.MEAN, fashion.STD)}  # the others: the model family's own


def data_channels(name: str) -> int:
    """The channels of data set ``name``'s images: what the first layer of a model trained on it takes."""
    return CHANNELS.get(name, 3)


def data_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Data set ``name``'s per-channel ``(mean, std)`` where the model normalises with the data's own statistics;
    None for the sets that use the model family's (CIFAR-100's for the CIFAR ResNets, ImageNet's for torchvision)."""
    return STATS.get(name)


def data_num_classes(name: str, remote: str | None) -> int:
    """The number of classes of data set ``name``: fixed, or (``images``) the length of the root's class list."""
    if name == IMAGES:
        from recipes.core.data.folder import read_classes

        return int(read_classes(resolve_root(name, remote))['num_classes'])
    if name not in NUM_CLASSES:
        raise UsageError(f'data.name={name!r} is not a data set: choose one of {", ".join(DATA_SETS)}')
    return NUM_CLASSES[name]


def resolve_root(name: str, remote: str | None, cache: str | None = None, path: str | None = None) -> str:
    """The MDS root of data set ``name``: ``remote`` if given, else the built-in one converted on first use (from
    the files in ``path`` for Fashion-MNIST)."""
    if name not in DATA_SETS:
        raise UsageError(f'data.name={name!r} is not a data set: choose one of {", ".join(DATA_SETS)}')
    if remote:
        return remote
    if name in BUILTIN:
        return builtin_root(name, cache, path)
    if name == IMAGES:
        raise UsageError(
            'data.remote is required for data.name=images: convert an image folder once with '
            f'`python {place("convert_images")} --in_root DIR --out_root ROOT` and set data.remote to ROOT',
        )
    raise UsageError(
        f'data.remote is required for {name}: convert it once with '
        f'`python {place("convert_cifar100")} --in_root DIR --out_root s3://BUCKET/cifar100` and set data.remote to that root',
    )


def batch_size_per_rank(global_batch_size: int, key: str = 'data.global_batch_size') -> int:
    world = dist.get_world_size()
    if global_batch_size <= 0 or global_batch_size % world:
        raise UsageError(
            f'{key}={global_batch_size} does not divide over {world} rank(s): use a positive multiple of {world}',
        )
    return global_batch_size // world


def build_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    drop_last: bool,
    num_workers: int,
    seed: int,
    sampler: Sampler | None = None,
) -> DataLoader:
    """A DataLoader over this rank's share of ``dataset`` (``batch_size`` is per rank)."""
    if sampler is None:
        sampler = dist.get_sampler(dataset, shuffle=shuffle, drop_last=drop_last, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        pin_memory=False,
        persistent_workers=num_workers > 0,
    )
