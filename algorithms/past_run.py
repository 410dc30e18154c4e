"""Past runs as inputs: find a run's checkpoints, load them safely, rebuild its network as a frozen model.

A past run is its run folder (local or ``s3://``), as ``launch/train.py`` leaves it: ``config.yaml`` (the resolved
config, so the network can be rebuilt from the folder alone) and Composer checkpoints named
``ep{epoch}-ba{batch}-rank{rank}.pt`` plus ``latest-rank0.pt``. A checkpoint is named by

* ``latest``: the newest checkpoint;
* ``epN`` (``ep80``): the checkpoint saved at the end of epoch N;
* a file name in the run folder (``ep80-ba3920-rank0.pt``);
* a full path or URI to any Composer checkpoint.

Checkpoints are read with ``torch.load(weights_only=True)`` and the few non-tensor types Composer writes
(:data:`CHECKPOINT_ALLOWLIST`): a file from a shared bucket cannot execute code while it is loaded.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.torch_version import TorchVersion

from recipes.core import storage
from recipes.core.data.builtin import default_cache
from recipes.core.errors import UsageError
from recipes.core.model import resnet_cifar
from recipes.core.run_files import CONFIG_FILE, read_compute

__all__ = ['CHECKPOINT_ALLOWLIST', 'PastRun', 'frozen', 'load_checkpoint_state', 'load_model', 'past_run_cost']

MAKE_ONE = 'train one with `python launch/train.py yamls/digits/baseline.yaml` (or yamls/baseline.yaml)'

# What a Composer 0.32 checkpoint holds besides tensors: timestamps (timedelta), the torch version, and the numpy
# RNG state (an ndarray of uint32).
CHECKPOINT_ALLOWLIST: list[Any] = [
    datetime.timedelta,
    TorchVersion,
    np._core.multiarray._reconstruct,
    np.ndarray,
    np.dtype,
    np.dtypes.UInt32DType,
]

_EPOCH = re.compile(r'^ep(\d+)$')
_FILE = re.compile(r'^ep(\d+)-ba(\d+)-rank0\.pt$')


def _local_copy(uri: str) -> str:
    """A local path for ``uri``, downloading an S3 object once into the cache."""
    if not storage.is_s3(uri):
        if not os.path.isfile(uri):
            raise UsageError(f'checkpoint {uri} does not exist: {MAKE_ONE}')
        return uri
    from composer.utils import get_file

    storage.check_reachable(uri)
    key = hashlib.sha1(uri.encode()).hexdigest()[:16]
    local = os.path.join(default_cache(), 'checkpoints', f'{key}-{os.path.basename(uri)}')
    if not os.path.isfile(local):
        os.makedirs(os.path.dirname(local), exist_ok=True)
        tmp = f'{local}.tmp-{os.getpid()}'
        try:
            get_file(uri, tmp, overwrite=True, progress_bar=False)
        except FileNotFoundError as e:
            raise UsageError(f'checkpoint {uri} does not exist: {MAKE_ONE}') from e
        os.replace(tmp, local)
    return local


def load_checkpoint_state(uri: str) -> dict[str, Any]:
    """The ``state`` dict of a Composer checkpoint, loaded without running any code the file may carry."""
    path = _local_copy(uri)
    try:
        with torch.serialization.safe_globals(CHECKPOINT_ALLOWLIST):
            content = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001 - every unpickling failure means the same thing to the user
        text = str(e)
        if 'GLOBAL' in text or 'global' in text or 'allowlist' in text:
            raise UsageError(
                f'refused to load {uri}: it holds Python objects a Composer checkpoint does not '
                '(loading it could run code); use checkpoints from runs you trust',
            ) from e
        raise UsageError(f'{uri} is not a Composer checkpoint or is truncated ({type(e).__name__}): save it again') from e
    if not isinstance(content, dict) or not isinstance(content.get('state'), dict) or 'model' not in content['state']:
        raise UsageError(f'{uri} is not a Composer checkpoint (no state.model): point at a file a Trainer saved')
    return content['state']


def frozen(module: nn.Module) -> nn.Module:
    """Eval mode and no gradients: a teacher, a scorer or an attacked model."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def load_model(model_config: dict[str, Any], state: dict[str, Any]) -> nn.Module:
    """Rebuild the network of ``model_config`` (``name``, ``num_classes``) and load ``state['model']`` into it.

    Entries the base network lacks (auxiliary BatchNorms of adversarial replay) are dropped; a missing entry is
    an error. Returns the bare ``nn.Module``, in train mode, with gradients on.
    """
    model = resnet_cifar(model_config['name'], int(model_config['num_classes']))
    weights = state['model']
    missing, _ = model.load_state_dict(weights, strict=False)
    if missing:
        raise UsageError(f'checkpoint does not match {model_config["name"]}: missing {missing[:3]} ...')
    return model.module


@dataclass(frozen=True)
class PastRun:
    """A finished (or running) training run, named by its folder or URI."""

    folder: str

    @cached_property
    def config(self) -> dict[str, Any]:
        """The run's resolved config (``config.yaml``)."""
        storage.check_reachable(self.folder)
        uri = storage.join(self.folder, CONFIG_FILE)
        if not storage.exists(uri):
            raise UsageError(f'no past run at {self.folder} ({CONFIG_FILE} is missing): {MAKE_ONE}')
        config = yaml.safe_load(storage.read_bytes(uri))
        if not isinstance(config, dict) or 'model' not in config:
            raise UsageError(f'{uri} is not a run config (no model section): was the folder written by launch/train.py?')
        return config

    @property
    def num_classes(self) -> int:
        return int(self.config['model']['num_classes'])

    def checkpoints(self) -> list[str]:
        """The run's per-epoch checkpoint file names, oldest first."""
        names = [n for n in storage.list_names(self.folder) if _FILE.match(n)]
        return sorted(names, key=lambda n: tuple(int(g) for g in _FILE.match(n).groups()))  # type: ignore[union-attr]

    def resolve(self, name: str) -> str:
        """The URI of checkpoint ``name`` (``latest``, ``epN``, a file name, or a full path/URI)."""
        if storage.is_s3(name) or os.sep in name or '/' in name:
            return name
        self.config  # noqa: B018 - a folder that is no run fails here, with its own message
        available = self.checkpoints()
        if name == 'latest':
            if not available:
                raise UsageError(f'{self.folder} holds no checkpoints yet: {MAKE_ONE}')
            return storage.join(self.folder, available[-1])
        match = _EPOCH.match(name)
        if match:
            found = [n for n in available if _FILE.match(n).group(1) == match.group(1)]  # type: ignore[union-attr]
            if found:
                return storage.join(self.folder, found[-1])
        elif name in available:
            return storage.join(self.folder, name)
        epochs = ', '.join(f'ep{_FILE.match(n).group(1)}' for n in available) or 'none'  # type: ignore[union-attr]
        raise UsageError(f'no checkpoint {name!r} in {self.folder} (available: {epochs}): name one of those or latest')

    def compute_until(self, name: str) -> float | None:
        """FLOPs the run had spent when checkpoint ``name`` was saved (its ``compute.json``), or None if unrecorded."""
        epoch = _FILE.match(os.path.basename(self.resolve(name)))
        compute = read_compute(self.folder) if epoch else None
        if compute is None:
            return None
        by_epoch = compute.get('by_epoch', [])
        index = int(epoch.group(1)) - 1
        return float(by_epoch[index]) if 0 <= index < len(by_epoch) else None

    def load(self, name: str, num_classes: int | None = None, device: str | torch.device = 'cpu') -> nn.Module:
        """Checkpoint ``name`` as a frozen network in eval mode on ``device``.

        ``num_classes``, when given, is the student's label space; a teacher with another one is refused.
        """
        if num_classes is not None and num_classes != self.num_classes:
            raise UsageError(
                f'past run {self.folder} has {self.num_classes} classes but this run has {num_classes}: '
                'use a past run trained on the same data set',
            )
        state = load_checkpoint_state(self.resolve(name))
        return frozen(load_model(self.config['model'], state)).to(device)


def past_run_cost(run: str | PastRun, checkpoints: Sequence[str]) -> dict[str, float]:
    """``{'past run FOLDER': FLOPs}``: what the run had spent when the newest of ``checkpoints`` was saved.

    Checkpoints of one run lie on one trajectory, so reusing several costs what the newest one cost. Empty when
    the run recorded no ``compute.json`` (runs made before the ledger).
    """
    past = run if isinstance(run, PastRun) else PastRun(run)
    try:
        costs = [past.compute_until(name) for name in checkpoints]
    except UsageError:  # the run folder moved or went: its cost is unknown, which must not stop training
        return {}
    known = [c for c in costs if c is not None]
    return {f'past run {past.folder}': max(known)} if known else {}
