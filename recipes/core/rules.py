"""The one vocabulary of input rules: config keys, sweep keys, algorithm and builder arguments, command lines.

Every input is declared once, with its rule beside it:

* a config key as a field of :class:`recipes.config.TrainConfig`: ``global_batch_size: Annotated[int, Number(1, 1e6,
  integer=True)] = 128``;
* a sweep key as a field of :class:`recipes.study.spec.SweepSpec`, the same way;
* an algorithm's argument in its constructor, a builder's in its function: ``temperature: Annotated[float, Number(0,
  1000, low_open=True)] = 4.0``, which :mod:`recipes.core.declare` reads for the registry, the presets, the generated
  command lines and the docs;
* a command-line argument as its ``argparse`` type: ``type=arg_type(Number(1, 1e6, integer=True))``
  (:func:`recipes.cli.arg_type`).

A rule's :meth:`Rule.check` takes the key as the user wrote it and the value, and returns the value to use (a pixel
value ``8/255`` becomes a float) or raises a :class:`UsageError` of one line naming the key, the value and the fix.
:meth:`Rule.describe` says what it accepts and :meth:`Rule.invalid_example` gives a value it refuses: the docs'
tables of keys and of error messages are generated from those (``docs/``).

This module holds the generic rules (numbers, choices, times, names, paths, pixel values). The rules that need
what a rule is about live beside it: an artifact's (a past run, scores, a bank, a teacher cache) beside its reader in
:mod:`recipes.core.artifacts`, the data's in :mod:`recipes.core.data.rules`, the model name's in
:mod:`recipes.core.model`, a sweep file's in :mod:`recipes.study.sweep_rules`; rules that tie keys together are
:mod:`recipes.core.ties`.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from recipes.core import storage
from recipes.core.errors import UsageError, did_you_mean

__all__ = [
    'Choice',
    'ExistingFile',
    'Filename',
    'Flag',
    'Folder',
    'LocalFile',
    'Location',
    'MicroBatch',
    'Number',
    'OneOf',
    'Overrides',
    'PixelValue',
    'Rule',
    'RunName',
    'Seeds',
    'TimeList',
    'TimeString',
    'check_location',
    'named',
    'parse_pixel_value',
    'pixel_text',
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
        if time.unit.value == 'dur' and time.value > 1 and not self.within_run:
            raise UsageError(f'{key}={value} is more than the whole run: a share of the run (dur) lies in (0, 1], e.g. '
                             '1dur for once, at the end')
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
        return 'no/such/recipe.yaml'


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


# ----- what the run supplies -----------------------------------------------------------------------------------------


# ----- the command line ----------------------------------------------------------------------------------------------


# ----- the keys of a sweep YAML (recipes.study.spec) -----------------------------------------------------------------
# A sweep's lists and its table of recipes, with the refusals its users have always read (tests/test_sweep.py).
