"""The run configuration: a strict OmegaConf schema, YAML plus ``key=value`` overrides, one-line errors.

Each key is declared once, as a field of :class:`TrainConfig` (or a section of it) with its rule
(:mod:`recipes.core.rules`) in its type: OmegaConf checks the type, :func:`recipes.validate.check_config` the rule,
and the docs' table of config keys is generated from the same fields (``docs/config.md``). Top-level keys use
Composer's Trainer argument names where one exists. ``algorithms``, ``callbacks`` and ``loggers`` map a registered
name to its arguments, which the registry checks against each class's constructor (:mod:`recipes.registry`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional, Union

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException, ValidationError

from recipes.core.data.rules import ClassIds, MDSRoot
from recipes.core.declare import schema_rules
from recipes.core.errors import UsageError, did_you_mean
from recipes.core.model import ModelName
from recipes.core.rules import (
    SEED,
    Choice,
    ExistingFile,
    Filename,
    Flag,
    Folder,
    MicroBatch,
    Number,
    OneOf,
    RunName,
    TimeList,
    TimeString,
)
from recipes.registry import Entries
from recipes.validate import check_config

__all__ = ['OPTIMIZERS', 'RULES', 'SCHEDULERS', 'TrainConfig', 'load_config', 'read_yaml', 'to_yaml']

OPTIMIZERS = ('sgd', 'adamw')
SCHEDULERS = ('multistep_with_warmup', 'cosine_with_warmup', 'constant')
WARMUP_SCHEDULERS = ('multistep_with_warmup', 'cosine_with_warmup')
INTERVAL_UNITS = ('ep', 'ba', 'dur')
BATCH = Number(1, 1_000_000, integer=True)


def _data_names() -> list[str]:
    from recipes.core.data import DATA_SETS

    return list(DATA_SETS)


def _precisions() -> list[str]:
    from composer.core import Precision

    return [p.value for p in Precision]


def _augment_places() -> tuple[str, ...]:
    from recipes.core.data.device_augment import AUGMENT_ON

    return AUGMENT_ON


def _compile_backends() -> list[str]:
    """torch.compile's registered backends, and the two debugging ones that check tracing without code generation."""
    import torch._dynamo

    return sorted({*torch._dynamo.list_backends(), 'aot_eager', 'eager'})


@dataclass
class ModelConfig:
    name: Annotated[str, ModelName(), 'resnet_20/32/44/56/110 (CIFAR ResNets), or `torchvision/<name>` for any '
                    'torchvision classifier'] = 'resnet_56'
    num_classes: Annotated[Optional[int], Number(2, 100_000, integer=True, optional=True),
                           "null: the data set's"] = None
    pretrained: Annotated[bool, Flag(), "torchvision models: start from torchvision's ImageNet weights"] = False
    width: Annotated[Optional[int], Number(1, 4096, integer=True, optional=True),
                     'CIFAR ResNets: channels of the first stage, 2x and 4x in the others (null: 16, the paper\'s '
                     '16/32/64); torchvision models: null'] = None


@dataclass
class DataConfig:
    name: Annotated[str, Choice(_data_names), '`cifar100`, `digits` (built in), `fashion_mnist` (from `data.path`), '
                    '`synthetic` (built in, random), `images` (a folder converted by `launch/convert_images.py`; '
                    'classes from its `classes.json`)'] = 'cifar100'
    remote: Annotated[Optional[str], MDSRoot(), 'MDS root (folder or `s3://`) with `train/` and `test/`; required for '
                      'cifar100 and images'] = None
    path: Annotated[Optional[str], Folder(), '`fashion_mnist`: the folder of its four IDX files (null: '
                    '`$PASTRUN_FASHION_MNIST` or `/usr/share/datasets/fashion-mnist`, Debian\'s '
                    '`dataset-fashion-mnist`)'] = None
    cache: Annotated[Optional[str], Folder(), 'local shard cache and built-in data sets (null: `$PASTRUN_CACHE` or '
                     '`~/.cache/pastrun`)'] = None
    global_batch_size: Annotated[int, BATCH, 'global; must divide over the ranks'] = 128
    eval_batch_size: Annotated[int, BATCH, 'global; must divide over the ranks'] = 512
    num_workers: Annotated[int, Number(0, 256, integer=True), 'loader worker processes per rank'] = 4
    augment: Annotated[bool, Flag(), '4-pixel pad + random crop + horizontal flip (`images`: RandomResizedCrop + '
                       'flip)'] = True
    augment_on: Annotated[Optional[str], Choice(_augment_places, optional=True),
                          'where augmentation runs: `workers` (per sample, in the loader), `device` (one batched op '
                          'after the loader; views drawn from seed, rank, epoch and batch); null: `device` on GPUs and '
                          'with `data.resident`, `workers` on the CPU and for `images`'] = None
    resident: Annotated[bool, Flag(), 'hold the training split in device memory and serve batches by index, without '
                        'workers (a split above 4 GiB is streamed, with one logged line)'] = False
    label_noise: Annotated[float, Number(0, 1, high_open=True), 'share of training labels replaced by a uniformly drawn '
                           'other class, drawn once from `label_noise_seed`'] = 0.0
    label_noise_seed: Annotated[int, SEED, 'seed of the label noise (not the run\'s: every seed of a study sees the '
                                'same noisy labels)'] = 0
    holdout: Annotated[int, Number(0, 10_000_000, integer=True), 'hold out this many training examples, stratified by '
                       'class, before noise and subsets: never trained on, scored or reused; evaluated as `val_*` '
                       'beside the test split; their indices go to `{save_folder}/holdout.json`'] = 0
    holdout_seed: Annotated[int, SEED, 'seed of the holdout (not the run\'s: every run of a study holds out the same '
                            'examples)'] = 0
    subset_fraction: Annotated[float, Number(0, 1, low_open=True), 'train on a seeded, class-stratified share of the '
                               'training split; its indices go to `{save_folder}/subset.json`'] = 1.0
    subset_seed: Annotated[int, SEED, 'seed of the subset'] = 0
    classes: Annotated[Optional[list[int]], ClassIds(), 'train and evaluate on these class ids only (labels keep the '
                       'data set\'s ids)'] = None
    resolution: Annotated[Optional[int], Number(8, 4096, integer=True, optional=True),
                          '`images`: side of the crops (null: 224); the 32x32 sets ignore it'] = None


@dataclass
class OptimizerConfig:
    name: Annotated[str, OneOf(*OPTIMIZERS), 'the optimizer'] = 'sgd'
    lr: Annotated[float, Number(0, 1e3), 'peak learning rate'] = 0.1
    momentum: Annotated[float, Number(0, 1, high_open=True), 'SGD momentum'] = 0.9
    weight_decay: Annotated[float, Number(0, 1e3), 'weight decay'] = 5.0e-4
    nesterov: Annotated[bool, Flag(), 'Nesterov momentum (SGD; needs momentum > 0)'] = False


@dataclass
class SchedulerConfig:
    name: Annotated[str, OneOf(*SCHEDULERS), "Composer's learning-rate schedulers"] = 'multistep_with_warmup'
    t_warmup: Annotated[str, TimeString(INTERVAL_UNITS, zero_ok=True, within_run=True, when=WARMUP_SCHEDULERS,
                                        scaled=False),
                        'linear warmup; `scale_schedule_ratio` keeps it as it is (`dur` scales with the run)'] = '0ep'
    milestones: Annotated[list[str], TimeList(TimeString(INTERVAL_UNITS, within_run=True, when=('multistep_with_warmup',))),
                          'multistep: where the learning rate is multiplied by `gamma`'] = field(
        default_factory=lambda: ['80ep', '120ep'])
    gamma: Annotated[float, Number(0, 1, low_open=True), 'multistep: the factor at each milestone'] = 0.1
    alpha_f: Annotated[float, Number(0, 1), 'cosine: the final learning rate as a share of the peak'] = 0.0


@dataclass
class TrainConfig:
    run_name: Annotated[Optional[str], RunName(), 'needed with `autoresume`; `save_folder` may use `{run_name}`'] = None
    seed: Annotated[int, SEED, 'seeds model init, data order, augmentation and algorithms'] = 17
    max_duration: Annotated[str, TimeString(('ep', 'ba')), 'how long to train'] = '160ep'
    scale_schedule_ratio: Annotated[float, Number(0, 100, low_open=True),
                                    "Composer's: trains `max_duration` x ratio (truncated) and scales the milestones, "
                                    'keeps the warmup; sweeps set it from their budgets'] = 1.0
    eval_interval: Annotated[str, TimeString(INTERVAL_UNITS), 'how often to evaluate'] = '1ep'
    test_interval: Annotated[Optional[str], TimeString(INTERVAL_UNITS, optional=True),
                             'how often to evaluate the test split; null: at every `eval_interval`, with the validation '
                             'split; `1dur`: at the end only (the validation split still every `eval_interval`)'] = None
    precision: Annotated[Optional[str], Choice(_precisions, optional=True), 'null: fp32 on the CPU, amp_bf16 on GPUs'] = None
    save_folder: Annotated[Optional[str], Folder(), 'local folder or `s3://bucket/prefix`: checkpoints, `config.yaml`, '
                           '`metrics.json`, `compute.json`; may use `{run_name}`'] = None
    save_interval: Annotated[str, TimeString(INTERVAL_UNITS), 'how often to checkpoint'] = '10ep'
    save_filename: Annotated[str, Filename(), 'checkpoint file name'] = 'ep{epoch}-ba{batch}-rank{rank}.pt'
    autoresume: Annotated[bool, Flag(), 'continue from the newest checkpoint in `save_folder`'] = False
    load_path: Annotated[Optional[str], ExistingFile('name an existing checkpoint file or URI', checkpoint=True),
                         'start from a checkpoint'] = None
    load_weights_only: Annotated[bool, Flag(), 'with `load_path`: its weights only, not its optimizer or schedule'] = False
    device_train_microbatch_size: Annotated[Optional[Union[int, str]], MicroBatch(), 'per-device microbatch'] = None
    compile: Annotated[bool, Flag(), "`torch.compile` the model (Composer's `compile_config`); teachers, scorers and "
                       'attacks run eagerly'] = False
    compile_backend: Annotated[str, Choice(_compile_backends), "`torch.compile`'s backend; `aot_eager` traces forward "
                               'and backward without generating code (a check where Inductor cannot build)'] = 'inductor'
    threads: Annotated[Optional[int], Number(1, 1024, integer=True, optional=True),
                       'CPU threads each rank computes with (`torch.set_num_threads`): the order of floating-point sums, so '
                       'part of the result; sweeps set it for every run (`threads_per_run`), the same under every launcher; '
                       "null: torch's default (`OMP_NUM_THREADS`, else the cores)"] = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    algorithms: Annotated[dict[str, Any], Entries('algorithms'), 'registered name -> its arguments (docs/arguments.md)'] = field(
        default_factory=dict)
    callbacks: Annotated[dict[str, Any], Entries('callbacks'), 'registered name -> its arguments (docs/arguments.md)'] = field(
        default_factory=dict)
    loggers: Annotated[dict[str, Any], Entries('loggers'), "registered name -> its arguments: Composer's loggers, "
                       'see Experiment tracking in docs/'] = field(default_factory=dict)


RULES = schema_rules(TrainConfig)  # every dotted key's rule, read off the schema


def _node_keys(full_key: str) -> list[str]:
    node: Any = TrainConfig()
    for part in full_key.split('.')[:-1]:
        node = getattr(node, part, None)
    return list(vars(node)) if node is not None and hasattr(node, '__dataclass_fields__') else []


def _explain(e: OmegaConfBaseException) -> str:
    key = str(getattr(e, 'full_key', '') or getattr(e, 'key', '') or '?')
    if isinstance(e, ConfigKeyError):
        hint = did_you_mean(key.split('.')[-1], _node_keys(key), spell=lambda m: repr('.'.join([*key.split('.')[:-1], m])))
        return f'unknown config key {key!r}{hint}'
    if isinstance(e, MissingMandatoryValue):
        return f'config key {key!r} needs a value: set it in the YAML or pass {key}=VALUE'
    if isinstance(e, ValidationError):
        return f'config key {key!r}: {str(e).splitlines()[0]}'
    return f'config key {key!r}: {str(e).splitlines()[0]}' if key != '?' else f'config: {str(e).splitlines()[0]}'


BASE_KEY, UNSET_KEY = 'base', 'unset'


def _read_one(path: str) -> dict[str, Any]:
    with open(path) as f:
        try:
            content = yaml.safe_load(f)  # safe_load: a YAML file never constructs Python objects
        except yaml.YAMLError as e:
            raise UsageError(f'{path} is not valid YAML: {str(e).splitlines()[0]}') from e
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise UsageError(f'{path} must hold a mapping of config keys, not a {type(content).__name__}')
    return content


def deep_merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``child`` laid over it: mappings merge key by key, anything else the child gives wins."""
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _unset(content: dict[str, Any], keys: Any, path: str, base: str) -> dict[str, Any]:
    """``content`` (the base's keys) without the dotted ``keys`` the child's ``unset:`` lists."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise UsageError(f"{path}: {UNSET_KEY}: must be a list of dotted keys of {base} (for example "
                         f'[callbacks.record_scores]), not {keys!r}')
    content = deep_merge({}, content)  # a copy, mapping by mapping
    for key in keys:
        node, parts = content, key.split('.')
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or parts[-1] not in node:
            raise UsageError(f'{path}: {UNSET_KEY}: {key!r} is not a key of {base}: list only keys its base sets')
        del node[parts[-1]]
    return content


def read_yaml(path: str, _chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """A recipe's keys, with its ``base:`` chain resolved.

    A recipe may say ``base: OTHER.yaml`` (a path relative to the recipe's folder) and only the keys that differ:
    the base's keys (itself read this way) are laid under the recipe's, mappings merged key by key, the recipe's
    values winning. ``unset: [dotted.key, ...]`` drops keys the base sets (a callback the base runs, say).
    """
    if not os.path.isfile(path):
        if _chain:
            raise UsageError(f'{_chain[-1]}: base {path} does not exist: give {BASE_KEY}: a YAML path relative to '
                             f'the folder of {_chain[-1]}')
        raise UsageError(f'recipe {path} does not exist: pass a YAML file such as yamls/digits/baseline.yaml')
    real = os.path.realpath(path)
    if real in (os.path.realpath(p) for p in _chain):
        raise UsageError(f'{_chain[0]}: the {BASE_KEY}: chain is a cycle ({" -> ".join([*_chain, path])}): '
                         'a recipe cannot be its own base')
    content = _read_one(path)
    if BASE_KEY not in content:
        if UNSET_KEY in content:
            raise UsageError(f'{path}: {UNSET_KEY}: drops keys of a base, and the recipe has no {BASE_KEY}:')
        return content
    base = content.pop(BASE_KEY)
    if not isinstance(base, str) or not base.endswith(('.yaml', '.yml')):
        raise UsageError(f'{path}: {BASE_KEY}: must be a YAML path relative to its folder, such as baseline.yaml, '
                         f'not {base!r}')
    base_path = os.path.normpath(os.path.join(os.path.dirname(path), base))
    inherited = read_yaml(base_path, (*_chain, path))
    if UNSET_KEY in content:
        inherited = _unset(inherited, content.pop(UNSET_KEY), path, base_path)
    return deep_merge(inherited, content)


def _mismatch(schema: Any, user: Any, prefix: str = '') -> str | None:
    """The first key where ``user`` gives a mapping or list where the schema has another shape."""
    for name, value in user.items():
        if not isinstance(schema, DictConfig) or name not in schema:
            continue
        node, key = schema._get_node(name), f'{prefix}{name}'
        if isinstance(value, dict):
            if not isinstance(node, DictConfig):
                return key
            found = _mismatch(node, value, f'{key}.')
            if found:
                return found
        elif isinstance(value, list) and not isinstance(node, ListConfig):
            return key
        elif not isinstance(value, list) and isinstance(node, (DictConfig, ListConfig)) and value is not None:
            return key
    return None


def _container_mismatch(recipe: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> str:
    """The key whose mapping or list does not merge: against the schema, else an override against the recipe."""
    schema = OmegaConf.structured(TrainConfig)
    for user in [recipe, *(OmegaConf.to_container(OmegaConf.from_dotlist([o])) for o in overrides)]:
        found = _mismatch(schema, user)
        if found:
            return found
    for override in overrides:
        try:
            OmegaConf.merge(OmegaConf.create(recipe), OmegaConf.from_dotlist([override]))
        except (TypeError, ValueError, OmegaConfBaseException):
            return override.split('=', 1)[0]
    return '?'


def load_config(path: str | None, overrides: list[str] | tuple[str, ...] = (), machine: bool = True) -> DictConfig:
    """The schema's defaults, then the YAML at ``path``, then ``key=value`` overrides, validated (without
    ``machine``, the rules that depend on this machine are left to the machine that trains: a Ray sweep's head).

    Names and types are checked here, values by :func:`recipes.validate.check_config` (ranges, time strings,
    registered names, paths that must exist): all before any data is converted, model built or process launched.
    """
    bad = [o for o in overrides if '=' not in o]
    if bad:
        raise UsageError(f'override {bad[0]!r} is not key=value (for example seed=3 or data.global_batch_size=256)')
    for override in overrides:
        try:
            OmegaConf.from_dotlist([override])
        except yaml.YAMLError as e:
            raise UsageError(f'override {override!r} is not valid YAML after the = ({e.problem}): quote the value') from None
    recipe = read_yaml(path) if path else {}
    try:
        # A recipe marks a value the user must give as ???; an override fills it.
        user = OmegaConf.merge(OmegaConf.create(recipe), OmegaConf.from_dotlist(list(overrides)))
        missing = OmegaConf.missing_keys(user)
        if missing:
            key = sorted(missing)[0]
            raise UsageError(f'config key {key!r} needs a value: set it in the YAML or pass {key}=VALUE')
        cfg = OmegaConf.merge(OmegaConf.structured(TrainConfig), user)
    except OmegaConfBaseException as e:
        if not (getattr(e, 'full_key', '') or getattr(e, 'key', '')):
            e.full_key = _container_mismatch(recipe, overrides)  # a whole section of the wrong shape
        raise UsageError(_explain(e)) from None
    except (TypeError, ValueError) as e:  # OmegaConf merging a mapping into a list, or the reverse
        key = _container_mismatch(recipe, overrides)
        raise UsageError(f'config key {key!r}: {str(e).splitlines()[0]}: give it the shape the recipe has') from None
    assert isinstance(cfg, DictConfig)
    check_config(cfg, RULES, machine)
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
