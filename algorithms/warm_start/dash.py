"""DASH (Shin et al., NeurIPS 2024): warm start from a past run with each weight slice shrunk by how little it agrees
with the new data's loss gradient, so that the network keeps what the new data confirms and regains plasticity
elsewhere.

Functional forms: :func:`dash_shrink` (the shrink, given the averaged gradient), :func:`shrink_factors` (its factor
for one parameter) and :func:`averaged_gradient` (the gradient as DASH averages it). Algorithm:
:class:`DashWarmStart`, a :class:`~algorithms.warm_start.WarmStart` that shrinks once before the first step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import torch
import torch.nn.functional as F
from composer.core import Event, State
from composer.core.precision import get_precision_context
from composer.loggers import Logger
from composer.utils import dist, model_eval_mode
from torch import Tensor, nn
from torch.utils.data import Dataset, default_collate
from torch.utils.flop_counter import FlopCounterMode

from algorithms.warm_start.warm_start import Checkpoint, NumClasses, Run, Strict, WarmStart
from recipes.core.data import MDSImageDataset
from recipes.core.declare import FromRun, checked
from recipes.core.errors import UsageError
from recipes.core.rules import Number

__all__ = ['SHRUNK_LAYERS', 'DashWarmStart', 'averaged_gradient', 'dash_shrink', 'shrink_factors']

SHRUNK_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)  # the layers whose weights and biases DASH shrinks
PURPOSE = 'dash'  # the compute ledger's purpose for the gradient pass


def shrink_factors(weight: Tensor, grad: Tensor, lam: float) -> Tensor:
    """``max(lam, cos(w, -g))`` for each slice ``w`` of ``weight`` and the matching slice ``g`` of ``grad``, shaped to
    multiply ``weight``: a 1-D parameter (a bias) is one slice; a 2-D one (a linear weight) one slice per row (output
    neuron); a convolution weight ``(out, in, k...)`` one slice per (output, input) channel pair, its kernel. A zero
    slice has cosine 0 (``F.cosine_similarity``, eps 1e-8), so it is shrunk to ``lam``."""
    w, descent = weight.detach().float(), -grad.detach().float()
    if weight.ndim == 1:
        return F.cosine_similarity(w, descent, dim=0).clamp(min=lam)
    if weight.ndim == 2:
        return F.cosine_similarity(w, descent, dim=1).clamp(min=lam)[:, None]
    cos = F.cosine_similarity(w.flatten(2), descent.flatten(2), dim=2).clamp(min=lam)
    return cos.view(*cos.shape, *([1] * (weight.ndim - 2)))


def dash_shrink(model: nn.Module, grads: Mapping[str, Tensor], lam: float) -> None:
    """Shrink the weights and biases of ``model``'s linear and convolution layers in place, by DASH's rule.

    ``grads`` maps each parameter's name, as ``model.named_parameters()`` gives it, to its averaged loss gradient (as
    ``param.grad`` holds it: the cosine is taken with its negative, the descent direction). Each slice ``w`` becomes
    ``max(lam, cos(w, -g)) * w`` (:func:`shrink_factors`): a slice aligned with the descent direction keeps itself,
    the others shrink down to ``lam``. Parameters of every other layer (normalisation layers' weights and biases) and
    every buffer (running statistics) are left as they are; no noise is added.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f'lam={lam} is out of range: use a share in [0, 1] (the authors use 0.3)')
    with torch.no_grad():
        for prefix, module in model.named_modules():
            if not isinstance(module, SHRUNK_LAYERS):
                continue
            for short, param in module.named_parameters(recurse=False):
                name = f'{prefix}.{short}' if prefix else short
                if name not in grads:
                    raise ValueError(f'grads holds no gradient for {name!r}: give one for every linear and convolution parameter')
                param.mul_(shrink_factors(param, grads[name], lam).to(param.dtype))


def _batch(dataset: Dataset, start: int, stop: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Inputs and targets of ``dataset[start:stop]``, read in order in this process (no loader RNG is drawn)."""
    inputs, targets, *_ = default_collate([dataset[i] for i in range(start, stop)])
    return inputs.to(device), targets.to(device)


def averaged_gradient(
    network: nn.Module, dataset: Dataset, *, batch_size: int, alpha: float, micro_batch: int, device: torch.device,
) -> dict[str, Tensor]:
    """The loss gradient DASH shrinks by, by parameter name: ``network`` in eval mode (BatchNorm's running
    statistics), the mean cross-entropy of each batch of ``batch_size`` consecutive examples of ``dataset`` in
    index order (the last one may be smaller), averaged as an exponential moving average ``g <- (1 - alpha) g +
    alpha grad_k`` from ``g = 0``: the last batch weighs ``alpha``, the one before ``alpha (1 - alpha)``, and so on.

    DASH's batches are its data chunks in arrival order. A batch's gradient is accumulated over pieces of at most
    ``micro_batch`` examples. Under several ranks, rank ``r`` takes batches ``r, r + W, ...`` and the weighted sums
    are added across ranks. Nothing else changes: parameters, buffers, ``.grad`` and the random generators.
    """
    named = [(name, p) for name, p in network.named_parameters() if p.requires_grad]
    total = {name: torch.zeros_like(p) for name, p in named}
    starts = list(range(0, len(dataset), batch_size))
    rank, world = dist.get_global_rank(), dist.get_world_size()
    with model_eval_mode(network):
        for k in range(rank, len(starts), world):
            start, stop = starts[k], min(starts[k] + batch_size, len(dataset))
            weight = alpha * (1 - alpha) ** (len(starts) - 1 - k)
            for lo in range(start, stop, micro_batch):
                inputs, targets = _batch(dataset, lo, min(lo + micro_batch, stop), device)
                loss = F.cross_entropy(network(inputs).float(), targets, reduction='sum') * (weight / (stop - start))
                for (name, _), grad in zip(named, torch.autograd.grad(loss, [p for _, p in named], allow_unused=True),
                                           strict=True):
                    if grad is not None:
                        total[name] += grad
    for value in total.values():
        dist.all_reduce(value)
    return total


def _network(model: nn.Module) -> nn.Module:
    """The bare network inside a (possibly DDP-wrapped) ComposerClassifier."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return model.module


Lam = Annotated[float, Number(0, 1, message='is out of range: use a share in [0, 1] (the authors use 0.3)'),
                'the least share of a weight slice kept: slices shrink to max(lam, cosine with the descent direction)']
Alpha = Annotated[float, Number(0, 1, low_open=True, message='is out of range: use a weight in (0, 1] (the authors use 0.3)'),
                  'weight of the newest batch in the moving average of the gradient (1: the last batch alone)']
BatchSize = Annotated[int, Number(1, 10**7, integer=True, message='must be a whole number >= 1: the authors\' chunk of '
                                  'CIFAR-10 is 1000'),
                      'examples per batch of the averaged gradient, in the training data\'s order: DASH\'s data chunk']


@checked
class DashWarmStart(WarmStart):
    """Start from checkpoint ``checkpoint`` of past run ``run``, shrunk once by DASH before the first step.

    Events: ``INIT`` copies the past network into the student, as :class:`WarmStart`. ``FIT_START`` of a run at step
    0 computes the student's :func:`averaged_gradient` on the run's training data (``dataset``, else the training
    loader's data set; without augmentation, in index order, eval mode, the run's precision) and shrinks it in place
    by :func:`dash_shrink`; the optimizer, built on the same parameters, starts from there. A resumed run (past step
    0) loads weights that were shrunk and trained already, so nothing runs again and resumption is exact. The pass
    draws no random numbers. Its FLOPs, counted by FlopCounterMode on every rank, are booked by the compute ledger
    under ``dash`` (:meth:`one_off_compute`); the past run's own compute counts as reused, as for :class:`WarmStart`.
    """

    def __init__(
        self,
        run: Run,
        checkpoint: Checkpoint = 'latest',
        lam: Lam = 0.3,
        alpha: Alpha = 0.3,
        batch_size: BatchSize = 1000,
        num_classes: NumClasses = None,
        strict: Strict = False,
        *,
        dataset: Annotated[MDSImageDataset | None, FromRun('train_dataset')] = None,
        micro_batch: Annotated[int | None, FromRun('train_batch_size')] = None,
    ) -> None:
        super().__init__(run, checkpoint, num_classes=num_classes, strict=strict)
        self.lam = float(lam)
        self.alpha = float(alpha)
        self.batch_size = int(batch_size)
        self.dataset = dataset
        self.micro_batch = micro_batch or self.batch_size
        self.spent: dict[str, float] = {}

    def one_off_compute(self) -> dict[str, float]:
        """``{'dash': FLOPs}`` of the gradient pass, all ranks together, once it has run; empty before (and in a
        resumed run, whose ledger holds the pass's cost already)."""
        return dict(self.spent)

    def match(self, event: Event, state: State) -> bool:
        return event == Event.INIT or (event == Event.FIT_START and int(state.timestamp.batch) == 0 and not self.spent)

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        if event == Event.INIT:
            super().apply(event, state, logger)
            return
        network = _network(state.model)
        device = next(network.parameters()).device
        with FlopCounterMode(display=False) as counter, get_precision_context(state.precision, state.precision_config):
            grads = averaged_gradient(network, self._training_data(state).unaugmented(), batch_size=self.batch_size,
                                      alpha=self.alpha, micro_batch=self.micro_batch, device=device)
        dash_shrink(network, grads, self.lam)
        flops = torch.tensor(float(counter.get_total_flops()), dtype=torch.float64, device=device)
        dist.all_reduce(flops)
        self.spent = {PURPOSE: float(flops)}

    def _training_data(self, state: State) -> MDSImageDataset:
        data = self.dataset if self.dataset is not None else getattr(state.train_dataloader, 'dataset', None)
        if not isinstance(data, MDSImageDataset):
            raise UsageError(
                f'dash_warm_start computes its gradient on the run\'s training data, an MDSImageDataset, and found '
                f'{type(data).__name__}: pass dataset=YOUR_TRAINING_DATASET (presets: context={{"train_dataset": ...}})',
            )
        return data
