"""Recipes for your own Composer Trainer: a recipe YAML's algorithms, built by the registry ``launch/train.py`` uses.

``preset(recipe, **algorithms)`` reads the recipe (``kd`` is ``yamls/kd.yaml``, ``digits/kd`` is
``yamls/digits/kd.yaml``; a path works too): each keyword is one of its algorithms' YAML keys mapped to arguments,
exactly as under ``algorithms:`` in the YAML, and what a keyword does not give comes from the YAML. Every argument an
algorithm accepts from YAML is accepted here, checked by the same rules. What an algorithm needs from the run (the
number of classes, the batch size per rank, the duration, the seed) comes from the recipe's config, or from
``context`` (:class:`~recipes.registry.BuildContext` field names) when your Trainer differs.

``Preset.hyperparameters`` are the values the recipe changes from the baseline beside it (``yamls/baseline.yaml``
for ``yamls/kd.yaml``): none for the reuse recipes, which keep the baseline's schedule. A preset with a curriculum
chooses the training order: build your DataLoader with ``preset.train_sampler(dataset, seed)`` (``None`` for the
others), which also turns on the curriculum's loss weights. One with reducible-loss selection trains each step on a
selection from a larger batch: your DataLoader's batch is ``preset.loader_batch_size(batch_size)``. The named
presets (:func:`kd`, :func:`kd_mixup`, ...) are thin wrappers for the common case; their ``num_classes`` (None:
unchecked) is your model's.

Example (a digits past run trained with ``python launch/train.py yamls/digits/baseline.yaml``)::

    from composer import Trainer
    from recipes import presets
    from recipes.core.data import MDSImageDataset, build_loader, resolve_root
    from recipes.core.model import resnet_cifar

    dataset = MDSImageDataset(resolve_root('digits', None), 'train', 10)
    preset = presets.preset('digits/kd_mixup', checkpoint_mixup_teacher={'checkpoints': ['ep5', 'ep6', 'ep8']})
    loader = build_loader(dataset, 64, shuffle=True, drop_last=True, num_workers=0, seed=17,
                          sampler=preset.train_sampler(dataset, seed=17))
    trainer = Trainer(model=resnet_cifar('resnet_20', 10), train_dataloader=loader, max_duration='1ep',
                      algorithms=preset.algorithms, seed=17)
    trainer.fit()
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from composer.core import Algorithm, Time
from composer.utils import dist
from omegaconf import OmegaConf
from torch.utils.data import Sampler

from algorithms.protocols import ChoosesTrainingOrder, loader_batch_size
from recipes.config import TrainConfig, read_yaml
from recipes.core.artifacts import RECIPES
from recipes.core.data import MDSImageDataset, data_num_classes
from recipes.core.errors import UsageError
from recipes.registry import ALGORITHMS, BuildContext

__all__ = [
    'Preset', 'adv_replay', 'baseline', 'grand_curriculum', 'kd', 'kd_mixup', 'preset', 'recipe_path', 'reuse_all',
    'shrink_perturb', 'warm_start',
]

# Keys that name, save, evaluate or feed a run rather than change how it trains: not hyperparameters of a recipe.
_NOT_HYPERPARAMETERS = ('run_name', 'save_', 'autoresume', 'load_path', 'eval_interval', 'data.eval_batch_size',
                        'data.num_workers', 'data.remote', 'data.cache', 'algorithms', 'callbacks', 'loggers')


@dataclass(frozen=True)
class Preset:
    """A recipe's algorithms (in the order they must run) and the hyperparameters it changes from the baseline."""

    algorithms: list[Algorithm]
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def train_sampler(self, dataset: MDSImageDataset, seed: int) -> Sampler | None:
        """The training sampler an algorithm of the preset chooses (a curriculum's order), or ``None``."""
        samplers = [alg.train_sampler(dataset, seed=seed) for alg in self.algorithms if isinstance(alg, ChoosesTrainingOrder)]
        return samplers[0] if samplers else None

    def loader_batch_size(self, train_batch_size: int) -> int:
        """The batch per rank your training DataLoader yields for a Trainer that trains on ``train_batch_size`` per
        rank: larger when an algorithm of the preset selects from it (reducible-loss selection), else the same."""
        return loader_batch_size(self.algorithms, train_batch_size)


def recipe_path(recipe: str) -> str:
    """``yamls/{recipe}.yaml`` for a recipe name (``kd``, ``digits/kd``), else ``recipe`` itself as a path."""
    named = os.path.join(RECIPES, f'{recipe}.yaml')
    if os.path.isfile(named):
        return named
    if os.path.isfile(recipe):
        return recipe
    names = sorted(os.path.relpath(os.path.join(r, f), RECIPES)[:-5] for r, _, fs in os.walk(RECIPES)
                   for f in fs if f.endswith('.yaml') and 'sweeps' not in r and 'cluster' not in r)
    raise UsageError(f'no recipe {recipe!r}: name one of {", ".join(names)}, or give a YAML path')


def _config(path: str) -> Any:
    """The recipe's config over the schema's defaults, unchecked: its artifacts need not exist on this machine."""
    return OmegaConf.merge(OmegaConf.structured(TrainConfig), read_yaml(path))


def _flat(cfg: Any) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(f'{prefix}{key}.' if isinstance(value, Mapping) else f'{prefix}{key}', value)
        else:
            flat[prefix] = node

    walk('', OmegaConf.to_container(cfg))
    return {key: value for key, value in flat.items() if not key.startswith(_NOT_HYPERPARAMETERS)}


def _hyperparameters(path: str, cfg: Any) -> dict[str, Any]:
    """What the recipe sets otherwise than the ``baseline.yaml`` beside it (empty where there is none)."""
    base = os.path.join(os.path.dirname(path), 'baseline.yaml')
    if not os.path.isfile(base) or os.path.samefile(base, path):
        return {}
    ours, theirs = _flat(cfg), _flat(_config(base))
    return {key: value for key, value in ours.items() if theirs.get(key) != value}


def _context(cfg: Any, overrides: Mapping[str, Any]) -> BuildContext:
    """What the recipe's run would supply, then ``overrides``."""
    try:
        classes = cfg.model.num_classes or data_num_classes(cfg.data.name, cfg.data.remote)
    except UsageError:  # an image folder this machine does not hold: the classes must come from context
        classes = None
    duration = cfg.max_duration
    if cfg.scale_schedule_ratio != 1:
        duration = (Time.from_timestring(duration) * cfg.scale_schedule_ratio).to_timestring()
    ctx = BuildContext(
        num_classes=classes, device='gpu' if torch.cuda.is_available() else 'cpu', precision='fp32',
        train_dataset=None, seed=cfg.seed, train_batch_size=cfg.data.global_batch_size // dist.get_world_size(),
        max_duration=duration,
    )
    for key, value in overrides.items():
        if not hasattr(ctx, key):
            raise UsageError(f'context has no field {key!r}: give one of {", ".join(vars(ctx))}')
        setattr(ctx, key, value)
    return ctx


def preset(recipe: str, context: Mapping[str, Any] | None = None, **algorithms: Mapping[str, Any]) -> Preset:
    """The algorithms of ``recipe`` for your own Trainer, each keyword's arguments over the YAML's.

    ``preset('kd', past_run_distillation={'run': 'runs/digits-baseline', 'until': '4ep'})``: the recipe's
    ``past_run_distillation`` with those two arguments given and the others (temperature, alpha, ...) from
    ``yamls/kd.yaml``. A keyword must name an algorithm of the recipe.
    """
    path = recipe_path(recipe)
    cfg = _config(path)
    entries = {str(name): dict(args or {}) for name, args in OmegaConf.to_container(cfg.algorithms).items()}
    for name, args in algorithms.items():
        if name not in entries:
            raise UsageError(f'recipe {recipe!r} has no algorithm {name!r}: its algorithms are {", ".join(entries) or "none"}')
        entries[name].update(args)
    ctx = _context(cfg, context or {})
    built = [ALGORITHMS.build(name, args, ctx) for name, args in entries.items()]
    return Preset(built, _hyperparameters(path, cfg))


def baseline() -> Preset:
    """No reuse: the baseline recipe."""
    return preset('baseline')


def kd(past_run: str, checkpoint: str = 'latest', num_classes: int | None = None, **args: Any) -> Preset:
    """Past-run distillation from checkpoint ``checkpoint`` of the run folder ``past_run`` (``yamls/kd.yaml``)."""
    return preset('kd', {'num_classes': num_classes},
                  past_run_distillation={'run': past_run, 'checkpoint': checkpoint, **args})


def kd_mixup(past_run: str, checkpoints: Sequence[str], num_classes: int | None = None, **args: Any) -> Preset:
    """The checkpoint-mixup teacher over ``checkpoints`` of ``past_run`` (``yamls/kd_mixup.yaml``)."""
    return preset('kd_mixup', {'num_classes': num_classes},
                  checkpoint_mixup_teacher={'run': past_run, 'checkpoints': list(checkpoints), **args})


def warm_start(past_run: str, checkpoint: str = 'latest', num_classes: int | None = None, **args: Any) -> Preset:
    """Start from checkpoint ``checkpoint`` of ``past_run``, weights and BatchNorm statistics (``yamls/warm_start.yaml``)."""
    return preset('warm_start', {'num_classes': num_classes}, warm_start={'run': past_run, 'checkpoint': checkpoint, **args})


def shrink_perturb(past_run: str, checkpoint: str = 'latest', num_classes: int | None = None, **args: Any) -> Preset:
    """Start from ``shrink * past + perturb * fresh``, ``fresh`` being your Trainer's model as built
    (``yamls/shrink_perturb.yaml``)."""
    return preset('shrink_perturb', {'num_classes': num_classes},
                  shrink_perturb={'run': past_run, 'checkpoint': checkpoint, **args})


def grand_curriculum(scores: str, *, batch_size: int, max_duration: str, **args: Any) -> Preset:
    """The GraNd/EL2N curriculum from a scores artifact (``yamls/grand_curriculum.yaml``).

    ``batch_size`` (per rank) and ``max_duration`` must be your Trainer's: the pacing is per step.
    """
    return preset('grand_curriculum', {'train_batch_size': batch_size, 'max_duration': max_duration},
                  grand_curriculum={'scores': scores, **args})


def adv_replay(bank: str, **args: Any) -> Preset:
    """Adversarial replay from a bank (``yamls/adv_replay.yaml``)."""
    return preset('adv_replay', adversarial_replay={'bank': bank, **args})


def reuse_all(past_run: str, checkpoints: Sequence[str], scores: str, bank: str, *, batch_size: int, max_duration: str,
              num_classes: int | None = None, **teacher: Any) -> Preset:
    """The mixup teacher, the curriculum and replay together (``yamls/reuse_all.yaml``), in the order they need.

    The teacher sees the replayed rows; the curriculum's weights scale each row's whole KD loss. ``teacher`` takes
    the mixup teacher's YAML arguments.
    """
    context = {'num_classes': num_classes, 'train_batch_size': batch_size, 'max_duration': max_duration}
    return preset('reuse_all', context, checkpoint_mixup_teacher={'run': past_run, 'checkpoints': list(checkpoints), **teacher},
                  grand_curriculum={'scores': scores}, adversarial_replay={'bank': bank})

