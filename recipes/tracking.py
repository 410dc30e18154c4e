"""What a run tells its experiment trackers (``loggers.tensorboard``, ``loggers.mlflow``, ``loggers.wandb``).

Composer's loggers record the metrics every algorithm logs. :class:`TrackRun` adds what makes a run readable in a
tracker: its resolved config as hyperparameters (flat keys, ``optimizer.lr``), the past-run checkpoints it reuses
(``reuse/checkpoints``), and, when training ends, its ``config.yaml`` and ``compute.json`` under ``run/`` of the
tracker's run (MLflow artifacts, files of the W&B run; TensorBoard keeps no files, its hyperparameters view shows
the config). The compute ledger logs its own totals (:mod:`algorithms.ledger`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from composer.core import Callback, State
from composer.loggers import Logger, MLFlowLogger, WandBLogger
from composer.utils import dist
from omegaconf import DictConfig, OmegaConf

from algorithms.ledger import ComputeLedger
from recipes.config import to_yaml
from recipes.core.run_files import COMPUTE_FILE, CONFIG_FILE
from recipes.registry import ALGORITHMS

__all__ = ['RUN_FILES', 'TrackRun', 'flat_params', 'log_files', 'reused_checkpoints']

RUN_FILES = 'run'  # the artifact folder of a run's config.yaml and compute.json


def flat_params(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as ``{dotted.key: value}``; lists and empty mappings become JSON text, ``None`` ``null``."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping) and node:
            for key, value in node.items():
                walk(f'{prefix}.{key}' if prefix else str(key), value)
        elif isinstance(node, (Mapping, list)):
            flat[prefix] = json.dumps(node)
        else:
            flat[prefix] = 'null' if node is None else node

    walk('', OmegaConf.to_container(cfg, resolve=True))
    return flat


def reused_checkpoints(algorithms: Mapping[str, Any]) -> list[str]:
    """``RUN:CHECKPOINT`` of every past-run checkpoint the ``algorithms`` section of a config reuses.

    Read off each algorithm's declaration (:meth:`recipes.registry.Registry.reused_checkpoints`): its checkpoint
    arguments against the run(s) they belong to, and the runs and checkpoints a scores artifact or an adversarial
    bank records in its metadata. An argument's name says nothing: a random-weight teacher names a run and reuses none.
    """
    found = [c for name, args in algorithms.items() for c in ALGORITHMS.reused_checkpoints(name, args)]
    return list(dict.fromkeys(found))


def log_files(destinations: Sequence[Any], paths: Sequence[Path], folder: str) -> None:
    """Attach local files, under ``folder``, to the tracker runs that are open: MLflow artifacts, W&B run files."""
    for destination in destinations:
        if isinstance(destination, MLFlowLogger):
            import mlflow

            if mlflow.active_run() is not None:
                for path in paths:
                    mlflow.log_artifact(str(path), folder)
        elif isinstance(destination, WandBLogger):
            import wandb

            if wandb.run is not None:
                (Path(wandb.run.dir) / folder).mkdir(exist_ok=True)
                for path in paths:
                    shutil.copy(path, Path(wandb.run.dir) / folder / path.name)


class TrackRun(Callback):
    """Log a run's resolved config and reused checkpoints at ``FIT_START``, its files as artifacts at ``FIT_END``.

    Place it after the :class:`~algorithms.ledger.ComputeLedger`, whose totals ``compute.json`` carries.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.params = flat_params(cfg)
        self.config_yaml = to_yaml(cfg)
        self.checkpoints = reused_checkpoints(cfg.algorithms)

    def fit_start(self, state: State, logger: Logger) -> None:
        logger.log_hyperparameters({**self.params, 'reuse/checkpoints': ', '.join(self.checkpoints) or 'none'})

    def fit_end(self, state: State, logger: Logger) -> None:
        if dist.get_global_rank() != 0:
            return
        ledgers = [c for c in state.callbacks if isinstance(c, ComputeLedger)]
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / CONFIG_FILE
            config.write_text(self.config_yaml)
            files = [config]
            if ledgers:
                compute = Path(folder) / COMPUTE_FILE
                compute.write_text(json.dumps(ledgers[0].summary(), indent=1))
                files.append(compute)
            log_files(logger.destinations, files, RUN_FILES)
