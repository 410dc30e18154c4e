"""The data keys' rules that need the data code: an MDS root's splits, the class ids of a data set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recipes.core import storage
from recipes.core.errors import UsageError, place
from recipes.core.rules import Rule, check_location, named

__all__ = ['ClassIds', 'MDSRoot']


@dataclass(frozen=True)
class MDSRoot(Rule):
    """An MDS root (folder or ``s3://``) holding ``train/`` and ``test/``, each a whole MDS folder; None allowed."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        from recipes.core.data.mds import check_folder

        if value is None:
            return None
        check_location(key, value)
        named(key, storage.check_reachable, value)
        images = cfg is not None and cfg.data.name == 'images'
        for split in ('train', 'test'):
            index = storage.join(value, split, 'index.json')
            if not storage.exists(index):
                how = (f'an image folder with `python {place("convert_images")} --in_root DIR --out_root ROOT`' if images else
                       f'CIFAR-100 with `python {place("convert_cifar100")} --in_root DIR --out_root ROOT`, or set data.name to digits')
                raise UsageError(f'{key}={value}: no MDS split at {storage.join(value, split)} ({index} is missing): convert {how}')
            named(key, check_folder, storage.join(value, split))
        if images:
            from recipes.core.data.folder import read_classes

            named(key, read_classes, value)
        return value

    def describe(self) -> str:
        return 'an MDS root (folder or `s3://`) holding `train/` and `test/`, or null for the built-in sets'

    def invalid_example(self) -> Any:
        return '/no/such/mds'


@dataclass(frozen=True)
class ClassIds(Rule):
    """None, or distinct class ids of the data set (``data.name``), at least ``min_count`` of them."""

    min_count: int = 1

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        from recipes.core.data import DATA_SETS, data_num_classes

        if value is None or cfg is None or cfg.data.name not in DATA_SETS:
            return value  # data.name's own rule reports an unknown data set
        count = named(key, data_num_classes, cfg.data.name, cfg.data.remote)
        hint = f'list {self.min_count} or more distinct class ids in 0..{count - 1}, e.g. [0, 1]'
        if not isinstance(value, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in value):
            raise UsageError(f'{key}={value!r} is not a list of class ids: {hint}')
        outside = [c for c in value if not 0 <= c < count]
        if outside:
            raise UsageError(f'{key}={value} holds {outside[0]}, which is not a class of {cfg.data.name}: {hint}')
        if len(set(value)) != len(value) or len(value) < self.min_count:
            raise UsageError(f'{key}={value} must list distinct classes, at least {self.min_count}: {hint}')
        return value

    def describe(self) -> str:
        return f'null, or {self.min_count} or more distinct class ids of the data set'

    def invalid_example(self) -> Any:
        return [0, 1000]
