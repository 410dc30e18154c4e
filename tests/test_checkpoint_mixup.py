"""The checkpoint-mixup teacher: the mixed distribution, the per-batch draw, two forwards per step, teacher pools
across runs (``runs``, ``RUN_FOLDER:CHECKPOINT``, ``draw`` subset and dirichlet), and its errors.

Exact resumption is in test_algorithms.py (the generic tests); ``composer -n 2`` of its recipe in
test_distillation.py, beside the distillation ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from composer.core import Callback, Event, State
from composer.loggers import Logger
from conftest import TINY
from test_distillation import logged, with_log

from algorithms import CheckpointMixupTeacher, mix_teacher_outputs
from algorithms.distillation import draw_teachers, mix_outputs, parse_teachers
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
        self.draws: list[tuple[tuple[int, ...], tuple[float, ...]]] = []
        self.max_error = 0.0
        for k, net in enumerate(alg.networks):
            net.register_forward_hook(lambda _m, _i, out, k=k: self.outputs.__setitem__(k, out.detach()))

    def run_event(self, event: Event, state: State, logger: Logger) -> None:
        if event == Event.BEFORE_FORWARD:
            self.outputs = {}
        if event != Event.AFTER_LOSS:
            return
        chosen, weights = self.alg.last_draw  # type: ignore[misc]
        self.ran.append(set(self.outputs))
        self.draws.append((chosen, weights))
        probs = sum(w * F.softmax(self.outputs[i] / 4.0, 1) for i, w in zip(chosen, weights, strict=True))
        ce = F.cross_entropy(state.outputs, state.batch[1])
        expected = 0.1 * ce + 0.9 * distillation_term(state.outputs, probs, 4.0)
        self.max_error = max(self.max_error, float((state.loss - expected).abs()))

    @property
    def pairs(self) -> list[tuple[int, int, float]]:
        return [(chosen[0], chosen[1], weights[0]) for chosen, weights in self.draws]


def test_only_the_drawn_pair_runs_and_the_loss_uses_their_mixture(past_run: str):
    trainer, log = with_log('max_duration=3ba', 'eval_interval=3ba', f'{TEACHER}.run={past_run}',
                            f'{TEACHER}.checkpoints=[ep1,ep2,latest]')
    forwards = Forwards(next(a for a in trainer.state.algorithms if isinstance(a, CheckpointMixupTeacher)))
    trainer.state.callbacks.append(forwards)
    trainer.fit()
    trainer.close()
    assert forwards.pairs == [draw_pair(3, 0.4, trainer.state.rank_zero_seed, b) for b in range(3)]
    assert forwards.ran == [{i, j} for i, j, _ in forwards.pairs]
    assert forwards.max_error < 1e-5
    assert logged(log, 'kd/pair_i') == [i for i, _, _ in forwards.pairs]
    assert logged(log, 'kd/pair_j') == [j for _, j, _ in forwards.pairs]
    assert logged(log, 'kd/lam') == [lam for *_, lam in forwards.pairs]


@pytest.mark.parametrize(('args', 'message'), [
    ({'checkpoints': '[ep1]'}, 'must list at least two checkpoints to mix'),
    ({'checkpoints': '[ep1,ep7]'}, "no checkpoint 'ep7'"),
    ({'mix_alpha': 0}, 'mix_alpha=0 is the Beta parameter of lam and must be > 0'),
    ({'space': 'softmax'}, "space='softmax' is not a mixing space: choose 'prob' or 'logit'"),
    ({'temperature': -1}, 'temperature=-1 must be a number > 0'),
    ({'run': '/nonexistent/run'}, 'no past run at /nonexistent/run'),
    ({'draw': 'subset', 'k': 3}, 'k=3 must be between 1 and the 2 teachers'),
    ({'k': 3}, 'k=3 with draw=pair: a pair is two teachers'),
    ({'draw': 'random'}, "draw='random' is not a draw: choose pair, subset or dirichlet"),
    ({'run': None}, "checkpoint 'ep1' names no run: give run or runs, or write it RUN_FOLDER:ep1"),
    ({'runs': '[PAST,PAST]'}, 'give run (one past run) or runs (a pool of past runs), not both'),
    ({'until': '3ba'}, "until='3ba' must be a time in epochs, such as 40ep"),
    ({'every': 0}, 'every=0 must be an integer >= 1'),
])
def test_errors_stop_the_run_before_training(past_run: str, args: dict, message: str):
    spec = {k: str(v).replace('PAST', past_run) for k, v in {'run': past_run, 'checkpoints': '[ep1,ep2]', **args}.items()
            if v is not None}
    with pytest.raises(UsageError) as error:
        build_trainer(load_config(None, [*TINY, *(f'{TEACHER}.{k}={v}' for k, v in spec.items())]))
    assert message in str(error.value)


def test_many_teachers_mix_as_the_convex_combination():
    gen = torch.Generator().manual_seed(5)
    logits = [torch.randn(4, 6, generator=gen) * 3 for _ in range(3)]
    weights = (0.5, 0.3, 0.2)
    probs = [F.softmax(z.double() / 2.0, 1) for z in logits]
    expected = {
        'prob': sum(w * p for w, p in zip(weights, probs, strict=True)),
        'logit': F.softmax(sum(w * z.double() for w, z in zip(weights, logits, strict=True)) / 2.0, 1),
    }
    for space, want in expected.items():
        assert torch.allclose(mix_outputs(logits, weights, 2.0, space).double(), want, atol=1e-6)
    assert torch.equal(mix_outputs(logits[:2], (0.7, 0.3), 2.0, 'prob'), mix_teacher_outputs(*logits[:2], 0.7, 2.0, 'prob'))


@pytest.mark.parametrize('draw', ['subset', 'dirichlet'])
def test_pool_draws_are_pure_functions_of_seed_and_batch(draw: str):
    draws = [draw_teachers(5, draw, 3, 0.5, seed=17, batch=b) for b in range(3000)]
    assert draw_teachers(5, draw, 3, 0.5, seed=17, batch=77) == draws[77]
    assert draw_teachers(5, draw, 3, 0.5, seed=18, batch=77) != draws[77]
    assert all(len(set(c)) == 3 and all(0 <= i < 5 for i in c) for c, _ in draws)
    assert len({frozenset(c) for c, _ in draws}) == 10  # every 3 of 5
    weights = np.array([w for _, w in draws])
    assert np.allclose(weights.sum(1), 1.0) and (weights > 0).all()
    if draw == 'subset':
        assert (weights == 1 / 3).all()
    else:  # Dirichlet(0.5, 0.5, 0.5): mean 1/3, Var = (1/3)(2/3) / (1.5 + 1)
        assert abs(weights.mean() - 1 / 3) < 0.01 and abs(weights.var() - (2 / 9) / 2.5) < 0.01
    i, j, lam = draw_pair(5, 0.4, 17, 9)
    assert draw_teachers(5, 'pair', 2, 0.4, 17, 9) == ((i, j), (lam, 1 - lam))


@pytest.fixture
def second_run(past_run: str, tmp_path: Path) -> str:
    """A second past run folder (a copy of the first: the pool's mechanics, not its teachers, are under test)."""
    return str(shutil.copytree(past_run, tmp_path / 'seed2'))


def test_teachers_are_named_by_run_and_checkpoint(past_run: str, second_run: str):
    pool = parse_teachers(None, [past_run, second_run], ['ep1', 'ep2'])
    assert [(p.folder, name) for p, name in pool] == [(past_run, 'ep1'), (second_run, 'ep1'), (past_run, 'ep2'),
                                                      (second_run, 'ep2')]
    pool = parse_teachers(past_run, None, ['ep1', f'{second_run}:ep2', 's3://bucket/run/ep2-ba16-rank0.pt'])
    assert [(p.folder, name) for p, name in pool] == [(past_run, 'ep1'), (second_run, 'ep2'),
                                                      (past_run, 's3://bucket/run/ep2-ba16-rank0.pt')]


@pytest.mark.parametrize(('draw', 'k'), [('subset', 2), ('dirichlet', 3)])
def test_a_pool_runs_k_teachers_per_batch_and_the_loss_uses_their_mixture(past_run: str, second_run: str, draw: str,
                                                                          k: int):
    trainer, log = with_log('max_duration=3ba', 'eval_interval=3ba', f'{TEACHER}.runs=[{past_run},{second_run}]',
                            f'{TEACHER}.checkpoints=[ep1,ep2]', f'{TEACHER}.draw={draw}', f'{TEACHER}.k={k}')
    alg = next(a for a in trainer.state.algorithms if isinstance(a, CheckpointMixupTeacher))
    assert len(alg.networks) == 4
    assert set(alg.reused_compute()) == {f'past run {past_run}', f'past run {second_run}'}
    forwards = Forwards(alg)
    trainer.state.callbacks.append(forwards)
    trainer.fit()
    trainer.close()
    assert forwards.draws == [draw_teachers(4, draw, k, 0.4, trainer.state.rank_zero_seed, b) for b in range(3)]
    assert forwards.ran == [set(chosen) for chosen, _ in forwards.draws]  # k forwards per batch, of the drawn ones
    assert forwards.max_error < 1e-5
    assert logged(log, f'kd/teacher_{k - 1}') == [chosen[k - 1] for chosen, _ in forwards.draws]
    assert logged(log, 'kd/weight_0') == [weights[0] for _, weights in forwards.draws]
