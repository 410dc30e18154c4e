"""launch/score.py: computed scores over two ranks into S3, recorded scores without a forward pass, its errors."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, run_cli, train_in_process

from algorithms.curriculum.grand import el2n
from algorithms.curriculum.record_scores import forgetting_scores
from algorithms.curriculum.scores import dataset_labels, label_fingerprint, read_scores
from algorithms.past_run import PastRun, load_checkpoint_state
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.errors import UsageError

CHECKPOINTS = 'ep0-ba1-rank0.pt,ep0-ba2-rank0.pt'


def score_main(*args: str) -> int:
    spec = importlib.util.spec_from_file_location('score', ROOT / 'launch' / 'score.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(list(args))


@pytest.fixture(scope='module')
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two batches of a digits run with record_scores on, a checkpoint after each."""
    folder = tmp_path_factory.mktemp('recorded') / 'run'
    train_in_process(f'save_folder={folder}', 'callbacks.record_scores={}', 'max_duration=2ba', 'eval_interval=2ba',
                     'save_interval=1ba', 'data.holdout=0')  # the whole split scored (test_holdout: with one)
    return str(folder)


@pytest.fixture(scope='module')
def train_split() -> MDSImageDataset:
    return MDSImageDataset(resolve_root('digits', None), 'train', 10)


def test_el2n_over_two_ranks_into_s3_matches_one_process(recorded_run: str, train_split, s3_bucket: str) -> None:
    out = f'{s3_bucket}/scores/el2n.npy'
    result = run_cli('score.py', '--run', recorded_run, '--checkpoints', CHECKPOINTS, '--method', 'el2n',
                     '--out', out, ranks=2)
    assert result.returncode == 0, result.stderr[-3000:]
    labels = dataset_labels(train_split)
    scores, meta = read_scores(out, labels)
    check = np.arange(0, len(labels), 7)  # both ranks' halves, at a seventh of the cost
    images = torch.stack([train_split[int(i)][0] for i in check])
    expected = torch.zeros(len(check), dtype=torch.float64)
    for name in CHECKPOINTS.split(','):
        with torch.no_grad():
            expected += el2n(PastRun(recorded_run).load(name)(images), torch.from_numpy(labels[check])).double() / 2
    np.testing.assert_allclose(scores[check], expected.numpy(), atol=1e-5)
    assert (meta['method'], meta['checkpoints'], meta['dataset']['size']) == ('el2n', CHECKPOINTS.split(','), 1437)
    assert meta['dataset']['label_sha256'] == label_fingerprint(labels)
    assert meta['compute']['ranks'] == 2 and meta['compute']['forward_passes'] == 2 * 1437 and meta['seconds'] > 0


def test_recorded_scores_come_from_the_checkpoints(recorded_run: str, tmp_path: Path) -> None:
    records = [load_checkpoint_state(f'{recorded_run}/{n}')['callbacks']['RecordScores']['record']
               for n in CHECKPOINTS.split(',')]
    assert [int(r['visits'].sum()) for r in records] == [32, 64]
    assert score_main('--run', recorded_run, '--checkpoints', CHECKPOINTS, '--method', 'recorded_el2n',
                      '--out', str(tmp_path / 'rec.npy')) == 0
    scores, meta = read_scores(str(tmp_path / 'rec.npy'))
    both = np.stack([r['el2n'].numpy() for r in records])
    seen = np.isfinite(both).any(0)
    np.testing.assert_allclose(scores[seen], np.nanmean(both[:, seen], axis=0), rtol=1e-6)
    np.testing.assert_allclose(scores[~seen], scores[seen].mean(), rtol=1e-5)
    assert meta['compute']['forward_passes'] == 0 and meta['compute']['unrecorded'] == 1437 - seen.sum()
    assert score_main('--run', recorded_run, '--checkpoints', 'ep0-ba2-rank0.pt', '--method', 'forgetting',
                      '--out', str(tmp_path / 'forget')) == 0
    assert np.array_equal(read_scores(str(tmp_path / 'forget.npy'))[0], forgetting_scores(records[1]))


def test_unscorable_runs_are_refused(recorded_run: str, tmp_path: Path) -> None:
    bare = tmp_path / 'bare'
    bare.mkdir()
    shutil.copy(f'{recorded_run}/config.yaml', bare / 'config.yaml')
    torch.save({'state': {'model': {}}}, bare / 'ep1-ba1-rank0.pt')
    with pytest.raises(UsageError, match='holds no recorded scores'):
        score_main('--run', str(bare), '--checkpoints', 'ep1', '--method', 'forgetting', '--out', str(tmp_path / 'x'))
    noisy = tmp_path / 'noisy'
    noisy.mkdir()
    config = yaml.safe_load((bare / 'config.yaml').read_text())
    config['data']['label_noise'] = 0.2
    (noisy / 'config.yaml').write_text(yaml.safe_dump(config))
    checkpoint = PastRun(recorded_run).checkpoints()[0]  # present in both runs: only their data differs
    shutil.copy(f'{recorded_run}/{checkpoint}', noisy / checkpoint)
    with pytest.raises(UsageError, match='trained on different data'):
        score_main('--run', recorded_run, '--runs', str(noisy), '--checkpoints', checkpoint, '--method', 'el2n',
                   '--out', str(tmp_path / 'x'))
    with pytest.raises(UsageError, match="--checkpoints=',' names no checkpoint"):
        score_main('--run', recorded_run, '--checkpoints', ',', '--method', 'el2n', '--out', str(tmp_path / 'x'))
    assert not (tmp_path / 'x.json').exists()


def rated_copy(run: str, folder: Path, accuracies: dict[int, float]) -> str:
    """A copy of ``run`` whose metrics.json records ``accuracies`` (batch -> test accuracy)."""
    shutil.copytree(run, folder, symlinks=True)
    rows = [{'epoch': 0, 'batch': b, 'accuracy': a, 'cross_entropy': 2.0} for b, a in sorted(accuracies.items())]
    (folder / 'metrics.json').write_text(json.dumps({'eval': rows, 'finished': True, 'wall_seconds': 1.0}))
    return str(folder)


def test_a_near_chance_checkpoint_warns_and_strict_refuses_it_in_one_line(recorded_run: str, tmp_path: Path, capsys) -> None:
    rated = rated_copy(recorded_run, tmp_path / 'rated', {1: 0.12, 2: 0.9})
    out = str(tmp_path / 'scores.npy')
    strict = run_cli('score.py', '--run', rated, '--checkpoints', CHECKPOINTS, '--method', 'el2n', '--out', out,
                     '--strict')
    assert strict.returncode == 2
    [line] = strict.stderr.strip().splitlines()
    assert line.startswith(f'error: past run {rated}: checkpoint ep0-ba1-rank0.pt (epoch 0): test accuracy 12.0%, '
                           'run best 90.0%, chance 10.0%: near chance: refused under strict')
    assert not Path(out).exists()
    assert score_main('--run', rated, '--checkpoints', CHECKPOINTS, '--method', 'el2n', '--out', out) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if 'past run' in line]
    assert len(err) == 2 and err[0].startswith('warning: ') and 'test accuracy 12.0%' in err[0]
    assert not err[1].startswith('warning') and 'test accuracy 90.0%' in err[1]


def test_auto_scores_with_the_earliest_usable_checkpoints(recorded_run: str, tmp_path: Path) -> None:
    rated = rated_copy(recorded_run, tmp_path / 'rated', {1: 0.12, 2: 0.9})
    assert score_main('--run', rated, '--checkpoints', 'auto', '--method', 'recorded_el2n',
                      '--out', str(tmp_path / 'auto.npy')) == 0
    assert read_scores(str(tmp_path / 'auto.npy'))[1]['checkpoints'] == ['ep0-ba2-rank0.pt']
    poor = rated_copy(recorded_run, tmp_path / 'poor', {1: 0.12, 2: 0.11})
    with pytest.raises(UsageError, match='--checkpoints auto: past run .* has no checkpoint with a usable'):
        score_main('--run', poor, '--checkpoints', 'auto', '--method', 'el2n', '--out', str(tmp_path / 'x.npy'))
