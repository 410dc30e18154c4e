"""A curriculum from per-example scores of past runs: order, pace, prune and reweight the next run's data.

Wu, Dyer and Neyshabur (2021, "When do curricula work?") define a curriculum by a scoring function, an order and a
pacing function ``g(t)``: at training step ``t`` each batch is drawn uniformly from the ``g(t)`` easiest examples,
``g`` growing from ``start_fraction * N`` to ``N`` at ``full_at`` of training. Data Diet (Paul et al. 2021) prunes
the easiest share before training. The scores come from a scores artifact (:mod:`algorithms.curriculum.scores`).

How the order reaches the data loader: :class:`CurriculumSampler` is a ``DistributedSampler`` subclass (Composer's
DataSpec requires one under DDP) that yields dataset indices, so the data set must be map-style and addressable by
index. The recipes' :class:`~recipes.core.data.MDSImageDataset` is exactly that over streaming's MDS shards: ``ds[i]``
reads sample ``i`` through ``StreamingDataset.__getitem__``, which fetches the shard holding it (from a local folder
or ``s3://``) into the node's cache on first use, so the curriculum's order costs no full download and no second
copy of the data. (Streaming's own iterable mode chooses its order itself and cannot follow a curriculum.)

Determinism and resumption: the sampler's order for an epoch is a pure function of ``(seed, epoch)``: the pool for
step ``t`` is the ``g(t)`` easiest, and one global batch is drawn from it without replacement by an RNG seeded with
``(seed, epoch)``; rank ``r`` takes the ``r``-th slice of it, so ranks draw disjoint samples from the same pool.
Composer calls ``set_epoch`` each epoch and resumes mid-epoch by replaying the epoch's order and skipping the
finished batches, which yields the same batches as the run that was interrupted. The pacing is per training step,
so the sampler is told, when it is built, the batch size per rank and the run's ``max_duration``; from those, the
world size and the data set's length it derives the steps per epoch and the total steps.

Class balance (``balance='class'``, the default): pruning drops the easiest share of each class, and the order
interleaves the classes so that every prefix of it, and so every pool ``g(t)``, holds each class in proportion to
its size within one example (:func:`interleave_classes`); the labels are those the run trains on (label noise
applied). Without it (``balance='none'``) the easiest examples overall come first, and a pool may lack whole
classes. The first logged metrics give the pool's class histogram (``curriculum/pool_classes_min``, ``_max``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
import torch
from composer.core import Algorithm, Event, State, Time, TimeUnit
from composer.loggers import Logger
from composer.loss import soft_cross_entropy
from composer.utils import dist
from torch import Tensor
from torch.utils.data import DistributedSampler

from algorithms.curriculum.scores import array_sha256, check_labels, dataset_labels, read_scores, scores_cost
from recipes.core.artifacts import ScoresFile
from recipes.core.data import MDSImageDataset
from recipes.core.declare import FromRun, checked
from recipes.core.errors import UsageError
from recipes.core.rules import Number, OneOf

__all__ = [
    'BALANCES',
    'ORDERS',
    'PACINGS',
    'REWEIGHTS',
    'CurriculumSampler',
    'GraNdCurriculum',
    'ScoreCurriculum',
    'check_pacing',
    'curriculum_order',
    'interleave_classes',
    'loss_weights',
    'pacing_size',
    'reweighted_loss',
    'total_steps',
]

PACINGS = ('linear', 'quad', 'root', 'step', 'exp', 'log')
ORDERS = ('easy_first', 'hard_first', 'random')
REWEIGHTS = ('score', 'inverse')
BALANCES = ('class', 'none')
_C = 10.0  # the exp and log pacings' sharpness, as Wu et al. set it


def pacing_size(
    pacing: str,
    step: int,
    total_steps: int,
    num_samples: int,
    start_fraction: float,
    full_at: float,
) -> int:
    """``g(step)``: how many of the easiest examples training may draw from at ``step`` (Wu et al. 2021).

    With ``N0 = start_fraction * N`` and ``x = step / (full_at * total_steps)``: linear ``N0 + (N - N0) x``,
    quad ``... x^2``, root ``... x^0.5``, step ``N0 + N floor(x)``, exp ``N0 + (N - N0) (e^(10x) - 1) / (e^10 - 1)``,
    log ``N0 + (N - N0) (1 + ln(x + e^-10) / 10)``; the result is rounded down (a hair of tolerance absorbs
    floating-point error at whole numbers) and capped at ``N``.
    """
    check_pacing(pacing, start_fraction, full_at)
    n0 = start_fraction * num_samples
    x = step / (full_at * total_steps)
    grow = num_samples - n0
    if pacing == 'linear':
        size = n0 + grow * x
    elif pacing == 'quad':
        size = n0 + grow * x**2
    elif pacing == 'root':
        size = n0 + grow * math.sqrt(x)
    elif pacing == 'step':
        size = n0 + num_samples * math.floor(x)
    elif pacing == 'exp':
        size = n0 + grow * math.expm1(_C * min(x, 1.0)) / math.expm1(_C)
    else:
        size = n0 + grow * (1.0 + math.log(x + math.exp(-_C)) / _C)
    return min(math.floor(size + 1e-6), num_samples)


def check_pacing(pacing: str, start_fraction: float, full_at: float) -> None:
    """Refuse an unknown pacing function or a share outside (0, 1]."""
    if pacing not in PACINGS:
        raise ValueError(f'pacing={pacing!r} is not a pacing function: choose one of {", ".join(PACINGS)}')
    if not 0.0 < start_fraction <= 1.0:
        raise ValueError(f'start_fraction={start_fraction} is out of range: use a share in (0, 1]')
    if not 0.0 < full_at <= 1.0:
        raise ValueError(f'full_at={full_at} is out of range: use a share of training in (0, 1]')


def total_steps(max_duration: str | Time, steps_per_epoch: int, global_batch_size: int) -> int:
    """The training steps of ``max_duration`` (``160ep``, ``6000ba`` or ``100000sp``)."""
    duration = Time.from_timestring(max_duration) if isinstance(max_duration, str) else max_duration
    if duration.unit == TimeUnit.EPOCH:
        return duration.value * steps_per_epoch
    if duration.unit == TimeUnit.BATCH:
        return duration.value
    if duration.unit == TimeUnit.SAMPLE:
        return duration.value // global_batch_size
    raise ValueError(f'max_duration={max_duration} must be in epochs (ep), batches (ba) or samples (sp) for a curriculum')


def _ranked(indices: np.ndarray, scores: np.ndarray, order: str, prune_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``indices`` ordered by ``order`` after dropping the easiest ``prune_fraction`` of them (ties keep index order)."""
    easiest_first = indices[np.argsort(scores[indices], kind='stable')]
    kept = easiest_first[round(prune_fraction * len(indices)) :]
    if order == 'hard_first':
        return kept[::-1].copy()
    if order == 'random':
        return kept[rng.permutation(len(kept))]
    return kept


def interleave_classes(groups: list[np.ndarray]) -> np.ndarray:
    """Merge per-class index lists, each kept in its order, so that every prefix holds each class in proportion.

    After ``k`` entries class ``c`` (``n_c`` of ``N`` entries) has ``k * n_c / N`` of them within one: each next
    entry goes to the class furthest behind its share (its deficit ``k * n_c / N - taken_c`` is largest; the
    deficits sum to 1, so a class that has given all its entries, whose deficit is at most 0, is never chosen).
    """
    sizes = np.array([len(g) for g in groups], dtype=np.float64)
    total = int(sizes.sum())
    share = sizes / max(total, 1)
    taken = np.zeros(len(groups), dtype=np.int64)
    merged = np.empty(total, dtype=np.int64)
    for k in range(total):
        c = int(np.argmax((k + 1) * share - taken))
        merged[k] = groups[c][taken[c]]
        taken[c] += 1
    return merged


def curriculum_order(
    scores: np.ndarray,
    order: str,
    prune_fraction: float,
    seed: int,
    labels: np.ndarray | None = None,
    among: np.ndarray | None = None,
) -> np.ndarray:
    """The dataset indices training draws from, the first ones first: the easiest ``prune_fraction`` dropped.

    Lower scores are easier; ties keep index order. ``random`` orders the kept examples by a permutation drawn from
    ``seed``, fixed for the whole run (Wu et al.'s control: pacing without a meaningful order). With ``labels``
    (class balance) each class is pruned and ordered on its own and the classes are interleaved in proportion to
    their sizes (:func:`interleave_classes`); without, the whole data set is ranked at once. ``among`` (sorted
    indices) limits the ranking to the examples a run trains on (a subset of the scored split); None ranks them all.
    """
    if order not in ORDERS:
        raise ValueError(f'order={order!r} is not an order: choose one of {", ".join(ORDERS)}')
    if not 0.0 <= prune_fraction < 1.0:
        raise ValueError(f'prune_fraction={prune_fraction} is out of range: use a share in [0, 1)')
    members = np.arange(len(scores)) if among is None else np.asarray(among, dtype=np.int64)
    if labels is None:
        return _ranked(members, scores, order, prune_fraction, np.random.default_rng(seed))
    if len(labels) != len(scores):
        raise ValueError(f'{len(labels)} labels for {len(scores)} scores: pass the labels of the scored data set')
    groups = [
        _ranked(members[labels[members] == c], scores, order, prune_fraction, np.random.default_rng((seed, int(c))))
        for c in np.unique(labels[members])
    ]
    return interleave_classes(groups)


def pool_class_counts(pool: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """How many of the dataset indices ``pool`` fall in each of ``classes`` (by ``labels``)."""
    return np.bincount(labels[pool], minlength=int(classes.max()) + 1)[classes]


def loss_weights(scores: np.ndarray, kept: np.ndarray, reweight: str) -> np.ndarray:
    """Per-example loss weights (float32, one per dataset index) with mean 1 over the ``kept`` examples.

    ``score``: proportional to the score (hard examples weigh more). ``inverse``: proportional to
    ``1 / (score + mean score)`` (easy examples weigh more; the mean in the denominator keeps a zero score finite and
    bounds the largest weight at ``(max score + mean) / mean`` times the smallest). Scores must be non-negative, as
    every scoring method here gives them.
    """
    if reweight not in REWEIGHTS:
        raise ValueError(f'reweight={reweight!r} is not a weighting: choose one of {", ".join(REWEIGHTS)} or None')
    kept_scores = scores[kept].astype(np.float64)
    mean = kept_scores.mean()
    if kept_scores.min() < 0 or mean <= 0:
        raise ValueError(f'reweight={reweight} needs non-negative scores with a positive mean: use reweight=None')
    raw = scores.astype(np.float64) if reweight == 'score' else 1.0 / (scores.astype(np.float64) + mean)
    return (raw / raw[kept].mean()).astype(np.float32)


def reweighted_loss(outputs: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """``mean_i(w_i * CE(outputs_i, targets_i))`` for class-index or soft targets."""
    per_example = soft_cross_entropy(outputs, targets, reduction='none')
    return (weights.to(per_example.dtype) * per_example).mean()


class CurriculumSampler(DistributedSampler):
    """Yield this rank's share of each step's batch, drawn from the ``g(t)`` first indices of ``order``.

    Args:
        dataset: the training data (map-style, addressable by index).
        order: the dataset indices to draw from, easiest first (see :func:`curriculum_order`).
        batch_size: the batch size per rank (the DataLoader's).
        max_duration: the run's duration (``160ep``, ``6000ba`` or ``...sp``).
        pacing, start_fraction, full_at: see :func:`pacing_size`.
        num_replicas, rank: the world size and this rank.
        seed: the run's seed; an epoch's order depends only on it and the epoch.

    An epoch is ``len(order) // (batch_size * num_replicas)`` steps. While ``g(t)`` is smaller than the global batch,
    the pool is the global batch's size, so a batch never repeats an example.
    """

    def __init__(
        self,
        dataset: Any,
        order: np.ndarray,
        *,
        batch_size: int,
        max_duration: str | Time,
        pacing: str,
        start_fraction: float,
        full_at: float,
        num_replicas: int,
        rank: int,
        seed: int,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        check_pacing(pacing, start_fraction, full_at)
        self.order = np.asarray(order, dtype=np.int64)
        self.batch_size = batch_size
        self.global_batch_size = batch_size * num_replicas
        self.steps_per_epoch = len(self.order) // self.global_batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f'{len(self.order)} examples to draw from cannot fill one global batch of {self.global_batch_size}: '
                'lower prune_fraction or data.global_batch_size',
            )
        self.total_steps = total_steps(max_duration, self.steps_per_epoch, self.global_batch_size)
        if self.total_steps <= 0:
            raise ValueError(f'max_duration={max_duration} is shorter than one training step')
        self.pacing = pacing
        self.start_fraction = start_fraction
        self.full_at = full_at

    def pool_size(self, step: int) -> int:
        """How many of the first indices of ``order`` step ``step`` draws from."""
        size = pacing_size(self.pacing, step, self.total_steps, len(self.order), self.start_fraction, self.full_at)
        return max(size, self.global_batch_size)

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """This rank's indices for each step of ``epoch``, ``[steps_per_epoch, batch_size]``."""
        rng = np.random.default_rng((self.seed, epoch))
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        batches = np.empty((self.steps_per_epoch, self.batch_size), dtype=np.int64)
        for s in range(self.steps_per_epoch):
            pool = self.pool_size(epoch * self.steps_per_epoch + s)
            batches[s] = self.order[rng.choice(pool, size=self.global_batch_size, replace=False)[lo:hi]]
        return batches

    def __iter__(self):
        return iter(self.epoch_batches(self.epoch).ravel().tolist())

    def __len__(self) -> int:
        return self.steps_per_epoch * self.batch_size


@checked
class ScoreCurriculum(Algorithm):
    """Train on the data in an order, pace and subset chosen by per-example scores from past runs.

    The scores may be GraNd, EL2N, loss or forgetting scores (``launch/score.py --method``); the YAML name is
    ``grand_curriculum`` and :data:`GraNdCurriculum` remains this class's other name.

    Args:
        scores: a scores artifact (``PATH.npy``, local or ``s3://``) from ``launch/score.py``; lower is easier.
        order: ``easy_first``, ``hard_first`` or ``random`` (pacing alone, the control).
        pacing: ``linear``, ``quad``, ``root``, ``step``, ``exp`` or ``log`` (:func:`pacing_size`).
        start_fraction: share of the (kept) data available at step 0.
        full_at: share of training after which all the kept data is available.
        prune_fraction: share of the easiest examples dropped before anything else (Data Diet).
        reweight: ``None``, ``score`` or ``inverse``: per-example loss weights, mean 1 (:func:`loss_weights`).
        balance: ``class`` (prune and pace each class in proportion to its size) or ``none`` (rank all examples
            together).
        batch_size: the batch size per rank; max_duration: the run's duration. The pacing is per step.

    The order enters through :meth:`train_sampler`, which the trainer uses as the training DataLoader's sampler; it
    checks the scores against the data set's length and labels, so a mismatch stops the run before it trains.
    Events: ``EPOCH_START`` logs the size of the epoch's first pool and its smallest and largest class count
    (``curriculum/pool_size``, ``curriculum/pool_classes_min``, ``curriculum/pool_classes_max``).
    ``AFTER_LOSS`` only with ``reweight``: the loss is recomputed from ``state.outputs`` as the weighted
    mean of per-example cross-entropies, weights looked up by the dataset indices in ``batch[2]``
    (:meth:`batch_weights`; replayed rows weigh 1). (AFTER_* events run in reverse order, so list this algorithm
    after one that changes the targets at BEFORE_LOSS, such as label_smoothing, for the weighted loss to see them,
    and after a distillation teacher, which weights its KD term per example with :meth:`batch_weights` and builds
    on this weighted cross-entropy.) The state dict holds the scores' digest and the balance: resuming with
    other scores or another balance, which would give another order, is refused.
    """

    def __init__(
        self,
        scores: Annotated[str, ScoresFile(), 'lower is easier'],
        order: Annotated[str, OneOf(*ORDERS, message=f'is not an order: choose one of {", ".join(ORDERS)}'),
                         '`random` keeps the pacing with a meaningless order: the control'] = 'easy_first',
        pacing: Annotated[str, OneOf(*PACINGS, message=f'is not a pacing function: choose one of {", ".join(PACINGS)}'),
                          'how the pool grows (Wu et al. 2021)'] = 'linear',
        start_fraction: Annotated[float, Number(0, 1, low_open=True, message='is out of range: use a share in (0, 1]'),
                                  'share of the kept data in the pool at step 0'] = 0.2,
        full_at: Annotated[float, Number(0, 1, low_open=True, message='is out of range: use a share of training in (0, 1]'),
                           'share of training after which all kept data is in the pool'] = 0.8,
        prune_fraction: Annotated[float, Number(0, 1, high_open=True, message='is out of range: use a share in [0, 1)'),
                                  'share of the easiest examples dropped before training (per class with balance: class)'] = 0.0,
        reweight: Annotated[str | None, OneOf(*REWEIGHTS, optional=True,
                                              message=f'is not a weighting: choose one of {", ".join(REWEIGHTS)} or null'),
                            'per-example loss weights, mean 1: `score` (hard examples weigh more) or `inverse`'] = None,
        balance: Annotated[str, OneOf(*BALANCES, message=f'is not a balance: choose one of {", ".join(BALANCES)}'),
                           '`class`: prune and pace each class in proportion to its size; `none`: one global ranking'] = 'class',
        *,
        batch_size: Annotated[int, FromRun('train_batch_size')],
        max_duration: Annotated[str | Time, FromRun('max_duration')],
    ) -> None:
        self.scores_uri = scores
        self.scores, self.metadata = read_scores(scores)
        self.order = order
        self.pacing = pacing
        self.start_fraction = start_fraction
        self.full_at = full_at
        self.prune_fraction = prune_fraction
        self.reweight = reweight
        self.balance = balance
        self.batch_size = batch_size
        self.max_duration = max_duration
        self.scores_sha256 = array_sha256(self.scores)
        self.weights: Tensor | None = None
        self.sampler: CurriculumSampler | None = None
        self.labels: np.ndarray | None = None
        self.kept: np.ndarray | None = None  # the whole-split indices training draws from, first ones first

    def train_sampler(self, dataset: MDSImageDataset, seed: int) -> CurriculumSampler:
        """The training sampler: checks the scores against ``dataset``'s whole split, then orders, prunes and paces
        the examples the run trains on (all of the split, or its ``data.subset_fraction`` or ``data.classes``)."""
        self.labels = dataset_labels(dataset)
        check_labels(self.scores_uri, self.scores, self.metadata, self.labels)
        by_class = self.labels if self.balance == 'class' else None
        members = np.arange(dataset.split_size) if dataset.indices is None else dataset.indices
        unscored = members[~np.isfinite(self.scores[members])]
        if len(unscored):
            raise UsageError(
                f'{self.scores_uri} has no score (NaN) for example {int(unscored[0])}, which this run trains on: it '
                'was held out by the past run the scores came from; train with that run\'s data.holdout and holdout_seed',
            )
        self.kept = curriculum_order(self.scores, self.order, self.prune_fraction, seed, labels=by_class,
                                     among=dataset.indices)
        if self.reweight is not None:
            self.weights = torch.from_numpy(loss_weights(self.scores, self.kept, self.reweight))
        positions = self.kept  # the sampler yields positions in the data set, which index a subset's members
        if dataset.indices is not None:
            positions = np.searchsorted(dataset.indices, self.kept)
        self.sampler = CurriculumSampler(
            dataset,
            positions,
            batch_size=self.batch_size,
            max_duration=self.max_duration,
            pacing=self.pacing,
            start_fraction=self.start_fraction,
            full_at=self.full_at,
            num_replicas=dist.get_world_size(),
            rank=dist.get_global_rank(),
            seed=seed,
        )
        return self.sampler

    def reused_compute(self) -> dict[str, float]:
        """What the scores cost to compute, and what the past-run checkpoints they came from cost (ledger)."""
        return scores_cost(self.scores_uri, self.metadata)

    def batch_weights(self, indices: Tensor) -> Tensor | None:
        """The loss weight of each row of a batch with dataset indices ``indices``; ``None`` without ``reweight``.

        Rows that are no example of the data set (a negative index, as adversarial replay marks its rows) weigh 1.
        """
        if self.weights is None:
            return None
        if self.weights.device != indices.device:
            self.weights = self.weights.to(indices.device)
        return torch.where(indices >= 0, self.weights[indices.clamp(min=0)], 1.0)

    def pool_metrics(self, step: int) -> dict[str, int]:
        """The size of step ``step``'s pool and its smallest and largest class count (classes of the kept data)."""
        assert self.sampler is not None and self.labels is not None and self.kept is not None, (
            'train_sampler builds the pool first')
        pool = self.kept[: self.sampler.pool_size(step)]
        counts = pool_class_counts(pool, self.labels, np.unique(self.labels[self.kept]))
        return {
            'curriculum/pool_size': len(pool),
            'curriculum/pool_classes_min': int(counts.min()),
            'curriculum/pool_classes_max': int(counts.max()),
        }

    def match(self, event: Event, state: State) -> bool:
        if event == Event.EPOCH_START:
            return self.sampler is not None
        return event == Event.AFTER_LOSS and self.weights is not None

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        if event == Event.EPOCH_START:
            logger.log_metrics(self.pool_metrics(int(state.timestamp.batch)))
            return
        weights = self.batch_weights(state.batch[2])
        assert weights is not None
        state.loss = reweighted_loss(state.outputs, state.batch[1], weights)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), 'scores_sha256': self.scores_sha256, 'balance': self.balance}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get('scores_sha256')
        if saved != self.scores_sha256:
            raise UsageError(
                f'the checkpoint trained a curriculum with other scores than {self.scores_uri} '
                '(their digests differ): resume with the scores artifact the run started with',
            )
        balance = state.get('balance', 'none')  # checkpoints from before class balance ranked all examples together
        if balance != self.balance:
            raise UsageError(
                f'the checkpoint trained a curriculum with balance={balance}, this run has balance={self.balance}: '
                f'resume with algorithms.grand_curriculum.balance={balance}',
            )


GraNdCurriculum = ScoreCurriculum
