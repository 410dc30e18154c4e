"""Knowledge distillation from a past run: the checkpoint of an earlier run teaches the student of this one.

Functional forms: :func:`kd_loss` (Hinton et al. 2015), its distillation term :func:`distillation_term`, and
:func:`teacher_active` (in which epochs the teacher runs). Algorithms: :class:`PastRunDistillation` and its control
:class:`RandomTeacherDistillation`, built on :class:`TeacherDistillation`, which any teacher (one checkpoint, a
mixture of checkpoints) plugs into by saying how it turns the student's input into a distribution.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Annotated

import torch
import torch.nn.functional as F
from composer.core import Algorithm, Event, State, Time
from composer.core.precision import get_precision_context
from composer.loggers import Logger
from composer.loss import soft_cross_entropy
from torch import Tensor, nn

from algorithms.distillation.cache import TeacherCache, row_views
from algorithms.ledger import spend
from algorithms.past_run import PastRun, frozen, past_run_cost
from algorithms.protocols import WeightsExamples
from recipes.core.artifacts import CheckpointNames, PastRunFolder, TeacherCacheFolder
from recipes.core.data import MDSImageDataset, data_channels, data_stats
from recipes.core.data.device_augment import DeviceAugment
from recipes.core.declare import FromRun, checked
from recipes.core.errors import UsageError, place
from recipes.core.model import build_model
from recipes.core.rules import Number, TimeString

__all__ = [
    'Every',
    'Cache',
    'KDWeight',
    'NumClasses',
    'OneTeacher',
    'PastRunDistillation',
    'RandomTeacherDistillation',
    'Strict',
    'TeacherDistillation',
    'Temperature',
    'TrainData',
    'Until',
    'distillation_term',
    'kd_loss',
    'open_cache',
    'teacher_active',
]


# The arguments every teacher takes, declared once.
Temperature = Annotated[float, Number(0, 1000, low_open=True,
                                      message='must be a number > 0: use 4.0 (the usual choice) or 1.0-20.0'),
                        'softens teacher and student alike; 4 is the usual choice']
KDWeight = Annotated[float, Number(0, 1, message='is the weight of the KD term and must lie in [0, 1]: for example 0.9'),
                     'weight of the KD term; 0 is plain training, bit for bit']
Until = Annotated[str | None, TimeString(
    ('ep',), optional=True,
    message='must be a time in epochs, such as 40ep: the teacher switches off at an epoch boundary, where the compute '
            'ledger measures'), 'no teacher forward from this epoch on (null: the whole run)']
Every = Annotated[int, Number(1, 10**6, integer=True,
                              message='must be an integer >= 1: the teacher runs in every every-th epoch (1: all)'),
                  'distil in epochs 0, k, 2k, ... only']
NumClasses = Annotated[int | None, FromRun('num_classes')]  # the student's: a teacher of another label space is refused
Cache = Annotated[str | None, TeacherCacheFolder(optional=True),
                  f'a teacher cache from `{place("cache_teacher")}`: soft labels read per example and view, no teacher '
                  'loaded nor run (needs data.augment_on: device)']
TrainData = Annotated[MDSImageDataset | None, FromRun('train_dataset')]  # a cache of another split is refused
Strict = Annotated[bool, 'refuse a checkpoint near chance or far below the run\'s best (and one with no recorded '
                   'accuracy) instead of warning']


def until_epochs(until: str | None) -> int | None:
    """``until`` (a time in epochs, or None for the whole run) as a number of epochs."""
    return None if until is None else int(Time.from_timestring(str(until)).value)


def teacher_active(epoch: int, until_epochs: int | None, every: int) -> bool:
    """Whether the teacher runs in epoch ``epoch`` (0-based): before ``until_epochs``, and in every ``every``-th."""
    return (until_epochs is None or epoch < until_epochs) and epoch % every == 0


def distillation_term(
    student_logits: Tensor, teacher_probs: Tensor, temperature: float, weights: Tensor | None = None,
) -> Tensor:
    """``T^2 * KL(teacher_probs || softmax(student_logits / T))``, averaged over the batch (``weights``: per row).

    ``teacher_probs`` is the teacher's distribution at temperature ``T`` (rows sum to one). The ``T^2`` factor keeps
    the gradient's scale independent of ``T``. Computed in fp32 whatever the autocast dtype of the logits.
    """
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    if weights is None:
        return F.kl_div(log_student, teacher_probs.float(), reduction='batchmean') * temperature**2
    per_example = F.kl_div(log_student, teacher_probs.float(), reduction='none').sum(dim=1)
    return (weights.float() * per_example).mean() * temperature**2


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, target: Tensor, temperature: float, alpha: float) -> Tensor:
    """``(1 - alpha) * CE(student, target) + alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T))``.

    ``target`` holds class indices (N,) or soft targets (N, C), as left by MixUp, CutMix or LabelSmoothing; the CE
    term is Composer's :func:`~composer.loss.soft_cross_entropy`, the loss of a ``ComposerClassifier``.
    """
    teacher_probs = F.softmax(teacher_logits.float() / temperature, dim=1)
    ce = soft_cross_entropy(student_logits, target)
    return (1 - alpha) * ce + alpha * distillation_term(student_logits, teacher_probs, temperature)


def open_cache(
    uri: str, teachers: Sequence[tuple[PastRun, str]], dataset: MDSImageDataset | None, num_classes: int | None,
) -> TeacherCache:
    """The teacher cache at ``uri``, refused unless it holds exactly ``teachers`` over this run's training split."""
    cache = TeacherCache(uri)
    cache.check_teachers(teachers)
    cache.check_data(dataset, num_classes)
    return cache


def _hard_labels(target: Tensor) -> Tensor:
    return target.argmax(dim=1) if target.ndim == 2 else target


@checked
class TeacherDistillation(Algorithm):
    """Adds a frozen teacher's KD term to the student's loss; subclasses say what the teacher is.

    Events:

    ``until`` (a time in epochs, ``40ep``) and ``every`` (k: epochs 0, k, 2k, ...) say when the teacher runs
    (:func:`teacher_active`); in the other epochs no teacher forward runs and the loss is the student's own, so
    the compute ledger, which measures each epoch, books no teacher FLOPs for them.

    A teacher with a ``cache`` (:mod:`algorithms.distillation.cache`) loads no network: its logits come from the
    cache, for each row the view the device augmentation drew (among the cached ones, where the cache holds a subset).

    * ``INIT``: moves the teachers to the student's device (with a cache: checks the run's device augmentation
      against the cache's and has it draw among the cached views). They are attributes of this object, not submodules of
      the student, so DDP neither wraps nor synchronises them and the checkpoint holds only the student.
    * ``AFTER_FORWARD``: runs the teacher, under ``torch.no_grad`` and the run's precision, on ``state.batch[0]``,
      the very input the student just saw (after MixUp or CutMix mixed it); the compute ledger books its FLOPs
      as ``teacher``.
    * ``AFTER_LOSS``: ``loss = (1 - alpha) * loss + alpha * T^2 * KL``. The CE term is the student's own loss as the
      model computed it, with the targets it used (class indices, or soft targets after MixUp, CutMix or
      LabelSmoothing), so :func:`kd_loss` holds whatever order the algorithms are listed in, and ``alpha=0``
      leaves training bit for bit as it is without the algorithm. An algorithm with loss weights (a method
      ``batch_weights(indices)``, as :class:`~algorithms.curriculum.GraNdCurriculum` has with ``reweight``)
      weights the KL of each row too; listed after the teacher, it has already made the CE term its weighted mean,
      so the loss is the weighted mean of the per-example KD loss. ``INIT`` refuses such an algorithm listed before
      the teacher, whose AFTER_LOSS would then replace the KD loss.
    * ``BATCH_END``: logs ``kd/teacher_on`` (1 or 0) and, when the teacher ran, ``kd/ce``, ``kd/kd`` and
      ``kd/teacher_accuracy`` (teacher top-1 against the argmax of the targets) for the batch, once per batch, after
      the step, when reading tensors costs no extra sync.
    """

    def __init__(self, temperature: Temperature = 4.0, alpha: KDWeight = 0.9, until: Until = None, every: Every = 1) -> None:
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.until = until
        self.every = every
        self._until_epochs = until_epochs(until)
        self._teacher_probs: Tensor | None = None
        self._batch_terms: list[tuple[int, Tensor, Tensor, Tensor]] = []
        self.cache: TeacherCache | None = None
        self._augment: DeviceAugment | None = None

    @property
    @abstractmethod
    def teachers(self) -> Sequence[nn.Module]:
        """Every network this teacher may run (moved to the student's device at ``INIT``)."""

    @abstractmethod
    def teacher_probs(self, inputs: Tensor, state: State) -> Tensor:
        """The teacher distribution at ``self.temperature`` for ``inputs``, (N, C); runs inside ``no_grad``."""

    def batch_metrics(self) -> dict[str, float]:
        """Metrics a subclass adds to each batch's log."""
        return {}

    def cached_logits(self, state: State, teacher: int) -> Tensor:
        """Teacher ``teacher``'s logits for the rows of ``state.batch`` from the cache, each for the view the device
        augmentation drew for it."""
        assert self.cache is not None and self._augment is not None, 'INIT attaches the cache'
        indices = state.batch[2]
        return self.cache.logits(indices, row_views(indices, self._augment.last_views), teacher)

    def match(self, event: Event, state: State) -> bool:
        if event in (Event.AFTER_FORWARD, Event.AFTER_LOSS):
            return teacher_active(int(state.timestamp.epoch), self._until_epochs, self.every)
        return event in (Event.INIT, Event.BATCH_END)

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        if event == Event.INIT:
            self._check_order(state)
            if self.cache is not None:
                self._augment = self.cache.attach(state)
            for teacher in self.teachers:
                state.device.module_to_device(teacher)
        elif event == Event.AFTER_FORWARD:
            with torch.no_grad(), get_precision_context(state.precision, state.precision_config), spend('teacher'):
                self._teacher_probs = self.teacher_probs(state.batch[0], state)
        elif event == Event.AFTER_LOSS:
            self._replace_loss(state)
        elif event == Event.BATCH_END:
            self._log_batch(logger)

    def _check_order(self, state: State) -> None:
        mine = state.algorithms.index(self)
        for alg in state.algorithms[:mine]:
            if isinstance(alg, WeightsExamples) and alg.match(Event.AFTER_LOSS, state):
                raise UsageError(
                    f'{type(alg).__name__} weights the loss but is listed before {type(self).__name__}, whose KD '
                    'loss it would then replace (AFTER_LOSS runs in reverse order): list it after the teacher',
                )

    def _replace_loss(self, state: State) -> None:
        if not isinstance(state.loss, Tensor) or not isinstance(state.outputs, Tensor):
            raise TypeError(f'{type(self).__name__} needs a model whose outputs and loss are single tensors')
        assert self._teacher_probs is not None, 'AFTER_FORWARD runs before AFTER_LOSS'
        ce = state.loss
        weights = None
        for alg in state.algorithms:
            row_weights = alg.batch_weights(state.batch[2]) if isinstance(alg, WeightsExamples) else None
            if row_weights is not None:
                weights = row_weights if weights is None else weights * row_weights
        kd = distillation_term(state.outputs, self._teacher_probs, self.temperature, weights)
        state.loss = (1 - self.alpha) * ce + self.alpha * kd
        correct = (self._teacher_probs.argmax(dim=1) == _hard_labels(state.batch[1])).sum()
        self._batch_terms.append((state.outputs.shape[0], ce.detach(), kd.detach(), correct))
        self._teacher_probs = None

    def _log_batch(self, logger: Logger) -> None:
        if not self._batch_terms:
            logger.log_metrics({'kd/teacher_on': 0.0})
            return
        total = sum(n for n, *_ in self._batch_terms)
        metrics = {
            'kd/ce': sum(n * float(ce) for n, ce, _, _ in self._batch_terms) / total,
            'kd/kd': sum(n * float(kd) for n, _, kd, _ in self._batch_terms) / total,
            'kd/teacher_accuracy': sum(int(c) for *_, c in self._batch_terms) / total,
            'kd/teacher_on': 1.0,
        }
        logger.log_metrics({**metrics, **self.batch_metrics()})
        self._batch_terms = []


class OneTeacher(TeacherDistillation):
    """A single frozen network ``self.teacher`` (None with a cache) as the teacher."""

    teacher: nn.Module | None

    @property
    def teachers(self) -> Sequence[nn.Module]:
        return () if self.teacher is None else (self.teacher,)

    def teacher_probs(self, inputs: Tensor, state: State) -> Tensor:
        logits = self.cached_logits(state, 0) if self.teacher is None else self.teacher(inputs)
        return F.softmax(logits.float() / self.temperature, dim=1)


@checked
class PastRunDistillation(OneTeacher):
    """Distil from checkpoint ``checkpoint`` of the past run ``run`` (Born-Again Networks when the architectures match).

    ``run`` is the past run's folder (local or ``s3://``) or a :class:`~algorithms.past_run.PastRun`; the teacher is
    rebuilt from that run's own config, so a resnet_20 run may teach a resnet_56 student. It is loaded here
    (``weights_only``, frozen, on the CPU, after the checkpoint-quality check: ``strict`` refuses a near-chance
    checkpoint), so a missing checkpoint or a class mismatch (``num_classes``, the student's) stops the run before
    training. The events used are those of :class:`TeacherDistillation`; :meth:`reused_compute` is what the past run
    had spent when the checkpoint was saved. With ``cache``, the teacher's outputs are read from a cache of this very
    checkpoint (its sha256 is checked, and the training split's) and no network is loaded; the cache's FLOPs are
    reused compute too, under the source ``cache URI``.
    """

    def __init__(
        self,
        run: Annotated[str | PastRun, PastRunFolder(), 'the teacher\'s run folder; the teacher is rebuilt from its own '
                       'config.yaml, so its architecture may differ from the student\'s'],
        checkpoint: Annotated[str, CheckpointNames(), 'the teacher checkpoint'] = 'latest',
        temperature: Temperature = 4.0,
        alpha: KDWeight = 0.9,
        num_classes: NumClasses = None,
        strict: Strict = False,
        until: Until = None,
        every: Every = 1,
        cache: Cache = None,
        dataset: TrainData = None,
    ) -> None:
        super().__init__(temperature, alpha, until, every)
        self.past_run = run if isinstance(run, PastRun) else PastRun(run)
        self.checkpoint = str(checkpoint)
        self.reused = past_run_cost(self.past_run, [self.checkpoint])
        if cache is None:
            self.teacher = self.past_run.load(self.checkpoint, num_classes=num_classes, strict=strict)
            return
        self.past_run.check(self.checkpoint, strict=strict)
        self.cache = open_cache(cache, [(self.past_run, self.checkpoint)], dataset, num_classes)
        self.teacher = None
        self.reused[f'cache {cache}'] = self.cache.flops

    def reused_compute(self) -> dict[str, float]:
        """FLOPs by source this teacher reuses (see :mod:`algorithms.ledger`)."""
        return dict(self.reused)


def random_network(run: str | PastRun, seed: int) -> nn.Module:
    """A frozen network of the past run's architecture and classes, randomly initialised from ``seed``."""
    past = run if isinstance(run, PastRun) else PastRun(run)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        data = past.config['data']['name']
        return frozen(build_model(past.config['model']['name'], past.num_classes, width=past.config['model'].get('width'),
                                  channels=data_channels(data), stats=data_stats(data)).module)


@checked
class RandomTeacherDistillation(OneTeacher):
    """The control of :class:`PastRunDistillation`: the same teacher architecture and cost, no knowledge.

    The teacher is the past run's network randomly initialised from ``seed`` (default: the run's seed plus one, so
    it never equals the student's own initialisation); it reuses no compute, so it reports none: ``run`` names an
    architecture, no checkpoint.
    """

    def __init__(
        self,
        run: Annotated[str | PastRun, PastRunFolder(), 'the past run whose architecture the random teacher has'],
        seed: Annotated[int | None, Number(0, 2**32 - 1, integer=True, optional=True),
                        'the random teacher\'s initialisation (null: the run\'s seed + 1, never the student\'s own)'] = None,
        temperature: Temperature = 4.0,
        alpha: KDWeight = 0.9,
        num_classes: NumClasses = None,
        until: Until = None,
        every: Every = 1,
        run_seed: Annotated[int, FromRun('seed')] = 0,
    ) -> None:
        super().__init__(temperature, alpha, until, every)
        self.past_run = run if isinstance(run, PastRun) else PastRun(run)
        if num_classes is not None and num_classes != self.past_run.num_classes:
            raise UsageError(
                f'past run {self.past_run.folder} has {self.past_run.num_classes} classes but this run has '
                f'{num_classes}: use a past run trained on the same data set',
            )
        self.seed = run_seed + 1 if seed is None else seed
        self.teacher = random_network(self.past_run, self.seed)
