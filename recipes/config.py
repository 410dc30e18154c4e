"""The run configuration: a strict OmegaConf schema, YAML plus ``key=value`` overrides, one-line errors.

Top-level keys use Composer's Trainer argument names where one exists. ``algorithms``, ``callbacks`` and
``loggers`` map a registered name to its arguments; :mod:`recipes.registry` checks those.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException, ValidationError

from recipes.core.errors import UsageError, did_you_mean

__all__ = ['TrainConfig', 'load_config', 'to_yaml']


@dataclass
class ModelConfig:
    name: str = 'resnet_56'  # resnet_20|32|44|56|110 (CIFAR ResNets) or torchvision/<name> (any torchvision classifier)
    num_classes: Optional[int] = None  # None: the data set's
    pretrained: bool = False  # torchvision models only: start from torchvision's ImageNet weights


@dataclass
class DataConfig:
    name: str = 'cifar100'  # cifar100 | digits | synthetic | images (a folder converted by launch/convert_images.py)
    remote: Optional[str] = None  # MDS root (folder or s3://) holding train/ and test/; built-in sets need none
    cache: Optional[str] = None  # local folder for shards read from a remote and for built-in sets
    global_batch_size: int = 128
    eval_batch_size: int = 512  # global
    num_workers: int = 4
    augment: bool = True
    augment_on: Optional[str] = None  # workers | device; None: device on GPUs (and with resident), workers on the CPU
    resident: bool = False  # hold the training split in device memory, serve batches by index without workers
    label_noise: float = 0.0
    label_noise_seed: int = 0
    subset_fraction: float = 1.0  # a class-stratified share of the training split (recorded in subset.json)
    subset_seed: int = 0
    classes: Optional[list[int]] = None  # train and evaluate on these class ids only
    resolution: Optional[int] = None  # data.name=images: side of the crops (None: 224); the 32x32 sets ignore it


@dataclass
class OptimizerConfig:
    name: str = 'sgd'  # sgd | adamw
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5.0e-4
    nesterov: bool = False


@dataclass
class SchedulerConfig:
    name: str = 'multistep_with_warmup'  # multistep_with_warmup | cosine_with_warmup | constant
    t_warmup: str = '0ep'
    milestones: list[str] = field(default_factory=lambda: ['80ep', '120ep'])
    gamma: float = 0.1
    alpha_f: float = 0.0


@dataclass
class TrainConfig:
    run_name: Optional[str] = None
    seed: int = 17
    max_duration: str = '160ep'
    scale_schedule_ratio: float = 1.0  # Composer's: scales max_duration and milestones, keeps warmup
    eval_interval: str = '1ep'
    precision: Optional[str] = None  # None: fp32 on CPU, amp_bf16 on GPU
    save_folder: Optional[str] = None  # local folder or s3://bucket/prefix; may use {run_name}
    save_interval: str = '10ep'
    save_filename: str = 'ep{epoch}-ba{batch}-rank{rank}.pt'
    autoresume: bool = False
    load_path: Optional[str] = None
    load_weights_only: bool = False
    device_train_microbatch_size: Optional[Union[int, str]] = None
    compile: bool = False  # torch.compile the model's training and evaluation forward (Composer's compile_config)
    compile_backend: str = 'inductor'  # torch.compile's backend: aot_eager checks tracing where Inductor cannot build
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    algorithms: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)
    loggers: dict[str, Any] = field(default_factory=dict)


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


def _read_yaml(path: str) -> dict[str, Any]:
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
    recipe = _read_yaml(path) if path else {}
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
    from recipes.validate import check_config  # validate reads the registries, which import the algorithms

    check_config(cfg)
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
