"""Named presets for your own Composer Trainer: each recipe's algorithms and the hyperparameters it changes.

A preset mirrors a recipe YAML (``yamls/<name>.yaml``): ``algorithms`` are built by the same registry builders
that ``launch/train.py`` uses, ready for ``composer.Trainer(algorithms=...)``; ``hyperparameters`` are the values
the recipe changes from the baseline (none for the reuse recipes, which keep the baseline's schedule). A preset
with a curriculum chooses the training order: build your DataLoader with ``preset.train_sampler(dataset, seed)``
(``None`` for the other presets), which also turns on the curriculum's loss weights.

Example (a digits past run trained with ``python launch/train.py yamls/digits/baseline.yaml``)::

    from composer import Trainer
    from recipes import presets
    from recipes.core.data import MDSImageDataset, build_loader, resolve_root
    from recipes.core.model import resnet_cifar

    dataset = MDSImageDataset(resolve_root('digits', None), 'train', 10)
    preset = presets.kd_mixup(past_run='runs/digits-baseline', checkpoints=['ep4', 'ep6', 'ep8'])
    loader = build_loader(dataset, 64, shuffle=True, drop_last=True, num_workers=0, seed=17,
                          sampler=preset.train_sampler(dataset, seed=17))
    trainer = Trainer(model=resnet_cifar('resnet_20', 10), train_dataloader=loader, max_duration='1ep',
                      algorithms=preset.algorithms, seed=17)
    trainer.fit()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from composer.core import Algorithm
from torch.utils.data import Sampler

from algorithms.protocols import ChoosesTrainingOrder
from recipes import registry
from recipes.core.data import MDSImageDataset

__all__ = [
    'Preset', 'adv_replay', 'baseline', 'grand_curriculum', 'kd', 'kd_mixup', 'reuse_all', 'shrink_perturb', 'warm_start',
]


@dataclass(frozen=True)
class Preset:
    """A recipe's algorithms (in the order they must run) and the hyperparameters it changes from the baseline."""

    algorithms: list[Algorithm]
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def train_sampler(self, dataset: MDSImageDataset, seed: int) -> Sampler | None:
        """The training sampler an algorithm of the preset chooses (a curriculum's order), or ``None``."""
        samplers = [alg.train_sampler(dataset, seed=seed) for alg in self.algorithms if isinstance(alg, ChoosesTrainingOrder)]
        return samplers[0] if samplers else None


def _context(num_classes: int, batch_size: int | None = None, max_duration: str | None = None) -> registry.BuildContext:
    return registry.BuildContext(
        num_classes=num_classes, device='gpu' if torch.cuda.is_available() else 'cpu', precision='fp32',
        train_dataset=None,  # type: ignore[arg-type]  # none of these builders reads it
        seed=0, train_batch_size=batch_size, max_duration=max_duration,
    )


def baseline() -> Preset:
    """No reuse: the baseline recipe."""
    return Preset([])


def kd(past_run: str, checkpoint: str = 'latest', temperature: float = 4.0, alpha: float = 0.9,
       num_classes: int = 10) -> Preset:
    """Past-run distillation from checkpoint ``checkpoint`` of the run folder ``past_run`` (``yamls/kd.yaml``)."""
    ctx = _context(num_classes)
    return Preset([registry.past_run_distillation(ctx, past_run, checkpoint, temperature=temperature, alpha=alpha)])


def kd_mixup(past_run: str, checkpoints: Sequence[str], temperature: float = 4.0, alpha: float = 0.9,
             mix_alpha: float = 0.4, space: str = 'prob', num_classes: int = 10) -> Preset:
    """The checkpoint-mixup teacher over ``checkpoints`` of ``past_run`` (``yamls/kd_mixup.yaml``)."""
    ctx = _context(num_classes)
    return Preset([registry.checkpoint_mixup_teacher(ctx, past_run, list(checkpoints), temperature=temperature, alpha=alpha,
                                            mix_alpha=mix_alpha, space=space)])


def warm_start(past_run: str, checkpoint: str = 'latest', num_classes: int = 10) -> Preset:
    """Start from checkpoint ``checkpoint`` of ``past_run``, weights and BatchNorm statistics (``warm_start``)."""
    return Preset([registry.warm_start(_context(num_classes), past_run, checkpoint)])


def shrink_perturb(past_run: str, checkpoint: str = 'latest', shrink: float = 0.4, perturb: float = 0.1,
                   num_classes: int = 10) -> Preset:
    """Start from ``shrink * past + perturb * fresh``, ``fresh`` being your Trainer's model as built (``shrink_perturb``)."""
    return Preset([registry.shrink_perturb(_context(num_classes), past_run, checkpoint, shrink=shrink, perturb=perturb)])


def grand_curriculum(scores: str, *, batch_size: int, max_duration: str, order: str = 'easy_first',
                            pacing: str = 'linear', start_fraction: float = 0.2, full_at: float = 0.8,
                            prune_fraction: float = 0.0, reweight: str | None = None) -> Preset:
    """The GraNd/EL2N curriculum from a scores artifact (``yamls/grand_curriculum.yaml``).

    ``batch_size`` (per rank) and ``max_duration`` must be your Trainer's: the pacing is per step.
    """
    ctx = _context(0, batch_size, max_duration)
    return Preset([registry.grand_curriculum(ctx, scores, order=order, pacing=pacing, start_fraction=start_fraction,
                                    full_at=full_at, prune_fraction=prune_fraction, reweight=reweight)])


def adv_replay(bank: str, replay_fraction: float = 0.25, aux_bn: bool = True) -> Preset:
    """Adversarial replay from a bank (``yamls/adv_replay.yaml``)."""
    return Preset([registry.adversarial_replay(_context(0), bank, replay_fraction=replay_fraction, aux_bn=aux_bn)])


def reuse_all(past_run: str, checkpoints: Sequence[str], scores: str, bank: str, *, batch_size: int,
              max_duration: str, reweight: str | None = 'score', num_classes: int = 10, **teacher: Any) -> Preset:
    """The mixup teacher, the curriculum and replay together (``yamls/reuse_all.yaml``), in the order they need.

    The teacher sees the replayed rows; the curriculum's weights scale each row's whole KD loss. ``teacher`` takes
    :func:`kd_mixup`'s keyword arguments.
    """
    return Preset([
        *kd_mixup(past_run, checkpoints, num_classes=num_classes, **teacher).algorithms,
        *grand_curriculum(scores, batch_size=batch_size, max_duration=max_duration,
                                 reweight=reweight).algorithms,
        *adv_replay(bank).algorithms,
    ])
