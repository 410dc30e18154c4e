"""The three reuse ideas together: the teacher sees the replayed rows, the curriculum's weights scale the KD loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from composer.core import Callback, State
from composer.loggers import Logger
from conftest import TINY

from algorithms.adversarial_replay.bank import BankPart, finish_bank
from algorithms.curriculum.curriculum import GraNdCurriculum, curriculum_order, loss_weights
from algorithms.curriculum.scores import dataset_labels, label_fingerprint, write_scores
from algorithms.distillation.checkpoint_mixup import CheckpointMixupTeacher, draw_pair, mix_teacher_outputs
from recipes.config import load_config
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.errors import UsageError
from recipes.trainer import build_trainer

RECIPE = 'yamls/digits/reuse_all.yaml'
BATCH, REPLAYED = 32, 8  # TINY's batch; replay_fraction 0.25 of it


def make_scores(folder: Path) -> str:
    """Random non-negative scores for the digits training split, so the weights differ from row to row."""
    labels = dataset_labels(MDSImageDataset(resolve_root('digits', None), 'train', 10))
    path = str(folder / 'scores.npy')
    dataset = {'name': 'digits', 'size': len(labels), 'label_sha256': label_fingerprint(labels)}
    values = np.random.default_rng(0).random(len(labels)).astype(np.float32)
    write_scores(path, values, {'method': 'el2n', 'dataset': dataset})
    return path


def make_bank(folder: Path, past_run: str) -> str:
    """16 random images as a bank of the past run: the interplay needs replayed rows, not strong attacks."""
    out = str(folder / 'bank')
    generator = torch.Generator().manual_seed(0)
    with BankPart(out, 0, (3, 32, 32)) as part:
        part.write(torch.rand(16, 3, 32, 32, generator=generator), torch.arange(16) % 10, torch.arange(16), 0)
    finish_bank(out, 1, {'num_classes': 10, 'image_shape': [3, 32, 32], 'run': past_run, 'checkpoints': ['ep1']})
    return out


@pytest.fixture(scope='module')
def scores(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_scores(tmp_path_factory.mktemp('reuse'))


@pytest.fixture(scope='module')
def bank(past_run: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_bank(tmp_path_factory.mktemp('reuse'), past_run)


def overrides(past_run: str, scores: str, bank: str) -> list[str]:
    return [
        *TINY, 'save_folder=null', 'max_duration=1ba', 'eval_interval=1ba', 'callbacks.eval_robustness.num_samples=8',
        'callbacks.eval_robustness.steps=1',
        f'algorithms.checkpoint_mixup_teacher.run={past_run}',
        'algorithms.checkpoint_mixup_teacher.checkpoints=[ep1,ep2]',
        f'algorithms.grand_curriculum.scores={scores}',
        f'algorithms.adversarial_replay.bank={bank}',
    ]


class Capture(Callback):
    """Keeps the batch, the outputs and the final loss of the first step (``BEFORE_BACKWARD`` follows AFTER_LOSS)."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def before_backward(self, state: State, logger: Logger) -> None:
        if not self.seen:
            batch = [t.detach().clone() for t in state.batch]
            self.seen = dict(batch=batch, outputs=state.outputs.detach().clone(), loss=state.loss.detach().clone())


def test_loss_is_the_weighted_mean_kd_loss_over_clean_and_replayed_rows(past_run: str, scores: str, bank: str) -> None:
    trainer = build_trainer(load_config(RECIPE, overrides(past_run, scores, bank)))
    teacher = next(a for a in trainer.state.algorithms if isinstance(a, CheckpointMixupTeacher))
    curriculum = next(a for a in trainer.state.algorithms if isinstance(a, GraNdCurriculum))
    teacher_rows: list[int] = []
    for net in teacher.networks:
        net.register_forward_hook(lambda _m, args, _o: teacher_rows.append(len(args[0])))
    capture = Capture()
    trainer.state.callbacks.append(capture)
    trainer.fit()
    trainer.close()

    inputs, targets, indices = capture.seen['batch']
    assert len(inputs) == BATCH + REPLAYED and int((indices < 0).sum()) == REPLAYED
    assert teacher_rows == [BATCH + REPLAYED] * 2  # both drawn checkpoints ran on the clean and the replayed rows

    seed, temperature, alpha = trainer.state.rank_zero_seed, teacher.temperature, teacher.alpha
    i, j, lam = draw_pair(2, teacher.mix_alpha, seed, 0)
    with torch.no_grad():
        p_teacher = mix_teacher_outputs(teacher.networks[i](inputs), teacher.networks[j](inputs), lam, temperature,
                                        teacher.space).double()
    student = capture.seen['outputs'].double()
    ce = F.cross_entropy(student, targets, reduction='none')
    log_q = F.log_softmax(student / temperature, dim=1)
    kl = (p_teacher * (p_teacher.clamp_min(1e-30).log() - log_q)).sum(dim=1) * temperature**2
    kd = (1 - alpha) * ce + alpha * kl

    members = trainer.state.train_dataloader.dataset.indices  # the split less the 144 held out
    kept = curriculum_order(curriculum.scores, 'easy_first', 0.0, seed, among=members)
    by_index = torch.from_numpy(loss_weights(curriculum.scores, kept, 'score')).double()
    weights = torch.where(indices >= 0, by_index[indices.clamp_min(0)], 1.0)
    assert weights[:BATCH].std() > 0.1  # the weights really differ, so an unweighted term would show
    expected = (weights * kd).mean()
    assert capture.seen['loss'].item() == pytest.approx(expected.item(), rel=1e-5)
    assert abs(expected - kd.mean()) > 1e-3  # and the weights really change the loss


def test_curriculum_listed_before_the_teacher_is_refused(past_run: str, scores: str, bank: str) -> None:
    cfg = load_config(RECIPE, overrides(past_run, scores, bank))
    algs = dict(cfg.algorithms)
    cfg.algorithms = {k: algs[k] for k in ('grand_curriculum', 'checkpoint_mixup_teacher')}
    with pytest.raises(UsageError, match='grand_curriculum|GraNdCurriculum|ScoreCurriculum'):
        build_trainer(cfg).fit()
