"""Checks of a loaded config, before any data is converted, model built or process launched.

Each key's rule is declared with the key (:class:`recipes.config.TrainConfig`, ``Annotated`` fields); the sections
``algorithms``, ``callbacks`` and ``loggers`` are checked against each registered class's constructor
(:mod:`recipes.registry`). :func:`check_config` applies every key's rule, then the rules that tie keys together.
Every failure is one :class:`UsageError` line naming the key, its value and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from recipes.core import storage
from recipes.core.artifacts import recipe_saving_to
from recipes.core.errors import UsageError
from recipes.core.rules import SEED, Rule

__all__ = ['check_config', 'recipe_saving_to']


def _load_path_fits(cfg: DictConfig) -> None:
    """A ``load_path`` inside a run folder of this project must hold the model this run builds."""
    from recipes.core.data import data_num_classes
    from recipes.core.run_files import CONFIG_FILE

    if not cfg.load_path:
        return
    folder = cfg.load_path.rsplit('/', 1)[0] if '/' in cfg.load_path else '.'
    config_uri = storage.join(folder, CONFIG_FILE)
    if not storage.exists(config_uri):
        return  # a checkpoint from elsewhere: Composer checks it when it loads it
    try:
        past = yaml.safe_load(storage.read_bytes(config_uri))['model']
        theirs = (past['name'], past['num_classes'])
    except (yaml.YAMLError, KeyError, TypeError):
        return  # not a config this project wrote
    ours = (cfg.model.name, cfg.model.num_classes or data_num_classes(cfg.data.name, cfg.data.remote))
    if theirs != ours:
        raise UsageError(
            f'load_path={cfg.load_path} holds a {theirs[0]} with {theirs[1]} classes ({config_uri}) but this run '
            f'builds a {ours[0]} with {ours[1]}: set model.name={theirs[0]} or load another checkpoint',
        )


def _cross_checks(cfg: DictConfig) -> None:
    """Rules that tie two keys together."""
    from composer.utils import dist

    from recipes.core.data import batch_size_per_rank

    o = cfg.optimizer
    if o.name == 'sgd' and o.nesterov and o.momentum == 0:
        raise UsageError('optimizer.nesterov=true needs optimizer.momentum > 0: set a momentum or nesterov=false')
    last = cfg.seed + dist.get_world_size() - 1  # Composer seeds rank r with seed + r
    if last > SEED.high:
        raise UsageError(f'seed={cfg.seed} gives rank {dist.get_world_size() - 1} the seed {last}, above 2^32 - 1: use a smaller seed')
    _load_path_fits(cfg)
    if cfg.data.resident and cfg.data.augment_on == 'workers':
        raise UsageError('data.resident=true serves batches without workers, so augmentation runs on the device: '
                         'set data.augment_on=device or leave it unset')
    batch_size_per_rank(cfg.data.global_batch_size)
    batch_size_per_rank(cfg.data.eval_batch_size, key='data.eval_batch_size')


def _value(cfg: DictConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split('.'):
        node = node[part]
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node


def check_config(cfg: DictConfig, rules: Mapping[str, Rule]) -> None:
    """Apply every key's rule (``rules``: dotted key -> rule), then the rules that tie keys together; the first
    failure is a UsageError."""
    for key, rule in rules.items():
        rule.check(key, _value(cfg, key), cfg)
    _cross_checks(cfg)
