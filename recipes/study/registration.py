"""A study registered before it runs: ``{results}/registration.json``, the comparisons it was started to make.

A sweep's comparisons are set by :data:`COMPARISON_KEYS` (which recipes, at which budgets, on which seeds and past
runs, against which baseline and references, tuned how); the other keys (:data:`EXECUTION_KEYS`: where the results
go, how runs are launched and how many at once) say how it runs, not what it compares, and neither do the ``cpus``
and ``gpus`` a past run or an artifact asks of a Ray cluster. :func:`comparisons` is those keys as
:func:`recipes.study.spec.plain` writes them; :func:`canonical_text` is that mapping as JSON with sorted keys, and
its sha256 is the study's registration.

The first :func:`recipes.study.runner.run_sweep` of a results folder writes ``registration.json`` (:func:`register`)
before it writes ``sweep.yaml`` or starts anything; every later one refuses, in one line naming the first key that
changed, a sweep whose comparisons differ: a study with other comparisons is another study, in a new results folder.
Publishing a study (:func:`recipes.study.results_page.publish`) refuses it where the sweep file committed for it has
other comparisons than it was registered with (:func:`check_sweep_file`). ``before_runs`` says whether the folder held
no ``sweep.yaml`` when the registration was written: false for a study started before sweeps registered (or whose
registration was deleted), registered when it was next resumed.

``registration.json``::

    {"sha256": "9f2c...", "registered": "2025-05-01T09:00:00Z", "before_runs": true,
     "keys": ["seeds", "budgets", ...], "text": "{\\n \\"artifacts\\": null, ..."}
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.study.difference import first_difference
from recipes.study.spec import SWEEP_FILE, SweepSpec, parse_sweep, plain

__all__ = ['COMPARISON_KEYS', 'EXECUTION_KEYS', 'REGISTRATION_FILE', 'canonical_text', 'check_sweep_file',
           'comparisons', 'read_registration', 'register', 'registration_hash']

REGISTRATION_FILE = 'registration.json'
# The sweep keys that define its comparisons, and those that do not; every key of SweepSpec is in one of them.
COMPARISON_KEYS = ('seeds', 'budgets', 'baseline', 'reference', 'primary', 'tune', 'schedules', 'past', 'past_runs',
                   'artifacts', 'overrides', 'recipes')
EXECUTION_KEYS = ('results', 'ranks', 'parallel', 'threads_per_run', 'launcher', 'past_root', 'ray')
RESOURCES = ('cpus', 'gpus')  # what a past run or an artifact's build asks of a Ray cluster: not a comparison


def comparisons(sweep: SweepSpec) -> dict[str, Any]:
    """The sweep's :data:`COMPARISON_KEYS` as ``sweep.yaml`` writes them (null where unset), without the Ray
    resources of its past runs and artifacts."""
    found = {key: plain(getattr(sweep, key)) for key in COMPARISON_KEYS}
    for key in ('past_runs', 'artifacts'):
        if found[key] is not None:
            found[key] = {name: {k: v for k, v in entry.items() if k not in RESOURCES} for name, entry in found[key].items()}
    return found


def canonical_text(sweep: SweepSpec) -> str:
    """:func:`comparisons` as JSON, keys sorted: the text the registration hashes."""
    return json.dumps(comparisons(sweep), sort_keys=True, indent=1, default=str)


def registration_hash(sweep: SweepSpec) -> str:
    return hashlib.sha256(canonical_text(sweep).encode()).hexdigest()


def read_registration(results: str) -> dict[str, Any] | None:
    """``{results}/registration.json``, or None where the study was never registered."""
    uri = storage.join(results, REGISTRATION_FILE)
    if not storage.exists(uri):
        return None
    try:
        recorded = json.loads(storage.read_bytes(uri))
        json.loads(recorded['text'])
        return recorded if isinstance(recorded.get('sha256'), str) else None
    except (ValueError, KeyError, TypeError):
        raise UsageError(f'{uri} is not a registration a sweep wrote: give the study a new results folder') from None


def _changed(recorded: dict[str, Any], uri: str, sweep: SweepSpec, what: str, fix: str) -> UsageError:
    """One line: ``what`` (a sweep) makes other comparisons than ``uri`` registered, the first key that changed, ``fix``."""

    key = first_difference(json.loads(recorded['text']), comparisons(sweep), 'registered')
    return UsageError(f'{what} makes other comparisons than {uri} registered: first changed key {key}: {fix}')


def register(sweep: SweepSpec) -> dict[str, Any]:
    """Write ``{results}/registration.json`` for ``sweep`` where the folder has none; where it has one, refuse a sweep
    whose comparisons differ from it. Returns the registration."""
    uri = storage.join(sweep.results, REGISTRATION_FILE)
    recorded = read_registration(sweep.results)
    if recorded is not None:
        if recorded['sha256'] != registration_hash(sweep):
            raise _changed(recorded, uri, sweep, 'this sweep', 'a study\'s comparisons are fixed when it first runs, '
                           'so give the changed sweep a new results folder')
        return recorded
    recorded = {'sha256': registration_hash(sweep), 'registered': datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
                'before_runs': not storage.exists(storage.join(sweep.results, SWEEP_FILE)),
                'keys': list(COMPARISON_KEYS), 'text': canonical_text(sweep)}
    storage.write_bytes(uri, json.dumps(recorded, indent=1).encode())
    return recorded


def check_sweep_file(results: str, sweep_file: Path) -> dict[str, Any] | None:
    """The registration of the study in ``results`` after checking that ``sweep_file`` (the sweep file committed for
    it) makes the comparisons it was registered with; None for a study never registered."""
    recorded = read_registration(results)
    if recorded is None:
        return None
    if not sweep_file.is_file():
        raise UsageError(f'{results} was registered, but {sweep_file}, the sweep file to check it against, does not '
                         'exist: commit the study\'s sweep file')
    sweep = parse_sweep(yaml.safe_load(sweep_file.read_text()), str(sweep_file))
    if recorded['sha256'] != registration_hash(sweep):
        raise _changed(recorded, storage.join(results, REGISTRATION_FILE), sweep, str(sweep_file),
                       f'publish results made with the committed comparisons: run {sweep_file} in a new results '
                       'folder, or commit the sweep file the study ran')
    return recorded
