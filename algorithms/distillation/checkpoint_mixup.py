"""The checkpoint-mixup teacher: MixUp across model iterations of a past run, or across a pool of past runs.

The teachers are checkpoints: several of one run (``run`` and ``checkpoints``), the same checkpoints of several runs
(``runs``, the seeds of a baseline, say), or entries written ``RUN_FOLDER:CHECKPOINT``. For each batch ``draw``
chooses which of the K teachers run and their weights (:func:`draw_teachers`):

* ``pair``: two distinct teachers ``i``, ``j`` and ``lam ~ Beta(mix_alpha, mix_alpha)``: weights ``lam, 1 - lam``;
* ``subset``: ``k`` distinct teachers, equal weights (the mean of their distributions);
* ``dirichlet``: ``k`` distinct teachers, weights from a symmetric ``Dirichlet(mix_alpha)``.

The teacher distribution is ``sum_m w_m p_m`` (``space='prob'``) or ``softmax(sum_m w_m z_m / T)``
(``space='logit'``). Only the drawn teachers run a forward: k per batch whatever K is.

Functional forms: :func:`mix_teacher_outputs`, :func:`mix_outputs`, :func:`draw_pair`, :func:`draw_teachers`,
:func:`parse_teachers`. Algorithm: :class:`CheckpointMixupTeacher`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import numpy as np
import torch.nn.functional as F
from composer.core import State
from torch import Tensor, nn

from algorithms.distillation.distillation import (
    Cache,
    Every,
    KDWeight,
    NumClasses,
    Strict,
    TeacherDistillation,
    Temperature,
    TrainData,
    Until,
    open_cache,
)
from algorithms.past_run import PastRun, past_run_cost
from recipes.core.artifacts import CheckpointNames, PastRunFolder, PastRunFolders, split_checkpoint_entry
from recipes.core.declare import checked
from recipes.core.rules import Number, OneOf

__all__ = [
    'DRAWS',
    'SPACES',
    'CheckpointMixupTeacher',
    'draw_pair',
    'draw_teachers',
    'mix_outputs',
    'mix_teacher_outputs',
    'parse_teachers',
]

SPACES = ('prob', 'logit')
DRAWS = ('pair', 'subset', 'dirichlet')


def mix_outputs(logits: Sequence[Tensor], weights: Sequence[float], temperature: float, space: str) -> Tensor:
    """``sum_m weights[m] * softmax(logits[m] / T)`` (``prob``) or ``softmax(sum_m weights[m] * logits[m] / T)``."""
    if space not in SPACES:
        raise ValueError(f"space={space!r} is not a mixing space: choose 'prob' or 'logit'")
    terms = [w * (F.softmax(z.float() / temperature, dim=1) if space == 'prob' else z.float())
             for z, w in zip(logits, weights, strict=True)]
    mixed = terms[0]
    for term in terms[1:]:
        mixed = mixed + term
    return mixed if space == 'prob' else F.softmax(mixed / temperature, dim=1)


def mix_teacher_outputs(logits_i: Tensor, logits_j: Tensor, lam: float, temperature: float, space: str) -> Tensor:
    """The mixed distribution of two teachers at temperature ``temperature``, (N, C), rows summing to one."""
    return mix_outputs([logits_i, logits_j], [lam, 1 - lam], temperature, space)


def draw_pair(num_checkpoints: int, mix_alpha: float, seed: int, batch: int) -> tuple[int, int, float]:
    """Two distinct checkpoint indices and ``lam ~ Beta(mix_alpha, mix_alpha)`` for batch ``batch`` of a run.

    A pure function of ``(seed, batch)``: the same on every rank and every microbatch of the batch, and the same
    again after the run resumes from a checkpoint, with no generator state to save.
    """
    rng = np.random.default_rng([seed, batch])
    i, j = rng.choice(num_checkpoints, size=2, replace=False)
    return int(i), int(j), float(rng.beta(mix_alpha, mix_alpha))


def draw_teachers(
    num_teachers: int, draw: str, k: int, mix_alpha: float, seed: int, batch: int,
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The teachers of batch ``batch`` (distinct indices) and their convex weights; a pure function of (seed, batch)."""
    if draw == 'pair':
        i, j, lam = draw_pair(num_teachers, mix_alpha, seed, batch)
        return (i, j), (lam, 1 - lam)
    rng = np.random.default_rng([seed, batch])
    chosen = tuple(int(i) for i in rng.choice(num_teachers, size=k, replace=False))
    if draw == 'subset':
        return chosen, (1 / k,) * k
    if draw == 'dirichlet':
        return chosen, tuple(float(w) for w in rng.dirichlet([mix_alpha] * k))
    raise ValueError(f'draw={draw!r} is not a draw: choose pair, subset or dirichlet')


def parse_teachers(
    run: str | PastRun | None, runs: Sequence[str] | None, checkpoints: Sequence[str],
) -> list[tuple[PastRun, str]]:
    """The (past run, checkpoint) of every teacher.

    An entry ``RUN_FOLDER:CHECKPOINT`` names its run; a plain checkpoint name is taken from ``run``, or from each
    of ``runs`` in turn (so ``runs=[a, b], checkpoints=[ep4, ep8]`` is four teachers).
    """
    if isinstance(checkpoints, str):
        raise ValueError(f'checkpoints={checkpoints!r} must be a list of checkpoints: for example [ep40, ep80]')
    if run is not None and runs:
        raise ValueError('give run (one past run) or runs (a pool of past runs), not both')
    pool = [run if isinstance(run, PastRun) else PastRun(run)] if run is not None else [PastRun(r) for r in runs or []]
    teachers: list[tuple[PastRun, str]] = []
    for entry in (str(c) for c in checkpoints):
        folder, name = split_checkpoint_entry(entry)
        if folder:
            teachers.append((PastRun(folder), name))
        elif not pool:
            raise ValueError(
                f'checkpoint {entry!r} names no run: give run or runs, or write it RUN_FOLDER:{entry}',
            )
        else:
            teachers.extend((past, entry) for past in pool)
    return teachers


@checked
class CheckpointMixupTeacher(TeacherDistillation):
    """Distil from a random mixture of checkpoints of past runs, redrawn every batch.

    ``run`` is a past run's folder (local or ``s3://``) or a :class:`~algorithms.past_run.PastRun`, ``runs`` a list
    of them; ``checkpoints`` names checkpoints (``ep40``, a file name, a URI, or ``RUN_FOLDER:CHECKPOINT``); see
    :func:`parse_teachers`. At least two teachers are needed; ``pair`` draws two, ``subset`` and ``dirichlet`` draw
    ``k`` of them. All teachers are loaded here, frozen, on the CPU, each rebuilt from its own run's config (a pool
    may mix architectures), so a missing checkpoint or a class mismatch (``num_classes``, the student's) stops the
    run before training; ``INIT`` moves them to the student's device, where they stay: a CIFAR ResNet is a few MB,
    and keeping them resident means no checkpoint is read in the middle of training. With ``cache``, a cache of these
    teachers in this order (``launch/cache_teacher.py --checkpoints``) gives their logits and none is loaded; the
    draws and the mixing are the same.

    A batch's draw comes from :func:`draw_teachers` with the run's seed (``state.rank_zero_seed``) and the batch
    count, both restored by a Composer checkpoint, so a resumed run draws what the uninterrupted run drew and no
    other algorithm's random stream is consumed. Events: those of :class:`~algorithms.distillation.TeacherDistillation`
    (with ``until`` and ``every``); each batch also logs ``kd/pair_i``, ``kd/pair_j`` (positions among the teachers)
    and ``kd/lam`` for ``pair``, ``kd/teacher_m`` and ``kd/weight_m`` (m < k) for the other draws.
    """

    def __init__(
        self,
        run: Annotated[str | PastRun | None, PastRunFolder(optional=True), 'the past run whose checkpoints teach; give '
                       'run or runs, not both'] = None,
        checkpoints: Annotated[Sequence[str], CheckpointNames(many=True), 'at least two teachers in all; a plain name '
                               'is taken from run, or from each of runs; RUN_FOLDER:CHECKPOINT names its own run'] = (),
        temperature: Temperature = 4.0,
        alpha: KDWeight = 0.9,
        mix_alpha: Annotated[float, Number(0, 1000, low_open=True,
                                           message='is the Beta parameter of lam and must be > 0: for example 0.4'),
                             'the Beta (pair) or Dirichlet concentration of the weights'] = 0.4,
        space: Annotated[str, OneOf(*SPACES, message="is not a mixing space: choose 'prob' or 'logit'"),
                         '`prob` mixes the teachers\' softmax outputs, `logit` their logits'] = 'prob',
        num_classes: NumClasses = None,
        runs: Annotated[Sequence[str] | None, PastRunFolders(optional=True), 'a pool of past runs (the seeds of a '
                        'baseline, say): runs=[a, b], checkpoints=[ep4, ep8] is four teachers'] = None,
        draw: Annotated[str, OneOf(*DRAWS, message='is not a draw: choose pair, subset or dirichlet'),
                        '`pair`: two teachers, lam ~ Beta; `subset`: k teachers, equal weights; `dirichlet`: k teachers, '
                        'Dirichlet weights'] = 'pair',
        k: Annotated[int, Number(1, 1000, integer=True), 'teachers per batch (2 for pair; 1 to K otherwise)'] = 2,
        strict: Strict = False,
        until: Until = None,
        every: Every = 1,
        cache: Cache = None,
        dataset: TrainData = None,
    ) -> None:
        super().__init__(temperature, alpha, until, every)
        teachers = parse_teachers(run, runs, checkpoints)
        if len(teachers) < 2:
            raise ValueError(
                f'checkpoints={list(checkpoints)!r} must list at least two checkpoints to mix: for example [ep40, ep80]',
            )
        if draw == 'pair' and k != 2:
            raise ValueError(f'k={k} with draw=pair: a pair is two teachers; use draw=subset or dirichlet for k={k}')
        if not (isinstance(k, int) and 1 <= k <= len(teachers)):
            raise ValueError(f'k={k!r} must be between 1 and the {len(teachers)} teachers: teachers run per batch')
        self.runs = sorted({past.folder for past, _ in teachers})
        self.checkpoints = [str(c) for c in checkpoints]
        self.teacher_names = [f'{past.folder}:{name}' for past, name in teachers]
        self.mix_alpha = float(mix_alpha)
        self.space = space
        self.draw = draw
        self.k = k
        self.reused: dict[str, float] = {}
        for past in {past.folder: past for past, _ in teachers}.values():
            self.reused.update(past_run_cost(past, [name for p, name in teachers if p.folder == past.folder]))
        if cache is None:
            self.networks = [past.load(name, num_classes=num_classes, strict=strict) for past, name in teachers]
        else:
            for past, name in teachers:
                past.check(name, strict=strict)
            self.cache = open_cache(cache, teachers, dataset, num_classes)
            self.networks = []
            self.reused[f'cache {cache}'] = self.cache.flops
        self.num_teachers = len(teachers)
        self.last_draw: tuple[tuple[int, ...], tuple[float, ...]] | None = None
        self._draw_batch = -1

    @property
    def teachers(self) -> Sequence[nn.Module]:
        return self.networks

    def reused_compute(self) -> dict[str, float]:
        """What each past run of the pool had spent when its newest teacher checkpoint was saved."""
        return dict(self.reused)

    def teacher_probs(self, inputs: Tensor, state: State) -> Tensor:
        batch = int(state.timestamp.batch)
        if batch != self._draw_batch:
            self.last_draw = draw_teachers(self.num_teachers, self.draw, self.k, self.mix_alpha,
                                           state.rank_zero_seed, batch)
            self._draw_batch = batch
        assert self.last_draw is not None
        chosen, weights = self.last_draw
        logits = [self.cached_logits(state, i) if self.cache is not None else self.networks[i](inputs) for i in chosen]
        return mix_outputs(logits, weights, self.temperature, self.space)

    def batch_metrics(self) -> dict[str, float]:
        if self.last_draw is None:
            return {}
        chosen, weights = self.last_draw
        if self.draw == 'pair':
            return {'kd/pair_i': chosen[0], 'kd/pair_j': chosen[1], 'kd/lam': weights[0]}
        return {**{f'kd/teacher_{m}': i for m, i in enumerate(chosen)},
                **{f'kd/weight_{m}': w for m, w in enumerate(weights)}}
