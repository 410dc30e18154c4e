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

Before a checkpoint is used, its quality is read from the run's own ``metrics.json`` (:func:`checkpoint_quality`):
a checkpoint whose recorded test accuracy is near chance or far below the run's best is reported in one line, or
refused when the caller asks for ``strict``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.torch_version import TorchVersion

from recipes.core import storage
from recipes.core.artifacts import MAKE_PAST_RUN as MAKE_ONE
from recipes.core.artifacts import MissingPastRun, read_run_config
from recipes.core.data import MDSImageDataset, data_channels, data_stats, resolve_root
from recipes.core.data.builtin import default_cache
from recipes.core.errors import UsageError, place
from recipes.core.model import build_model
from recipes.core.run_files import METRICS_FILE, read_compute, read_history, read_subset

__all__ = [
    'CHECKPOINT_ALLOWLIST',
    'CHECKPOINT_POLICIES',
    'CheckpointQuality',
    'MissingPastRun',
    'PastRun',
    'checkpoint_quality',
    'frozen',
    'load_checkpoint_state',
    'load_model',
    'past_run_cost',
    'source_key',
]

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

# A checkpoint is usable as a teacher or scorer when its recorded test accuracy is more than NEAR_CHANCE above
# chance (1 / num_classes) and has closed at least FAR_BELOW_BEST of the gap between chance and the run's best.
NEAR_CHANCE = 0.10
FAR_BELOW_BEST = 0.5


# How a tool chooses checkpoints when told ``auto``, by the run's recorded accuracies (:meth:`PastRun.pick_checkpoints`).
CHECKPOINT_POLICIES = {
    'earliest': 'the two earliest usable checkpoints (Data Diet scores a few epochs into training, once past chance)',
    'earliest_and_best': 'the earliest usable checkpoint and the best-recorded one: two points of its trajectory',
}


@dataclass(frozen=True)
class CheckpointQuality:
    """What a run recorded about one of its checkpoints; accuracies are fractions, ``None`` where unrecorded."""

    checkpoint: str
    epoch: int | None
    batch: int | None
    accuracy: float | None
    best: float | None
    chance: float
    verdict: str  # 'usable', 'near chance', 'far below best' or 'unrecorded'
    split: str = 'test'  # whose accuracy: 'val' where the run held out a validation split (data.holdout), else 'test'

    @property
    def usable(self) -> bool:
        return self.verdict == 'usable'

    def describe(self) -> str:
        """One line: the checkpoint, its epoch, its recorded (validation, else test) accuracy against the run's best
        and chance."""
        where = f'checkpoint {self.checkpoint}' + (f' (epoch {self.epoch})' if self.epoch is not None else '')
        if self.accuracy is None:
            return f'{where}: no {self.split} accuracy recorded for it in the run\'s {METRICS_FILE}, quality unknown'
        line = f'{where}: {self.split} accuracy {self.accuracy:.1%}'
        if self.best is not None:
            line += f', run best {self.best:.1%}'
        line += f', chance {self.chance:.1%}'
        return line if self.usable else f'{line}: {self.verdict}'


def checkpoint_quality(evals: Sequence[Mapping[str, Any]], checkpoint: str, num_classes: int) -> CheckpointQuality:
    """The quality of checkpoint file ``checkpoint`` (``ep{E}-ba{B}-rank0.pt``) from a run's evaluation history.

    ``evals`` is ``metrics.json``'s ``eval`` list; the checkpoint's accuracy is that of the evaluation at its batch:
    its validation accuracy (``val_accuracy``) where the run held out a validation split, so that choosing a
    checkpoint never reads the test split; else its test accuracy.
    """
    chance = 1.0 / num_classes
    split = 'val' if any(row.get('val_accuracy') is not None for row in evals) else 'test'
    key = 'val_accuracy' if split == 'val' else 'accuracy'
    accuracies = [float(row[key]) for row in evals if row.get(key) is not None]
    best = max(accuracies) if accuracies else None
    match = _FILE.match(os.path.basename(checkpoint))
    if match is None:
        return CheckpointQuality(checkpoint, None, None, None, best, chance, 'unrecorded', split)
    epoch, batch = int(match.group(1)), int(match.group(2))
    rows = [row for row in evals if int(row.get('batch', -1)) == batch and row.get(key) is not None]
    if not rows:
        return CheckpointQuality(checkpoint, epoch, batch, None, best, chance, 'unrecorded', split)
    accuracy = float(rows[-1][key])
    if accuracy < chance + NEAR_CHANCE:
        verdict = 'near chance'
    elif best is not None and accuracy < chance + FAR_BELOW_BEST * (best - chance):
        verdict = 'far below best'
    else:
        verdict = 'usable'
    return CheckpointQuality(checkpoint, epoch, batch, accuracy, best, chance, verdict, split)


_REPORTED: set[str] = set()  # checkpoints whose quality this process has printed (once each)


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


def load_model(model_config: dict[str, Any], state: dict[str, Any], data_name: str | None = None) -> nn.Module:
    """Rebuild the network of ``model_config`` (``name``, ``num_classes``) for the images of data set ``data_name``
    (its channels; None: RGB) and load ``state['model']`` into it.

    Entries the base network lacks (auxiliary BatchNorms of adversarial replay) are dropped; a missing entry is
    an error. Returns the bare ``nn.Module``, in train mode, with gradients on.
    """
    channels = data_channels(data_name) if data_name else 3
    model = build_model(model_config['name'], int(model_config['num_classes']),  # the weights come from the checkpoint
                        channels=channels, stats=data_stats(data_name) if data_name else None,
                        width=model_config.get('width'))  # absent in runs made before model.width: 16
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
        """The run's resolved config (``config.yaml``); a missing one names the recipe that trains it."""
        return read_run_config(self.folder)

    @property
    def num_classes(self) -> int:
        return int(self.config['model']['num_classes'])

    @property
    def training_labels(self) -> dict[str, Any]:
        """What fixes the examples and labels the run trained on: data set, remote, label noise and its seed, and the
        validation split it held out (``holdout``, ``holdout_seed``; 0 and 0 where it held out none)."""
        data = self.config['data']
        return {
            'name': data['name'],
            'remote': data.get('remote'),
            'label_noise': float(data.get('label_noise') or 0.0),
            'label_noise_seed': int(data.get('label_noise_seed') or 0),
            'holdout': int(data.get('holdout') or 0),
            'holdout_seed': int(data.get('holdout_seed') or 0),
        }

    def training_data(self) -> MDSImageDataset:
        """The run's training split as it trained on it (its label noise), without augmentation, less the validation
        split it held out: what scores, banks and teacher caches are made of."""
        data = self.training_labels
        return MDSImageDataset(
            resolve_root(data['name'], data['remote'], path=self.config['data'].get('path')), 'train',
            self.num_classes, label_noise=data['label_noise'], label_noise_seed=data['label_noise_seed'],
            resolution=self.config['data'].get('resolution'),  # images: the side of the crops it trained on
            holdout=data['holdout'], holdout_seed=data['holdout_seed'],
        )

    def trained_data(self) -> MDSImageDataset:
        """Only the examples the run trained on: :meth:`training_data` less what its ``data.subset_fraction`` or
        ``data.classes`` left out (its ``subset.json``). What is made of the past run's own examples (an adversarial
        bank) is made of these, so a new run on the same share gets no example it would not see anyway."""
        data = self.training_data()
        subset = read_subset(self.folder)
        if subset is not None:
            data.indices = np.asarray(subset['indices'], dtype=np.int64)
        return data

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

    def evals(self) -> list[dict[str, Any]]:
        """The run's evaluation history (``metrics.json``), empty for a run that recorded none."""
        if not storage.exists(storage.join(self.folder, METRICS_FILE)):
            return []
        return list(read_history(self.folder).get('eval', []))

    def quality(self, name: str) -> CheckpointQuality:
        """The recorded quality of checkpoint ``name``; unrecorded for a file outside this run's folder."""
        uri = self.resolve(name)
        mine = storage.join(self.folder, os.path.basename(uri))
        inside = mine == uri or (not storage.is_s3(uri) and os.path.abspath(mine) == os.path.abspath(uri))
        return checkpoint_quality(self.evals() if inside else [], os.path.basename(uri), self.num_classes)

    def qualities(self) -> list[CheckpointQuality]:
        """The recorded quality of each of the run's per-epoch checkpoints, oldest first."""
        evals = self.evals()
        return [checkpoint_quality(evals, name, self.num_classes) for name in self.checkpoints()]

    def usable_checkpoints(self) -> list[CheckpointQuality]:
        """The checkpoints whose recorded accuracy is neither near chance nor far below the run's best, oldest first."""
        return [q for q in self.qualities() if q.usable]

    def pick_checkpoints(self, policy: str) -> list[str]:
        """The checkpoints a tool told ``auto`` uses, by ``policy`` (:data:`CHECKPOINT_POLICIES`), among the usable
        ones (:meth:`usable_checkpoints`): ``earliest`` takes the two earliest, ``earliest_and_best`` the earliest
        and the best-recorded."""
        if policy not in CHECKPOINT_POLICIES:
            raise ValueError(f'policy={policy!r} is not a checkpoint policy: choose one of {", ".join(CHECKPOINT_POLICIES)}')
        usable = self.usable_checkpoints()
        if not usable:
            raise UsageError(
                f'--checkpoints auto: past run {self.folder} has no checkpoint with a usable recorded accuracy: '
                f'look at it with python {place("inspect_run")} {self.folder} and name checkpoints',
            )
        if policy == 'earliest':
            return [q.checkpoint for q in usable[:2]]
        best = max(usable, key=lambda q: q.accuracy or 0.0)
        return list(dict.fromkeys([usable[0].checkpoint, best.checkpoint]))

    def check(self, name: str, strict: bool = False) -> CheckpointQuality:
        """Report checkpoint ``name``'s quality in one line (rank 0, once per process); refuse it when ``strict``.

        ``strict`` refuses a checkpoint that is near chance, far below the run's best, or has no recorded accuracy.
        """
        from composer.utils import dist

        quality = self.quality(name)
        where = f'past run {self.folder}: {quality.describe()}'
        if strict and not quality.usable:
            which = 'one with a recorded accuracy' if quality.accuracy is None else 'a usable one'
            raise UsageError(
                f'{where}: refused under strict: pick {which} (python {place("inspect_run")} {self.folder} lists them)',
            )
        key = storage.join(self.folder, quality.checkpoint)
        if dist.get_global_rank() == 0 and key not in _REPORTED:
            _REPORTED.add(key)
            advice = '' if quality.usable else f' (see python {place("inspect_run")} {self.folder}; strict refuses it)'
            print(f'{"" if quality.usable else "warning: "}{where}{advice}', file=sys.stderr, flush=True)
        return quality

    def load(
        self, name: str, num_classes: int | None = None, device: str | torch.device = 'cpu', strict: bool = False,
    ) -> nn.Module:
        """Checkpoint ``name`` as a frozen network in eval mode on ``device``, after :meth:`check` (``strict``).

        ``num_classes``, when given, is the student's label space; a teacher with another one is refused.
        """
        if num_classes is not None and num_classes != self.num_classes:
            raise UsageError(
                f'past run {self.folder} has {self.num_classes} classes but this run has {num_classes}: '
                'use a past run trained on the same data set',
            )
        state = load_checkpoint_state(self.resolve(name))  # a missing or unsafe file is named before its run is read
        self.check(name, strict=strict)
        return frozen(load_model(self.config['model'], state, self.config['data']['name'])).to(device)


def source_key(folder: str) -> str:
    """``past run FOLDER``, the compute ledger's key for a past run: one spelling per folder (a local path made
    absolute and normalised, an ``s3://`` URI without a trailing ``/``), so that two algorithms, or a scores
    artifact and an algorithm, naming the same run differently still count it once."""
    canonical = folder.rstrip('/') if storage.is_s3(folder) else os.path.abspath(folder)
    return f'past run {canonical}'


def past_run_cost(run: str | PastRun, checkpoints: Sequence[str]) -> dict[str, float]:
    """``{source_key(FOLDER): FLOPs}``: what the run had spent when the newest of ``checkpoints`` was saved.

    Checkpoints of one run lie on one trajectory, so reusing several costs what the newest one cost. Empty when
    the run recorded no ``compute.json`` (runs made before the ledger).
    """
    past = run if isinstance(run, PastRun) else PastRun(run)
    try:
        costs = [past.compute_until(name) for name in checkpoints]
    except UsageError:  # the run folder moved or went: its cost is unknown, which must not stop training
        return {}
    known = [c for c in costs if c is not None]
    return {source_key(past.folder): max(known)} if known else {}
