"""What a run folder holds, and reading it without importing Composer (sweeps and reports start fast).

* ``config.yaml``: the resolved config, written before training starts (:mod:`recipes.trainer`);
* ``metrics.json``: the evaluation history and whether the run finished (:mod:`recipes.core.history`);
* ``compute.json``: FLOPs spent and reused (:mod:`algorithms.ledger`);
* ``subset.json``: for a run on part of its training split (``data.subset_fraction``, ``data.classes``), the
  positions in the whole split of the examples it trained on (:func:`write_subset`);
* ``holdout.json``: for a run that holds out a validation split (``data.holdout``), its seed, size and the positions
  in the training split of the held-out examples (:func:`write_holdout`);
* Composer checkpoints ``ep{epoch}-ba{batch}-rank{rank}.pt``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from recipes.core import storage

__all__ = ['COMPUTE_FILE', 'CONFIG_FILE', 'HOLDOUT_FILE', 'METRICS_FILE', 'SUBSET_FILE', 'read_compute', 'read_history',
           'read_holdout', 'read_subset', 'write_holdout', 'write_subset']

CONFIG_FILE = 'config.yaml'
METRICS_FILE = 'metrics.json'
COMPUTE_FILE = 'compute.json'
SUBSET_FILE = 'subset.json'
HOLDOUT_FILE = 'holdout.json'


def read_history(run_folder: str) -> dict[str, Any]:
    """``metrics.json``: ``{'eval': [{'epoch', 'batch', 'accuracy', 'cross_entropy'}, ...], 'finished', 'wall_seconds'}``;
    with a holdout each entry also has ``val_accuracy`` and ``val_cross_entropy``."""
    return json.loads(storage.read_bytes(storage.join(run_folder, METRICS_FILE)))


def read_compute(run_folder: str) -> dict[str, Any] | None:
    """``compute.json`` (see :class:`algorithms.ledger.ComputeLedger`), or None for a run that has none."""
    uri = storage.join(run_folder, COMPUTE_FILE)
    return json.loads(storage.read_bytes(uri)) if storage.exists(uri) else None


def write_subset(run_folder: str, indices: Sequence[int], split_size: int, data: dict[str, Any]) -> None:
    """Record the training examples of a run on part of its split: ``indices`` in the whole split of ``split_size``,
    and the ``data`` keys that chose them."""
    body = {'split_size': int(split_size), **data, 'indices': [int(i) for i in indices]}
    storage.write_bytes(storage.join(run_folder, SUBSET_FILE), json.dumps(body).encode())


def read_subset(run_folder: str) -> dict[str, Any] | None:
    """``subset.json`` (see :func:`write_subset`), or None for a run that trained on its whole split."""
    uri = storage.join(run_folder, SUBSET_FILE)
    return json.loads(storage.read_bytes(uri)) if storage.exists(uri) else None


def write_holdout(run_folder: str, indices: Sequence[int], seed: int) -> None:
    """Record the validation split a run held out: ``{"seed": S, "size": N, "indices": [...]}``, positions in the
    training split."""
    body = {'seed': int(seed), 'size': len(indices), 'indices': [int(i) for i in indices]}
    storage.write_bytes(storage.join(run_folder, HOLDOUT_FILE), json.dumps(body).encode())


def read_holdout(run_folder: str) -> dict[str, Any] | None:
    """``holdout.json`` (see :func:`write_holdout`), or None for a run that held out nothing."""
    uri = storage.join(run_folder, HOLDOUT_FILE)
    return json.loads(storage.read_bytes(uri)) if storage.exists(uri) else None
