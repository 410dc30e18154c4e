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
from typing import Annotated, Any

import numpy as np
import torch
from composer.core import Algorithm, Event, State
from composer.loggers import Logger
from composer.utils import dist
from composer.utils.module_surgery import replace_module_classes
from torch import Tensor, nn

from algorithms.adversarial_replay.bank import AdversarialBank
from algorithms.past_run import past_run_cost
from recipes.core.artifacts import BankFolder
from recipes.core.declare import checked
from recipes.core.errors import UsageError, place
from recipes.core.rules import Number

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


def _stat_dtype(x: Tensor) -> torch.dtype:
    """The dtype of the batch statistics ATen's batch norm saves: float for half-precision inputs, else the input's."""
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


class _SplitBatchNorm(torch.autograd.Function):
    """Training-mode batch norm of the first ``len(x) - num_aux`` rows with the main parameters and statistics and
    of the last ``num_aux`` rows with the auxiliary ones, written into one output tensor.

    Forward: ATen's ``native_batch_norm.out`` normalises each part straight into its rows of the output (the kernel
    ``F.batch_norm`` runs on the CPU; it updates the part's running statistics), so there is no concatenation.
    Backward: ATen's ``native_batch_norm_backward`` per part, each part's input gradient copied once into its rows of
    one gradient tensor; slicing then concatenating cost a full-size zero-filled gradient per part plus their sum.
    A part that serves no row gets zero gradients for its parameters (DDP expects a gradient for every parameter).
    Not twice differentiable; under ``torch.compile`` or functorch transforms :class:`DualBatchNorm2d` slices instead.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, num_aux: int, eps: float,  # type: ignore[override]
                w_main: Tensor | None, b_main: Tensor | None, w_aux: Tensor | None, b_aux: Tensor | None,
                stats_main: tuple[Tensor | None, Tensor | None, float], stats_aux: tuple[Tensor | None, Tensor | None, float],
                ) -> Tensor:
        if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
            x = x.contiguous()
        out = torch.empty_like(x)  # keeps x's memory format, so each part's rows are a dense block of out
        split = len(x) - num_aux
        saved = []
        for rows, weight, bias, (running_mean, running_var, momentum) in (
            (slice(0, split), w_main, b_main, stats_main), (slice(split, len(x)), w_aux, b_aux, stats_aux),
        ):
            part = x[rows]
            if len(part) == 0:
                saved += [None, None]
                continue
            mean = x.new_empty(x.shape[1], dtype=_stat_dtype(x))
            invstd = torch.empty_like(mean)
            torch.ops.aten.native_batch_norm.out(
                part, weight, bias, running_mean, running_var, True, momentum, eps,
                out=out[rows], save_mean=mean, save_invstd=invstd,
            )
            saved += [mean, invstd]
        ctx.split, ctx.eps = split, eps
        ctx.save_for_backward(x, w_main, w_aux, *saved)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, w_main, w_aux, mean_main, invstd_main, mean_aux, invstd_aux = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_x = torch.empty_like(x) if needs[0] else None
        param_grads: list[Tensor | None] = []
        for rows, weight, mean, invstd, (need_w, need_b) in (
            (slice(0, ctx.split), w_main, mean_main, invstd_main, needs[3:5]),
            (slice(ctx.split, len(x)), w_aux, mean_aux, invstd_aux, needs[5:7]),
        ):
            if mean is None:  # this BatchNorm served no row
                zero = None if weight is None else torch.zeros_like(weight)
                param_grads += [zero if need_w else None, zero if need_b else None]
                continue
            gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
                grad_out[rows], x[rows], weight, None, None, mean, invstd, True, ctx.eps, [needs[0], need_w, need_b],
            )
            if grad_x is not None:
                grad_x[rows] = gx
            param_grads += [gw, gb]
        return grad_x, None, None, *param_grads, None, None


class DualBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d (the main one, under the original parameter names) with an auxiliary twin ``aux``.

    In training mode the last :attr:`num_aux` rows of the input go through ``aux`` and the others through the
    main BatchNorm, each updating only its own statistics; in eval mode every row uses the main one. In a training
    forward where one of the two serves no row, its parameters still join the graph with a zero gradient, so DDP
    (which expects every parameter to get a gradient) accepts microbatches of clean rows only or bank rows only.

    Both parts are normalised into one output by :class:`_SplitBatchNorm`, without slicing the input or
    concatenating the outputs; the results equal two separate ``nn.BatchNorm2d`` (same kernels). Under
    ``torch.compile`` and functorch transforms it falls back to the slice-and-concatenate form.
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
        if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
            return self._sliced_forward(x, num_aux)
        self._check_input_dim(x)
        for rows in (len(x) - num_aux, num_aux):
            if rows and rows * x[0, 0].numel() == 1:  # what F.batch_norm refuses in training mode
                raise ValueError(f'Expected more than 1 value per channel when training, got {rows} row(s) of {list(x.shape[1:])}')
        return _SplitBatchNorm.apply(
            x, num_aux, self.eps, self.weight, self.bias, self.aux.weight, self.aux.bias,
            self._step(self, len(x) - num_aux), self._step(self.aux, num_aux),
        )

    @staticmethod
    def _step(bn: nn.BatchNorm2d, rows: int) -> tuple[Tensor | None, Tensor | None, float]:
        """What ``nn.BatchNorm2d.forward`` does to ``bn`` before normalising ``rows`` rows in training mode: count
        the batch, pick the running-average factor; returns (running mean, running var, factor)."""
        factor = 0.0 if bn.momentum is None else bn.momentum
        if rows and bn.track_running_stats and bn.num_batches_tracked is not None:
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        return bn.running_mean, bn.running_var, factor

    def _sliced_forward(self, x: Tensor, num_aux: int) -> Tensor:
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


@checked
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

    def __init__(
        self,
        bank: Annotated[str, BankFolder(), f'written by {place("build_adv_bank")}'],
        replay_fraction: Annotated[float, Number(0, 1, low_open=True, message='is out of range: use a share in (0, 1], e.g. 0.25'),
                                   'bank examples per clean example: a batch gains round(fraction x batch size) rows'] = 0.25,
        aux_bn: Annotated[bool, 'normalise the bank rows with auxiliary BatchNorms (AdvProp); false for a model without '
                          'BatchNorm2d'] = True,
    ) -> None:
        self.bank = AdversarialBank(bank)
        self.replay_fraction = replay_fraction
        self.aux_bn = aux_bn
        self._batchnorms: list[DualBatchNorm2d] = []
        self._seed = 0

    @staticmethod
    def required_on_load() -> bool:
        """It adds auxiliary BatchNorms to the model: a checkpoint of a replay run loads only into a model that has them."""
        return True

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
