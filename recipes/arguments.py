"""Value rules for the command-line arguments of every entry point in ``launch/``, checked before anything heavy.

:data:`ARGUMENTS` maps an entry point (the script's name without ``.py``) to one rule per argument (argparse's
``dest``); :func:`check_arguments` applies them to the parsed arguments, then the rules that tie arguments together.
The rules are those of the config keys (:mod:`recipes.validate`) plus the few only entry points need.
``tests/test_fuzz_cli.py`` fails for an argument without a rule.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.core.rules import SEED, Number, PastRunFolder, check_location, named

__all__ = ['ARGUMENTS', 'check_arguments']


@dataclass(frozen=True)
class ByParser:
    """argparse itself allows only valid values (``choices``, ``store_true``)."""

    def check(self, key: str, value: Any, args: argparse.Namespace) -> None:
        return


@dataclass(frozen=True)
class Location:
    """A local path or ``s3://bucket/prefix`` (need not exist); None if ``optional``."""

    optional: bool = False
    empty_is_none: bool = False  # ``""`` asks for no file

    def check(self, key: str, value: Any, args: argparse.Namespace) -> None:
        if (value is None and self.optional) or (value == '' and self.empty_is_none):
            return
        check_location(key, value)


@dataclass(frozen=True)
class LocalFile:
    """A local file that must exist (a YAML the entry point reads)."""

    example: str

    def check(self, key: str, value: Any, args: argparse.Namespace) -> None:
        check_location(key, value)
        if not os.path.isfile(value):
            raise UsageError(f'{key}={value} does not exist or is not a file: pass a file such as {self.example}')


@dataclass(frozen=True)
class PastRuns:
    """One past run folder (or a list of them when ``many``): ``config.yaml`` present."""

    many: bool = False

    def check(self, key: str, value: Any, args: argparse.Namespace) -> None:
        for folder in value if self.many else [value]:
            PastRunFolder().check(key, folder)


@dataclass(frozen=True)
class Checkpoints:
    """Checkpoint names (comma-separated unless ``single``) that each run of ``runs`` (argument names) holds."""

    runs: tuple[str, ...] = ('run',)
    single: bool = False
    auto: bool = False  # ``auto`` lets the entry point choose

    def check(self, key: str, value: Any, args: argparse.Namespace) -> None:
        from algorithms.past_run import PastRun

        if self.auto and value == 'auto':
            return
        names = [value] if self.single else [c.strip() for c in str(value).split(',') if c.strip()]
        if not names or not all(names):
            raise UsageError(f'{key}={value!r} names no checkpoint: pass e.g. {key} ep2,ep3 or latest')
        folders = [f for name in self.runs for f in (getattr(args, name) if name == 'runs' else [getattr(args, name)])]
        for folder in folders:
            run = PastRun(folder)
            for name in names:
                named(key, run.resolve, name)


@dataclass(frozen=True)
class PixelValue:
    """A value on the pixel scale, ``8/255`` or ``0.03``, in (0, 1]; None if ``optional``."""

    optional: bool = False

    def check(self, key: str, value: Any, args: argparse.Namespace) -> None:
        from algorithms.adversarial_replay.pgd import parse_pixel_value, pixel_text

        if value is None and self.optional:
            return
        number = parse_pixel_value(value, key)
        if not 0 < number <= 1:
            raise UsageError(f'{key}={pixel_text(number)} is out of range: use a value in (0, 1] of the pixel range, e.g. 8/255')


@dataclass(frozen=True)
class NoBank:
    """An output folder that holds no adversarial bank yet."""

    def check(self, key: str, value: Any, args: argparse.Namespace) -> None:
        from recipes.core.artifacts import BANK_FILE

        check_location(key, value)
        named(key, storage.check_reachable, value)
        if storage.exists(storage.join(value, BANK_FILE)):
            raise UsageError(f'{key}={value} already holds an adversarial bank: choose another {key} or delete it first')


@dataclass(frozen=True)
class Overrides:
    """``key=value`` strings (the config checks the keys and values themselves)."""

    def check(self, key: str, value: Any, args: argparse.Namespace) -> None:
        for override in value:
            if '=' not in override or not override.split('=', 1)[0].strip():
                raise UsageError(f'{key}: {override!r} is not key=value (for example seed=3 or max_duration=4ep)')


BATCH = Number(1, 1_000_000, integer=True)
WORKERS = Number(0, 256, integer=True)
STEPS = Number(1, 10_000, integer=True)
POSITIONAL = {
    'train': ('recipe', 'overrides'), 'sweep': ('sweep', 'overrides'), 'report': ('results',), 'inspect_run': ('run',),
}

ARGUMENTS: dict[str, dict[str, Any]] = {
    'train': {'recipe': LocalFile('yamls/digits/baseline.yaml'), 'overrides': Overrides()},
    'score': {
        'run': PastRuns(), 'runs': PastRuns(many=True), 'checkpoints': Checkpoints(('run', 'runs'), auto=True),
        'method': ByParser(), 'out': Location(), 'batch_size': BATCH, 'num_workers': WORKERS,
        'strict': ByParser(),
    },
    # Values before paths: a bad number is named without touching storage.
    'build_adv_bank': {
        'eps': PixelValue(), 'step_size': PixelValue(), 'steps': STEPS, 'fraction': Number(0, 1, low_open=True),
        'seed': SEED, 'batch_size': BATCH, 'num_workers': WORKERS, 'strict': ByParser(),
        'run': PastRuns(), 'checkpoints': Checkpoints(auto=True), 'out': NoBank(),
    },
    'eval_robustness': {
        'eps': PixelValue(), 'step_size': PixelValue(optional=True), 'steps': STEPS,
        'num_samples': Number(1, 10**9, integer=True, optional=True), 'batch_size': BATCH, 'seed': SEED,
        'run': PastRuns(), 'checkpoint': Checkpoints(single=True), 'json': Location(optional=True),
    },
    'sweep': {'sweep': LocalFile('yamls/sweeps/digits.yaml'), 'overrides': Overrides(), 'dry_run': ByParser()},
    'report': {'results': Location(), 'out': Location(optional=True)},
    'convert_cifar100': {'in_root': Location(), 'out_root': Location(), 'download': ByParser()},
    'convert_images': {
        'in_root': Location(), 'out_root': Location(), 'val_fraction': Number(0, 1, low_open=True, high_open=True),
        'seed': SEED,
    },
    'inspect_run': {'run': PastRuns(), 'plot': Location(empty_is_none=True)},
    'demo': {'noisy': ByParser(), 'fresh': ByParser()},
    'study': {'fresh': ByParser()},
}


def _attack(args: argparse.Namespace) -> None:
    from algorithms.adversarial_replay.pgd import check_attack, parse_pixel_value

    eps = parse_pixel_value(args.eps, '--eps')
    step_size = eps / 4 if args.step_size is None else parse_pixel_value(args.step_size, '--step_size')
    check_attack(eps, step_size, args.steps)


CROSS_CHECKS = {'build_adv_bank': _attack, 'eval_robustness': _attack}


def check_arguments(script: str, args: argparse.Namespace, rules: Mapping[str, Any] | None = None) -> None:
    """Apply ``script``'s rule to each parsed argument (named ``--dest`` or ``dest``), then its cross checks."""
    for dest, rule in (ARGUMENTS[script] if rules is None else rules).items():
        rule.check(f'--{dest}' if dest not in POSITIONAL.get(script, ()) else dest, getattr(args, dest), args)
    if script in CROSS_CHECKS:
        CROSS_CHECKS[script](args)
