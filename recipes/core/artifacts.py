"""What past runs leave behind, as files: a run folder, a scores artifact, an adversarial bank.

Each kind has its layout (the file that marks it complete), the command that makes one, and a check that one is
there, named in one line with that command when it is not. The rules of :mod:`recipes.core.rules` and the readers in
:mod:`algorithms` share these, so a missing artifact reads the same wherever it is first noticed.
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.core.run_files import CONFIG_FILE

__all__ = [
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

RECIPES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'yamls')
MAKE_PAST_RUN = 'train one with `python launch/train.py yamls/digits/baseline.yaml` (or yamls/baseline.yaml)'
MAKE_SCORES = 'compute it with `python launch/score.py --run RUN --checkpoints auto --method el2n --out PATH.npy`'
BANK_FILE = 'bank.json'
BUILD_BANK = 'build one with `python launch/build_adv_bank.py --run RUN --checkpoints ep4,ep8 --out DIR_OR_S3_URI`'
CACHE_FILE = 'cache.json'
BUILD_CACHE = 'build one with `python launch/cache_teacher.py --run RUN --checkpoint latest --top_k 10 --out DIR_OR_S3_URI`'


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
        raise MissingPastRun(folder, f'train it with `python launch/train.py {recipe}`') if recipe else MissingPastRun(folder)
    config = yaml.safe_load(storage.read_bytes(uri))
    if not isinstance(config, dict) or 'model' not in config:
        raise UsageError(f'{uri} is not a run config (no model section): was the folder written by launch/train.py?')
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
