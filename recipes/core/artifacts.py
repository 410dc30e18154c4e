"""What past runs leave behind, as files: a run folder, a scores artifact, an adversarial bank.

Each kind has its layout (the file that marks it complete), the command that makes one, and a check that one is
there, named in one line with that command when it is not. The rules of :mod:`recipes.core.rules` and the readers in
:mod:`algorithms` share these, so a missing artifact reads the same wherever it is first noticed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from recipes.core import storage
from recipes.core.errors import UsageError, place
from recipes.core.rules import Rule, check_location, named
from recipes.core.run_files import CONFIG_FILE

__all__ = [
    'Artifact', 'BankFolder', 'CheckpointChoice', 'CheckpointList', 'CheckpointNames', 'NoBank', 'PastRunFolder',
    'PastRunFolders', 'ScoresFile', 'TeacherCacheFolder',
    'BANK_FILE',
    'BUILD_BANK',
    'BUILD_CACHE',
    'CACHE_FILE',
    'MAKE_PAST_RUN',
    'MAKE_SCORES',
    'MissingPastRun',
    'RECIPES',
    'bank_metadata',
    'cache_metadata',
    'made_from',
    'read_run_config',
    'recipe_saving_to',
    'require_bank',
    'require_cache',
    'require_scores',
    'scores_metadata',
    'scores_paths',
    'split_checkpoint_entry',
]

RECIPES = place('recipes')  # the recipes' folder (recipes/__init__.py says where)
MAKE_PAST_RUN = f'train one with `python {place("train")} {place("digits_recipe")}` (or {place("cifar100_recipe")})'
MAKE_SCORES = f'compute it with `python {place("score")} --run RUN --checkpoints auto --method el2n --out PATH.npy`'
BANK_FILE = 'bank.json'
BUILD_BANK = f'build one with `python {place("build_adv_bank")} --run RUN --checkpoints ep4,ep8 --out DIR_OR_S3_URI`'
CACHE_FILE = 'cache.json'
BUILD_CACHE = f'build one with `python {place("cache_teacher")} --run RUN --checkpoint latest --top_k 10 --out DIR_OR_S3_URI`'


class MissingPastRun(UsageError):
    """No past run at ``folder`` (its ``config.yaml`` is missing); ``hint`` says how to make one."""

    def __init__(self, folder: str, hint: str = MAKE_PAST_RUN) -> None:
        super().__init__(f'no past run at {folder} ({CONFIG_FILE} is missing): {hint}')
        self.folder = folder


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


def read_run_config(folder: str) -> dict[str, Any]:
    """A past run's resolved config (``config.yaml``). A missing one is answered with the recipe under ``yamls/``
    that trains it, where one saves to that folder."""
    storage.check_reachable(folder)
    uri = storage.join(folder, CONFIG_FILE)
    if not storage.exists(uri):
        recipe = recipe_saving_to(folder)
        raise MissingPastRun(folder, f'train it with `python {place("train")} {recipe}`') if recipe else MissingPastRun(folder)
    config = yaml.safe_load(storage.read_bytes(uri))
    if not isinstance(config, dict) or 'model' not in config:
        raise UsageError(f'{uri} is not a run config (no model section): was the folder written by {place("train")}?')
    return config


def split_checkpoint_entry(entry: str) -> tuple[str | None, str]:
    """``RUN_FOLDER:CHECKPOINT`` as ``(folder, name)``; a plain name (or an ``s3://`` URI, whose colon is followed by
    a slash) as ``(None, entry)``."""
    folder, _, name = str(entry).rpartition(':')
    return (folder, name) if folder and name and '/' not in name else (None, str(entry))


def scores_paths(uri: str) -> tuple[str, str]:
    """``(PATH.npy, PATH.json)`` for a scores artifact named with or without its ``.npy`` suffix."""
    base = uri[: -len('.npy')] if uri.endswith('.npy') else uri
    return f'{base}.npy', f'{base}.json'


def require_scores(uri: str) -> None:
    """Both files of a scores artifact are there (the ``.json`` is written last)."""
    npy, meta = scores_paths(uri)
    storage.check_reachable(npy)
    if not storage.exists(meta):
        raise UsageError(f'no scores artifact at {npy} ({meta} is missing, or its write did not finish): {MAKE_SCORES}')
    if not storage.exists(npy):
        raise UsageError(f'scores file {npy} does not exist although its .json does: {MAKE_SCORES}')


def require_bank(uri: str) -> None:
    """A finished adversarial bank is there (``bank.json`` is written last)."""
    storage.check_reachable(uri)
    if not storage.exists(storage.join(uri, BANK_FILE)):
        raise UsageError(f'no adversarial bank at {uri} ({BANK_FILE} is missing, or the build did not finish): {BUILD_BANK}')


def require_cache(uri: str) -> None:
    """A finished teacher cache is there (``cache.json`` is written last)."""
    storage.check_reachable(uri)
    if not storage.exists(storage.join(uri, CACHE_FILE)):
        raise UsageError(f'no teacher cache at {uri} ({CACHE_FILE} is missing, or the build did not finish): {BUILD_CACHE}')


def _json(uri: str) -> dict[str, Any]:
    return json.loads(storage.read_bytes(uri)) if storage.exists(uri) else {}


def scores_metadata(uri: str) -> dict[str, Any]:
    """A scores artifact's ``.json`` (empty where there is none)."""
    return _json(scores_paths(uri)[1])


def bank_metadata(uri: str) -> dict[str, Any]:
    """A bank's ``bank.json`` (empty where there is none)."""
    return _json(storage.join(uri, BANK_FILE))


def cache_metadata(uri: str) -> dict[str, Any]:
    """A teacher cache's ``cache.json`` (empty where there is none)."""
    return _json(storage.join(uri, CACHE_FILE))


def made_from(metadata: dict[str, Any]) -> list[str]:
    """``RUN:CHECKPOINT`` of the past-run checkpoints an artifact was made from, by its metadata (``runs`` or
    ``run``, and ``checkpoints``)."""
    runs = metadata.get('runs') or ([metadata['run']] if metadata.get('run') else [])
    return [f'{run}:{name}' for run in runs for name in metadata.get('checkpoints', [])]


# ----- the rules of arguments naming what past runs left behind ------------------------------------------------------


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
        named(key, read_run_config, value)
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
            folder, _ = split_checkpoint_entry(entry)
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
            folder, name = split_checkpoint_entry(str(entry))
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
        named(key, require_scores, value)
        return value

    def describe(self) -> str:
        return f'a scores artifact `PATH.npy` (with its `.json`) from `{place("score")}`'

    def invalid_example(self) -> Any:
        return 'runs/no-such-scores.npy'

    def reused(self, value: Any, arguments: Mapping[str, Any]) -> list[str]:
        return made_from(scores_metadata(str(value)))


@dataclass(frozen=True)
class BankFolder(Artifact):
    """An adversarial bank folder (or ``s3://`` prefix) from ``launch/build_adv_bank.py``, finished."""

    kind = 'bank'

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        check_location(key, value)
        named(key, require_bank, value)
        return value

    def describe(self) -> str:
        return f'an adversarial bank folder from `{place("build_adv_bank")}`'

    def invalid_example(self) -> Any:
        return 'runs/no-such-bank'

    def reused(self, value: Any, arguments: Mapping[str, Any]) -> list[str]:
        return made_from(bank_metadata(str(value)))


@dataclass(frozen=True)
class TeacherCacheFolder(Artifact):
    """A teacher cache folder (or ``s3://`` prefix) from ``launch/cache_teacher.py``, finished. None if ``optional``."""

    optional: bool = False
    kind = 'teacher cache'

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if value is None and self.optional:
            return None
        check_location(key, value)
        named(key, require_cache, value)
        return value

    def describe(self) -> str:
        return f'a teacher cache folder from `{place("cache_teacher")}`' + (', or null' if self.optional else '')

    def invalid_example(self) -> Any:
        return 'runs/no-such-cache'

    def reused(self, value: Any, arguments: Mapping[str, Any]) -> list[str]:
        return [] if value is None else made_from(cache_metadata(str(value)))


@dataclass(frozen=True)
class NoBank(Rule):
    """An output folder that holds no adversarial bank yet."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        check_location(key, value)
        named(key, storage.check_reachable, value)
        if storage.exists(storage.join(value, BANK_FILE)):
            raise UsageError(f'{key}={value} already holds an adversarial bank: choose another {key} or delete it first')
        return value

    def describe(self) -> str:
        return 'a folder or `s3://` prefix that holds no bank yet'

    def invalid_example(self) -> Any:
        return 's3://'
