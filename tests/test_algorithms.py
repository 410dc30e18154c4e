"""Generic tests every registered algorithm passes, after Composer's own: it builds from a YAML recipe, trains two
batches, resumes bit-exactly from the batch-1 checkpoint, has a ``repr`` without object addresses and reports its
reused compute as finite numbers. Each algorithm's entry in tests/algorithm_settings.py says how to build it."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from algorithm_settings import SETTINGS, Artifacts
from conftest import TINY, train_in_process

from algorithms.past_run import load_checkpoint_state
from algorithms.protocols import ReusesCompute
from recipes.config import load_config
from recipes.registry import ALGORITHMS
from recipes.trainer import build_trainer

# Two batches, a checkpoint after each, one evaluation at the end.
TWO_BATCHES = ('max_duration=2ba', 'eval_interval=2ba', 'save_interval=1ba')
# Checkpoint entries that must match after a resume; the callbacks' entries too (the ledger, the history, a callback
# the algorithm works with), except the checkpoint saver's, which holds the run's own paths.
COMPARED = ('model', 'optimizers', 'schedulers', 'algorithms', 'rng')
UNCOMPARED_CALLBACKS = {'CheckpointSaver'}
# What a run records about its own resumptions (metrics.json's resumed_at) differs from an uninterrupted run's by design.
UNCOMPARED_ENTRIES = {('RunHistory', 'resumed_at')}


def recipe(name: str, artifacts: Artifacts, folder: Path) -> str:
    """A YAML recipe holding just the algorithm, with its entry's arguments."""
    path = folder / f'{name}.yaml'
    path.write_text(yaml.safe_dump({'algorithms': {name: SETTINGS[name].yaml_args(artifacts)}}))
    return str(path)


def assert_equal(a: Any, b: Any, where: str) -> None:
    """Equal to the bit: tensors by value and dtype, containers entry by entry."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=where)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_equal(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal(x, y, f'{where}[{i}]')
    else:
        assert a == b, where


def test_every_registered_algorithm_has_a_setting() -> None:
    missing, stale = sorted(set(ALGORITHMS) - set(SETTINGS)), sorted(set(SETTINGS) - set(ALGORITHMS))
    assert not missing, f'add an entry to tests/algorithm_settings.py for {missing}'
    assert not stale, f'tests/algorithm_settings.py has entries for unregistered names {stale}'


@pytest.mark.parametrize('name', sorted(SETTINGS))
def test_trains_and_resumes_bit_exactly(name: str, artifacts: Artifacts, tmp_path: Path) -> None:
    setting = SETTINGS[name]
    path = recipe(name, artifacts, tmp_path)
    whole = train_in_process(*setting.overrides, *TWO_BATCHES, f'save_folder={tmp_path}/whole', recipe=path)
    assert int(whole.state.timestamp.batch) == 2
    first = load_checkpoint_state(f'{tmp_path}/whole/ep0-ba1-rank0.pt')
    assert not torch.equal(first['model']['module.fc.weight'], whole.state.model.state_dict()['module.fc.weight'])

    resumed = train_in_process(*setting.overrides, *TWO_BATCHES, f'save_folder={tmp_path}/resumed',
                               f'load_path={tmp_path}/whole/ep0-ba1-rank0.pt', recipe=path)
    assert int(resumed.state.timestamp.batch) == 2
    a, b = (load_checkpoint_state(f'{tmp_path}/{run}/ep0-ba2-rank0.pt') for run in ('whole', 'resumed'))
    for key in COMPARED:
        assert_equal(a.get(key), b.get(key), key)
    callbacks = set(a['callbacks']) - UNCOMPARED_CALLBACKS
    for key in callbacks:
        a_state, b_state = ({k: v for k, v in s['callbacks'][key].items() if (key, k) not in UNCOMPARED_ENTRIES}
                            for s in (a, b))
        assert_equal(a_state, b_state, f'callbacks.{key}')


@pytest.mark.parametrize('name', sorted(SETTINGS))
def test_repr_and_reused_compute(name: str, artifacts: Artifacts, tmp_path: Path) -> None:
    setting = SETTINGS[name]
    trainer = build_trainer(load_config(recipe(name, artifacts, tmp_path), [*TINY, 'save_folder=null', *setting.overrides]))
    algorithms = trainer.state.algorithms
    assert algorithms
    for alg in algorithms:
        assert not re.search(r'0x[0-9a-fA-F]{6,}', repr(alg)), repr(alg)
        assert not re.search(r'0x[0-9a-fA-F]{6,}', alg.state_dict()['repr'])
    built = next(alg for alg in algorithms if type(alg).__name__ == ALGORITHMS[name].__name__)
    spelled = repr(built)  # from the declaration: every argument the entry gave, by name and value
    assert spelled.startswith(f'{type(built).__name__}(') and spelled.endswith(')')
    for arg in setting.yaml_args(artifacts):
        assert f'{arg}=' in spelled, (arg, spelled)
    reusing = [alg for alg in algorithms if isinstance(alg, ReusesCompute)]
    if setting.reuses:
        assert reusing, f'{name} reuses past runs: it must report reused_compute()'
    for alg in reusing:
        reused = alg.reused_compute()
        assert isinstance(reused, dict) and all(isinstance(k, str) for k in reused)
        assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in reused.values()), reused
        assert sum(reused.values()) > 0, reused
    trainer.close()
