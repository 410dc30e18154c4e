"""The validation split (``data.holdout``): drawn stratified and the same for every run seed, never trained on,
scored, attacked or cached, evaluated beside the test split, and a past run with another holdout refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, train_in_process

from algorithms.adversarial_replay.bank import AdversarialBank, build_bank
from algorithms.curriculum import ScoreCurriculum
from algorithms.curriculum.scores import read_scores
from algorithms.curriculum.scoring import score_runs
from algorithms.distillation.cache import build_cache
from algorithms.past_run import PastRun
from recipes.config import load_config
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.data.dataset import holdout_indices
from recipes.core.errors import UsageError

HOLDOUT = 144  # the digits recipes' 10%


@pytest.fixture(scope='module')
def held_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A digits run of 2 epochs holding out 144 training examples."""
    folder = tmp_path_factory.mktemp('held') / 'run'
    train_in_process(f'save_folder={folder}', 'run_name=held', 'max_duration=2ep', 'eval_interval=1ep',
                     'save_interval=1ep', 'data.global_batch_size=128', f'data.holdout={HOLDOUT}')
    return str(folder)


def digits(**kwargs) -> MDSImageDataset:
    return MDSImageDataset(resolve_root('digits', None), 'train', 10, **kwargs)


def test_the_holdout_is_stratified_exact_and_seeded() -> None:
    labels = np.repeat(np.arange(10), [600, 600, 600, 600, 600, 600, 600, 600, 600, 500])
    held = holdout_indices(labels, 500, seed=3)
    assert len(held) == 500 and len(np.unique(held)) == 500
    counts = np.bincount(labels[held], minlength=10)
    # 500 * 600 / 5900 = 50.85 and 500 * 500 / 5900 = 42.37: 9 x 50 + 42 = 492, the 8 left to the largest remainders
    assert counts.tolist() == [51, 51, 51, 51, 51, 51, 51, 51, 50, 42]
    assert np.array_equal(held, holdout_indices(labels, 500, seed=3))
    assert not np.array_equal(held, holdout_indices(labels, 500, seed=4))
    with pytest.raises(UsageError, match=r'data.holdout=5900 .* 0..5899'):
        holdout_indices(labels, 5900, seed=0)


def test_the_training_rows_and_subsets_never_include_the_holdout() -> None:
    whole = digits()
    held = digits(holdout=HOLDOUT)
    assert len(held.held_out) == HOLDOUT and len(held) == whole.split_size - HOLDOUT
    served = {held[p][2] for p in range(len(held))}
    assert served.isdisjoint(held.held_out.tolist()) and len(served) == len(held)
    per_class = np.bincount(whole.clean_labels()[held.held_out], minlength=10)
    assert per_class.min() >= 13 and per_class.max() <= 16  # about 144 / 10 of each class
    part = digits(holdout=HOLDOUT, subset_fraction=0.5, classes=[0, 1, 2])
    assert set(part.indices.tolist()).isdisjoint(held.held_out.tolist())
    assert np.array_equal(part.held_out, held.held_out)  # drawn before the subset and the classes
    validation = part.validation()
    assert set(validation.indices.tolist()) <= set(held.held_out.tolist())
    assert {validation[p][1] for p in range(len(validation))} <= {0, 1, 2}
    noisy = digits(holdout=HOLDOUT, label_noise=0.5).validation()
    assert [noisy[p][1] for p in range(len(noisy))] == whole.clean_labels()[held.held_out].tolist()  # clean labels


def test_a_run_evaluates_the_holdout_and_records_it_the_same_for_every_seed(held_run: str, tmp_path: Path) -> None:
    recorded = json.loads((Path(held_run) / 'holdout.json').read_text())
    assert recorded['seed'] == 0 and recorded['size'] == HOLDOUT and len(recorded['indices']) == HOLDOUT
    evals = json.loads((Path(held_run) / 'metrics.json').read_text())['eval']
    assert len(evals) == 2
    for row in evals:
        assert 0 <= row['val_accuracy'] <= 1 and row['val_cross_entropy'] > 0 and 0 <= row['accuracy'] <= 1
        assert row['val_accuracy'] != row['accuracy']  # 144 held-out training images are not the 360 test images
    other = tmp_path / 'seed5'
    train_in_process(f'save_folder={other}', 'seed=5', f'data.holdout={HOLDOUT}', 'max_duration=1ba')
    assert json.loads((other / 'holdout.json').read_text())['indices'] == recorded['indices']
    plain = tmp_path / 'plain'
    train_in_process(f'save_folder={plain}', 'max_duration=1ba', 'data.holdout=0')
    assert not (plain / 'holdout.json').exists()
    assert 'val_accuracy' not in json.loads((plain / 'metrics.json').read_text())['eval'][0]


def test_test_interval_evaluates_the_test_split_at_the_end_only(tmp_path: Path) -> None:
    from recipes.study.results import _read_run

    folder = tmp_path / 'end'
    train_in_process(f'save_folder={folder}', 'max_duration=6ba', 'eval_interval=2ba', 'test_interval=1dur')
    history = json.loads((folder / 'metrics.json').read_text())
    evals = history['eval']
    assert [row['batch'] for row in evals] == [2, 4, 6]  # one row per batch, the two evaluators' keys merged at 6
    assert ['accuracy' in row for row in evals] == [False, False, True]
    assert all(0 <= row['val_accuracy'] <= 1 for row in evals)
    run = _read_run('baseline', 1.0, 17, str(folder), history)
    assert run.batches == (6,) and run.final == evals[-1]['accuracy']


def test_scores_bank_and_cache_leave_the_holdout_out(held_run: str, tmp_path: Path) -> None:
    held = set(json.loads((Path(held_run) / 'holdout.json').read_text())['indices'])
    scores_uri = str(tmp_path / 'el2n.npy')
    score_runs([PastRun(held_run)], ['ep2'], 'el2n', scores_uri, batch_size=512)
    scores, metadata = read_scores(scores_uri)
    assert len(scores) == 1437 and metadata['dataset']['holdout'] == {'size': HOLDOUT, 'seed': 0}
    assert set(np.flatnonzero(np.isnan(scores)).tolist()) == held
    assert np.isfinite(np.delete(scores, sorted(held))).all()

    curriculum = ScoreCurriculum(scores=scores_uri, batch_size=32, max_duration='2ep')
    curriculum.train_sampler(digits(holdout=HOLDOUT), seed=0)
    assert len(curriculum.kept) == 1437 - HOLDOUT and held.isdisjoint(curriculum.kept.tolist())
    with pytest.raises(UsageError, match=r'no score \(NaN\) for example \d+, which this run trains on'):
        ScoreCurriculum(scores=scores_uri, batch_size=32, max_duration='2ep').train_sampler(digits(), seed=0)

    bank_uri = str(tmp_path / 'bank')
    build_bank(held_run, ['ep2'], bank_uri, eps=8 / 255, step_size=2 / 255, steps=1, fraction=1.0, batch_size=256,
               num_workers=0, progress=False)
    bank = AdversarialBank(bank_uri)
    sources = {bank[i][2] for i in range(len(bank))}
    assert len(sources) == 1437 - HOLDOUT and sources.isdisjoint(held)

    metadata = build_cache(PastRun(held_run), ['ep2'], str(tmp_path / 'cache'), top_k=10, views=1, progress=False)
    assert metadata['data']['holdout'] == {'size': HOLDOUT, 'seed': 0}
    assert metadata['compute']['teacher_forwards'] == 1437 - HOLDOUT
    shard = np.load(tmp_path / 'cache' / 'shard-00000.npz')
    rest = shard['values'].reshape(len(shard['values']), -1)
    untouched = np.flatnonzero(~rest.any(axis=1))
    in_shard = {i for i in held if i < len(rest)}  # shard 0 holds examples 0..1023
    assert in_shard and set(untouched.tolist()) == in_shard  # only the held-out rows never went through the teacher


def test_a_past_run_with_another_holdout_is_refused_in_one_line(held_run: str, past_run: str) -> None:
    args = [*TINY, f'algorithms.warm_start.run={held_run}', 'algorithms.warm_start.checkpoint=latest']
    load_config(None, [*args, f'data.holdout={HOLDOUT}'])  # the same holdout: accepted
    with pytest.raises(UsageError) as error:
        load_config(None, [*args, 'data.holdout=0'])
    message = str(error.value)
    assert '\n' not in message
    assert f'held out data.holdout={HOLDOUT} data.holdout_seed=0 but this run holds out data.holdout=0' in message
    with pytest.raises(UsageError, match=r'data.holdout=144 data.holdout_seed=0 but this run holds out data.holdout=144 '
                                         r'data.holdout_seed=5'):
        load_config(None, [*TINY, f'algorithms.past_run_distillation.run={past_run}',
                           'algorithms.past_run_distillation.checkpoint=latest', 'data.holdout_seed=5'])
