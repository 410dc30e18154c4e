"""The checkpoint-mixup teacher: the mixed distribution, the per-batch draw, two forwards per step, and its errors.

Exact resumption and ``composer -n 2`` of its recipe are in test_distillation.py, beside the distillation ones.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from composer.core import Callback, Event, State
from composer.loggers import Logger
from conftest import TINY
from test_distillation import logged, with_log

from algorithms import CheckpointMixupTeacher, mix_teacher_outputs
from algorithms.distillation.checkpoint_mixup import draw_pair
from algorithms.distillation.distillation import distillation_term
from recipes.config import load_config
from recipes.core.errors import UsageError
from recipes.trainer import build_trainer

TEACHER = 'algorithms.checkpoint_mixup_teacher'


@pytest.mark.parametrize('lam', [0.0, 0.25, 0.9, 1.0])
@pytest.mark.parametrize('temperature', [1.0, 4.0])
def test_mixed_output_is_the_formula_and_a_distribution(lam: float, temperature: float):
    gen = torch.Generator().manual_seed(3)
    zi, zj = torch.randn(5, 7, generator=gen) * 4, torch.randn(5, 7, generator=gen) * 4
    pi, pj = F.softmax(zi.double() / temperature, 1), F.softmax(zj.double() / temperature, 1)
    for space, expected in (
        ('prob', lam * pi + (1 - lam) * pj),
        ('logit', F.softmax((lam * zi.double() + (1 - lam) * zj.double()) / temperature, 1)),
    ):
        mixed = mix_teacher_outputs(zi, zj, lam, temperature, space)
        assert mixed.dtype == torch.float32 and (mixed >= 0).all()
        assert torch.allclose(mixed.sum(1), torch.ones(5), atol=1e-6)
        assert torch.allclose(mixed.double(), expected, atol=1e-6)
    if 0 < lam < 1:  # mixing probabilities and mixing logits are different teachers
        assert not torch.allclose(mix_teacher_outputs(zi, zj, lam, temperature, 'prob'),
                                  mix_teacher_outputs(zi, zj, lam, temperature, 'logit'), atol=1e-3)


def test_draws_cover_every_pair_with_beta_distributed_lam():
    draws = [draw_pair(4, 0.4, seed=17, batch=b) for b in range(4000)]
    assert draw_pair(4, 0.4, seed=17, batch=123) == draws[123]  # a pure function of (seed, batch)
    assert draw_pair(4, 0.4, seed=18, batch=123) != draws[123]
    assert all(i != j and 0 <= i < 4 and 0 <= j < 4 for i, j, _ in draws)
    assert len({(i, j) for i, j, _ in draws}) == 12
    lam = np.array([d[2] for d in draws])
    assert abs(lam.mean() - 0.5) < 0.02
    assert abs(lam.var() - 1 / (4 * (2 * 0.4 + 1))) < 0.01  # Var Beta(a, a) = 1 / (4 (2a + 1))


class Forwards(Callback):
    """Counts each checkpoint network's forwards and checks every step's loss against the drawn mixture."""

    def __init__(self, alg: CheckpointMixupTeacher) -> None:
        self.alg = alg
        self.outputs: dict[int, torch.Tensor] = {}
        self.ran: list[set[int]] = []
        self.draws: list[tuple[int, int, float]] = []
        self.max_error = 0.0
        for k, net in enumerate(alg.networks):
            net.register_forward_hook(lambda _m, _i, out, k=k: self.outputs.__setitem__(k, out.detach()))

    def run_event(self, event: Event, state: State, logger: Logger) -> None:
        if event == Event.BEFORE_FORWARD:
            self.outputs = {}
        if event != Event.AFTER_LOSS:
            return
        i, j, lam = self.alg.last_draw  # type: ignore[misc]
        self.ran.append(set(self.outputs))
        self.draws.append((i, j, lam))
        probs = lam * F.softmax(self.outputs[i] / 4.0, 1) + (1 - lam) * F.softmax(self.outputs[j] / 4.0, 1)
        ce = F.cross_entropy(state.outputs, state.batch[1])
        expected = 0.1 * ce + 0.9 * distillation_term(state.outputs, probs, 4.0)
        self.max_error = max(self.max_error, float((state.loss - expected).abs()))


def test_only_the_drawn_pair_runs_and_the_loss_uses_their_mixture(past_run: str):
    trainer, log = with_log('max_duration=3ba', 'eval_interval=3ba', f'{TEACHER}.run={past_run}',
                            f'{TEACHER}.checkpoints=[ep1,ep2,latest]')
    forwards = Forwards(next(a for a in trainer.state.algorithms if isinstance(a, CheckpointMixupTeacher)))
    trainer.state.callbacks.append(forwards)
    trainer.fit()
    trainer.close()
    assert forwards.draws == [draw_pair(3, 0.4, trainer.state.rank_zero_seed, b) for b in range(3)]
    assert forwards.ran == [{i, j} for i, j, _ in forwards.draws]
    assert forwards.max_error < 1e-5
    assert logged(log, 'kd/pair_i') == [i for i, _, _ in forwards.draws]
    assert logged(log, 'kd/pair_j') == [j for _, j, _ in forwards.draws]
    assert logged(log, 'kd/lam') == [lam for *_, lam in forwards.draws]


@pytest.mark.parametrize(('args', 'message'), [
    ({'checkpoints': '[ep1]'}, 'must list at least two checkpoints to mix'),
    ({'checkpoints': '[ep1,ep7]'}, "no checkpoint 'ep7'"),
    ({'mix_alpha': 0}, 'mix_alpha=0 is the Beta parameter of lam and must be > 0'),
    ({'space': 'softmax'}, "space='softmax' is not a mixing space: choose 'prob' or 'logit'"),
    ({'temperature': -1}, 'temperature=-1 must be a number > 0'),
    ({'run': '/nonexistent/run'}, 'no past run at /nonexistent/run'),
])
def test_errors_stop_the_run_before_training(past_run: str, args: dict, message: str):
    spec = {'run': past_run, 'checkpoints': '[ep1,ep2]', **args}
    with pytest.raises(UsageError) as error:
        build_trainer(load_config(None, [*TINY, *(f'{TEACHER}.{k}={v}' for k, v in spec.items())]))
    assert message in str(error.value)
