"""Names a recipe may use under ``algorithms``, ``callbacks`` and ``loggers``, and how each is built.

A builder is ``build(ctx, **args)``: ``ctx`` (:class:`BuildContext`) carries what the run already knows (classes,
device, training data), ``args`` come from the YAML and are checked against the builder's signature, so a
misspelled argument or a value of the wrong type is one readable line before anything heavy starts.
The reuse algorithms add their builders here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from composer.algorithms import ChannelsLast, CutMix, LabelSmoothing, MixUp
from composer.callbacks import LRMonitor, SpeedMonitor
from composer.loggers import FileLogger, MLFlowLogger, TensorboardLogger, WandBLogger
from composer.utils import MissingConditionalImportError

from recipes.core.data import MDSImageDataset
from recipes.core.errors import UsageError, did_you_mean

__all__ = ['ALGORITHMS', 'CALLBACKS', 'LOGGERS', 'BuildContext', 'build_all', 'check_arguments']


@dataclass
class BuildContext:
    """What a builder may need from the run being assembled."""

    num_classes: int
    device: str  # 'cpu' or 'gpu'
    precision: str
    train_dataset: MDSImageDataset
    seed: int
    train_batch_size: int | None = None  # per rank; what per-step schedules (a curriculum's pacing) need
    max_duration: str | None = None


Builder = Callable[..., Any]


def _spelled(cls: type) -> type:
    """``cls`` (same name) whose repr spells its arguments: Composer keeps an algorithm's repr in every checkpoint,
    and its own algorithms' default repr holds an object address, which differs between a run and its resumption."""

    def __init__(self: Any, **kwargs: Any) -> None:
        cls.__init__(self, **kwargs)
        self.yaml_args = kwargs

    def __repr__(self: Any) -> str:
        return f'{cls.__name__}({", ".join(f"{k}={v!r}" for k, v in self.yaml_args.items())})'

    namespace = {'__init__': __init__, '__repr__': __repr__, '__module__': cls.__module__, '__doc__': cls.__doc__}
    return type(cls.__name__, (cls,), {**namespace, '__qualname__': cls.__qualname__})


def _plain(cls: type, spell_repr: bool = False) -> Builder:
    """A builder that passes the YAML arguments straight to ``cls`` (with ``spell_repr``, to :func:`_spelled`)."""
    made = _spelled(cls) if spell_repr else cls

    def build(ctx: BuildContext, **kwargs: Any) -> Any:
        return made(**kwargs)

    params = [inspect.Parameter('ctx', inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += list(inspect.signature(cls).parameters.values())
    build.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    build.__doc__ = cls.__doc__
    return build


def _tracker(cls: type, name: str) -> Builder:
    """``_plain(cls)`` for an experiment tracker's logger: without the tracker's package, one line naming the extra."""
    plain = _plain(cls)

    def build(ctx: BuildContext, **kwargs: Any) -> Any:
        try:
            return plain(ctx, **kwargs)
        except MissingConditionalImportError:
            raise UsageError(
                f"loggers.{name} needs the {name} package, which is not installed: pip install -e '.[tracking]' "
                f"(Composer's extras at its pins, mosaicml[{name}]==0.32.1)",
            ) from None

    build.__signature__ = inspect.signature(plain)  # type: ignore[attr-defined]
    build.__doc__ = cls.__doc__
    return build


# Reuse algorithms: their builders (build(ctx, **args)) go in this section, one function each.


def past_run_distillation(
    ctx: BuildContext,
    run: str,
    checkpoint: str = 'latest',
    temperature: float = 4.0,
    alpha: float = 0.9,
    strict: bool = False,
    until: str | None = None,
    every: int = 1,
) -> Any:
    """KD from checkpoint ``checkpoint`` (``latest``, ``epN``, a file name or URI) of the past run folder ``run``."""
    from algorithms.distillation import PastRunDistillation

    return PastRunDistillation(run, checkpoint, temperature=temperature, alpha=alpha, num_classes=ctx.num_classes,
                               strict=strict, until=until, every=every)


def random_teacher_distillation(
    ctx: BuildContext,
    run: str,
    seed: int | None = None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    until: str | None = None,
    every: int = 1,
) -> Any:
    """The control: KD from the past run's architecture with random weights (``seed``: the run's seed plus one)."""
    from algorithms.distillation import RandomTeacherDistillation

    return RandomTeacherDistillation(run, ctx.seed + 1 if seed is None else seed, temperature=temperature,
                                     alpha=alpha, num_classes=ctx.num_classes, until=until, every=every)


def checkpoint_mixup_teacher(
    ctx: BuildContext,
    run: str | None = None,
    checkpoints: Any = (),
    temperature: float = 4.0,
    alpha: float = 0.9,
    mix_alpha: float = 0.4,
    space: str = 'prob',
    runs: Any = None,
    draw: str = 'pair',
    k: int = 2,
    strict: bool = False,
    until: str | None = None,
    every: int = 1,
) -> Any:
    """KD from a per-batch mixture of ``checkpoints`` of the past run ``run`` or of each of ``runs``."""
    from algorithms.distillation import CheckpointMixupTeacher

    return CheckpointMixupTeacher(
        run, checkpoints, temperature=temperature, alpha=alpha, mix_alpha=mix_alpha, space=space,
        num_classes=ctx.num_classes, runs=None if runs is None else [str(r) for r in runs], draw=draw, k=k,
        strict=strict, until=until, every=every,
    )


def warm_start(ctx: BuildContext, run: str, checkpoint: str = 'latest', strict: bool = False) -> Any:
    """Start the run from checkpoint ``checkpoint`` of the past run ``run`` (weights and BatchNorm statistics)."""
    from algorithms.warm_start import WarmStart

    return WarmStart(run, checkpoint, num_classes=ctx.num_classes, strict=strict)


def shrink_perturb(
    ctx: BuildContext, run: str, checkpoint: str = 'latest', shrink: float = 0.4, perturb: float = 0.1,
    strict: bool = False,
) -> Any:
    """Start the run from ``shrink * past + perturb * fresh`` (Ash & Adams 2020), buffers fresh."""
    from algorithms.warm_start import ShrinkPerturb

    return ShrinkPerturb(run, checkpoint, shrink=shrink, perturb=perturb, num_classes=ctx.num_classes, strict=strict)


def adversarial_replay(ctx: BuildContext, bank: str, replay_fraction: float = 0.25, aux_bn: bool = True) -> Any:
    """Replay examples from an adversarial bank (``launch/build_adv_bank.py``) in every batch."""
    from algorithms.adversarial_replay.replay import AdversarialReplay

    return AdversarialReplay(bank, replay_fraction=replay_fraction, aux_bn=aux_bn)


def eval_robustness(
    ctx: BuildContext, eps: float | str = '8/255', steps: int = 10, step_size: float | str | None = None,
    num_samples: int = 512, batch_size: int = 256,
) -> Any:
    """Log clean and PGD accuracy on the first ``num_samples`` test images after each evaluation."""
    from algorithms.adversarial_replay.pgd import EvalRobustness, parse_pixel_value

    eps = parse_pixel_value(eps, 'callbacks.eval_robustness.eps')
    step_size = None if step_size is None else parse_pixel_value(step_size, 'callbacks.eval_robustness.step_size')
    return EvalRobustness(eps=eps, steps=steps, step_size=step_size, num_samples=num_samples, batch_size=batch_size)


def grand_curriculum(
    ctx: BuildContext, scores: str, order: str = 'easy_first', pacing: str = 'linear', start_fraction: float = 0.2,
    full_at: float = 0.8, prune_fraction: float = 0.0, reweight: str | None = None, balance: str = 'class',
) -> Any:
    """Order, pace, prune or reweight the training data by a scores artifact (``launch/score.py``), class by class."""
    from algorithms.curriculum.curriculum import ScoreCurriculum

    if ctx.train_batch_size is None or ctx.max_duration is None:
        raise ValueError('a curriculum paces per step: the run must give its batch size per rank and max_duration')
    return ScoreCurriculum(
        scores, order=order, pacing=pacing, start_fraction=start_fraction, full_at=full_at,
        prune_fraction=prune_fraction, reweight=reweight, balance=balance, batch_size=ctx.train_batch_size,
        max_duration=ctx.max_duration,
    )


def record_scores(ctx: BuildContext) -> Any:
    """Keep each example's loss, EL2N and forgetting events in the run's checkpoints (``score.py --method recorded_*``)."""
    from algorithms.curriculum.record_scores import RecordScores

    return RecordScores(ctx.train_dataset.split_size)  # indices are positions in the whole split, subset or not


ALGORITHMS: dict[str, Builder] = {
    'channels_last': _plain(ChannelsLast, spell_repr=True),
    'cutmix': _plain(CutMix, spell_repr=True),
    'label_smoothing': _plain(LabelSmoothing, spell_repr=True),
    'mixup': _plain(MixUp, spell_repr=True),
    # reuse algorithms
    'grand_curriculum': grand_curriculum,
    'adversarial_replay': adversarial_replay,
    'checkpoint_mixup_teacher': checkpoint_mixup_teacher,
    'past_run_distillation': past_run_distillation,
    'random_teacher_distillation': random_teacher_distillation,
    'shrink_perturb': shrink_perturb,
    'warm_start': warm_start,
}
CALLBACKS: dict[str, Builder] = {
    'lr_monitor': _plain(LRMonitor),
    'speed_monitor': _plain(SpeedMonitor),
    'eval_robustness': eval_robustness,
    'record_scores': record_scores,
}
LOGGERS: dict[str, Builder] = {
    'file': _plain(FileLogger),
    'mlflow': _tracker(MLFlowLogger, 'mlflow'),
    'tensorboard': _tracker(TensorboardLogger, 'tensorboard'),
    'wandb': _tracker(WandBLogger, 'wandb'),
}

_SIMPLE = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


def _check_types(section: str, name: str, builder: Builder, bound: inspect.BoundArguments) -> None:
    hints = getattr(builder, '__annotations__', {})
    for arg, value in bound.arguments.items():
        expected = hints.get(arg)
        if isinstance(expected, str):  # postponed annotations: only the simple ones are checked
            expected = {'int': int, 'float': float, 'str': str, 'bool': bool}.get(expected)
        accepted = _SIMPLE.get(expected)  # type: ignore[arg-type]
        if accepted and (not isinstance(value, accepted) or (expected is not bool and isinstance(value, bool))):
            raise UsageError(f'{section}.{name}.{arg}={value!r} must be a {expected.__name__}')


def build_one(section: str, registry: Mapping[str, Builder], name: str, args: Any, ctx: BuildContext) -> Any:
    if name not in registry:
        hint = did_you_mean(name, registry)
        raise UsageError(f'{section}: unknown name {name!r}{hint}; registered: {", ".join(sorted(registry))}')
    kwargs = dict(args or {})
    builder = registry[name]
    check_arguments(section, name, builder, kwargs)
    try:
        return builder(ctx, **kwargs)
    except (ValueError, TypeError) as e:
        raise UsageError(f'{section}.{name}: {e}') from e


def check_arguments(section: str, name: str, builder: Builder, kwargs: Mapping[str, Any]) -> None:
    """The YAML arguments of ``name`` are the builder's, and the simple ones have the annotated type."""
    signature = inspect.signature(builder)
    try:
        bound = signature.bind(None, **kwargs)
    except TypeError as e:
        valid = [p for p in signature.parameters if p not in ('ctx', 'args', 'kwargs')]
        unknown = [k for k in kwargs if k not in signature.parameters]
        if unknown:
            hint = did_you_mean(unknown[0], valid)
            raise UsageError(f'{section}.{name}: unknown argument {unknown[0]!r}{hint}') from None
        raise UsageError(f'{section}.{name}: {e}') from None
    bound.arguments.pop('ctx')
    _check_types(section, name, builder, bound)


def build_all(section: str, registry: Mapping[str, Builder], entries: Mapping[str, Any], ctx: BuildContext) -> list:
    """Build every ``name: args`` entry of a config section, in the YAML's order."""
    return [build_one(section, registry, name, args, ctx) for name, args in entries.items()]
