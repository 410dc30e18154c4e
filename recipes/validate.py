"""Checks of a loaded config, before any data is converted, model built or process launched.

Each key's rule is declared with the key (:class:`recipes.config.TrainConfig`, ``Annotated`` fields); the sections
``algorithms``, ``callbacks`` and ``loggers`` are checked against each registered class's constructor
(:mod:`recipes.registry`). :func:`check_config` applies every key's rule, then the rules that tie keys together.
Every failure is one :class:`UsageError` line naming the key, its value and the fix. The rules that tie keys
together are declared here in the one form (:mod:`recipes.core.ties`), in :data:`RUN_TIES`; :func:`recipes.trainer.resolve`
only fills in values.
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
from recipes.core.ties import Ties

__all__ = ['RUN_TIES', 'check_config', 'recipe_saving_to', 'scaled_duration']

RUN_TIES = Ties('the run config')  # the rules that tie its keys together, in the order they run


@RUN_TIES.tie('load_path', 'model.name', 'model.num_classes')
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


@RUN_TIES.tie('data.name', 'data.path', 'data.remote')
def _fashion_files(cfg: DictConfig) -> None:
    """Fashion-MNIST's four files are there and are its files (headers read), unless its MDS root is given."""
    from recipes.core.data.fashion import check_files, fashion_path

    if cfg.data.name == 'fashion_mnist' and not cfg.data.remote:
        check_files(fashion_path(cfg.data.path))


def _holdout_of(config: Mapping[str, Any]) -> tuple[str, int, int]:
    data = config.get('data') or {}
    return str(data.get('name')), int(data.get('holdout') or 0), int(data.get('holdout_seed') or 0)


@RUN_TIES.tie('data.holdout', 'data.holdout_seed', 'algorithms')
def _same_holdout(cfg: DictConfig) -> None:
    """Every past run an algorithm reuses (its weights, or the scores, banks and teacher caches made from it) held out
    the validation split this run holds out: otherwise what it passes on has seen the validation examples."""
    from recipes.core.artifacts import read_run_config, split_checkpoint_entry
    from recipes.registry import ALGORITHMS

    ours = _holdout_of({'data': OmegaConf.to_container(cfg.data)})
    runs: list[str] = []
    for name, args in (cfg.algorithms or {}).items():
        values = OmegaConf.to_container(args, resolve=True) if isinstance(args, DictConfig) else dict(args or {})
        runs += [split_checkpoint_entry(entry)[0] or entry for entry in ALGORITHMS.reused_checkpoints(str(name), values)]
    for run in dict.fromkeys(runs):
        theirs = _holdout_of(read_run_config(run))
        if theirs[0] == ours[0] and theirs[1:] != ours[1:]:
            raise UsageError(
                f'past run {run} held out data.holdout={theirs[1]} data.holdout_seed={theirs[2]} but this run holds '
                f'out data.holdout={ours[1]} data.holdout_seed={ours[2]}: its weights, scores and teacher outputs '
                'would carry this run\'s validation examples; reuse a past run trained with the same holdout, or set '
                'these two keys to its values',
            )


@RUN_TIES.tie('optimizer.nesterov', 'optimizer.momentum')
def _nesterov_needs_momentum(cfg: DictConfig) -> None:
    """``optimizer.nesterov=true`` needs a momentum above 0 (SGD)."""
    o = cfg.optimizer
    if o.name == 'sgd' and o.nesterov and o.momentum == 0:
        raise UsageError('optimizer.nesterov=true needs optimizer.momentum > 0: set a momentum or nesterov=false')


@RUN_TIES.tie('seed')
def _every_rank_has_a_seed(cfg: DictConfig) -> None:
    """The last rank's seed (``seed`` + rank) is at most 2^32 - 1."""
    from composer.utils import dist

    last = cfg.seed + dist.get_world_size() - 1  # Composer seeds rank r with seed + r
    if last > SEED.high:
        raise UsageError(f'seed={cfg.seed} gives rank {dist.get_world_size() - 1} the seed {last}, above 2^32 - 1: use a smaller seed')


@RUN_TIES.tie('data.resident', 'data.augment_on')
def _resident_augments_on_the_device(cfg: DictConfig) -> None:
    """``data.resident=true`` serves batches without workers, so it augments on the device."""
    if cfg.data.resident and cfg.data.augment_on == 'workers':
        raise UsageError('data.resident=true serves batches without workers, so augmentation runs on the device: '
                         'set data.augment_on=device or leave it unset')


@RUN_TIES.tie('data.name', 'data.augment_on', 'data.resident')
def _image_folders_crop_in_workers(cfg: DictConfig) -> None:
    """``data.name=images`` decodes and crops in the loader workers: no device augmentation, not resident."""
    from recipes.core.data import IMAGES

    if cfg.data.name == IMAGES and (cfg.data.augment_on == 'device' or cfg.data.resident):
        raise UsageError(
            'data.name=images decodes and crops JPEGs in the loader workers: data.augment_on=device and data.resident '
            'serve raw-pixel splits (cifar100, digits, synthetic); set data.augment_on=workers and data.resident=false',
        )


@RUN_TIES.tie('data.global_batch_size', 'data.eval_batch_size')
def _batches_split_over_the_ranks(cfg: DictConfig) -> None:
    """Both batch sizes divide evenly over the ranks."""
    from recipes.core.data import batch_size_per_rank

    batch_size_per_rank(cfg.data.global_batch_size)
    batch_size_per_rank(cfg.data.eval_batch_size, key='data.eval_batch_size')


@RUN_TIES.tie('precision', machine=True)
def _precision_fits_the_machine(cfg: DictConfig) -> None:
    """A precision other than ``fp32`` needs a GPU on the machine that trains."""
    import torch

    if cfg.precision not in (None, 'fp32') and not torch.cuda.is_available():
        raise UsageError(f'precision={cfg.precision} needs a GPU: on the CPU Composer runs only precision=fp32')


@RUN_TIES.tie('model.num_classes', 'data.name')
def _classes_of_the_data(cfg: DictConfig) -> None:
    """``model.num_classes``, where given, is the data set's number of classes."""
    from recipes.core.data import data_num_classes

    if cfg.model.num_classes is None:
        return
    data_classes = data_num_classes(cfg.data.name, cfg.data.remote)
    if cfg.model.num_classes != data_classes:
        raise UsageError(f'model.num_classes={cfg.model.num_classes} but {cfg.data.name} has {data_classes} classes')


def scaled_duration(cfg: DictConfig) -> str:
    """What the Trainer trains: Composer multiplies ``max_duration`` by ``scale_schedule_ratio``, truncating."""
    from composer.core import Time

    if cfg.scale_schedule_ratio == 1:
        return cfg.max_duration
    return (Time.from_timestring(cfg.max_duration) * cfg.scale_schedule_ratio).to_timestring()


@RUN_TIES.tie('scale_schedule_ratio', 'max_duration')
def _the_scaled_run_trains(cfg: DictConfig) -> None:
    """``max_duration`` scaled by ``scale_schedule_ratio`` (a sweep's budget) is at least one unit of training."""
    from composer.core import Time

    if Time.from_timestring(scaled_duration(cfg)).value > 0:
        return
    duration = Time.from_timestring(cfg.max_duration)
    raise UsageError(
        f'scale_schedule_ratio={cfg.scale_schedule_ratio} scales max_duration={cfg.max_duration} to 0: use a ratio '
        f'(a sweep\'s budget) of at least 1/{duration.value}, or give max_duration in a finer unit (ba)',
    )


@RUN_TIES.tie('autoresume', 'run_name', 'save_folder')
def _autoresume_finds_its_checkpoints(cfg: DictConfig) -> None:
    """``autoresume=true`` needs ``run_name`` and ``save_folder``; a ``save_folder`` with ``{run_name}`` needs a
    ``run_name``."""
    if cfg.autoresume and (not cfg.run_name or not cfg.save_folder):
        raise UsageError('autoresume=true needs run_name and save_folder: set both so the run can find its checkpoints')
    if cfg.save_folder and '{run_name}' in cfg.save_folder and not cfg.run_name:
        raise UsageError(f'save_folder={cfg.save_folder} uses {{run_name}}: set run_name')


def _value(cfg: DictConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split('.'):
        node = node[part]
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node


def check_config(cfg: DictConfig, rules: Mapping[str, Rule], machine: bool = True) -> None:
    """Apply every key's rule (``rules``: dotted key -> rule), then the rules that tie keys together
    (:data:`RUN_TIES`; without ``machine``, not those that depend on this machine); the first failure is a
    UsageError."""
    for key, rule in rules.items():
        rule.check(key, _value(cfg, key), cfg)
    RUN_TIES.check(cfg, machine)
