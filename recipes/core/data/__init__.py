"""Image classification data as MDS shards: converters, the index-addressable dataset and its loaders."""

from recipes.core.data.dataset import (
    MDSImageDataset,
    augment_cifar,
    class_subset,
    image_transform,
    noisy_label_offsets,
    stratified_subset,
)
from recipes.core.data.loader import (
    DATA_SETS,
    IMAGES,
    NUM_CLASSES,
    batch_size_per_rank,
    build_loader,
    data_channels,
    data_num_classes,
    data_stats,
    resolve_root,
)

__all__ = [
    'DATA_SETS',
    'IMAGES',
    'NUM_CLASSES',
    'MDSImageDataset',
    'augment_cifar',
    'batch_size_per_rank',
    'build_loader',
    'class_subset',
    'data_channels',
    'data_num_classes',
    'data_stats',
    'image_transform',
    'noisy_label_offsets',
    'resolve_root',
    'stratified_subset',
]
