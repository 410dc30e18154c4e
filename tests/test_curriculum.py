"""The curriculum: pacing formulas, pools, pruning, reweighting, rank disjointness, resuming with other scores and
its errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from composer.loggers import InMemoryLogger
from conftest import TINY, run_cli, train_in_process

from algorithms.curriculum.curriculum import (
    PACINGS,
    CurriculumSampler,
    curriculum_order,
    interleave_classes,
    loss_weights,
    pacing_size,
    reweighted_loss,
    total_steps,
)
from algorithms.curriculum.scores import dataset_labels, label_fingerprint, read_scores, write_scores
from algorithms.past_run import load_checkpoint_state
from recipes.config import load_config
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.errors import UsageError
from recipes.trainer import build_trainer

RECIPE = 'yamls/digits/grand_curriculum.yaml'
ALG = 'algorithms.grand_curriculum'


def expected_size(pacing: str, t: int, total: int, n: int, b: float, a: float) -> int:
    x, n0 = t / (a * total), b * n
    value = {
        'linear': n0 + (n - n0) * x,
        'quad': n0 + (n - n0) * x**2,
        'root': n0 + (n - n0) * x**0.5,
        'step': n0 + n * math.floor(x),
        'exp': n0 + (n - n0) * (math.exp(10 * min(x, 1)) - 1) / (math.exp(10) - 1),
        'log': n0 + (n - n0) * (1 + math.log(x + math.exp(-10)) / 10),
    }[pacing]
    return min(math.floor(value + 1e-6), n)


@pytest.mark.parametrize('pacing', PACINGS)
def test_pacing_size_follows_its_formula_starts_at_b_n_and_caps_at_n(pacing: str) -> None:
    n, total, b, a = 1000, 200, 0.2, 0.8
    assert pacing_size(pacing, 0, total, n, b, a) == 200
    for t in (1, 17, 50, 80, 120, 159):
        assert pacing_size(pacing, t, total, n, b, a) == expected_size(pacing, t, total, n, b, a), t
    assert [pacing_size(pacing, t, total, n, b, a) for t in (160, 199, 400)] == [n, n, n]
    sizes = [pacing_size(pacing, t, total, n, b, a) for t in range(total)]
    assert sizes == sorted(sizes)
    assert pacing_size('linear', 40, total, n, b, a) == 200 + 800 * 40 // 160  # a hand-checked value: 400


def test_total_steps_from_epochs_batches_or_samples() -> None:
    assert [total_steps(d, 11, 128) for d in ('3ep', '7ba', '1000sp')] == [33, 7, 7]
    with pytest.raises(ValueError, match='max_duration'):
        total_steps('0.5dur', 11, 128)


def sampler(order: np.ndarray, rank: int = 0, replicas: int = 1, **kw) -> CurriculumSampler:
    args = dict(batch_size=8, max_duration='4ep', pacing='linear', start_fraction=0.1, full_at=0.5, seed=3)
    return CurriculumSampler(range(len(order)), order, num_replicas=replicas, rank=rank, **{**args, **kw})


def test_each_batch_comes_from_the_current_pool_and_epochs_replay() -> None:
    order = np.random.default_rng(0).permutation(400)
    s = sampler(order)
    assert (s.steps_per_epoch, s.total_steps, len(s)) == (50, 200, 400)
    pools = []
    for epoch in range(4):
        s.set_epoch(epoch)
        batches = np.array(list(s)).reshape(-1, 8)
        for step, batch in enumerate(batches):
            t = epoch * 50 + step
            pool = s.pool_size(t)
            pools.append(pool)
            assert pool == max(pacing_size('linear', t, 200, 400, 0.1, 0.5), 8)
            assert set(batch) <= set(order[:pool].tolist()), t
            assert len(set(batch)) == 8
    assert pools[0] == 40 and pools[-1] == 400 and pools == sorted(pools)
    s.set_epoch(1)
    fresh = sampler(order)
    fresh.set_epoch(1)
    assert list(s) == list(s) == list(fresh)
    fresh.set_epoch(2)
    assert list(fresh) != list(s)


def test_ranks_draw_disjoint_halves_of_one_global_batch() -> None:
    order = np.arange(300)[::-1].copy()
    ranks = [sampler(order, rank=r, replicas=2, pacing='root') for r in (0, 1)]
    for s in ranks:
        s.set_epoch(2)
    b0, b1 = (np.array(list(s)).reshape(-1, 8) for s in ranks)
    assert len(b0) == len(b1) == 300 // 16
    for step, (x, y) in enumerate(zip(b0, b1, strict=True)):
        assert not set(x) & set(y), step
        assert set(x) | set(y) <= set(order[: ranks[0].pool_size(2 * len(b0) + step)].tolist())


def test_pruning_drops_exactly_the_easiest_share_and_orders_the_rest() -> None:
    scores = np.random.default_rng(1).random(1000).astype(np.float32)
    easiest = set(np.argsort(scores)[:250].tolist())
    easy = curriculum_order(scores, 'easy_first', 0.25, seed=0)
    assert len(easy) == 750 and not easiest & set(easy.tolist())
    assert np.all(np.diff(scores[easy]) >= 0)
    hard = curriculum_order(scores, 'hard_first', 0.25, seed=0)
    assert np.array_equal(hard, easy[::-1])
    shuffled = curriculum_order(scores, 'random', 0.25, seed=0)
    assert sorted(shuffled.tolist()) == sorted(easy.tolist()) and not np.array_equal(shuffled, easy)
    assert np.array_equal(shuffled, curriculum_order(scores, 'random', 0.25, seed=0))


def test_every_prefix_of_the_class_interleave_holds_each_class_in_proportion_within_one() -> None:
    rng = np.random.default_rng(2)
    for trial in range(20):
        sizes = rng.integers(1, 40, size=rng.integers(2, 12))
        sizes[0] += 150 * (trial % 2)  # one class far larger than the rest, every other trial
        groups = [np.arange(n) + 1000 * c for c, n in enumerate(sizes)]
        merged = interleave_classes(groups)
        assert sorted(merged.tolist()) == sorted(np.concatenate(groups).tolist())
        classes = merged // 1000
        for c, group in enumerate(groups):  # each class keeps its own order
            assert np.array_equal(merged[classes == c], group)
        counts = np.cumsum(classes[:, None] == np.arange(len(sizes)), axis=0)
        expected = np.arange(1, len(merged) + 1)[:, None] * sizes / sizes.sum()
        assert np.abs(counts - expected).max() < 1, trial


def test_balanced_order_prunes_and_ranks_within_each_class() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, size=600)
    scores = (labels * 10 + rng.random(600)).astype(np.float32)  # class 0 easiest: a global order starts with it only
    assert set(labels[curriculum_order(scores, 'easy_first', 0.0, seed=0)[:100]].tolist()) == {0}
    for order in ('easy_first', 'hard_first', 'random'):
        kept = curriculum_order(scores, order, 0.2, seed=0, labels=labels)
        for c in range(5):
            members = np.flatnonzero(labels == c)
            easiest = members[np.argsort(scores[members], kind='stable')]
            dropped = easiest[: round(0.2 * len(members))]
            mine = kept[labels[kept] == c]
            assert len(mine) == len(members) - len(dropped) and not set(dropped.tolist()) & set(mine.tolist())
            if order != 'random':
                assert np.all(np.diff(scores[mine]) >= 0) == (order == 'easy_first'), (order, c)
        assert set(labels[kept[:5]].tolist()) == set(range(5)), order  # the first five hold every class
    shuffled = curriculum_order(scores, 'random', 0.2, seed=0, labels=labels)
    assert np.array_equal(shuffled, curriculum_order(scores, 'random', 0.2, seed=0, labels=labels))
    assert not np.array_equal(shuffled, curriculum_order(scores, 'random', 0.2, seed=1, labels=labels))


def test_loss_weights_have_mean_one_and_weight_the_per_example_loss() -> None:
    scores = np.array([0.0, 1.0, 2.0, 5.0], dtype=np.float32)
    kept = np.array([1, 2, 3])
    by_score = loss_weights(scores, kept, 'score')
    np.testing.assert_allclose(by_score[kept], [0.375, 0.75, 1.875], rtol=1e-6)
    inverse = loss_weights(scores, kept, 'inverse')
    raw = 1 / (scores + 8 / 3)
    np.testing.assert_allclose(inverse, raw / raw[kept].mean(), rtol=1e-6)
    assert abs(inverse[kept].mean() - 1) < 1e-6 and inverse[1] > inverse[3]
    logits, targets = torch.randn(4, 10), torch.tensor([1, 2, 3, 4])
    weights = torch.tensor([0.5, 1.0, 1.5, 1.0])
    manual = (weights * F.cross_entropy(logits, targets, reduction='none')).mean()
    assert torch.allclose(reweighted_loss(logits, targets, weights), manual)
    assert torch.allclose(reweighted_loss(logits, targets, torch.ones(4)), F.cross_entropy(logits, targets))


@pytest.fixture(scope='module')
def digits_labels() -> np.ndarray:
    return dataset_labels(MDSImageDataset(resolve_root('digits', None), 'train', 10))


def artifact(path: Path, labels: np.ndarray, scores: np.ndarray | None = None, **meta) -> str:
    scores = np.random.default_rng(0).random(len(labels)).astype(np.float32) if scores is None else scores
    dataset = {'name': 'digits', 'size': len(labels), 'label_sha256': label_fingerprint(labels)}
    write_scores(str(path), scores, {'method': 'el2n', 'dataset': dataset, **meta})
    return str(path)


def build(*overrides: str):
    return build_trainer(load_config(RECIPE, [*TINY, 'save_folder=null', *overrides]))


def test_scores_errors_stop_the_run_before_training(tmp_path: Path, digits_labels: np.ndarray) -> None:
    good = artifact(tmp_path / 'good.npy', digits_labels)
    assert np.array_equal(read_scores(good, digits_labels)[0], np.load(good))
    cases = {
        'missing': (str(tmp_path / 'none.npy'), 'no scores artifact|none.json does not exist'),
        'short': (artifact(tmp_path / 'short.npy', digits_labels[:-1]), 'scores 1436 examples but the training data has 1437'),
        'labels': (artifact(tmp_path / 'other.npy', (digits_labels + 1) % 10), 'computed on other labels'),
        'nan': (artifact(tmp_path / 'nan.npy', digits_labels, np.full(1437, np.nan, np.float32)), '1437 NaN or infinite'),
        'inf': (artifact(tmp_path / 'inf.npy', digits_labels, np.array([np.inf] + [0.0] * 1436, np.float32)), 'index 0'),
    }
    for uri, message in cases.values():
        with pytest.raises(UsageError, match=message):
            build(f'{ALG}.scores={uri}')
    (tmp_path / 'half.npy').write_bytes((tmp_path / 'good.npy').read_bytes())  # a write cut off before its .json
    (tmp_path / 'f64.npy').write_bytes((tmp_path / 'good.npy').read_bytes())
    (tmp_path / 'f64.json').write_bytes((tmp_path / 'good.json').read_bytes())
    np.save(tmp_path / 'f64.npy', np.zeros(1437))
    for uri, message in ((tmp_path / 'half.npy', 'half.json is missing'), (tmp_path / 'f64.npy', 'float64')):
        with pytest.raises(UsageError, match=message):
            read_scores(str(uri), digits_labels)
    with pytest.raises(UsageError, match='prune_fraction=1.0'):
        build(f'{ALG}.scores={good}', f'{ALG}.prune_fraction=1.0')


def test_resuming_with_other_scores_is_refused(tmp_path: Path, digits_labels: np.ndarray) -> None:
    """Exact resumption is the generic tests' (tests/test_algorithms.py); other scores would give another order."""
    scores = artifact(tmp_path / 'el2n.npy', digits_labels)
    args = [f'{ALG}.scores={scores}', f'{ALG}.prune_fraction=0.1', 'callbacks.record_scores={}',
            'max_duration=1ba', 'eval_interval=1ba', 'save_interval=1ba']
    train_in_process(*args, f'save_folder={tmp_path}/whole', recipe=RECIPE)
    state = load_checkpoint_state(f'{tmp_path}/whole/ep0-ba1-rank0.pt')
    assert int(state['callbacks']['RecordScores']['record']['visits'].sum()) == 32
    other = artifact(tmp_path / 'other.npy', digits_labels, np.ones(1437, np.float32))
    with pytest.raises(UsageError, match='other scores'):
        build(*args, f'{ALG}.scores={other}', f'load_path={tmp_path}/whole/ep0-ba1-rank0.pt')
    with pytest.raises(UsageError, match='balance=class, this run has balance=none'):
        build(*args, f'{ALG}.balance=none', f'load_path={tmp_path}/whole/ep0-ba1-rank0.pt')


def test_two_ranks_cover_the_pool_once_per_step(tmp_path: Path, digits_labels: np.ndarray) -> None:
    # A pool exactly one global batch wide: each step must take all of it, half per rank, or some visit repeats.
    scores = artifact(tmp_path / 'el2n.npy', digits_labels)
    folder = tmp_path / 'run'
    result = run_cli('train.py', RECIPE, *TINY, f'{ALG}.scores={scores}', f'{ALG}.pacing=step', f'{ALG}.full_at=1.0',
                     f'{ALG}.start_fraction=0.01', 'callbacks.record_scores={}', f'save_folder={folder}', 'data.holdout=0',
                     ranks=2)
    assert result.returncode == 0, result.stderr[-3000:]
    visits = load_checkpoint_state(str(folder / 'ep0-ba4-rank0.pt'))['callbacks']['RecordScores']['record']['visits']
    pool = curriculum_order(np.load(scores), 'easy_first', 0.0, seed=0, labels=digits_labels)[:32]
    assert visits[pool].tolist() == [4] * 32
    assert int(visits.sum()) == 4 * 32


def test_the_first_pool_of_digits_holds_every_class_in_proportion(tmp_path: Path, digits_labels: np.ndarray) -> None:
    # Scores that rank whole classes (the failure the demo met): a global easiest fifth lacks most classes.
    scores = artifact(tmp_path / 'by_class.npy', digits_labels, (digits_labels + np.linspace(0, 0.5, 1437)).astype(np.float32))
    sizes = np.bincount(digits_labels)
    for balance in ('class', 'none'):
        trainer = build(f'{ALG}.scores={scores}', f'{ALG}.balance={balance}', 'max_duration=4ep', 'data.holdout=0')
        curriculum = next(a for a in trainer.state.algorithms if type(a).__name__ == 'ScoreCurriculum')
        metrics = curriculum.pool_metrics(0)
        if balance == 'class':
            metrics_class = metrics
        pool = curriculum.sampler.order[: metrics['curriculum/pool_size']]
        counts = np.bincount(digits_labels[pool], minlength=10)
        assert metrics['curriculum/pool_size'] == 1437 // 5
        assert (metrics['curriculum/pool_classes_min'], metrics['curriculum/pool_classes_max']) == (counts.min(), counts.max())
        if balance == 'class':
            assert counts.min() > 0 and np.abs(counts - len(pool) * sizes / sizes.sum()).max() < 1
        else:
            assert (counts > 0).sum() == 2  # classes 0 and 1 fill the global easiest fifth
        trainer.close()
    memory = InMemoryLogger()  # the first logged metrics carry the starting pool's histogram
    trainer = build(f'{ALG}.scores={scores}', 'max_duration=1ba', 'eval_interval=1ba', 'data.holdout=0')
    memory.init(trainer.state, trainer.logger)
    trainer.logger.destinations = (*trainer.logger.destinations, memory)
    trainer.fit()
    trainer.close()
    [(when, smallest)] = memory.data['curriculum/pool_classes_min']
    assert int(when.batch) == 0 and smallest == metrics_class['curriculum/pool_classes_min'] > 0


def test_a_run_on_a_subset_ranks_only_its_members_by_their_whole_split_scores(tmp_path: Path, digits_labels: np.ndarray) -> None:
    # Scores of the whole split (as a past run's checkpoints score it, whatever share it trained on); the new run
    # trains on a class-stratified half, or on classes 3 and 7 only.
    scores = artifact(tmp_path / 'el2n.npy', digits_labels, np.arange(1437, 0, -1).astype(np.float32))
    for data, reweight in ((['data.subset_fraction=0.5', 'data.subset_seed=4'], 'score'), (['data.classes=[3, 7]'], 'null')):
        trainer = build(f'{ALG}.scores={scores}', f'{ALG}.prune_fraction=0.2', f'{ALG}.reweight={reweight}', *data,
                        'data.holdout=0')  # the whole split, as the expected sizes count it
        curriculum = next(a for a in trainer.state.algorithms if type(a).__name__ == 'ScoreCurriculum')
        dataset = trainer.state.train_dataloader.dataset
        members = dataset.indices
        sizes = np.bincount(digits_labels)
        expected = sum(round(0.5 * n) for n in sizes) if 'data.subset_fraction=0.5' in data else sizes[3] + sizes[7]
        assert members is not None and len(members) == expected
        kept = curriculum.kept
        assert set(kept.tolist()) <= set(members.tolist())  # only the run's own examples
        for c in np.unique(digits_labels[members]):  # each class pruned by its easiest fifth (highest index first)
            own = members[digits_labels[members] == c]
            assert sorted(kept[digits_labels[kept] == c].tolist()) == sorted(own[::-1][round(0.2 * len(own)):].tolist())
        batch = next(iter(trainer.state.train_dataloader))
        drawn = batch[2].numpy()  # the sampler's positions come back as whole-split indices of the first pool
        pool = kept[: curriculum.sampler.pool_size(0)]
        assert set(drawn.tolist()) <= set(pool.tolist())
        assert np.array_equal(batch[1].numpy(), digits_labels[drawn])
        if reweight == 'score':
            assert curriculum.batch_weights(batch[2]).mean().item() == pytest.approx(
                (np.arange(1437, 0, -1)[drawn] / np.arange(1437, 0, -1)[kept].mean()).mean(), rel=1e-5)
        metrics = curriculum.pool_metrics(0)
        assert metrics['curriculum/pool_classes_min'] == np.bincount(digits_labels[pool])[np.unique(digits_labels[kept])].min()
