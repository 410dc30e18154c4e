"""Names a recipe may use under ``algorithms``, ``callbacks`` and ``loggers``: a table of classes.

Each entry is a class whose constructor is the one declaration of its interface (see :mod:`recipes.core.rules`):
its arguments, their defaults and their rules (``Annotated``), and what it needs from the run being assembled
(:class:`~recipes.core.declare.FromRun`, filled from :class:`BuildContext`). A YAML entry ``name: {arg: value}`` is
checked against that declaration before anything heavy starts (an unknown name or argument, a value out of its
rule, an artifact that is not there: one line naming ``algorithms.NAME.ARG``), then built with the run's values
filled in. Composer's own classes, which declare no rules, are :class:`Foreign` entries with the few rules they need.

Adding an algorithm is its package plus one line in :data:`ALGORITHMS`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from composer.algorithms import ChannelsLast, CutMix, LabelSmoothing, MixUp
from composer.callbacks import LRMonitor, SpeedMonitor
from composer.loggers import FileLogger, MLFlowLogger, TensorboardLogger, WandBLogger
from composer.utils import MissingConditionalImportError
from omegaconf import DictConfig, OmegaConf

from algorithms.adversarial_replay import AdversarialReplay, EvalRobustness
from algorithms.adversarial_replay.build import build_adv_bank
from algorithms.curriculum import RecordScores, ScoreCurriculum
from algorithms.curriculum.build import score
from algorithms.distillation import CheckpointMixupTeacher, PastRunDistillation, RandomTeacherDistillation
from algorithms.distillation.build import cache_teacher
from algorithms.growth import GrowFromPastRun
from algorithms.reducible_loss import ReducibleLossSelection
from algorithms.selective_backprop import IndexedSelectiveBackprop
from algorithms.warm_start import DashWarmStart, ShrinkPerturb, WarmStart
from recipes.core.artifacts import Artifact
from recipes.core.data import MDSImageDataset
from recipes.core.declare import REQUIRED, Argument, declared
from recipes.core.errors import UsageError, did_you_mean
from recipes.core.rules import Number, Rule

__all__ = [
    'ALGORITHMS', 'BUILDERS', 'CALLBACKS', 'LOGGERS', 'REGISTRIES', 'BuildContext', 'Entries', 'Foreign', 'Registry', 'build_all',
    'build_one',
]


@dataclass
class BuildContext:
    """What the run being assembled supplies to the arguments its classes mark :class:`~recipes.core.declare.FromRun`."""

    num_classes: int | None
    device: str  # 'cpu' or 'gpu'
    precision: str
    train_dataset: MDSImageDataset | None
    seed: int
    train_batch_size: int | None = None  # per rank; what per-step schedules (a curriculum's pacing) need
    max_duration: str | None = None

    @property
    def train_split_size(self) -> int | None:
        """The size of the whole training split (a subset's indices are positions in it)."""
        return None if self.train_dataset is None else self.train_dataset.split_size


@dataclass(frozen=True)
class Foreign:
    """A class that declares no rules (Composer's own): the rules of the arguments that need one, whether its repr
    must spell its arguments (Composer keeps an algorithm's repr in every checkpoint, and its own algorithms' default
    repr holds an object address, which differs between a run and its resumption), and the extra that installs it."""

    cls: type
    rules: Mapping[str, Rule] = field(default_factory=dict)
    spell_repr: bool = False
    extra: str | None = None  # a tracker's package: pip install -e '.[tracking]'


def _spelled(cls: type) -> type:
    """``cls`` (same name) whose repr spells its arguments."""

    def __init__(self: Any, **kwargs: Any) -> None:
        cls.__init__(self, **kwargs)
        self.yaml_args = kwargs

    def __repr__(self: Any) -> str:
        return f'{cls.__name__}({", ".join(f"{k}={v!r}" for k, v in self.yaml_args.items())})'

    namespace = {'__init__': __init__, '__repr__': __repr__, '__module__': cls.__module__, '__doc__': cls.__doc__}
    return type(cls.__name__, (cls,), {**namespace, '__qualname__': cls.__qualname__})


class Registry(Mapping[str, type]):
    """The classes of one config section (``algorithms``, ``callbacks`` or ``loggers``), by YAML name."""

    def __init__(self, section: str, entries: Mapping[str, type | Foreign]) -> None:
        self.section = section
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> type:
        entry = self._entries[name]
        return entry.cls if isinstance(entry, Foreign) else entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def arguments(self, name: str) -> dict[str, Argument]:
        """Every argument of ``name``'s class as declared, those the run supplies included."""
        entry = self._entries[self._known(name)]
        return declared(entry.cls, entry.rules) if isinstance(entry, Foreign) else declared(entry)

    def yaml_arguments(self, name: str) -> dict[str, Argument]:
        """The arguments a recipe may give ``name``: all but those the run supplies."""
        return {k: a for k, a in self.arguments(name).items() if a.from_run is None}

    def _known(self, name: str) -> str:
        if name not in self._entries:
            names = sorted(self._entries)
            raise UsageError(f'{self.section}: unknown name {name!r}{did_you_mean(str(name), names)}; registered: {", ".join(names)}')
        return name

    def check(self, name: str, args: Any, cfg: Any = None, artifacts: bool = True) -> dict[str, Any]:
        """``args`` (a YAML mapping) checked against ``name``'s declaration: the values to build with.

        Every mistake is one line naming ``{section}.{name}.{argument}``: an unknown argument (with the closest
        known one), one the run supplies, a required one missing, a value its rule refuses, an artifact that is not
        there (skipped with ``artifacts=False``).
        """
        where = f'{self.section}.{self._known(name)}'
        if args is not None and not isinstance(args, (Mapping, DictConfig)):
            raise UsageError(f'{where}={args!r} must be a mapping of arguments, e.g. {{}}')
        values = OmegaConf.to_container(args, resolve=True) if isinstance(args, DictConfig) else dict(args or {})
        declared_args = self.arguments(name)
        for arg in values:
            if arg not in declared_args:
                hint = did_you_mean(str(arg), self.yaml_arguments(name))
                raise UsageError(f'{where}: unknown argument {arg!r}{hint}')
            if declared_args[arg].from_run:
                raise UsageError(f'{where}.{arg} is set by the run ({declared_args[arg].from_run}): remove it')
        for arg, value in values.items():
            rule = declared_args[arg].rule
            if rule is not None and (artifacts or not isinstance(rule, Artifact)):
                values[arg] = rule.check(f'{where}.{arg}', value, cfg)
        for arg, argument in declared_args.items():
            if argument.from_run is None and argument.default is REQUIRED and arg not in values:
                raise UsageError(f'{where}: missing argument {arg!r}: give {where}.{arg}')
        return values

    def build(self, name: str, args: Any, ctx: BuildContext) -> Any:
        """The instance of ``name`` for a run: ``args`` checked, the run's values filled in."""
        values = self.check(name, args)
        for arg, argument in self.arguments(name).items():
            if argument.from_run is not None:
                supplied = getattr(ctx, argument.from_run)
                if supplied is None and argument.default is REQUIRED:
                    raise UsageError(f'{self.section}.{name} needs {argument.from_run} from the run, which gave none')
                values[arg] = supplied if supplied is not None else argument.default
        entry = self._entries[name]
        cls = entry.cls if isinstance(entry, Foreign) else entry
        if isinstance(entry, Foreign) and entry.spell_repr:
            cls = _spelled(cls)
        try:
            return cls(**values)
        except MissingConditionalImportError:
            if not isinstance(entry, Foreign) or entry.extra is None:
                raise
            raise UsageError(
                f"{self.section}.{name} needs the {name} package, which is not installed: pip install -e '.[{entry.extra}]' "
                f'(Composer\'s extras at its pins, mosaicml[{name}]==0.32.1)',
            ) from None
        except (ValueError, TypeError) as e:
            raise UsageError(f'{self.section}.{name}: {e}') from e

    def reused_checkpoints(self, name: str, args: Any) -> list[str]:
        """``RUN:CHECKPOINT`` of each past-run checkpoint ``name`` with ``args`` reuses, read off the declaration:
        its artifact arguments (with their defaults) say it, never the argument names."""
        values = {k: a.default for k, a in self.yaml_arguments(name).items() if a.default is not REQUIRED}
        values.update(args or {})
        found: list[str] = []
        for arg, argument in self.arguments(name).items():
            if isinstance(argument.rule, Artifact) and values.get(arg) is not None:
                found += argument.rule.reused(values[arg], values)
        return found

    @contextlib.contextmanager
    def registered(self, name: str, entry: type | Foreign) -> Iterator[None]:
        """``name`` registered for the duration of a ``with`` block (tests, notebooks)."""
        saved = self._entries.get(name)
        self._entries[name] = entry
        try:
            yield
        finally:
            if saved is None:
                del self._entries[name]
            else:
                self._entries[name] = saved


ALGORITHMS = Registry('algorithms', {
    'channels_last': Foreign(ChannelsLast, spell_repr=True),
    'cutmix': Foreign(CutMix, {'alpha': Number(0, 1000, low_open=True)}, spell_repr=True),
    'label_smoothing': Foreign(LabelSmoothing, {'smoothing': Number(0, 1, high_open=True)}, spell_repr=True),
    'mixup': Foreign(MixUp, {'alpha': Number(0, 1000, low_open=True)}, spell_repr=True),
    'selective_backprop': Foreign(IndexedSelectiveBackprop, {
        'start': Number(0, 1), 'end': Number(0, 1), 'keep': Number(0, 1, low_open=True),
        'scale_factor': Number(0, 1, low_open=True), 'interrupt': Number(0, 10**6, integer=True)}, spell_repr=True),
    'grand_curriculum': ScoreCurriculum,
    'adversarial_replay': AdversarialReplay,
    'checkpoint_mixup_teacher': CheckpointMixupTeacher,
    'dash_warm_start': DashWarmStart,
    'grow_from_past_run': GrowFromPastRun,
    'past_run_distillation': PastRunDistillation,
    'random_teacher_distillation': RandomTeacherDistillation,
    'reducible_loss_selection': ReducibleLossSelection,
    'shrink_perturb': ShrinkPerturb,
    'warm_start': WarmStart,
})
CALLBACKS = Registry('callbacks', {
    'lr_monitor': Foreign(LRMonitor),
    'speed_monitor': Foreign(SpeedMonitor),
    'eval_robustness': EvalRobustness,
    'record_scores': RecordScores,
})
LOGGERS = Registry('loggers', {
    'file': Foreign(FileLogger),
    'mlflow': Foreign(MLFlowLogger, extra='tracking'),
    'tensorboard': Foreign(TensorboardLogger, extra='tracking'),
    'wandb': Foreign(WandBLogger, extra='tracking'),
})

# Artifact builders, by the name a study file's ``artifacts:`` gives: each a function whose arguments are declared like
# a constructor's (``Annotated`` rules, ``.ties``); its launch/ script's command line is generated from it.
BUILDERS: dict[str, Callable[..., str | None]] = {
    'score': score,
    'adv_bank': build_adv_bank,
    'teacher_cache': cache_teacher,
}


REGISTRIES = {registry.section: registry for registry in (ALGORITHMS, CALLBACKS, LOGGERS)}


@dataclass(frozen=True)
class Entries(Rule):
    """A config section ``name: {argument: value}`` of one registry: names registered, arguments declared, values
    within their rules, artifacts present."""

    section: str

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        if not isinstance(value, (Mapping, DictConfig)):
            raise UsageError(f'{key}={value!r} must map registered names to their arguments')
        registry = REGISTRIES[self.section]
        for name, args in value.items():
            registry.check(str(name), args, cfg)
        return value

    def describe(self) -> str:
        return f'`name: {{argument: value}}` of the registered {self.section} ({", ".join(sorted(REGISTRIES[self.section]))})'

    def invalid_example(self) -> Any:
        return {'mixpu': {}} if self.section == 'algorithms' else {'nope': {}}


def build_one(section: str, registry: Registry, name: str, args: Any, ctx: BuildContext) -> Any:
    """The instance of ``name`` from ``registry`` (``section`` names it in messages, as the registry does)."""
    return registry.build(name, args, ctx)


def build_all(section: str, registry: Registry, entries: Mapping[str, Any], ctx: BuildContext) -> list:
    """Build every ``name: args`` entry of a config section, in the YAML's order."""
    return [registry.build(name, args, ctx) for name, args in entries.items()]
