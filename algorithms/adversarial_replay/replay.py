"""Adversarial replay: train on a few examples per batch from a bank made against a past run's checkpoints.

Making adversarial examples costs PGD-k about k+1 forward-backward passes per batch; examples made once against
the checkpoints of a past run transfer to nearby models (ATTA, Zheng et al. 2020). Replay appends
``round(replay_fraction * batch_size)`` bank examples to every batch, as they are stored: no crop or flip, since
the perturbation is tied to the pixels. With ``aux_bn`` every BatchNorm gets an auxiliary twin that normalises the
bank examples while the main one normalises the clean ones (AdvProp, Xie et al. 2020); evaluation, checkpoints
loaded as teachers (:func:`algorithms.past_run.load_model` drops the ``*.aux.*`` entries) and attacks use the main
BatchNorms.

Replayed rows follow the clean rows of the batch, and their entry in ``batch[2]`` (the dataset index) is
``-1 - bank_index``: negative, so code keyed on dataset indices can tell them apart (``batch[2] >= 0`` selects the
clean rows). Which bank examples a batch gets is drawn from ``(seed, rank, batch number)``: a resumed run draws
the same ones as an uninterrupted run, on every rank.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from composer.core import Algorithm, Event, State
from composer.loggers import Logger
from composer.utils import dist
from composer.utils.module_surgery import replace_module_classes
from torch import Tensor, nn

from algorithms.adversarial_replay.bank import AdversarialBank
from algorithms.past_run import past_run_cost
from recipes.core.errors import UsageError

__all__ = [
    'AdversarialReplay',
    'DualBatchNorm2d',
    'add_aux_batchnorms',
    'append_replay',
    'draw_bank_indices',
    'replay_count',
    'route_to_aux',
]


def _keep_in_graph(out: Tensor, *params: Tensor | None) -> Tensor:
    """``out`` plus zero times ``params``: parameters that served no row get a zero gradient instead of none."""
    present = [p.sum() for p in params if p is not None]
    return out + 0 * sum(present) if present else out


class DualBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d (the main one, under the original parameter names) with an auxiliary twin ``aux``.

    In training mode the last :attr:`num_aux` rows of the input go through ``aux`` and the others through the
    main BatchNorm, each updating only its own statistics; in eval mode every row uses the main one. In a training
    forward where one of the two serves no row, its parameters still join the graph with a zero gradient, so DDP
    (which expects every parameter to get a gradient) accepts microbatches of clean rows only or bank rows only.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.aux = nn.BatchNorm2d(num_features, eps, momentum, affine, track_running_stats)
        self.num_aux = 0

    @classmethod
    def from_batchnorm(cls, bn: nn.BatchNorm2d) -> DualBatchNorm2d:
        """Wrap ``bn``: its parameters and buffers become the main ones (the same tensors), ``aux`` a copy."""
        dual = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        dual.weight, dual.bias = bn.weight, bn.bias
        dual.running_mean, dual.running_var, dual.num_batches_tracked = bn.running_mean, bn.running_var, bn.num_batches_tracked
        dual.aux.load_state_dict(bn.state_dict())
        return dual.train(bn.training)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        num_aux = min(self.num_aux, len(x))
        if num_aux == 0:
            return _keep_in_graph(super().forward(x), self.aux.weight, self.aux.bias)
        if num_aux == len(x):
            return _keep_in_graph(self.aux(x), self.weight, self.bias)
        return torch.cat([super().forward(x[:-num_aux]), self.aux(x[-num_aux:])])


def add_aux_batchnorms(model: nn.Module, optimizers: Any = None) -> list[DualBatchNorm2d]:
    """Replace every BatchNorm2d of ``model`` by a :class:`DualBatchNorm2d` (in place, before any DDP wrap).

    The main parameters keep their identity, so ``optimizers`` only gain the auxiliary ones. A model that already
    has dual BatchNorms is left as it is. Returns the dual BatchNorms.
    """
    if not any(isinstance(m, DualBatchNorm2d) for m in model.modules()):
        replace_module_classes(
            model, {nn.BatchNorm2d: lambda bn, _: DualBatchNorm2d.from_batchnorm(bn)}, optimizers=optimizers,
        )
    return [m for m in model.modules() if isinstance(m, DualBatchNorm2d)]


def route_to_aux(batchnorms: Iterable[DualBatchNorm2d], num_aux: int) -> None:
    """Send the last ``num_aux`` rows of the next training forwards through the auxiliary BatchNorms."""
    for bn in batchnorms:
        bn.num_aux = num_aux


def replay_count(batch_size: int, replay_fraction: float) -> int:
    """How many bank examples a batch of ``batch_size`` gains."""
    return round(replay_fraction * batch_size)


def draw_bank_indices(bank_size: int, count: int, seed: int, rank: int, batch: int) -> Tensor:
    """``count`` bank indices, uniform with replacement, a function of ``(seed, rank, batch)`` only."""
    rng = np.random.default_rng([seed, rank, batch])
    return torch.from_numpy(rng.integers(0, bank_size, count, dtype=np.int64))


def append_replay(batch: Sequence[Tensor], images: Tensor, labels: Tensor, bank_indices: Tensor) -> tuple[Tensor, ...]:
    """``batch`` (inputs, class targets, dataset indices) followed by the bank examples, marked ``-1 - bank_index``."""
    if len(batch) != 3:
        raise ValueError(f'adversarial replay needs batches of (inputs, targets, indices), got {len(batch)} items')
    inputs, targets, indices = batch
    if targets.dim() != 1:
        raise ValueError('adversarial replay appends class indices: put soft targets after it (at BEFORE_LOSS)')
    return (
        torch.cat([inputs, images.to(inputs.device, inputs.dtype)]),
        torch.cat([targets, labels.to(targets.device, targets.dtype)]),
        torch.cat([indices, (-1 - bank_indices).to(indices.device, indices.dtype)]),
    )


class AdversarialReplay(Algorithm):
    """Append bank examples to every training batch; with ``aux_bn``, normalise them with auxiliary BatchNorms.

    Events:
        ``INIT``: checks that the bank's label space is the model's and, with ``aux_bn``, does the BatchNorm
        surgery (before Composer wraps the model in DDP; the optimizer gains the auxiliary parameters).
        ``AFTER_DATALOADER``: appends the bank examples to the whole batch, before microbatching and the device move;
        a batch that was one microbatch stays one (``device_train_microbatch_size`` grows by the replayed rows).
        ``BEFORE_FORWARD`` / ``AFTER_FORWARD`` (``aux_bn``): route the microbatch's replayed rows (the trailing rows
        with a negative index) through the auxiliary BatchNorms, then route everything to the main ones again.

    Args:
        bank: a bank folder or ``s3://`` URI written by ``launch/build_adv_bank.py``.
        replay_fraction: bank examples per clean example, in (0, 1].
        aux_bn: give every BatchNorm an auxiliary twin for the bank examples (AdvProp).
    """

    def __init__(self, bank: str, replay_fraction: float = 0.25, aux_bn: bool = True) -> None:
        if not 0 < replay_fraction <= 1:
            raise UsageError(
                f'adversarial_replay.replay_fraction={replay_fraction} is out of range: use a share in (0, 1], e.g. 0.25',
            )
        self.bank = AdversarialBank(bank)
        self.replay_fraction = replay_fraction
        self.aux_bn = aux_bn
        self._batchnorms: list[DualBatchNorm2d] = []
        self._seed = 0

    @staticmethod
    def required_on_load() -> bool:
        """It adds auxiliary BatchNorms to the model: a checkpoint of a replay run loads only into a model that has them."""
        return True

    def __repr__(self) -> str:
        return f'AdversarialReplay(bank={self.bank.root!r}, replay_fraction={self.replay_fraction}, aux_bn={self.aux_bn})'

    def reused_compute(self) -> dict[str, float]:
        """What the bank's attacks cost, and what the past-run checkpoints they were made against cost (ledger)."""
        meta = self.bank.metadata
        reused = {f'bank {self.bank.root}': float(meta.get('compute', {}).get('flops_estimate', 0.0))}
        if meta.get('run'):
            reused.update(past_run_cost(meta['run'], meta.get('checkpoints', [])))
        return reused

    def match(self, event: Event, state: State) -> bool:
        if event in (Event.INIT, Event.AFTER_DATALOADER):
            return True
        return self.aux_bn and event in (Event.BEFORE_FORWARD, Event.AFTER_FORWARD)

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        if event == Event.INIT:
            self._init(state)
        elif event == Event.AFTER_DATALOADER:
            self._replay(state)
        elif event == Event.BEFORE_FORWARD:
            route_to_aux(self._batchnorms, int((state.batch[2] < 0).sum()))
        else:
            route_to_aux(self._batchnorms, 0)

    def _init(self, state: State) -> None:
        num_classes = getattr(state.model, 'num_classes', None)
        if num_classes is not None and num_classes != self.bank.num_classes:
            raise UsageError(
                f'adversarial bank {self.bank.root} has {self.bank.num_classes} classes but the model has {num_classes}: '
                'build the bank from a past run on the same data set',
            )
        self._seed = state.rank_zero_seed
        if self.aux_bn:
            self._batchnorms = add_aux_batchnorms(state.model, state.optimizers)
            if not self._batchnorms:
                raise UsageError(
                    f'adversarial_replay.aux_bn=true gives every BatchNorm2d an auxiliary twin, but '
                    f'{_network_name(state.model)} has no BatchNorm2d: set '
                    'algorithms.adversarial_replay.aux_bn=false (replay without auxiliary BatchNorms) or use a model with them',
                )

    def _replay(self, state: State) -> None:
        inputs = state.batch[0]
        if tuple(inputs.shape[1:]) != self.bank.image_shape:
            raise UsageError(
                f'adversarial bank {self.bank.root} holds images of shape {self.bank.image_shape} but the training '
                f'data has {tuple(inputs.shape[1:])}: build the bank from a past run on the same data set',
            )
        count = replay_count(len(inputs), self.replay_fraction)
        if count == 0:
            raise UsageError(
                f'adversarial_replay.replay_fraction={self.replay_fraction} adds no example to a batch of {len(inputs)} '
                f'per rank: use at least {1 / len(inputs):.3g}, or a larger batch',
            )
        indices = draw_bank_indices(len(self.bank), count, self._seed, dist.get_global_rank(), int(state.timestamp.batch))
        images, labels = self.bank.examples(indices.tolist())
        state.batch = append_replay(state.batch, images, labels, indices)
        microbatch = state.device_train_microbatch_size
        if isinstance(microbatch, int) and microbatch >= len(inputs):  # the batch was one microbatch: keep it so
            state.device_train_microbatch_size = max(microbatch, len(inputs) + count)


def _network_name(model: nn.Module) -> str:
    """The class name of the network inside a Composer model (inside a torchvision wrapper, the torchvision class)."""
    module = getattr(model, 'module', model)
    return type(getattr(module, 'net', module)).__name__
