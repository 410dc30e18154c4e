"""What a run folder holds, and reading it without importing Composer (sweeps and reports start fast).

* ``config.yaml``: the resolved config, written before training starts (:mod:`recipes.trainer`);
* ``metrics.json``: the evaluation history and whether the run finished (:mod:`recipes.core.history`);
* ``compute.json``: FLOPs spent and reused (:mod:`algorithms.ledger`);
* Composer checkpoints ``ep{epoch}-ba{batch}-rank{rank}.pt``.
"""

from __future__ import annotations

import json
from typing import Any

from recipes.core import storage

__all__ = ['COMPUTE_FILE', 'CONFIG_FILE', 'METRICS_FILE', 'read_compute', 'read_history']

CONFIG_FILE = 'config.yaml'
METRICS_FILE = 'metrics.json'
COMPUTE_FILE = 'compute.json'


def read_history(run_folder: str) -> dict[str, Any]:
    """``metrics.json``: ``{'eval': [{'epoch', 'batch', 'accuracy', 'cross_entropy'}, ...], 'finished', 'wall_seconds'}``."""
    return json.loads(storage.read_bytes(storage.join(run_folder, METRICS_FILE)))


def read_compute(run_folder: str) -> dict[str, Any] | None:
    """``compute.json`` (see :class:`algorithms.ledger.ComputeLedger`), or None for a run that has none."""
    uri = storage.join(run_folder, COMPUTE_FILE)
    return json.loads(storage.read_bytes(uri)) if storage.exists(uri) else None
