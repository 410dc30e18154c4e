"""A teacher's soft labels stored once per example and view, read by every student instead of a teacher forward.

FKD (Shen & Xing, ECCV 2022) and ReLabel store a teacher's outputs per image and augmentation view. Here the views
are enumerable: the device augmentation's pad-4 crop and flip make 162 views of an image
(:mod:`recipes.core.data.device_augment`), so a cache holds, for every example of the training split and each of
its views (all of them, or a seeded subset of ``V`` per example), each teacher's top-k logits in float16, their
classes in the smallest integer type that holds the label space, and the log-sum-exp of the other logits in float32.

Functional forms: :func:`compress` and :func:`expand` (top-k and back), :func:`view_subsets` (the seeded views of a
shard), :func:`teacher_logits_of_views`. :func:`build_cache` writes a cache; :class:`TeacherCache` reads one.

What is exact: the top-k logits to float16 precision (a relative error of at most 2**-11), and the total mass of
the other ``C - k`` classes at temperature 1 (their log-sum-exp). What is approximated, for ``k < C``: the split of
that mass among those classes, taken as equal (each of their logits is ``rest - log(C - k)``), and so their mass
at another temperature. The teacher distribution at temperature ``T`` rebuilt from the cache, ``q``, and the
teacher's own, ``p``, give the same probabilities relative to each other on the top k, so
``sum |p - q| <= 2 * (p_rest + q_rest)``, where ``p_rest`` and ``q_rest`` are the masses the two put outside the
top k; with ``k = C`` there is no rest and ``q`` is ``p`` up to the float16 rounding of the logits.

Layout of a cache folder (or ``s3://`` prefix)::

    shard-00000.npz ...   uncompressed numpy archives, one per block of examples, in index order:
                          values (n, V, M, k) float16, classes (n, V, M, k) uint8/int16/int32,
                          rest (n, V, M) float32 (-inf when k = C), views (n, V) uint8: the view ids
    cache.json            metadata, written last: teacher (run, checkpoints, sha256 of each checkpoint file), data
                          (name, split size, sha256 of the clean labels), augmentation (pad, views, seed), top_k,
                          num_classes, compute (teacher FLOPs), the shards (examples, bytes, sha256)

``M`` is the number of teachers (several for the checkpoint-mixup teacher, which mixes them at train time). A build
that dies leaves its finished shards: run again, it keeps those and writes the rest.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from composer.core import State
from composer.utils import dist
from torch import Tensor, nn
from tqdm import tqdm

from algorithms.curriculum.scores import label_fingerprint
from algorithms.ledger import count_flops
from algorithms.past_run import PastRun
from recipes.core import storage
from recipes.core.artifacts import BUILD_CACHE, CACHE_FILE, require_cache
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.data.device_augment import DeviceAugment, apply_views, num_views
from recipes.core.errors import UsageError

__all__ = [
    'CACHE_FILE',
    'FORMAT',
    'TeacherCache',
    'TeacherEntry',
    'build_cache',
    'checkpoint_sha256',
    'compress',
    'expand',
    'index_dtype',
    'row_views',
    'teacher_logits_of_views',
    'view_subsets',
]

FORMAT = 'pastrun-teacher-cache/1'
SHARD_EXAMPLES = 1024
INPUT_MIXERS = ('MixUp', 'CutMix')  # Composer's algorithms that mix the inputs the teacher would have seen


def index_dtype(num_classes: int) -> np.dtype:
    """The smallest integer type that holds class ids ``0 .. num_classes - 1``."""
    for dtype in (np.uint8, np.int16, np.int32):
        if num_classes - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f'{num_classes} classes do not fit an int32')


def compress(logits: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(values, classes, rest)`` of each row of ``logits`` (..., C): its k largest logits (float16), their classes,
    and the log-sum-exp of the other ``C - k`` logits (float32; ``-inf`` when ``k = C``)."""
    logits = logits.float()
    top = logits.topk(k, dim=-1)
    others = logits.scatter(-1, top.indices, float('-inf'))
    return top.values.half(), top.indices, others.logsumexp(dim=-1)


def expand(values: Tensor, classes: Tensor, rest: Tensor, num_classes: int) -> Tensor:
    """Logits (..., C) rebuilt from :func:`compress`'s output: the top k as stored, each of the other ``C - k`` at
    ``rest - log(C - k)``, so the others' total mass at temperature 1 is exact and split equally."""
    k = values.shape[-1]
    fill = rest.float() - math.log(num_classes - k) if k < num_classes else torch.full_like(rest.float(), -math.inf)
    out = fill[..., None].expand(*values.shape[:-1], num_classes).clone()
    return out.scatter_(-1, classes.long(), values.float())


def view_subsets(num_examples: int, views: int, pad: int, seed: int, start: int) -> np.ndarray:
    """The view ids (sorted) of examples ``start .. start + num_examples - 1``: all of them in order when ``views`` is
    every view, else ``views`` distinct ones per example drawn from ``(seed, example)``: the same whichever shard
    or rank asks."""
    total = num_views(pad)
    if views == total:
        return np.broadcast_to(np.arange(total, dtype=np.uint8), (num_examples, total)).copy()
    rows = [np.sort(np.random.default_rng([seed, start + n]).choice(total, size=views, replace=False))
            for n in range(num_examples)]
    return np.stack(rows).astype(np.uint8) if rows else np.zeros((0, views), np.uint8)


def teacher_logits_of_views(
    teachers: Sequence[nn.Module], images: Tensor, views: Tensor, pad: int, batch_size: int,
) -> Tensor:
    """Each teacher's logits for every (image, view): (n, V, M, C) float32 from uint8 ``images`` (n, C, H, W) and view
    ids ``views`` (n, V), computed ``batch_size`` views at a time."""
    n, v = views.shape
    flat_images = images.repeat_interleave(v, dim=0)
    flat_views = views.reshape(-1)
    chunks = []
    with torch.no_grad():
        for lo in range(0, n * v, batch_size):
            inputs = apply_views(flat_images[lo : lo + batch_size], flat_views[lo : lo + batch_size], pad)
            chunks.append(torch.stack([t(inputs).float() for t in teachers], dim=1))
    return torch.cat(chunks).reshape(n, v, len(teachers), -1)


def checkpoint_sha256(run: PastRun, name: str) -> str:
    """sha256 of checkpoint ``name``'s file: the teacher's identity."""
    return hashlib.sha256(storage.read_bytes(run.resolve(name))).hexdigest()


@dataclass(frozen=True)
class TeacherEntry:
    """One teacher of a cache: its run folder, checkpoint name and the sha256 of the checkpoint file."""

    run: str
    checkpoint: str
    sha256: str

    def describe(self) -> str:
        return f'{self.run}:{self.checkpoint} (sha256 {self.sha256[:12]})'


def _shard_name(number: int) -> str:
    return f'shard-{number:05d}.npz'


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _read_shard(uri: str) -> tuple[dict[str, np.ndarray], bytes] | None:
    """A written shard's arrays and its bytes, or None where there is none or it does not load."""
    if not storage.exists(uri):
        return None
    body = storage.read_bytes(uri)
    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}, body
    except (OSError, ValueError, EOFError):
        return None


def build_cache(
    run: PastRun,
    checkpoints: Sequence[str],
    out: str,
    top_k: int,
    views: int | None = None,
    seed: int = 0,
    batch_size: int = 512,
    strict: bool = False,
    progress: bool = True,
    device: str | None = None,
) -> dict[str, Any]:
    """Write the cache of ``run``'s ``checkpoints`` (in this order) over its whole training split to ``out``; returns
    the metadata (``cache.json``).

    ``views`` per example (None: all 162), drawn with ``seed``. Finished shards already at ``out`` are kept. The
    teachers run in fp32 on ``device`` (None: this rank's GPU where there is one). Under ``composer -n N`` (the
    process group initialised) rank ``r`` writes shards ``r, r + N, ...``, the ranks exchange the shards' records
    and rank 0 writes ``cache.json`` last: the same files as one process writes.
    """
    device = device or (f'cuda:{dist.get_local_rank()}' if torch.cuda.is_available() else 'cpu')
    rank, world = dist.get_global_rank(), dist.get_world_size()
    pad = 4
    total_views = num_views(pad)
    views = total_views if views is None else views
    if not 1 <= views <= total_views:
        raise UsageError(f'--views={views} must lie in 1..{total_views} (the pad-{pad} crops and flips of an image)')
    if not 1 <= top_k <= run.num_classes:
        raise UsageError(f'--top_k={top_k} must lie in 1..{run.num_classes} (the past run\'s classes; '
                         f'{run.num_classes} stores every logit)')
    data = run.config['data']
    dataset = MDSImageDataset(resolve_root(data['name'], data.get('remote'), path=data.get('path')), 'train',
                              run.num_classes, raw=True)
    held = set(run.training_data().held_out.tolist())  # the past run's validation split: no teacher sees it
    if dataset.encoded:
        raise UsageError(f'{dataset.root} holds JPEG images: a teacher cache needs the raw-pixel splits the device '
                         'augmentation crops (CIFAR-100, the built-in sets)')
    teachers = []
    for name in checkpoints:
        run.check(name, strict=strict)
        teachers.append(run.load(name, num_classes=run.num_classes, strict=strict).to(device))
    entries = [TeacherEntry(run.folder, name, checkpoint_sha256(run, name)) for name in checkpoints]
    n = dataset.split_size
    metadata: dict[str, Any] = {
        'format': FORMAT,
        'run': run.folder,
        'checkpoints': list(checkpoints),
        'teachers': [entry.__dict__ for entry in entries],
        'data': {'name': data['name'], 'remote': data.get('remote'), 'split': 'train', 'size': n,
                 'label_sha256': label_fingerprint(dataset.clean_labels()),
                 'holdout': {'size': len(held), 'seed': int(data.get('holdout_seed') or 0)}},
        'augmentation': {'augment_on': 'device', 'pad': pad, 'views': views, 'seed': seed},
        'top_k': top_k,
        'num_classes': run.num_classes,
    }
    image = dataset[0][0][None].to(device)
    per_view = sum(count_flops(t, apply_views(image, torch.zeros(1, dtype=torch.long), pad)) for t in teachers)
    cached = n - len(held)
    metadata['compute'] = {'flops_estimate': float(per_view) * cached * views,
                           'teacher_forwards': cached * views * len(teachers)}
    starts = list(range(0, n, SHARD_EXAMPLES))[rank::world]
    bar = tqdm(total=sum(min(SHARD_EXAMPLES, n - start) for start in starts) * views, unit='view',
               desc=f'caching {len(teachers)} teacher(s)' + (f', rank {rank} of {world}' if world > 1 else ''),
               disable=not progress or rank != 0)
    records = []
    for start in starts:
        number, stop = start // SHARD_EXAMPLES, min(start + SHARD_EXAMPLES, n)
        uri = storage.join(out, _shard_name(number))
        table = view_subsets(stop - start, views, pad, seed, start)
        written = _read_shard(uri)
        arrays, body = written if written is not None else ({}, b'')
        if not arrays or arrays['views'].shape != table.shape or arrays['values'].shape[2:] != (len(teachers), top_k):
            rows = [i for i in range(start, stop) if i not in held]  # held-out rows stay zeros, never looked up
            images = torch.stack([dataset[i][0] for i in rows]).to(device)
            kept = torch.tensor([i - start for i in rows], dtype=torch.long)
            logits = teacher_logits_of_views(teachers, images, torch.from_numpy(table[kept.numpy()]).long().to(device),
                                             pad, batch_size)
            parts = [t.cpu() for t in compress(logits, top_k)]
            values, classes, rest = (torch.zeros((stop - start, *t.shape[1:]), dtype=t.dtype).index_copy_(0, kept, t)
                                     for t in parts)
            arrays = {'values': values.numpy(), 'classes': classes.numpy().astype(index_dtype(run.num_classes)),
                      'rest': rest.numpy(), 'views': table}
            body = _npz(arrays)
            storage.write_bytes(uri, body)
        records.append({'file': _shard_name(number), 'start': start, 'stop': stop, 'bytes': len(body),
                        'sha256': hashlib.sha256(body).hexdigest()})
        bar.update((stop - start) * views)
    bar.close()
    if world > 1:
        records = [record for part in dist.all_gather_object(records) for record in part]
    metadata['shards'] = sorted(records, key=lambda record: record['start'])
    if rank == 0:
        storage.write_bytes(storage.join(out, CACHE_FILE), json.dumps(metadata, indent=1).encode())
    if world > 1:
        dist.barrier()  # no rank returns before the marker is written
    return metadata


def row_views(indices: Tensor, last_views: tuple[Tensor, Tensor] | None) -> Tensor:
    """The view :class:`~recipes.core.data.device_augment.DeviceAugment` drew for each of ``indices`` (rows of the
    batch now, a microbatch or a selection of the rows it augmented)."""
    if last_views is None:
        raise RuntimeError('the device augmentation drew no views for this batch')
    drawn, views = last_views
    if indices is drawn:
        return views  # the batch as augmented: no lookup, no device sync (a duplicate example keeps its own view)
    if indices.shape == drawn.shape and torch.equal(indices.to(drawn.device), drawn):
        return views
    order = torch.argsort(drawn)
    ordered = drawn[order]
    pos = torch.searchsorted(ordered, indices.to(drawn.device)).clamp(max=len(ordered) - 1)
    missing = ordered[pos] != indices.to(drawn.device)
    if bool(missing.any()):
        raise UsageError(
            f'example {int(indices.to(drawn.device)[missing][0])} of this batch was not augmented by the device '
            'augmentation (an algorithm added rows after it, as adversarial replay does): a cached teacher has no '
            'soft labels for it; use the live teacher (no cache) with that algorithm',
        )
    return views[order[pos]]


class TeacherCache:
    """A finished cache (local or ``s3://``), checked against the teachers, data and augmentation of a run.

    Reading checks every shard's size and sha256 against ``cache.json`` and holds the arrays in memory (a full
    CIFAR-100 cache with k = 10 is about 0.3 GB), moved to the run's device at :meth:`attach`, so a step's lookup
    is a gather there, with no copy through the host. :meth:`check_teachers` and :meth:`check_data` refuse, in one line,
    a cache of another teacher or another training split; :meth:`attach` (at ``INIT``) one of another augmentation.
    """

    def __init__(self, uri: str) -> None:
        require_cache(uri)
        self.uri = uri
        self.metadata = json.loads(storage.read_bytes(storage.join(uri, CACHE_FILE)))
        if self.metadata.get('format') != FORMAT:
            raise UsageError(f'{uri} is not a teacher cache of this version ({self.metadata.get("format")!r}, not '
                             f'{FORMAT!r}): {BUILD_CACHE}')
        parts: dict[str, list[np.ndarray]] = {'values': [], 'classes': [], 'rest': [], 'views': []}
        for shard in self.metadata['shards']:
            body = storage.read_bytes(storage.join(uri, shard['file']))
            if len(body) != shard['bytes'] or hashlib.sha256(body).hexdigest() != shard['sha256']:
                raise UsageError(
                    f'{storage.join(uri, shard["file"])} has {len(body)} bytes and another sha256 than {CACHE_FILE} '
                    f'records ({shard["bytes"]} bytes): the cache is damaged; delete it and {BUILD_CACHE}',
                )
            with np.load(io.BytesIO(body), allow_pickle=False) as archive:
                for key in parts:
                    parts[key].append(archive[key])
        self.values, self.classes, self.rest, views = (torch.from_numpy(np.concatenate(parts[key]))
                                                       for key in ('values', 'classes', 'rest', 'views'))
        self.num_classes = int(self.metadata['num_classes'])
        self.pad = int(self.metadata['augmentation']['pad'])
        self.all_views = views.shape[1] == num_views(self.pad)
        self.views = views  # uint8 view ids per example
        self.teachers = [TeacherEntry(**entry) for entry in self.metadata['teachers']]

    @property
    def flops(self) -> float:
        return float(self.metadata['compute']['flops_estimate'])

    def check_teachers(self, teachers: Sequence[tuple[PastRun, str]]) -> None:
        """The cache holds exactly these teachers, in this order (by the sha256 of their checkpoint files)."""
        wanted = [TeacherEntry(run.folder, name, checkpoint_sha256(run, name)) for run, name in teachers]
        if [e.sha256 for e in wanted] != [e.sha256 for e in self.teachers]:
            raise UsageError(
                f'teacher cache {self.uri} holds {", ".join(e.describe() for e in self.teachers)}, not '
                f'{", ".join(e.describe() for e in wanted)}: {BUILD_CACHE} for this teacher',
            )

    def check_data(self, dataset: MDSImageDataset | None, num_classes: int | None) -> None:
        """The run trains on the split the cache was built on (size and clean labels) and has its classes."""
        if num_classes is not None and num_classes != self.num_classes:
            raise UsageError(f'teacher cache {self.uri} has {self.num_classes} classes but this run has {num_classes}')
        if dataset is None:
            return
        data = self.metadata['data']
        if dataset.split_size != data['size'] or label_fingerprint(dataset.clean_labels()) != data['label_sha256']:
            raise UsageError(
                f'teacher cache {self.uri} was built on another training split ({data["name"]}, {data["size"]} '
                f'examples) than this run\'s ({dataset.root}, {dataset.split_size} examples, other labels): '
                f'{BUILD_CACHE} on this data',
            )

    def attach(self, state: State) -> DeviceAugment:
        """The run's device augmentation, checked against the cache's and set to draw among the cached views."""
        augment = next((a for a in state.algorithms if isinstance(a, DeviceAugment)), None)
        if augment is None or not augment.crop_flip or augment.pad != self.pad:
            what = 'no device augmentation' if augment is None else f'{augment!r}'
            raise UsageError(
                f'teacher cache {self.uri} holds the views of the device augmentation (pad {self.pad}, crop and flip) '
                f'but this run has {what}: set data.augment_on: device and data.augment: true',
            )
        mixers = [type(a).__name__ for a in state.algorithms if type(a).__name__ in INPUT_MIXERS]
        if mixers:
            raise UsageError(
                f'{mixers[0]} mixes the inputs the teacher sees, and teacher cache {self.uri} holds the outputs of '
                'unmixed views: use the live teacher (no cache) with it',
            )
        self.values, self.classes, self.rest, self.views = (
            state.device.tensor_to_device(t) for t in (self.values, self.classes, self.rest, self.views))
        if not self.all_views:
            augment.draw_from(self.views)
        return augment

    def logits(self, indices: Tensor, views: Tensor, teacher: int) -> Tensor:
        """Teacher ``teacher``'s logits (N, C) rebuilt for examples ``indices`` seen through ``views``, on the device
        the cache is on (the run's, from :meth:`attach` on). Each view must be one of its example's cached ones, as
        the device augmentation draws them once attached."""
        idx = indices.to(self.values.device).long()
        views = views.to(self.values.device).long()
        slot = views if self.all_views else (self.views[idx].long() == views[:, None]).long().argmax(dim=1)
        picked = (self.values[idx, slot, teacher], self.classes[idx, slot, teacher], self.rest[idx, slot, teacher])
        return expand(*picked, self.num_classes)
