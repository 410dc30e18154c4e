"""The checkpoint-mixup teacher: MixUp across model iterations of a past run.

For each batch two of the past run's checkpoints, ``i`` and ``j``, and ``lam ~ Beta(mix_alpha, mix_alpha)`` are
drawn; the teacher distribution is ``lam * p_i + (1 - lam) * p_j`` (``space='prob'``) or
``softmax((lam * z_i + (1 - lam) * z_j) / T)`` (``space='logit'``). Only the two drawn checkpoints run a forward,
so a step costs the same whatever the number of checkpoints.

Functional forms: :func:`mix_teacher_outputs`, :func:`draw_pair`. Algorithm: :class:`CheckpointMixupTeacher`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch.nn.functional as F
from composer.core import State
from torch import Tensor, nn

from algorithms.distillation.distillation import TeacherDistillation
from algorithms.past_run import PastRun, past_run_cost

__all__ = ['SPACES', 'CheckpointMixupTeacher', 'draw_pair', 'mix_teacher_outputs']

SPACES = ('prob', 'logit')


def mix_teacher_outputs(logits_i: Tensor, logits_j: Tensor, lam: float, temperature: float, space: str) -> Tensor:
    """The mixed teacher distribution at temperature ``temperature``, (N, C), rows summing to one."""
    logits_i, logits_j = logits_i.float(), logits_j.float()
    if space == 'prob':
        return lam * F.softmax(logits_i / temperature, dim=1) + (1 - lam) * F.softmax(logits_j / temperature, dim=1)
    if space == 'logit':
        return F.softmax((lam * logits_i + (1 - lam) * logits_j) / temperature, dim=1)
    raise ValueError(f"space={space!r} is not a mixing space: choose 'prob' or 'logit'")


def draw_pair(num_checkpoints: int, mix_alpha: float, seed: int, batch: int) -> tuple[int, int, float]:
    """Two distinct checkpoint indices and ``lam ~ Beta(mix_alpha, mix_alpha)`` for batch ``batch`` of a run.

    A pure function of ``(seed, batch)``: the same on every rank and every microbatch of the batch, and the same
    again after the run resumes from a checkpoint, with no generator state to save.
    """
    rng = np.random.default_rng([seed, batch])
    i, j = rng.choice(num_checkpoints, size=2, replace=False)
    return int(i), int(j), float(rng.beta(mix_alpha, mix_alpha))


class CheckpointMixupTeacher(TeacherDistillation):
    """Distil from a random mixture of two checkpoints of a past run, redrawn every batch.

    ``run`` is the past run's folder (local or ``s3://``) or a :class:`~algorithms.past_run.PastRun`;
    ``checkpoints`` names at least two of its checkpoints (``ep40``, a file name, a URI). All of them are loaded
    here, frozen, on the CPU, so a missing checkpoint or a class mismatch (``num_classes``, the student's) stops
    the run before training; ``INIT`` moves them to the student's device, where they stay: a CIFAR ResNet is a few
    MB, and keeping them resident means no checkpoint is read in the middle of training.

    The pair and ``lam`` of a batch come from :func:`draw_pair` with the run's seed (``state.rank_zero_seed``) and
    the batch count, both restored by a Composer checkpoint, so a resumed run draws what the uninterrupted run drew
    and no other algorithm's random stream is consumed. Events: those of
    :class:`~algorithms.distillation.TeacherDistillation`; each batch also logs ``kd/pair_i``, ``kd/pair_j``
    (positions in ``checkpoints``) and ``kd/lam``.
    """

    def __init__(
        self,
        run: str | PastRun,
        checkpoints: Sequence[str],
        temperature: float = 4.0,
        alpha: float = 0.9,
        mix_alpha: float = 0.4,
        space: str = 'prob',
        num_classes: int | None = None,
    ) -> None:
        super().__init__(temperature, alpha)
        if not (isinstance(mix_alpha, (int, float)) and math.isfinite(mix_alpha) and mix_alpha > 0):
            raise ValueError(f'mix_alpha={mix_alpha!r} is the Beta parameter of lam and must be > 0: for example 0.4')
        if space not in SPACES:
            raise ValueError(f"space={space!r} is not a mixing space: choose 'prob' or 'logit'")
        if isinstance(checkpoints, str) or len(checkpoints) < 2:
            raise ValueError(
                f'checkpoints={checkpoints!r} must list at least two checkpoints to mix: for example [ep40, ep80]',
            )
        self.past_run = run if isinstance(run, PastRun) else PastRun(run)
        self.checkpoints = [str(c) for c in checkpoints]
        self.mix_alpha = float(mix_alpha)
        self.space = space
        self.networks = [self.past_run.load(name, num_classes=num_classes) for name in self.checkpoints]
        self.reused = past_run_cost(self.past_run, self.checkpoints)
        self.last_draw: tuple[int, int, float] | None = None
        self._draw_batch = -1

    def __repr__(self) -> str:
        return (
            f'CheckpointMixupTeacher(run={self.past_run.folder!r}, checkpoints={self.checkpoints}, '
            f'temperature={self.temperature}, alpha={self.alpha}, mix_alpha={self.mix_alpha}, space={self.space!r})'
        )

    @property
    def teachers(self) -> Sequence[nn.Module]:
        return self.networks

    def teacher_probs(self, inputs: Tensor, state: State) -> Tensor:
        batch = int(state.timestamp.batch)
        if batch != self._draw_batch:
            self.last_draw = draw_pair(len(self.networks), self.mix_alpha, state.rank_zero_seed, batch)
            self._draw_batch = batch
        assert self.last_draw is not None
        i, j, lam = self.last_draw
        return mix_teacher_outputs(self.networks[i](inputs), self.networks[j](inputs), lam, self.temperature, self.space)

    def batch_metrics(self) -> dict[str, float]:
        if self.last_draw is None:
            return {}
        i, j, lam = self.last_draw
        return {'kd/pair_i': i, 'kd/pair_j': j, 'kd/lam': lam}

