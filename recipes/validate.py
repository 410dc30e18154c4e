"""Value-level rules for every config key, checked before any data is converted, model built or process launched.

The schema (:mod:`recipes.config`) checks names and types; :data:`RULES` checks values: one rule per dotted key
of :class:`recipes.config.TrainConfig`. Time strings are parsed with Composer's own parser, numbers must lie in
range, names come from their registries (with the closest valid name in the message), and paths that must exist
are looked up, locally or on S3 with the endpoint named. Every failure is one :class:`UsageError` line naming
the key, its value and the fix. ``tests/test_fuzz_config.py`` fails for a schema key without a rule.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from recipes.core import storage
from recipes.core.data.mds import check_folder
from recipes.core.errors import UsageError, did_you_mean

__all__ = [
    'ARGUMENT_VALUES',
    'ARTIFACT_ARGUMENTS',
    'RULES',
    'Choice',
    'ClassIds',
    'Entries',
    'ExistingFile',
    'Filename',
    'Flag',
    'Folder',
    'MDSRoot',
    'MicroBatch',
    'ModelName',
    'Number',
    'RunName',
    'TimeList',
    'TimeString',
    'check_config',
    'check_location',
    'check_past_run',
    'named',
]


@dataclass(frozen=True)
class Flag:
    """A bool; the schema already refuses anything else."""

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        if not isinstance(value, bool):
            raise UsageError(f'{key}={value!r} must be true or false')


@dataclass(frozen=True)
class Number:
    """A finite int or float in ``[low, high]`` (``low_open``/``high_open`` exclude the bound); None if ``optional``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False

    def describe(self) -> str:
        left = '(' if self.low_open else '['
        right = ')' if self.high_open else ']'
        low = '-inf' if self.low is None else f'{self.low:g}' if not self.integer else str(int(self.low))
        high = 'inf' if self.high is None else f'{self.high:g}' if not self.integer else str(int(self.high))
        return f'{"a whole number" if self.integer else "a number"} in {left}{low}, {high}{right}'

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        if value is None and self.optional:
            return
        kind = int if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
            raise UsageError(f'{key}={value!r} must be {self.describe()}')
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if below or above:
            shown = f'{value:g}' if isinstance(value, float) else value  # 0 for 0.0: the value as the user wrote it
            raise UsageError(f'{key}={shown} is out of range: use {self.describe()}')


@dataclass(frozen=True)
class Choice:
    """One of ``options()`` (a registry's names); None if ``optional``."""

    options: Callable[[], Sequence[str]]
    optional: bool = False

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        if value is None and self.optional:
            return
        options = list(self.options())
        if value not in options:
            raise UsageError(f'{key}={value!r} is unknown{did_you_mean(str(value), options)}: choose one of {", ".join(options)}')


def _parse_time(key: str, text: Any, units: Sequence[str]) -> Any:
    from composer.core import Time

    hint = f'write a number and a unit, e.g. 8{units[0]} (units: {", ".join(units)})'
    if not isinstance(text, str):
        raise UsageError(f'{key}={text!r} is not a time string: {hint}')
    try:
        time = Time.from_timestring(text.strip())
    except (ValueError, TypeError) as e:
        raise UsageError(f'{key}={text!r} is not a time string ({str(e).splitlines()[0]}): {hint}') from None
    if time.unit.value not in units:
        raise UsageError(f'{key}={text!r} has unit {time.unit.value!r}, which is not accepted here: {hint}')
    if not math.isfinite(time.value):
        raise UsageError(f'{key}={text!r} is not finite: {hint}')
    return time


def _within(key: str, text: str, time: Any, cfg: DictConfig, scaled: bool) -> None:
    """A schedule time must fall inside the run: ``dur`` at most 1, other units at most ``max_duration`` (same unit).

    ``scale_schedule_ratio`` scales ``max_duration`` and the times marked ``scaled`` alike; the others (warmup)
    are compared with the scaled duration.
    """
    from composer.core import Time, TimeUnit

    if time.unit == TimeUnit.DURATION:
        if time.value > 1:
            raise UsageError(f'{key}={text} lies after the end of training: a dur fraction is at most 1')
        return
    try:
        end = Time.from_timestring(str(cfg.max_duration))
    except (ValueError, TypeError):
        return  # max_duration's own rule reports it
    ratio = 1.0 if scaled else float(cfg.get('scale_schedule_ratio', 1.0))
    if end.unit == time.unit and time.value > end.value * ratio:
        raise UsageError(
            f'{key}={text} lies after the end of training (max_duration={cfg.max_duration}): '
            f'move it inside the run or lengthen max_duration',
        )


@dataclass(frozen=True)
class TimeString:
    """A Composer time string in one of ``units``; positive unless ``zero_ok``; inside the run if ``within_run``.

    ``when`` names the scheduler(s) that read the key: for others the value is parsed but not placed in the run;
    ``scaled``: ``scale_schedule_ratio`` scales the value as it scales ``max_duration``.
    """

    units: tuple[str, ...]
    zero_ok: bool = False
    within_run: bool = False
    when: tuple[str, ...] = ()
    scaled: bool = True

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        self.check_one(key, value, cfg)

    def check_one(self, key: str, value: Any, cfg: DictConfig) -> None:
        time = _parse_time(key, value, self.units)
        if time.value < 0 or (time.value == 0 and not self.zero_ok):
            raise UsageError(f'{key}={value} must be {"at least" if self.zero_ok else "more than"} 0')
        used = not self.when or cfg.scheduler.name in self.when
        if self.within_run and used:
            _within(key, value, time, cfg, self.scaled)


@dataclass(frozen=True)
class TimeList:
    """A list of time strings (at most ``max_items``), each checked by ``item``."""

    item: TimeString
    max_items: int = 64

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        if not isinstance(value, (list, ListConfig)):
            raise UsageError(f'{key}={value!r} must be a list of time strings, e.g. [80ep, 120ep]')
        if len(value) > self.max_items:
            raise UsageError(f'{key} lists {len(value)} times: at most {self.max_items}')
        for i, text in enumerate(value):
            self.item.check_one(f'{key}[{i}]', text, cfg)


_RUN_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,127}')


@dataclass(frozen=True)
class RunName:
    """Letters, digits, ``_ . -``: it names checkpoints, loggers and a folder."""

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        if value is not None and not (isinstance(value, str) and _RUN_NAME.fullmatch(value)):
            raise UsageError(f'{key}={value!r} must be 1 to 128 letters, digits, _ . or - (it names files and folders)')


def named(key: str, check: Callable[..., Any], *args: Any) -> Any:
    """``check(*args)``, with ``key`` put in front of a UsageError message that does not name it."""
    try:
        return check(*args)
    except UsageError as e:
        if key in str(e):
            raise
        raise UsageError(f'{key}: {e}') from None


def check_location(key: str, value: Any) -> None:
    """A non-empty local path or an ``s3://`` URI with a bucket (existence is checked where it matters)."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f'{key}={value!r} must be a local path or an s3://bucket/prefix URI')
    if '\x00' in value:
        raise UsageError(f'{key}={value!r} holds a NUL character: fix the path')
    if storage.is_s3(value):
        named(key, storage.split_s3, value)


@dataclass(frozen=True)
class Folder:
    """A local folder or ``s3://bucket/prefix`` that need not exist yet; locally not a file."""

    optional: bool = True

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        if value is None and self.optional:
            return
        check_location(key, value)
        if not storage.is_s3(value) and storage.exists(value) and not os.path.isdir(value):
            raise UsageError(f'{key}={value} is a file, not a folder: name a folder')


def _must_exist(key: str, uri: str, what: str) -> None:
    named(key, storage.check_reachable, uri)
    if not storage.exists(uri):
        where = f" at {os.environ.get('S3_ENDPOINT_URL') or 'the default AWS endpoint'}" if storage.is_s3(uri) else ''
        raise UsageError(f'{key}: {uri} does not exist{where}: {what}')


@dataclass(frozen=True)
class ExistingFile:
    """A file or S3 object that must exist; a local ``checkpoint`` must also be a whole ``torch.save`` archive."""

    fix: str
    checkpoint: bool = False

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        if value is None:
            return
        check_location(key, value)
        if not storage.is_s3(value) and os.path.isdir(value):
            raise UsageError(f'{key}={value} is a folder: name the checkpoint file in it')
        _must_exist(key, value, self.fix)
        if self.checkpoint and not storage.is_s3(value) and not zipfile.is_zipfile(value):
            raise UsageError(f'{key}={value} is not a checkpoint written by torch.save (or it is truncated): {self.fix}')


@dataclass(frozen=True)
class MDSRoot:
    """An MDS root (folder or ``s3://``) holding ``train/`` and ``test/``, each a whole MDS folder."""

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        if value is None:
            return
        check_location(key, value)
        named(key, storage.check_reachable, value)
        for split in ('train', 'test'):
            index = storage.join(value, split, 'index.json')
            if not storage.exists(index):
                how = ('an image folder with `python launch/convert_images.py --in_root DIR --out_root ROOT`'
                       if cfg.data.name == 'images' else
                       'CIFAR-100 with `python launch/convert_cifar100.py --in_root DIR --out_root ROOT`, or set data.name to digits')
                raise UsageError(f'{key}={value}: no MDS split at {storage.join(value, split)} ({index} is missing): convert {how}')
            named(key, check_folder, storage.join(value, split))
        if cfg.data.name == 'images':
            from recipes.core.data.folder import read_classes

            named(key, read_classes, value)


@dataclass(frozen=True)
class Filename:
    """A checkpoint file name that Composer's formatter accepts (``{epoch}``, ``{batch}``, ``{rank}``, ...)."""

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        from composer.core import Timestamp
        from composer.utils import format_name_with_dist_and_time

        if not isinstance(value, str) or not value.strip() or value.endswith('/'):
            raise UsageError(f'{key}={value!r} must be a file name such as ep{{epoch}}-ba{{batch}}-rank{{rank}}.pt')
        hint = 'use placeholders such as {epoch}, {batch} and {rank}'
        try:
            name = format_name_with_dist_and_time(value, 'run', Timestamp())
        except (KeyError, IndexError, ValueError, AttributeError) as e:
            raise UsageError(f'{key}={value!r} is not a name Composer can format ({type(e).__name__}: {e}): {hint}') from None
        if '{' in name or '}' in name:  # Composer keeps a placeholder it does not know, such as {epcoh}, as it is
            raise UsageError(f'{key}={value!r} has a placeholder Composer does not fill ({name}): {hint}')


@dataclass(frozen=True)
class MicroBatch:
    """None, a whole number >= 1, or ``auto`` (GPUs only)."""

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        if value is None:
            return
        if value == 'auto':
            import torch

            if not torch.cuda.is_available():
                raise UsageError(f'{key}=auto needs a GPU: on the CPU give a whole number or leave it unset')
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f'{key}={value!r} must be a whole number >= 1 or auto')


@dataclass(frozen=True)
class ClassIds:
    """None, or distinct class ids of the data set (``data.name``), at least ``min_count`` of them."""

    min_count: int = 1

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        from recipes.core.data import DATA_SETS, data_num_classes

        if value is None:
            return
        if cfg.data.name not in DATA_SETS:
            return  # data.name's own rule reports it
        count = named(key, data_num_classes, cfg.data.name, cfg.data.remote)
        hint = f'list {self.min_count} or more distinct class ids in 0..{count - 1}, e.g. [0, 1]'
        if not isinstance(value, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in value):
            raise UsageError(f'{key}={value!r} is not a list of class ids: {hint}')
        outside = [c for c in value if not 0 <= c < count]
        if outside:
            raise UsageError(f'{key}={value} holds {outside[0]}, which is not a class of {cfg.data.name}: {hint}')
        if len(set(value)) != len(value) or len(value) < self.min_count:
            raise UsageError(f'{key}={value} must list distinct classes, at least {self.min_count}: {hint}')


def _registry(section: str) -> Mapping[str, Callable[..., Any]]:
    from recipes import registry

    return {'algorithms': registry.ALGORITHMS, 'callbacks': registry.CALLBACKS, 'loggers': registry.LOGGERS}[section]


RECIPES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'yamls')


def _place(uri: str) -> str:
    """``uri`` in one spelling: an S3 URI without a trailing slash, a local path absolute and normalised."""
    return uri.rstrip('/') if storage.is_s3(uri) else os.path.normpath(os.path.abspath(uri))


def recipe_saving_to(folder: str, recipes: str = RECIPES) -> str | None:
    """The recipe under ``recipes`` (``yamls/``) whose ``save_folder`` is ``folder``, as a path from the checkout's
    root (the first in sorted order), or None."""
    want = _place(folder)
    for root, _, files in sorted(os.walk(recipes)):
        for name in sorted(files):
            if not name.endswith('.yaml'):
                continue
            path = os.path.join(root, name)
            try:
                with open(path) as f:
                    saves = (yaml.safe_load(f) or {}).get('save_folder')
            except (OSError, yaml.YAMLError, AttributeError):
                continue
            if isinstance(saves, str) and saves and _place(saves) == want:
                return os.path.relpath(path, os.path.dirname(recipes))
    return None


def check_past_run(key: str, value: Any) -> None:
    """A past run folder: its ``config.yaml`` present and a run config. A missing one is answered with the recipe
    under ``yamls/`` that trains it, where one saves to that folder."""
    from algorithms.past_run import MissingPastRun, PastRun

    def read() -> dict[str, Any]:
        try:
            return PastRun(value).config  # reads and checks config.yaml
        except MissingPastRun:
            recipe = recipe_saving_to(value)
            if recipe is None:
                raise
            raise MissingPastRun(value, f'train it with `python launch/train.py {recipe}`') from None

    check_location(key, value)
    named(key, read)


def _past_runs(key: str, value: Any) -> None:
    """A pool of past run folders: each one checked as :func:`check_past_run` checks one."""
    if not isinstance(value, (list, tuple, ListConfig)):
        raise UsageError(f'{key}={value!r} must be a list of past run folders, e.g. [runs/seed1, runs/seed2]')
    for i, run in enumerate(value):
        check_past_run(f'{key}[{i}]', run)


def _teacher_checkpoints(key: str, value: Any) -> None:
    """The past run of every ``RUN_FOLDER:CHECKPOINT`` entry (the rule of ``parse_teachers``); plain names use run(s)."""
    if not isinstance(value, (list, tuple, ListConfig)):
        raise UsageError(f'{key}={value!r} must be a list of checkpoints: for example [ep40, ep80]')
    for i, entry in enumerate(value):
        folder, _, name = str(entry).rpartition(':')
        if folder and name and '/' not in name:
            check_past_run(f'{key}[{i}] ({folder})', folder)


def _scores(key: str, value: Any) -> None:
    from algorithms.curriculum.scores import MAKE_SCORES, artifact_paths

    check_location(key, value)
    npy, meta = artifact_paths(value)
    for uri in (meta, npy):
        _must_exist(key, uri, MAKE_SCORES)


def _bank(key: str, value: Any) -> None:
    from algorithms.adversarial_replay.bank import BANK_FILE, BUILD_ONE

    check_location(key, value)
    named(key, storage.check_reachable, value)
    if not storage.exists(storage.join(value, BANK_FILE)):  # the words of AdversarialBank's own check
        raise UsageError(f'{key}: no adversarial bank at {value} ({BANK_FILE} is missing, or the build did not finish): {BUILD_ONE}')


# Arguments of registered builders that name an artifact: it must exist before the run starts.
ARTIFACT_ARGUMENTS: dict[tuple[str, str, str], Callable[[str, Any], None]] = {
    ('algorithms', 'past_run_distillation', 'run'): check_past_run,
    ('algorithms', 'checkpoint_mixup_teacher', 'run'): check_past_run,
    ('algorithms', 'checkpoint_mixup_teacher', 'runs'): _past_runs,
    ('algorithms', 'checkpoint_mixup_teacher', 'checkpoints'): _teacher_checkpoints,
    ('algorithms', 'random_teacher_distillation', 'run'): check_past_run,
    ('algorithms', 'grand_curriculum', 'scores'): _scores,
    ('algorithms', 'adversarial_replay', 'bank'): _bank,
    ('algorithms', 'warm_start', 'run'): check_past_run,
    ('algorithms', 'shrink_perturb', 'run'): check_past_run,
}


# Value ranges of Composer's own algorithms, which take any number and fail mid-training (MixUp and CutMix assert
# alpha > 0 in their first batch) or train on nonsense targets (label smoothing outside [0, 1)). The reuse
# algorithms' builders check their own values when the run is assembled.
ARGUMENT_VALUES: dict[tuple[str, str, str], Number] = {
    ('algorithms', 'mixup', 'alpha'): Number(0, 1000, low_open=True),
    ('algorithms', 'cutmix', 'alpha'): Number(0, 1000, low_open=True),
    ('algorithms', 'label_smoothing', 'smoothing'): Number(0, 1, high_open=True),
}


@dataclass(frozen=True)
class Entries:
    """``name: {argument: value}`` of a registry: names registered, arguments known and typed, artifacts present.

    Composer's own algorithms get their value ranges here (:data:`ARGUMENT_VALUES`); the reuse algorithms' builders
    check theirs when the run is assembled (before any training step).
    """

    section: str

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        from recipes.registry import check_arguments

        if not isinstance(value, (dict, DictConfig)):
            raise UsageError(f'{key}={value!r} must map registered names to their arguments')
        registry = _registry(self.section)
        for name, args in value.items():
            if name not in registry:
                names = sorted(registry)
                raise UsageError(f'{key}: unknown name {name!r}{did_you_mean(str(name), names)}; registered: {", ".join(names)}')
            if args is not None and not isinstance(args, (dict, DictConfig)):
                raise UsageError(f'{key}.{name}={args!r} must be a mapping of arguments, e.g. {{}}')
            plain = OmegaConf.to_container(args) if isinstance(args, DictConfig) else dict(args or {})
            check_arguments(self.section, name, registry[name], plain)
            for argument, arg_value in plain.items():
                where = (self.section, str(name), str(argument))
                if where in ARGUMENT_VALUES:
                    ARGUMENT_VALUES[where].check(f'{key}.{name}.{argument}', arg_value, cfg)
                if where in ARTIFACT_ARGUMENTS:
                    ARTIFACT_ARGUMENTS[where](f'{key}.{name}.{argument}', arg_value)


@dataclass(frozen=True)
class ModelName:
    """A CIFAR ResNet or ``torchvision/<name>``; an unknown name is refused naming the closest valid ones."""

    def check(self, key: str, value: Any, cfg: DictConfig) -> None:
        from recipes.core.model import check_model_name

        check_model_name(value, key)


def _data_names() -> Sequence[str]:
    from recipes.core.data import DATA_SETS

    return list(DATA_SETS)


def _precisions() -> Sequence[str]:
    from composer.core import Precision

    return [p.value for p in Precision]


def _augment_places() -> Sequence[str]:
    from recipes.core.data.device_augment import AUGMENT_ON

    return AUGMENT_ON


def _compile_backends() -> Sequence[str]:
    """torch.compile's registered backends, and the two debugging ones that check tracing without code generation."""
    import torch._dynamo

    return sorted({*torch._dynamo.list_backends(), 'aot_eager', 'eager'})


OPTIMIZERS = ('sgd', 'adamw')
SCHEDULERS = ('multistep_with_warmup', 'cosine_with_warmup', 'constant')
WARMUP_SCHEDULERS = ('multistep_with_warmup', 'cosine_with_warmup')
INTERVAL_UNITS = ('ep', 'ba', 'dur')
SEED = Number(0, 2**32 - 1, integer=True)  # numpy seeds take [0, 2**32)

RULES: dict[str, Any] = {
    'run_name': RunName(),
    'seed': SEED,
    'max_duration': TimeString(('ep', 'ba')),
    'scale_schedule_ratio': Number(0, 100, low_open=True),
    'eval_interval': TimeString(INTERVAL_UNITS),
    'precision': Choice(_precisions, optional=True),
    'save_folder': Folder(),
    'save_interval': TimeString(INTERVAL_UNITS),
    'save_filename': Filename(),
    'autoresume': Flag(),
    'load_path': ExistingFile('name an existing checkpoint file or URI', checkpoint=True),
    'load_weights_only': Flag(),
    'device_train_microbatch_size': MicroBatch(),
    'compile': Flag(),
    'compile_backend': Choice(_compile_backends),
    'model.name': ModelName(),
    'model.pretrained': Flag(),
    'model.num_classes': Number(2, 100_000, integer=True, optional=True),
    'data.name': Choice(_data_names),
    'data.remote': MDSRoot(),
    'data.cache': Folder(),
    'data.global_batch_size': Number(1, 1_000_000, integer=True),
    'data.eval_batch_size': Number(1, 1_000_000, integer=True),
    'data.num_workers': Number(0, 256, integer=True),
    'data.augment': Flag(),
    'data.resident': Flag(),
    'data.augment_on': Choice(_augment_places, optional=True),
    'data.label_noise': Number(0, 1, high_open=True),
    'data.label_noise_seed': SEED,
    'data.subset_fraction': Number(0, 1, low_open=True),
    'data.subset_seed': SEED,
    'data.classes': ClassIds(),
    'data.resolution': Number(8, 4096, integer=True, optional=True),
    'optimizer.name': Choice(lambda: OPTIMIZERS),
    'optimizer.lr': Number(0, 1e3),
    'optimizer.momentum': Number(0, 1, high_open=True),
    'optimizer.weight_decay': Number(0, 1e3),
    'optimizer.nesterov': Flag(),
    'scheduler.name': Choice(lambda: SCHEDULERS),
    'scheduler.t_warmup': TimeString(
        INTERVAL_UNITS, zero_ok=True, within_run=True, when=WARMUP_SCHEDULERS, scaled=False,
    ),
    'scheduler.milestones': TimeList(TimeString(INTERVAL_UNITS, within_run=True, when=('multistep_with_warmup',))),
    'scheduler.gamma': Number(0, 1, low_open=True),
    'scheduler.alpha_f': Number(0, 1),
    'algorithms': Entries('algorithms'),
    'callbacks': Entries('callbacks'),
    'loggers': Entries('loggers'),
}


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
    from recipes.core.data import batch_size_per_rank

    o = cfg.optimizer
    if o.name == 'sgd' and o.nesterov and o.momentum == 0:
        raise UsageError('optimizer.nesterov=true needs optimizer.momentum > 0: set a momentum or nesterov=false')
    from composer.utils import dist

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


def check_config(cfg: DictConfig, rules: Mapping[str, Any] | None = None) -> None:
    """Apply every key's rule, then the rules that tie keys together; the first failure is a UsageError."""
    for key, rule in (RULES if rules is None else rules).items():
        rule.check(key, _value(cfg, key), cfg)
    _cross_checks(cfg)
