"""Reuse baselines: start the new run from a past run's weights, plainly or shrunk and perturbed.

Functional form: :func:`shrink_perturb` (Ash & Adams, NeurIPS 2020). Algorithms: :class:`WarmStart` and
:class:`ShrinkPerturb`, which write a past checkpoint's weights into the student at ``INIT`` and then let the run
train its own schedule from step 0.
"""

from __future__ import annotations

import copy
from typing import Annotated

import torch
from composer.core import Algorithm, Event, State
from composer.loggers import Logger
from torch import nn

from algorithms.past_run import PastRun, past_run_cost
from recipes.core.artifacts import CheckpointNames, PastRunFolder
from recipes.core.declare import FromRun, checked
from recipes.core.errors import UsageError
from recipes.core.rules import Number

__all__ = ['ShrinkPerturb', 'WarmStart', 'check_same_architecture', 'shrink_perturb']


def check_same_architecture(past: nn.Module, fresh: nn.Module, what: str = 'the past model') -> None:
    """Refuse two networks whose parameters and buffers differ in name or shape."""
    a, b = past.state_dict(), fresh.state_dict()
    differ = sorted(set(a) ^ set(b)) or [k for k in a if a[k].shape != b[k].shape]
    if differ:
        raise UsageError(
            f'{what} is another architecture than this run\'s model (first difference: {differ[0]!r}): weights '
            'cannot be copied across architectures; use past_run_distillation, whose teacher may differ',
        )


def shrink_perturb(past: nn.Module, fresh: nn.Module, shrink: float, perturb: float) -> nn.Module:
    """A copy of ``fresh`` whose every parameter is ``shrink * past + perturb * fresh``; buffers stay ``fresh``'s.

    ``past`` and ``fresh`` are left unchanged. ``shrink=1, perturb=0`` gives the past parameters bit for bit.
    """
    check_same_architecture(past, fresh)
    mixed = copy.deepcopy(fresh)
    past_params = dict(past.named_parameters())
    with torch.no_grad():
        for name, param in mixed.named_parameters():
            param.copy_(shrink * past_params[name].to(param.dtype) + perturb * param)
    return mixed


Factor = Annotated[float, Number(0, 1000, message='must be a number >= 0: the authors use shrink=0.4, perturb=0.1')]
Run = Annotated[str | PastRun, PastRunFolder(), 'the past run folder; the same architecture as the model']
Checkpoint = Annotated[str, CheckpointNames(), 'the checkpoint to start from']
NumClasses = Annotated[int | None, FromRun('num_classes')]
Strict = Annotated[bool, 'refuse a checkpoint near chance or far below the run\'s best instead of warning']


@checked
class WarmStart(Algorithm):
    """Start from checkpoint ``checkpoint`` of the past run ``run``: its parameters and BatchNorm statistics.

    Events: ``INIT`` copies the past network (loaded through :meth:`PastRun.load`, ``weights_only``) into the
    student in place, so the optimizer built beside the model keeps its parameters; the run then trains its own
    schedule from step 0. A run resumed from its own checkpoint loads that checkpoint after ``INIT``, so resumption
    is exact. The past run's compute counts as reused (:meth:`reused_compute`). A second warm start in the same run
    (``shrink_perturb`` or ``dash_warm_start`` beside ``warm_start``) is refused at ``INIT``: both would set the start.
    """

    def __init__(
        self,
        run: Run,
        checkpoint: Checkpoint = 'latest',
        num_classes: NumClasses = None,
        strict: Strict = False,
    ) -> None:
        self.past_run = run if isinstance(run, PastRun) else PastRun(run)
        self.checkpoint = str(checkpoint)
        self.strict = strict
        self.past = self.past_run.load(self.checkpoint, num_classes=num_classes, strict=strict)
        self.reused = past_run_cost(self.past_run, [self.checkpoint])

    def reused_compute(self) -> dict[str, float]:
        return dict(self.reused)

    def match(self, event: Event, state: State) -> bool:
        return event == Event.INIT

    def start_weights(self, student: nn.Module) -> nn.Module:
        """The network whose state the student starts from."""
        return self.past

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        others = [type(alg).__name__ for alg in state.algorithms if isinstance(alg, WarmStart) and alg is not self]
        if others:
            raise UsageError(
                f'{type(self).__name__} and {others[0]} both set the weights the run starts from: keep one of them',
            )
        student = state.model.module if hasattr(state.model, 'module') else state.model
        check_same_architecture(
            self.past, student, f'past run {self.past_run.folder} ({self.past_run.config["model"]["name"]})',
        )
        start = self.start_weights(student)
        with torch.no_grad():
            for name, value in student.state_dict().items():
                value.copy_(start.state_dict()[name])


@checked
class ShrinkPerturb(WarmStart):
    """Start from ``shrink * past + perturb * fresh`` (:func:`shrink_perturb`).

    ``fresh`` is the student as the run built it: a new random initialisation of the same architecture from the
    run's seed, whose buffers (BatchNorm statistics) the student keeps. Events and resumption as
    :class:`WarmStart`.
    """

    def __init__(
        self,
        run: Run,
        checkpoint: Checkpoint = 'latest',
        shrink: Annotated[Factor, 'weight of the past parameters'] = 0.4,
        perturb: Annotated[Factor, 'weight of the fresh initialisation'] = 0.1,
        num_classes: NumClasses = None,
        strict: Strict = False,
    ) -> None:
        super().__init__(run, checkpoint, num_classes=num_classes, strict=strict)
        self.shrink = float(shrink)
        self.perturb = float(perturb)

    def start_weights(self, student: nn.Module) -> nn.Module:
        return shrink_perturb(self.past, student, self.shrink, self.perturb)
