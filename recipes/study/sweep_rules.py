"""The rules of a sweep file's keys (:class:`recipes.study.spec.SweepSpec`): seeds, budgets, overrides, settings per
budget, named entries and sections, a tuning grid, past values, a Ray address, a YAML mapping."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from recipes.core.errors import UsageError
from recipes.core.rules import Rule, Seeds

__all__ = ['BudgetSettings', 'Budgets', 'Grid', 'NamedEntries', 'OverrideList', 'PastValues', 'RayAddress', 'Section',
           'SweepSeeds', 'YamlMapping']


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


def _is_value(value: Any) -> bool:
    """A YAML scalar other than null, or a list of them (``[0.5dur, 0.75dur]``)."""
    scalar = (str, int, float, bool)
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


def _is_setting(value: Any) -> bool:
    """A value a grid may try: a value, or tied settings, a mapping from keys under the axis's key to values
    (``optimizer: [{name: sgd, lr: 0.1}, {name: adamw, lr: 0.001}]``: each point sets both)."""
    if isinstance(value, dict):
        return bool(value) and all(isinstance(k, str) and _CONFIG_KEY.fullmatch(k) and _is_value(v)
                                   for k, v in value.items())
    return _is_value(value)


@dataclass(frozen=True)
class Grid(Rule):
    """A mapping from config keys to non-empty lists of distinct values to try (YAML scalars, lists of them, or tied
    settings: mappings from keys under the axis's key to such values); a key in ``reserved`` (one the sweep sets for
    every run) is refused. The config checks the keys and values."""

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
                raise UsageError(f'{key}.{name}={values!r} must be a non-empty list of values, e.g. [0.05, 0.1, 0.2], '
                                 'or of tied settings under it, e.g. optimizer: [{name: sgd, lr: 0.1}, {name: adamw, '
                                 'lr: 0.001}]')
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
