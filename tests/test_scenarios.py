"""Retraining scenarios as data options: a seeded, class-stratified share of the training split, recorded in the run
folder and found again on resume, and training and evaluating on some classes only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from composer.core import Callback, Event, State
from composer.loggers import Logger
from conftest import TINY, train_in_process

from algorithms.curriculum.scoring import score_runs
from algorithms.past_run import PastRun
from recipes.config import load_config
from recipes.core.data import MDSImageDataset, resolve_root, stratified_subset
from recipes.core.errors import UsageError
from recipes.core.run_files import read_subset
from recipes.trainer import build_trainer


class SeenExamples(Callback):
    """The dataset indices and labels of every training batch, and the evaluation set's size."""

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.labels: list[int] = []
        self.eval_samples = 0

    def run_event(self, event: Event, state: State, logger: Logger) -> None:
        if event == Event.AFTER_DATALOADER:
            self.indices += state.batch[2].tolist()
            self.labels += state.batch[1].tolist()
        if event == Event.EVAL_BATCH_END:
            self.eval_samples += len(state.batch[0])


def fit(*overrides: str) -> SeenExamples:
    trainer = build_trainer(load_config(None, [*TINY, *overrides]))
    seen = SeenExamples()
    trainer.state.callbacks.append(seen)
    trainer.fit()
    trainer.close()
    return seen


@pytest.fixture(scope='module')
def labels() -> np.ndarray:
    return MDSImageDataset(resolve_root('digits', None), 'train', 10).clean_labels()


def test_a_subset_is_stratified_and_seeded(labels: np.ndarray):
    half = stratified_subset(labels, 0.5, seed=3)
    assert np.array_equal(half, np.sort(half)) and len(set(half.tolist())) == len(half)
    counts, kept = np.bincount(labels, minlength=10), np.bincount(labels[half], minlength=10)
    assert np.all(np.abs(kept - counts * 0.5) <= 0.5)  # every class halved, to the nearest example
    assert np.array_equal(stratified_subset(labels, 0.5, seed=3), half)
    assert not np.array_equal(stratified_subset(labels, 0.5, seed=4), half)
    assert np.array_equal(stratified_subset(labels, 1.0, seed=3), np.arange(len(labels)))


def test_a_subset_run_trains_on_it_records_it_and_finds_it_again_on_resume(labels: np.ndarray, tmp_path: Path):
    folder = tmp_path / 'past'
    args = ['data.subset_fraction=0.5', 'data.subset_seed=3', f'save_folder={folder}', 'run_name=past',
            'autoresume=true', 'save_interval=2ba', 'data.holdout=0']  # a share of the whole split
    first = fit(*args, 'max_duration=2ba', 'eval_interval=2ba')
    record = read_subset(str(folder))
    assert record is not None and record['split_size'] == len(labels) == 1437
    assert (record['subset_fraction'], record['subset_seed'], record['classes']) == (0.5, 3, None)
    expected = stratified_subset(labels, 0.5, seed=3)
    assert record['indices'] == expected.tolist()
    assert len(first.indices) == 64 and set(first.indices) <= set(expected.tolist())  # indices of the whole split
    assert first.labels == labels[first.indices].tolist()

    resumed = fit(*args, 'max_duration=4ba', 'eval_interval=4ba')
    assert len(resumed.indices) == 64 and set(resumed.indices) <= set(expected.tolist())
    assert json.loads((folder / 'subset.json').read_text())['indices'] == expected.tolist()
    with pytest.raises(UsageError, match='trained on another subset of the training split'):
        build_trainer(load_config(None, [*TINY, *args, 'data.subset_seed=4', 'max_duration=6ba']))

    # Its checkpoints score every example of the whole split, and the artifact says so.
    out = str(tmp_path / 'el2n.npy')
    scores = score_runs([PastRun(str(folder))], ['latest'], 'el2n', out)
    assert scores is not None and scores.shape == (1437,) and np.isfinite(scores).all()
    dataset = json.loads((tmp_path / 'el2n.json').read_text())['dataset']
    assert (dataset['size'], dataset['covers']) == (1437, 'the whole training split')
    assert dataset['past_runs_trained_on'] == {str(folder): {'subset_fraction': 0.5, 'classes': None}}


def test_a_whole_split_run_records_no_subset(tmp_path: Path):
    train_in_process(f'save_folder={tmp_path}', 'max_duration=1ba', 'eval_interval=1ba', 'data.holdout=0')
    assert read_subset(str(tmp_path)) is None and (tmp_path / 'config.yaml').exists()


def test_a_class_subset_trains_and_evaluates_on_those_classes_only(labels: np.ndarray):
    seen = fit('data.classes=[0,3,7]', 'max_duration=3ba', 'eval_interval=3ba', 'data.holdout=0')  # the test split alone
    assert set(seen.labels) == {0, 3, 7}
    test_labels = MDSImageDataset(resolve_root('digits', None), 'test', 10).clean_labels()
    assert seen.eval_samples == int(np.isin(test_labels, [0, 3, 7]).sum()) < 360
    both = MDSImageDataset(resolve_root('digits', None), 'train', 10, subset_fraction=0.5, classes=[0, 3, 7])
    assert both.indices is not None and set(labels[both.indices].tolist()) == {0, 3, 7}
    assert len(both) == sum(round(0.5 * int((labels == c).sum())) for c in (0, 3, 7))
    image, label, index = both[0]
    assert image.shape == torch.Size([3, 32, 32]) and label == labels[index] and index == both.indices[0]


@pytest.mark.parametrize(('override', 'message'), [
    ('data.classes=[3,10]', 'data.classes=[3, 10] holds 10, which is not a class of digits'),
    ('data.classes=[]', 'data.classes=[]'),
    ('data.subset_fraction=0', 'data.subset_fraction=0'),
    ('data.subset_fraction=1.5', 'data.subset_fraction=1.5'),
])
def test_scenario_errors(override: str, message: str):
    with pytest.raises(UsageError) as error:
        build_trainer(load_config(None, [*TINY, override]))
    assert message in str(error.value) and '\n' not in str(error.value)
