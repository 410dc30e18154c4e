"""The one vocabulary of input rules: config keys, sweep keys, algorithm arguments and command-line arguments.

Every input is declared once, with its rule beside it:

* a config key as a field of :class:`recipes.config.TrainConfig`: ``global_batch_size: Annotated[int, Number(1, 1e6,
  integer=True)] = 128``;
* a sweep key as a field of :class:`recipes.study.spec.SweepSpec`, the same way;
* an algorithm's argument in its constructor: ``temperature: Annotated[float, Number(0, 1000, low_open=True)] = 4.0``,
  which the registry (:mod:`recipes.registry`) reads to check YAML and preset arguments;
* a command-line argument as its ``argparse`` type: ``type=arg_type(Number(1, 1e6, integer=True))``.

A rule's :meth:`Rule.check` takes the key as the user wrote it and the value, and returns the value to use (a pixel
value ``8/255`` becomes a float) or raises a :class:`UsageError` of one line naming the key, the value and the fix.
:meth:`Rule.describe` says what it accepts and :meth:`Rule.invalid_example` gives a value it refuses: the docs'
tables of keys and of error messages are generated from those (``docs/``). The artifact rules
(:class:`PastRunFolder`, :class:`CheckpointNames`, :class:`ScoresFile`, :class:`BankFolder`) also say which past-run
checkpoints a value reuses (:meth:`Artifact.reused`), which experiment tracking reports. :class:`FromRun` marks a
constructor argument the run being assembled supplies (the number of classes, the batch size per rank, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import math
import os
import re
import types
import typing
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from recipes.core import artifacts, storage
from recipes.core.errors import UsageError, did_you_mean

__all__ = [
    'REQUIRED',
    'Argument',
    'Artifact',
    'BankFolder',
    'CheckpointChoice',
    'CheckpointList',
    'CheckpointNames',
    'Choice',
    'ClassIds',
    'ExistingFile',
    'Filename',
    'Flag',
    'Folder',
    'FromRun',
    'LocalFile',
    'Location',
    'MDSRoot',
    'MicroBatch',
    'ModelName',
    'NoBank',
    'Number',
    'OneOf',
    'Overrides',
    'PastRunFolder',
    'PastRunFolders',
    'PixelValue',
    'Rule',
    'RunName',
    'SchemaField',
    'ScoresFile',
    'Seeds',
    'TeacherCacheFolder',
    'TimeList',
    'TimeString',
    'arg_type',
    'check_location',
    'checked',
    'declared',
    'named',
    'parse_pixel_value',
    'pixel_text',
    'rule_of',
    'schema_fields',
    'schema_rules',
]


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


class Rule:
    """What a value must be. Subclasses are frozen dataclasses (a rule is a value, comparable and printable)."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        """The value to use, or a one-line UsageError naming ``key``. ``cfg``: the whole config, for rules that tie
        a value to others (a time inside the run, a class id of the data set); None outside a config."""
        raise NotImplementedError

    def describe(self) -> str:
        """What the rule accepts, as a phrase for the docs: ``a whole number in [1, 1000000]``."""
        raise NotImplementedError

    def invalid_example(self) -> Any:
        """A value this rule refuses (without a config), for the docs' table of error messages; None if none."""
        return None

    def from_text(self, text: str) -> Any:
        """A command-line string as the value :meth:`check` takes (the string itself unless a subclass parses it)."""
        return text


# ----- numbers, choices, flags ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number(Rule):
    """A finite int or float in ``[low, high]`` (``low_open``/``high_open`` exclude the bound); None if ``optional``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False
    message: str | None = None  # the refusal after ``key=value``, in place of the generic one

    def _bound(self, x: float | None, default: str) -> str:
        if x is None:
            return default
        return str(int(x)) if self.integer else f'{x:g}'

    def describe(self) -> str:
        left, right = '(' if self.low_open else '[', ')' if self.high_open else ']'
        kind = 'a whole number' if self.integer else 'a number'
        return f'{kind} in {left}{self._bound(self.low, "-inf")}, {self._bound(self.high, "inf")}{right}'

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None and self.optional:
            return None
        kind = int if self.integer else (int, float)
        wrong_type = isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value)
        if wrong_type and self.message is None:
            raise UsageError(f'{key}={value!r} must be {self.describe()}')
        below = not wrong_type and self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = not wrong_type and self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if (wrong_type or below or above) and self.message is not None:
            raise UsageError(f'{key}={value!r} {self.message}')
        if below or above:
            shown = f'{value:g}' if isinstance(value, float) else value  # 0 for 0.0: the value as the user wrote it
            raise UsageError(f'{key}={shown} is out of range: use {self.describe()}')
        return value

    def invalid_example(self) -> Any:
        if self.low is not None:
            return int(self.low) - 1 if self.integer else self.low - (1 if not self.low_open else 0)
        if self.high is not None:
            return int(self.high) + 1 if self.integer else self.high + 1
        return 'abc'

    def from_text(self, text: str) -> Any:
        """``int(text)`` or ``float(text)``: a ValueError is argparse's ``invalid int value: 'x'``."""
        return int(text) if self.integer else float(text)


@dataclass(frozen=True)
class Choice(Rule):
    """One of ``options()`` (a registry's names, read when checked); None if ``optional``."""

    options: Callable[[], Sequence[str]]
    optional: bool = False
    message: str | None = None  # the refusal after ``key=value``, in place of the generic one

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None and self.optional:
            return None
        options = list(self.options())
        if value not in options and self.message is not None:
            raise UsageError(f'{key}={value!r} {self.message}')
        if value not in options:
            raise UsageError(f'{key}={value!r} is unknown{did_you_mean(str(value), options)}: choose one of {", ".join(options)}')
        return value

    def describe(self) -> str:
        return 'one of ' + ', '.join(f'`{o}`' for o in self.options()) + (', or null' if self.optional else '')

    def invalid_example(self) -> Any:
        first = str(list(self.options())[0])
        return first[:-1] if len(first) > 1 else f'{first}x'


def OneOf(*options: str, optional: bool = False, message: str | None = None) -> Choice:  # noqa: N802 - a type-like name
    """A :class:`Choice` among fixed ``options``."""
    return Choice(lambda: options, optional=optional, message=message)


@dataclass(frozen=True)
class Flag(Rule):
    """``true`` or ``false``."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if not isinstance(value, bool):
            raise UsageError(f'{key}={value!r} must be true or false')
        return value

    def describe(self) -> str:
        return '`true` or `false`'

    def invalid_example(self) -> Any:
        return 'maybe'


@dataclass(frozen=True)
class Seeds(Rule):
    """A non-empty list of distinct integers, each a seed numpy takes (``[0, 2**32)``)."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if not isinstance(value, (list, tuple)) or not value or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in value):
            raise UsageError(f'{key} must be a list of integers, e.g. [1, 2, 3], not {value!r}')
        if len(set(value)) != len(value):
            raise UsageError(f'{key}={list(value)} repeats a seed: each seed is one independent run')
        for i, seed in enumerate(value):
            SEED.check(f'{key}[{i}]', seed)
        return [int(s) for s in value]

    def describe(self) -> str:
        return 'a list of distinct integers in [0, 4294967295]'

    def invalid_example(self) -> Any:
        return [1, 1]


SEED = Number(0, 2**32 - 1, integer=True)  # numpy seeds take [0, 2**32)


# ----- time ----------------------------------------------------------------------------------------------------------


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


def _within(key: str, text: str, time: Any, cfg: Any, scaled: bool) -> None:
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
    if int(end.value * float(cfg.get('scale_schedule_ratio', 1.0))) == 0:
        return  # the scaled run trains nothing at all: the run config's tie on scale_schedule_ratio says so
    if end.unit == time.unit and time.value > end.value * ratio:
        scaling = f' x scale_schedule_ratio={cfg.scale_schedule_ratio}' if ratio != 1 else ''
        raise UsageError(
            f'{key}={text} lies after the end of training (max_duration={cfg.max_duration}{scaling}): '
            f'move it inside the run or lengthen max_duration',
        )


@dataclass(frozen=True)
class TimeString(Rule):
    """A Composer time string in one of ``units``; positive unless ``zero_ok``; inside the run if ``within_run``.

    ``when`` names the scheduler(s) that read the key: for others the value is parsed but not placed in the run;
    ``scaled``: ``scale_schedule_ratio`` scales the value as it scales ``max_duration``. None if ``optional``.
    """

    units: tuple[str, ...]
    zero_ok: bool = False
    within_run: bool = False
    when: tuple[str, ...] = ()
    scaled: bool = True
    optional: bool = False
    message: str | None = None  # the refusal after ``key=value``, in place of the generic one

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None and self.optional:
            return None
        if self.message is not None:
            try:
                return TimeString(self.units, self.zero_ok, self.within_run, self.when, self.scaled).check(key, value, cfg)
            except UsageError:
                raise UsageError(f'{key}={value!r} {self.message}') from None
        time = _parse_time(key, value, self.units)
        if time.value < 0 or (time.value == 0 and not self.zero_ok):
            raise UsageError(f'{key}={value} must be {"at least" if self.zero_ok else "more than"} 0')
        used = cfg is not None and (not self.when or cfg.scheduler.name in self.when)
        if self.within_run and used:
            _within(key, value, time, cfg, self.scaled)
        return value

    def describe(self) -> str:
        units = ', '.join(f'`{u}`' for u in self.units)
        where = ', inside the run' if self.within_run else ''
        return f'a time in {units}, {"at least" if self.zero_ok else "more than"} 0{where}' + (', or null' if self.optional else '')

    def invalid_example(self) -> Any:
        return 'banana'


@dataclass(frozen=True)
class TimeList(Rule):
    """A list of time strings (at most ``max_items``), each checked by ``item``."""

    item: TimeString
    max_items: int = 64

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if not isinstance(value, (list, tuple)):
            raise UsageError(f'{key}={value!r} must be a list of time strings, e.g. [80ep, 120ep]')
        if len(value) > self.max_items:
            raise UsageError(f'{key} lists {len(value)} times: at most {self.max_items}')
        for i, text in enumerate(value):
            self.item.check(f'{key}[{i}]', text, cfg)
        return value

    def describe(self) -> str:
        return f'a list of up to {self.max_items} times, each {self.item.describe()}'

    def invalid_example(self) -> Any:
        return ['foo']


# ----- names and paths -----------------------------------------------------------------------------------------------

_RUN_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,127}')


@dataclass(frozen=True)
class RunName(Rule):
    """Letters, digits, ``_ . -``: it names checkpoints, loggers and a folder; None allowed."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is not None and not (isinstance(value, str) and _RUN_NAME.fullmatch(value)):
            raise UsageError(f'{key}={value!r} must be 1 to 128 letters, digits, _ . or - (it names files and folders)')
        return value

    def describe(self) -> str:
        return '1 to 128 letters, digits, `_ . -`, or null'

    def invalid_example(self) -> Any:
        return 'a/b'


@dataclass(frozen=True)
class Location(Rule):
    """A local path or ``s3://bucket/prefix`` that need not exist; None if ``optional``, ``''`` too if ``empty_is_none``."""

    optional: bool = False
    empty_is_none: bool = False

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if (value is None and self.optional) or (value == '' and self.empty_is_none):
            return value
        check_location(key, value)
        return value

    def describe(self) -> str:
        return 'a local path or `s3://bucket/prefix`' + (', or null' if self.optional else '')

    def invalid_example(self) -> Any:
        return 's3://'


@dataclass(frozen=True)
class Folder(Rule):
    """A local folder or ``s3://bucket/prefix`` that need not exist yet; locally not a file; None if ``optional``."""

    optional: bool = True

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None and self.optional:
            return None
        check_location(key, value)
        if not storage.is_s3(value) and storage.exists(value) and not os.path.isdir(value):
            raise UsageError(f'{key}={value} is a file, not a folder: name a folder')
        return value

    def describe(self) -> str:
        return 'a local folder or `s3://bucket/prefix` (need not exist)' + (', or null' if self.optional else '')

    def invalid_example(self) -> Any:
        return 's3://'


def _must_exist(key: str, uri: str, what: str) -> None:
    named(key, storage.check_reachable, uri)
    if not storage.exists(uri):
        where = f" at {os.environ.get('S3_ENDPOINT_URL') or 'the default AWS endpoint'}" if storage.is_s3(uri) else ''
        raise UsageError(f'{key}: {uri} does not exist{where}: {what}')


@dataclass(frozen=True)
class ExistingFile(Rule):
    """A file or S3 object that must exist; a local ``checkpoint`` must also be a whole ``torch.save`` archive."""

    fix: str
    checkpoint: bool = False

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None:
            return None
        check_location(key, value)
        if not storage.is_s3(value) and os.path.isdir(value):
            raise UsageError(f'{key}={value} is a folder: name the checkpoint file in it')
        _must_exist(key, value, self.fix)
        if self.checkpoint and not storage.is_s3(value) and not zipfile.is_zipfile(value):
            raise UsageError(f'{key}={value} is not a checkpoint written by torch.save (or it is truncated): {self.fix}')
        return value

    def describe(self) -> str:
        return ('an existing checkpoint file or URI' if self.checkpoint else 'an existing file or URI') + ', or null'

    def invalid_example(self) -> Any:
        return '/no/such/ckpt.pt'


@dataclass(frozen=True)
class LocalFile(Rule):
    """A local file that must exist (a YAML an entry point reads)."""

    example: str

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        check_location(key, value)
        if not os.path.isfile(value):
            raise UsageError(f'{key}={value} does not exist or is not a file: pass a file such as {self.example}')
        return value

    def describe(self) -> str:
        return f'an existing local file, such as `{self.example}`'

    def invalid_example(self) -> Any:
        return 'yamls/none.yaml'


@dataclass(frozen=True)
class MDSRoot(Rule):
    """An MDS root (folder or ``s3://``) holding ``train/`` and ``test/``, each a whole MDS folder; None allowed."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        from recipes.core.data.mds import check_folder

        if value is None:
            return None
        check_location(key, value)
        named(key, storage.check_reachable, value)
        images = cfg is not None and cfg.data.name == 'images'
        for split in ('train', 'test'):
            index = storage.join(value, split, 'index.json')
            if not storage.exists(index):
                how = ('an image folder with `python launch/convert_images.py --in_root DIR --out_root ROOT`' if images else
                       'CIFAR-100 with `python launch/convert_cifar100.py --in_root DIR --out_root ROOT`, or set data.name to digits')
                raise UsageError(f'{key}={value}: no MDS split at {storage.join(value, split)} ({index} is missing): convert {how}')
            named(key, check_folder, storage.join(value, split))
        if images:
            from recipes.core.data.folder import read_classes

            named(key, read_classes, value)
        return value

    def describe(self) -> str:
        return 'an MDS root (folder or `s3://`) holding `train/` and `test/`, or null for the built-in sets'

    def invalid_example(self) -> Any:
        return '/no/such/mds'


@dataclass(frozen=True)
class Filename(Rule):
    """A checkpoint file name that Composer's formatter accepts (``{epoch}``, ``{batch}``, ``{rank}``, ...)."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
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
        return value

    def describe(self) -> str:
        return 'a file name Composer formats, with `{epoch}`, `{batch}`, `{rank}`'

    def invalid_example(self) -> Any:
        return '{epcoh}.pt'


@dataclass(frozen=True)
class MicroBatch(Rule):
    """None, a whole number >= 1, or ``auto`` (GPUs only)."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None:
            return None
        if value == 'auto':
            import torch

            if not torch.cuda.is_available():
                raise UsageError(f'{key}=auto needs a GPU: on the CPU give a whole number or leave it unset')
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f'{key}={value!r} must be a whole number >= 1 or auto')
        return value

    def describe(self) -> str:
        return 'a whole number >= 1, `auto` (GPUs), or null'

    def invalid_example(self) -> Any:
        return 0


@dataclass(frozen=True)
class ClassIds(Rule):
    """None, or distinct class ids of the data set (``data.name``), at least ``min_count`` of them."""

    min_count: int = 1

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        from recipes.core.data import DATA_SETS, data_num_classes

        if value is None or cfg is None or cfg.data.name not in DATA_SETS:
            return value  # data.name's own rule reports an unknown data set
        count = named(key, data_num_classes, cfg.data.name, cfg.data.remote)
        hint = f'list {self.min_count} or more distinct class ids in 0..{count - 1}, e.g. [0, 1]'
        if not isinstance(value, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in value):
            raise UsageError(f'{key}={value!r} is not a list of class ids: {hint}')
        outside = [c for c in value if not 0 <= c < count]
        if outside:
            raise UsageError(f'{key}={value} holds {outside[0]}, which is not a class of {cfg.data.name}: {hint}')
        if len(set(value)) != len(value) or len(value) < self.min_count:
            raise UsageError(f'{key}={value} must list distinct classes, at least {self.min_count}: {hint}')
        return value

    def describe(self) -> str:
        return f'null, or {self.min_count} or more distinct class ids of the data set'

    def invalid_example(self) -> Any:
        return [0, 1000]


@dataclass(frozen=True)
class ModelName(Rule):
    """A CIFAR ResNet or ``torchvision/<name>``; an unknown name is refused naming the closest valid ones."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        from recipes.core.model import check_model_name

        check_model_name(value, key)
        return value

    def describe(self) -> str:
        return '`resnet_20|32|44|56|110` or `torchvision/<name>`'

    def invalid_example(self) -> Any:
        return 'resnet_21'


@dataclass(frozen=True)
class Overrides(Rule):
    """A list of ``key=value`` strings (the config checks the keys and values themselves)."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None:
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
            raise UsageError(f'{key} must be a list of key=value strings, e.g. [data.label_noise=0.4]')
        for override in items:
            if '=' not in override or not override.split('=', 1)[0].strip():
                raise UsageError(f'{key}: {override!r} is not key=value (for example seed=3 or max_duration=4ep)')
        return list(value) if not isinstance(value, str) else value

    def describe(self) -> str:
        return 'a list of `key=value` strings'

    def invalid_example(self) -> Any:
        return ['seed3']


# ----- pixel values --------------------------------------------------------------------------------------------------


def parse_pixel_value(text: str | float, name: str) -> float:
    """``'8/255'``, ``'0.03'`` or a number as a float; anything else is a UsageError naming ``name``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    try:
        return float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError):
        raise UsageError(f'{name}={text!r} is not a number: write it as a fraction of the pixel range, e.g. 8/255') from None


def pixel_text(value: float) -> str:
    """``0.0314 (8/255)``: a value as a share of the pixel range and in grey levels."""
    return f'{value:.4g} ({value * 255:.3g}/255)'


@dataclass(frozen=True)
class PixelValue(Rule):
    """A value on the pixel scale, ``8/255`` or ``0.03``, in (0, 1], returned as a float; None if ``optional``."""

    optional: bool = False

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None and self.optional:
            return None
        number = parse_pixel_value(value, key)
        if not 0 < number <= 1:
            raise UsageError(f'{key}={pixel_text(number)} is out of range: use a value in (0, 1] of the pixel range, e.g. 8/255')
        return number

    def describe(self) -> str:
        return 'a share of the pixel range in (0, 1], e.g. `8/255`' + (', or null' if self.optional else '')

    def invalid_example(self) -> Any:
        return '256/255'


# ----- what past runs left behind ------------------------------------------------------------------------------------


class Artifact(Rule):
    """An argument that names a by-product of past runs; it says which past-run checkpoints a value reuses."""

    kind: str = 'artifact'

    def reused(self, value: Any, arguments: Mapping[str, Any]) -> list[str]:
        """``RUN:CHECKPOINT`` of each past-run checkpoint ``value`` reuses, given the algorithm's other
        ``arguments`` (a checkpoint name is read against the argument that names its run)."""
        return []


@dataclass(frozen=True)
class PastRunFolder(Artifact):
    """A past run folder (local or ``s3://``): its ``config.yaml`` present and a run config. None if ``optional``.

    It reuses nothing by itself: its checkpoints do (:class:`CheckpointNames`), and a random-weight teacher of its
    architecture reuses nothing at all.
    """

    optional: bool = False
    kind = 'past run'

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None and self.optional:
            return None
        check_location(key, value)
        named(key, artifacts.read_run_config, value)
        return value

    def describe(self) -> str:
        return 'a past run folder (local or `s3://`) holding its `config.yaml`' + (', or null' if self.optional else '')

    def invalid_example(self) -> Any:
        return 'runs/no-such-run'


@dataclass(frozen=True)
class PastRunFolders(Artifact):
    """A list of past run folders, each checked as :class:`PastRunFolder`; None if ``optional``."""

    optional: bool = False
    kind = 'past runs'

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None and self.optional:
            return None
        if not isinstance(value, (list, tuple)):
            raise UsageError(f'{key}={value!r} must be a list of past run folders, e.g. [runs/seed1, runs/seed2]')
        for i, run in enumerate(value):
            PastRunFolder().check(f'{key}[{i}]', run)
        return list(value)

    def describe(self) -> str:
        return 'a list of past run folders' + (', or null' if self.optional else '')

    def invalid_example(self) -> Any:
        return 'runs/a'


@dataclass(frozen=True)
class CheckpointNames(Artifact):
    """Checkpoints of past runs: ``latest``, ``epN``, a file name, a URI, or ``RUN_FOLDER:CHECKPOINT``.

    A plain name is a checkpoint of the run in argument ``run`` or of each run in argument ``runs``. ``many``: a list
    (at least ``at_least`` entries); otherwise one name. The run of a ``RUN_FOLDER:CHECKPOINT`` entry must exist.
    """

    many: bool = False
    at_least: int = 1
    run: str = 'run'
    runs: str = 'runs'
    kind = 'checkpoint'

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        entries = value if self.many else [value]
        if self.many and (isinstance(value, str) or not isinstance(value, (list, tuple))):
            raise UsageError(f'{key}={value!r} must be a list of checkpoints: for example [ep40, ep80]')
        for i, entry in enumerate(entries):
            if not isinstance(entry, str) or not entry.strip():
                raise UsageError(f'{key}={value!r} names no checkpoint: write latest, epN, a file name or RUN_FOLDER:epN')
            folder, _ = artifacts.split_checkpoint_entry(entry)
            if folder:
                PastRunFolder().check(f'{key}[{i}] ({folder})' if self.many else f'{key} ({folder})', folder)
        return list(value) if self.many else value

    def describe(self) -> str:
        what = 'checkpoints (a list)' if self.many else 'a checkpoint'
        return f'{what}: `latest`, `epN`, a file name, a URI or `RUN_FOLDER:epN`'

    def invalid_example(self) -> Any:
        return 'ep8' if self.many else ''

    def reused(self, value: Any, arguments: Mapping[str, Any]) -> list[str]:
        runs = arguments.get(self.run)
        pool = [runs] if isinstance(runs, str) else list(arguments.get(self.runs) or [])
        found: list[str] = []
        for entry in (value if self.many else [value]):
            folder, name = artifacts.split_checkpoint_entry(str(entry))
            found += [f'{folder}:{name}'] if folder else [f'{run}:{name}' for run in pool]
        return found


@dataclass(frozen=True)
class CheckpointChoice:
    """Checkpoints a tool was told to use: ``names`` as given, or none and ``policy``, the choice ``auto`` stands for
    (``algorithms.past_run.CHECKPOINT_POLICIES``)."""

    names: tuple[str, ...]
    policy: str | None = None

    def pick(self, run: Any) -> list[str]:
        """The checkpoint names for past run ``run`` (its ``pick_checkpoints(policy)`` for ``auto``)."""
        return list(self.names) if self.names else run.pick_checkpoints(self.policy)


@dataclass(frozen=True)
class CheckpointList(Rule):
    """Comma-separated checkpoint names of a past run (``ep2,ep3``, ``latest``), parsed once into a
    :class:`CheckpointChoice`; ``auto`` too when ``policy`` names what it chooses. Whether the run holds them is
    checked against the run (``PastRun.resolve``) by the tool that knows the run."""

    policy: str | None = None
    single: bool = False

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if isinstance(value, CheckpointChoice):
            return value
        text = str(value).strip()
        if self.policy is not None and text == 'auto':
            return CheckpointChoice((), self.policy)
        names = (text,) if self.single else tuple(c.strip() for c in text.split(',') if c.strip())
        if not names or not all(names):
            raise UsageError(f'{key}={value!r} names no checkpoint: pass e.g. {key} {"ep2" if self.single else "ep2,ep3"} or latest')
        return CheckpointChoice(names)

    def describe(self) -> str:
        many = 'a checkpoint name' if self.single else 'comma-separated checkpoint names'
        return f'{many} (`ep2`, `latest`, a file name)' + (f', or `auto` ({self.policy})' if self.policy else '')

    def invalid_example(self) -> Any:
        return ','


@dataclass(frozen=True)
class ScoresFile(Artifact):
    """A scores artifact (``PATH.npy`` and its ``.json``, from ``launch/score.py``)."""

    kind = 'scores'

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        check_location(key, value)
        named(key, artifacts.require_scores, value)
        return value

    def describe(self) -> str:
        return 'a scores artifact `PATH.npy` (with its `.json`) from `launch/score.py`'

    def invalid_example(self) -> Any:
        return 'runs/no-such-scores.npy'

    def reused(self, value: Any, arguments: Mapping[str, Any]) -> list[str]:
        return artifacts.made_from(artifacts.scores_metadata(str(value)))


@dataclass(frozen=True)
class BankFolder(Artifact):
    """An adversarial bank folder (or ``s3://`` prefix) from ``launch/build_adv_bank.py``, finished."""

    kind = 'bank'

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        check_location(key, value)
        named(key, artifacts.require_bank, value)
        return value

    def describe(self) -> str:
        return 'an adversarial bank folder from `launch/build_adv_bank.py`'

    def invalid_example(self) -> Any:
        return 'runs/no-such-bank'

    def reused(self, value: Any, arguments: Mapping[str, Any]) -> list[str]:
        return artifacts.made_from(artifacts.bank_metadata(str(value)))


@dataclass(frozen=True)
class TeacherCacheFolder(Artifact):
    """A teacher cache folder (or ``s3://`` prefix) from ``launch/cache_teacher.py``, finished. None if ``optional``."""

    optional: bool = False
    kind = 'teacher cache'

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None and self.optional:
            return None
        check_location(key, value)
        named(key, artifacts.require_cache, value)
        return value

    def describe(self) -> str:
        return 'a teacher cache folder from `launch/cache_teacher.py`' + (', or null' if self.optional else '')

    def invalid_example(self) -> Any:
        return 'runs/no-such-cache'

    def reused(self, value: Any, arguments: Mapping[str, Any]) -> list[str]:
        return [] if value is None else artifacts.made_from(artifacts.cache_metadata(str(value)))


@dataclass(frozen=True)
class NoBank(Rule):
    """An output folder that holds no adversarial bank yet."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        check_location(key, value)
        named(key, storage.check_reachable, value)
        if storage.exists(storage.join(value, artifacts.BANK_FILE)):
            raise UsageError(f'{key}={value} already holds an adversarial bank: choose another {key} or delete it first')
        return value

    def describe(self) -> str:
        return 'a folder or `s3://` prefix that holds no bank yet'

    def invalid_example(self) -> Any:
        return 's3://'


# ----- what the run supplies -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FromRun:
    """Marks a constructor argument the run being assembled supplies, never the YAML: ``field`` names it in
    :class:`recipes.registry.BuildContext` (``num_classes``, ``train_batch_size``, ``max_duration``, ``seed``,
    ``train_split_size``, ...)."""

    field: str


def rule_of(annotation: Any) -> Rule | FromRun | None:
    """The rule (or :class:`FromRun` marker) in an ``Annotated[...]`` type, or None."""
    for meta in getattr(annotation, '__metadata__', ()):
        if isinstance(meta, (Rule, FromRun)):
            return meta
    return None


@dataclass(frozen=True)
class SchemaField:
    """One key of a dataclass schema: its dotted name, default, rule and the phrase that says what it is for."""

    key: str
    default: Any
    rule: Rule
    doc: str


def schema_fields(schema: type, prefix: str = '') -> list[SchemaField]:
    """Every key of a dataclass schema whose fields carry their rule (and a description, a string) in their
    ``Annotated`` type; a field whose type is another dataclass is walked (``data.global_batch_size``)."""
    hints = typing.get_type_hints(schema, include_extras=True)
    found: list[SchemaField] = []
    for f in dataclasses.fields(schema):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            found += schema_fields(hint, f'{prefix}{f.name}.')
            continue
        rule = rule_of(hint)
        if not isinstance(rule, Rule):
            raise TypeError(f'{schema.__name__}.{f.name} declares no rule: give its type as Annotated[type, Rule(...)]')
        doc = next((m for m in getattr(hint, '__metadata__', ()) if isinstance(m, str)), '')
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else (
            REQUIRED if f.default is dataclasses.MISSING else f.default)
        found.append(SchemaField(f'{prefix}{f.name}', default, rule, doc))
    return found


def schema_rules(schema: type) -> dict[str, Rule]:
    """``{dotted.key: rule}`` of a dataclass schema (:func:`schema_fields`)."""
    return {f.key: f.rule for f in schema_fields(schema)}


REQUIRED = inspect.Parameter.empty  # the default of an argument that has none


@dataclass(frozen=True)
class Argument:
    """One constructor argument as declared: its default (:data:`REQUIRED` if none), its rule (None: any value),
    or the :class:`BuildContext` field the run supplies it from."""

    name: str
    default: Any
    rule: Rule | None = None
    from_run: str | None = None
    doc: str = ''  # what it is for: the string in its Annotated type


def _plain_rule(hint: Any, optional: bool) -> Rule | None:
    """A rule for a plain ``int``, ``float`` or ``bool`` annotation (Composer's own classes declare no rules)."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint, optional = args[0], True
    if hint is bool:
        return Flag()
    if hint in (int, float):
        return Number(integer=hint is int, optional=optional)
    return None


_DECLARED: dict[type, dict[str, Argument]] = {}


def declared(cls: type, rules: Mapping[str, Rule] | None = None) -> dict[str, Argument]:
    """The arguments of ``cls``'s constructor: each with the rule of its ``Annotated`` type, else ``rules[name]``,
    else one read off a plain ``int``/``float``/``bool`` annotation; ``*args`` and ``**kwargs`` are left out."""
    if rules is None and cls in _DECLARED:
        return _DECLARED[cls]
    try:  # a class's constructor, or a function's own arguments (an artifact builder's)
        hints = typing.get_type_hints(cls if inspect.isfunction(cls) else cls.__init__, include_extras=True)
    except (NameError, TypeError):  # a foreign class whose annotations name what its module does not import
        hints = {}
    found = {}
    for name, param in inspect.signature(cls).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        metadata = getattr(hints.get(name), '__metadata__', ())
        stray = [m for m in metadata if not isinstance(m, (Rule, FromRun, str))]
        if stray:  # Annotated[float, Alias, ...] where Annotated[Alias, ...] was meant: the alias's rule would be lost
            raise TypeError(f'{cls.__qualname__}.{name}: Annotated metadata {stray[0]!r} is neither a rule nor a description')
        marker = rule_of(hints.get(name))
        doc = next((m for m in metadata if isinstance(m, str)), '')
        if isinstance(marker, FromRun):
            found[name] = Argument(name, param.default, from_run=marker.field, doc=doc)
            continue
        rule = (rules or {}).get(name) or marker or _plain_rule(hints.get(name), param.default is None)
        found[name] = Argument(name, param.default, rule, doc=doc)
    if rules is None:
        _DECLARED[cls] = found
    return found


def declared_repr(obj: Any) -> str:
    """``Name(arg=value, ...)``: the arguments ``obj`` was built with (after their rules), in the order its
    constructor declares them, those the run supplies (:class:`FromRun`) left out. The same arguments spell the same
    string, with no object address: Composer keeps an algorithm's repr in every checkpoint, and a resumed run's must
    equal the uninterrupted run's."""
    values = getattr(obj, '_declared_values', {})
    return f'{type(obj).__name__}({", ".join(f"{k}={v!r}" for k, v in values.items())})'


def checked(cls: type) -> type:
    """Apply the rules of ``cls``'s ``Annotated`` constructor arguments whenever it is built, also in plain Python:
    a refused value is a one-line UsageError naming the argument, and a value a rule converts (``8/255``) arrives
    converted. Artifact arguments are left to the constructor, which reads them anyway. Unless the class writes its
    own, its repr is :func:`declared_repr`."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = inspect.signature(init).bind(self, *args, **kwargs)
        arguments = declared(cls)
        for name, argument in arguments.items():
            rule = argument.rule
            if name in bound.arguments and rule is not None and not isinstance(rule, Artifact):
                bound.arguments[name] = rule.check(name, bound.arguments[name])
        init(*bound.args, **bound.kwargs)
        bound.apply_defaults()  # after a subclass's constructor has called its base's: the subclass's arguments win
        self._declared_values = {n: bound.arguments[n] for n, a in arguments.items() if a.from_run is None}

    cls.__init__ = __init__  # type: ignore[method-assign]
    if '__repr__' not in vars(cls):
        cls.__repr__ = declared_repr  # type: ignore[method-assign]
    return cls


# ----- the command line ----------------------------------------------------------------------------------------------


def arg_type(rule: Rule) -> Callable[[str], Any]:
    """An ``argparse`` ``type=`` from ``rule``: the string is read by :meth:`Rule.from_text` and checked.

    A string that does not parse is argparse's own ``invalid int value: 'many'``; a value the rule refuses is its
    one-line message. The function carries its rule (``.rule``), so tests and docs read what each argument accepts.
    """

    def convert(text: str) -> Any:
        value = rule.from_text(text)
        try:
            return rule.check(convert.flag, value)  # type: ignore[attr-defined]
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.rule = rule  # type: ignore[attr-defined]
    convert.flag = 'value'  # type: ignore[attr-defined]  # set by recipes.cli.ArgumentParser.add_argument
    convert.__name__ = 'int' if isinstance(rule, Number) and rule.integer else 'float' if isinstance(rule, Number) else 'value'
    return convert


# ----- the keys of a sweep YAML (recipes.study.spec) -----------------------------------------------------------------
# A sweep's lists and its table of recipes, with the refusals its users have always read (tests/test_sweep.py).

_ENTRY_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')


@dataclass(frozen=True)
class SweepSeeds(Seeds):
    """:class:`Seeds` as a sweep's ``seeds:``, a repeat refused as ``seeds [1, 1] repeat a seed``."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        whole = isinstance(value, (list, tuple)) and all(isinstance(s, int) and not isinstance(s, bool) for s in value)
        if whole and len(set(value)) != len(value):
            raise UsageError(f'{key} {list(value)} repeat a seed: each seed is one independent run')
        return super().check(key, value, cfg)


@dataclass(frozen=True)
class Budgets(Rule):
    """A non-empty list of distinct ratios of ``max_duration`` in (0, 100], returned sorted, as floats."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if not isinstance(value, (list, tuple)) or not value or not all(
                isinstance(b, (int, float)) and not isinstance(b, bool) and 0 < b <= 100 for b in value):
            raise UsageError(f'{key}={value!r} must be a list of ratios of max_duration in (0, 100], e.g. [0.25, 0.5, 1, 2]')
        if len({f'{b:g}' for b in value}) != len(value):
            raise UsageError(f'{key}={value} repeats a budget')
        return sorted(float(b) for b in value)

    def describe(self) -> str:
        return 'a list of distinct ratios of `max_duration` in (0, 100], e.g. `[0.25, 0.5, 1, 2]`'

    def invalid_example(self) -> Any:
        return [0.5, 0]


@dataclass(frozen=True)
class OverrideList(Rule):
    """A YAML list of ``key=value`` strings (a lone string is refused); the config checks the keys and values."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise UsageError(f'{key} must be a list of key=value strings, e.g. [data.label_noise=0.4]')
        for override in value:
            if '=' not in override or not override.split('=', 1)[0].strip():
                raise UsageError(f'{key} entry {override!r} is not key=value (for example seed=3)')
        return list(value)

    def describe(self) -> str:
        return 'a list of `key=value` strings'

    def invalid_example(self) -> Any:
        return ['lr']


@dataclass(frozen=True)
class BudgetSettings(Rule):
    """A mapping from budgets (ratios of ``max_duration``) to lists of ``key=value`` strings, keys as floats."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        example = "{0.5: [optimizer.lr=0.1, scheduler.t_warmup=0.1dur], 1: [optimizer.lr=0.1, scheduler.t_warmup=0.1dur]}"
        if not isinstance(value, dict) or not value:
            raise UsageError(f'{key}={value!r} must map budgets to lists of key=value strings, e.g. {example}')
        out: dict[float, list[str]] = {}
        for budget, overrides in value.items():
            if not isinstance(budget, (int, float)) or isinstance(budget, bool) or not 0 < budget <= 100:
                raise UsageError(f'{key} key {budget!r} is not a budget: use ratios of max_duration such as 0.5')
            out[float(budget)] = OverrideList().check(f'{key}.{budget:g}', overrides)
        return out

    def describe(self) -> str:
        return 'a mapping from budgets to lists of `key=value` strings, e.g. `{0.5: [optimizer.lr=0.1]}`'

    def invalid_example(self) -> Any:
        return {'half': ['optimizer.lr=0.1']}


@dataclass(frozen=True)
class NamedEntries(Rule):
    """A mapping from names (letters, digits, ``_ . -``: each names a folder) to mappings shaped like ``example``;
    the entries' own keys are read by the schema of an entry (:func:`recipes.study.spec.read_schema`)."""

    what: str  # what an entry is: 'recipe'
    example: str  # its shape: '{yaml: PATH, overrides: [...]}'

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if not isinstance(value, dict):
            raise UsageError(f'{key} must map a name to {self.example}')
        for name, entry in value.items():
            if not isinstance(name, str) or not _ENTRY_NAME.fullmatch(name):
                raise UsageError(f'{self.what} name {name!r} must be letters, digits, _ . or - (it names a folder)')
            if not isinstance(entry, dict):
                raise UsageError(f'{key}.{name} must be a mapping {self.example}')
        return value

    def describe(self) -> str:
        return f'a mapping from {self.what} names (letters, digits, `_ . -`) to `{self.example}`'

    def invalid_example(self) -> Any:
        return {'a/b': {}}



@dataclass(frozen=True)
class Section(Rule):
    """A mapping shaped like ``example``, whose own keys the schema of the section reads
    (:func:`recipes.study.spec.read_schema`); also ``true`` where ``true_means`` says what it stands for."""

    example: str  # its shape: '{seeds: [...], grid: {KEY: [VALUES]}}'
    true_means: str = ''  # what `true` stands for ('the sweep's grid'); '' where only a mapping will do

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if isinstance(value, dict) or (self.true_means and value is True):
            return value
        alternative = f', or true ({self.true_means})' if self.true_means else ''
        raise UsageError(f'{key}={value!r} must be a mapping {self.example}{alternative}')

    def describe(self) -> str:
        return f'a mapping `{self.example}`' + (f', or `true` ({self.true_means})' if self.true_means else '')

    def invalid_example(self) -> Any:
        return 'yes'


_CONFIG_KEY = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*')


def _is_setting(value: Any) -> bool:
    """A value a grid may try: a YAML scalar other than null, or a list of them (``[0.5dur, 0.75dur]``)."""
    scalar = (str, int, float, bool)
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


@dataclass(frozen=True)
class Grid(Rule):
    """A mapping from config keys to non-empty lists of distinct values to try (YAML scalars, or lists of them); a
    key in ``reserved`` (one the sweep sets for every run) is refused. The config checks the keys and values."""

    reserved: tuple[str, ...] = ()

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        example = '{optimizer.lr: [0.05, 0.1, 0.2], scheduler.t_warmup: [0.1dur, 0.25dur]}'
        if not isinstance(value, dict) or not value:
            raise UsageError(f'{key}={value!r} must map config keys to lists of values, e.g. {example}')
        for name, values in value.items():
            if not isinstance(name, str) or not _CONFIG_KEY.fullmatch(name):
                raise UsageError(f'{key} key {name!r} is not a config key such as optimizer.lr')
            if name in self.reserved:
                raise UsageError(f'{key}.{name}: the sweep sets {name} for every run ({", ".join(self.reserved)}): '
                                 'tune another key')
            if not isinstance(values, list) or not values or not all(map(_is_setting, values)):
                raise UsageError(f'{key}.{name}={values!r} must be a non-empty list of values, e.g. [0.05, 0.1, 0.2]')
            if len({repr(v) for v in values}) != len(values):
                raise UsageError(f'{key}.{name}={values} repeats a value: each value is tried once')
        return {name: list(values) for name, values in value.items()}

    def describe(self) -> str:
        return 'a mapping from config keys to lists of values, e.g. `{optimizer.lr: [0.05, 0.1, 0.2]}`'

    def invalid_example(self) -> Any:
        return {'optimizer.lr': []}


@dataclass(frozen=True)
class PastValues(Rule):
    """A non-empty list of distinct YAML scalars, one per past run: what ``{past}`` stands for in a sweep's overrides."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        scalar = (str, int, float, bool)
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, scalar) for v in value):
            raise UsageError(f'{key}={value!r} must be a list of values, one per past run, e.g. [17, 18, 19]')
        if len({str(v) for v in value}) != len(value):
            raise UsageError(f'{key}={list(value)} repeats a value: each one names a different past run')
        return list(value)

    def describe(self) -> str:
        return 'a list of distinct values (YAML scalars), one per past run, e.g. `[17, 18, 19]`'

    def invalid_example(self) -> Any:
        return [17, 17]



_HOST_PORT = re.compile(r'(ray://)?[A-Za-z0-9_.\[\]:-]+:[0-9]{1,5}')


@dataclass(frozen=True)
class RayAddress(Rule):
    """Where a Ray cluster is: ``auto`` (the one this machine belongs to), ``HOST:PORT`` of its head (the GCS port,
    6379 by default) or ``ray://HOST:PORT`` (Ray Client, port 10001)."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value != 'auto' and not (isinstance(value, str) and _HOST_PORT.fullmatch(value)):
            raise UsageError(f'{key}={value!r} must be auto, HOST:PORT of the head (e.g. 10.0.0.5:6379) or '
                             'ray://HOST:10001')
        return value

    def describe(self) -> str:
        return '`auto`, `HOST:PORT` of the head node, or `ray://HOST:10001`'

    def invalid_example(self) -> Any:
        return 'localhost'


@dataclass(frozen=True)
class YamlMapping(Rule):
    """A mapping with string keys, passed on as it is (``example`` shows its shape); None if ``optional``."""

    example: str
    optional: bool = False

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None and self.optional:
            return None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise UsageError(f'{key}={value!r} must be a mapping such as {self.example}')
        return value

    def describe(self) -> str:
        return f'a mapping such as `{self.example}`' + (', or null' if self.optional else '')

    def invalid_example(self) -> Any:
        return ['a', 'b']


__all__ += ['BudgetSettings', 'Budgets', 'Grid', 'NamedEntries', 'OverrideList', 'PastValues', 'RayAddress', 'Section', 'SweepSeeds',
            'YamlMapping']
