"""Checkpoints of known quality: PastRun reads each checkpoint's recorded accuracy and warns or refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

from algorithms.past_run import CHECKPOINT_POLICIES, PastRun, checkpoint_quality
from recipes.core.artifacts import CheckpointList
from recipes.core.errors import UsageError


def _evals(*accuracies: float, per_epoch: int = 8) -> list[dict]:
    return [
        {'epoch': e, 'batch': e * per_epoch, 'accuracy': a, 'cross_entropy': 1.0}
        for e, a in enumerate(accuracies, start=1)
    ]


def test_verdicts_from_recorded_accuracy():
    evals = _evals(0.175, 0.15, 0.5, 0.93, 0.95)
    near = checkpoint_quality(evals, 'ep2-ba16-rank0.pt', 10)
    assert (near.epoch, near.accuracy, near.best, near.chance, near.verdict) == (2, 0.15, 0.95, 0.1, 'near chance')
    assert checkpoint_quality(evals, 'ep1-ba8-rank0.pt', 10).verdict == 'near chance'  # 17.5%: within 10 points
    # 50% is 10 + 40 points: under half of the 85-point gap between chance and the best (95%)
    assert checkpoint_quality(evals, 'ep3-ba24-rank0.pt', 10).verdict == 'far below best'
    good = checkpoint_quality(evals, 'ep4-ba32-rank0.pt', 10)
    assert good.usable and good.accuracy == 0.93
    assert 'test accuracy 93.0%, run best 95.0%, chance 10.0%' in good.describe()
    unknown = checkpoint_quality(evals, 'ep6-ba48-rank0.pt', 10)
    assert (unknown.epoch, unknown.accuracy, unknown.verdict) == (6, None, 'unrecorded')
    assert 'no test accuracy recorded' in unknown.describe()
    # 100 classes: chance is 1%, so 12% is past the near-chance margin and judged against the best
    assert checkpoint_quality(_evals(0.12, 0.4), 'ep1-ba8-rank0.pt', 100).verdict == 'far below best'
    assert checkpoint_quality(_evals(0.12, 0.4), 'ep2-ba16-rank0.pt', 100).usable


@pytest.fixture
def rated_run(past_run: str, tmp_path: Path):
    """A copy of the digits past run whose metrics.json records ep1 near chance and ep2 as its best."""

    def make(accuracies: tuple[float, ...] | None) -> PastRun:
        folder = tmp_path / f'run-{len(list(tmp_path.iterdir()))}'
        shutil.copytree(past_run, folder, symlinks=True)
        history = json.loads((folder / 'metrics.json').read_text())
        if accuracies is None:
            (folder / 'metrics.json').unlink()
        else:
            for row, accuracy in zip(history['eval'], accuracies, strict=True):
                row['accuracy'] = accuracy
                if 'val_accuracy' in row:  # a run with a holdout is judged on it: the same value for both splits
                    row['val_accuracy'] = accuracy
            (folder / 'metrics.json').write_text(json.dumps(history))
        return PastRun(str(folder))

    return make


def test_load_warns_for_a_near_chance_checkpoint_and_not_for_a_good_one(rated_run, capsys):
    run = rated_run((0.12, 0.9))
    run.load('ep1')
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('warning: past run ')
    assert 'epoch 1' in err[0] and ' accuracy 12.0%' in err[0] and 'near chance' in err[0]
    run.load('ep2')
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not err[0].startswith('warning') and ' accuracy 90.0%' in err[0]
    run.load('ep2')
    assert capsys.readouterr().err == ''  # reported once per process


def test_strict_refuses_poor_and_unrecorded_checkpoints(rated_run):
    run = rated_run((0.12, 0.9))
    with pytest.raises(UsageError, match=r'epoch 1\): (val|test) accuracy 12.0%.*near chance: refused under strict'):
        run.load('ep1', strict=True)
    assert run.load('ep2', strict=True) is not None
    bare = rated_run(None)
    assert bare.quality('ep2').verdict == 'unrecorded'
    with pytest.raises(UsageError, match='no test accuracy recorded.*refused under strict'):  # no metrics.json at all
        bare.load('ep2', strict=True)
    bare.load('ep2')  # without strict an unrecorded checkpoint loads


def test_full_path_inside_the_run_uses_its_record(rated_run):
    run = rated_run((0.12, 0.9))
    uri = run.resolve('ep1')
    assert run.quality(str(Path(uri).resolve())).verdict == 'near chance'


def test_build_adv_bank_strict_exits_2_in_one_line_before_any_attack(rated_run, tmp_path: Path):
    run = rated_run((0.12, 0.9))
    out = tmp_path / 'bank'
    result = run_cli('build_adv_bank.py', '--run', run.folder, '--checkpoints', 'ep1,ep2', '--out', str(out),
                     '--fraction', '0.05', '--steps', '1', '--step_size', '8/255', '--strict')
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f'error: past run {run.folder}: checkpoint ep1-') and 'near chance: refused under strict' in line
    assert not out.exists()


def test_auto_picks_checkpoints_by_policy_among_the_usable_ones(rated_run):
    best_first = rated_run((0.95, 0.9))  # both usable; the best is the earliest
    first, second = best_first.checkpoints()
    assert best_first.pick_checkpoints('earliest') == [first, second]
    assert best_first.pick_checkpoints('earliest_and_best') == [first]
    poor_first = rated_run((0.12, 0.9))  # ep1 near chance: neither policy takes it
    assert poor_first.pick_checkpoints('earliest') == poor_first.pick_checkpoints('earliest_and_best') == [second]
    assert CheckpointList(policy='earliest').check('--checkpoints', 'auto').pick(poor_first) == [second]
    assert CheckpointList(policy='earliest').check('--checkpoints', 'ep1, ep2').pick(poor_first) == ['ep1', 'ep2']
    for policy in CHECKPOINT_POLICIES:
        with pytest.raises(UsageError, match=r'^--checkpoints auto: past run .* has no checkpoint with a usable recorded '
                                             r'accuracy: look at it with python launch/inspect_run.py [^\n]*$'):
            rated_run((0.12, 0.11)).pick_checkpoints(policy)
    with pytest.raises(ValueError, match='not a checkpoint policy'):
        best_first.pick_checkpoints('latest')
