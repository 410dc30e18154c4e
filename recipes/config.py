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

from recipes.core.errors import UsageError, did_you_mean
from recipes.core.rules import (
    SEED,
    Choice,
    ClassIds,
    ExistingFile,
    Filename,
    Flag,
    Folder,
    MDSRoot,
    MicroBatch,
    ModelName,
    Number,
    OneOf,
    RunName,
    TimeList,
    TimeString,
    schema_rules,
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
    # resnet_20|32|44|56|110 (CIFAR ResNets) or torchvision/<name> (any torchvision classifier)
    name: Annotated[str, ModelName()] = 'resnet_56'
    num_classes: Annotated[Optional[int], Number(2, 100_000, integer=True, optional=True)] = None  # None: the data set's
    pretrained: Annotated[bool, Flag()] = False  # torchvision models only: start from torchvision's ImageNet weights


@dataclass
class DataConfig:
    # cifar100 | digits | synthetic | images (a folder converted by launch/convert_images.py)
    name: Annotated[str, Choice(_data_names)] = 'cifar100'
    remote: Annotated[Optional[str], MDSRoot()] = None  # MDS root (folder or s3://) holding train/ and test/; built-in sets need none
    cache: Annotated[Optional[str], Folder()] = None  # local folder for shards read from a remote and for built-in sets
    global_batch_size: Annotated[int, BATCH] = 128
    eval_batch_size: Annotated[int, BATCH] = 512  # global
    num_workers: Annotated[int, Number(0, 256, integer=True)] = 4
    augment: Annotated[bool, Flag()] = True
    # workers | device; None: device on GPUs (and with resident), workers on the CPU
    augment_on: Annotated[Optional[str], Choice(_augment_places, optional=True)] = None
    resident: Annotated[bool, Flag()] = False  # hold the training split in device memory, serve batches by index without workers
    label_noise: Annotated[float, Number(0, 1, high_open=True)] = 0.0
    label_noise_seed: Annotated[int, SEED] = 0
    # a class-stratified share of the training split (recorded in subset.json)
    subset_fraction: Annotated[float, Number(0, 1, low_open=True)] = 1.0
    subset_seed: Annotated[int, SEED] = 0
    classes: Annotated[Optional[list[int]], ClassIds()] = None  # train and evaluate on these class ids only
    # data.name=images: side of the crops (None: 224); the 32x32 sets ignore it
    resolution: Annotated[Optional[int], Number(8, 4096, integer=True, optional=True)] = None


@dataclass
class OptimizerConfig:
    name: Annotated[str, OneOf(*OPTIMIZERS)] = 'sgd'
    lr: Annotated[float, Number(0, 1e3)] = 0.1
    momentum: Annotated[float, Number(0, 1, high_open=True)] = 0.9
    weight_decay: Annotated[float, Number(0, 1e3)] = 5.0e-4
    nesterov: Annotated[bool, Flag()] = False


@dataclass
class SchedulerConfig:
    name: Annotated[str, OneOf(*SCHEDULERS)] = 'multistep_with_warmup'
    # Composer's scale_schedule_ratio keeps the warmup as it is, so it is placed against the scaled duration
    t_warmup: Annotated[str, TimeString(INTERVAL_UNITS, zero_ok=True, within_run=True, when=WARMUP_SCHEDULERS,
                                        scaled=False)] = '0ep'
    milestones: Annotated[list[str], TimeList(TimeString(INTERVAL_UNITS, within_run=True, when=('multistep_with_warmup',)))] = field(
        default_factory=lambda: ['80ep', '120ep'])
    gamma: Annotated[float, Number(0, 1, low_open=True)] = 0.1
    alpha_f: Annotated[float, Number(0, 1)] = 0.0


@dataclass
class TrainConfig:
    run_name: Annotated[Optional[str], RunName()] = None
    seed: Annotated[int, SEED] = 17
    max_duration: Annotated[str, TimeString(('ep', 'ba'))] = '160ep'
    # Composer's: scales max_duration and milestones, keeps warmup
    scale_schedule_ratio: Annotated[float, Number(0, 100, low_open=True)] = 1.0
    eval_interval: Annotated[str, TimeString(INTERVAL_UNITS)] = '1ep'
    precision: Annotated[Optional[str], Choice(_precisions, optional=True)] = None  # None: fp32 on CPU, amp_bf16 on GPU
    save_folder: Annotated[Optional[str], Folder()] = None  # local folder or s3://bucket/prefix; may use {run_name}
    save_interval: Annotated[str, TimeString(INTERVAL_UNITS)] = '10ep'
    save_filename: Annotated[str, Filename()] = 'ep{epoch}-ba{batch}-rank{rank}.pt'
    autoresume: Annotated[bool, Flag()] = False
    load_path: Annotated[Optional[str], ExistingFile('name an existing checkpoint file or URI', checkpoint=True)] = None
    load_weights_only: Annotated[bool, Flag()] = False
    device_train_microbatch_size: Annotated[Optional[Union[int, str]], MicroBatch()] = None
    # torch.compile the model's training and evaluation forward (Composer's compile_config)
    compile: Annotated[bool, Flag()] = False
    # torch.compile's backend: aot_eager checks tracing where Inductor cannot build
    compile_backend: Annotated[str, Choice(_compile_backends)] = 'inductor'
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    algorithms: Annotated[dict[str, Any], Entries('algorithms')] = field(default_factory=dict)
    callbacks: Annotated[dict[str, Any], Entries('callbacks')] = field(default_factory=dict)
    loggers: Annotated[dict[str, Any], Entries('loggers')] = field(default_factory=dict)


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


def read_yaml(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise UsageError(f'recipe {path} does not exist: pass a YAML file such as yamls/digits/baseline.yaml')
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


def load_config(path: str | None, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The schema's defaults, then the YAML at ``path``, then ``key=value`` overrides, validated.

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
    check_config(cfg, RULES)
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
