"""The scores artifact: one float32 per training example, indexed by dataset index, with its metadata beside it.

An artifact named ``PATH.npy`` (local or ``s3://``) is two files:

* ``PATH.npy``: the scores, a 1-D float32 array;
* ``PATH.json``: what they are (``method``, ``runs``, ``checkpoints``), which data they belong to
  (``dataset``: ``name``, ``size``, ``label_sha256``) and what they cost (``seconds``, ``compute``).

The ``.json`` is written last and readers require it, so an interrupted write is never read; each file is written
whole (:func:`recipes.core.storage.write_bytes`). The label fingerprint ties the scores to the exact labels they were
computed against, label noise included: scores of another data set, split or noise draw are refused.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import numpy as np
from tqdm import tqdm

from algorithms.past_run import past_run_cost
from recipes.core import storage
from recipes.core.artifacts import MAKE_SCORES, require_scores
from recipes.core.artifacts import scores_paths as artifact_paths
from recipes.core.data import MDSImageDataset
from recipes.core.errors import UsageError

__all__ = [
    'MAKE_SCORES',
    'artifact_paths',
    'array_sha256',
    'check_labels',
    'dataset_labels',
    'label_fingerprint',
    'read_scores',
    'scores_cost',
    'write_scores',
]

def array_sha256(array: np.ndarray) -> str:
    """sha256 of an array's values as laid out in its dtype, in index order."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def label_fingerprint(labels: np.ndarray) -> str:
    """sha256 of the labels as little-endian int64, in dataset order."""
    return array_sha256(np.asarray(labels, dtype='<i8'))


def dataset_labels(dataset: MDSImageDataset, progress: bool = False) -> np.ndarray:
    """The label of every example of ``dataset``'s whole split (label noise applied; a subset's non-members too), as
    int64 in index order: scores, weights and banks are indexed by the whole split."""
    n = dataset.split_size
    items = tqdm(range(n), desc='reading labels', disable=not progress, unit='label')
    return np.fromiter((dataset.label(dataset.clean_label(i), i) for i in items), dtype=np.int64, count=n)


def write_scores(uri: str, scores: np.ndarray, metadata: dict[str, Any]) -> None:
    """Write ``scores`` (1-D float32) and ``metadata`` as the artifact ``uri``; the ``.json`` goes last."""
    if scores.dtype != np.float32 or scores.ndim != 1:
        raise ValueError(f'scores must be a 1-D float32 array, got {scores.dtype} with shape {scores.shape}')
    npy, meta = artifact_paths(uri)
    buffer = io.BytesIO()
    np.save(buffer, scores, allow_pickle=False)
    storage.write_bytes(npy, buffer.getvalue())
    storage.write_bytes(meta, json.dumps(metadata, indent=1, sort_keys=True).encode())


def _load_array(npy: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(storage.read_bytes(npy)), allow_pickle=False)
    except ValueError as e:
        raise UsageError(f'{npy} is not a .npy array ({e}): {MAKE_SCORES}') from e


def read_scores(uri: str, labels: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The scores and metadata of artifact ``uri``, checked; with ``labels``, checked against those labels too.

    Every problem is a :class:`UsageError` naming the file: no artifact (or a half-written one, without its
    ``.json``), not a 1-D float32 array, NaN or infinite values (but NaN at exactly the examples the past run held
    out, ``dataset.holdout`` in the metadata), and (see :func:`check_labels`) a length or a
    label fingerprint other than the data set's.
    """
    npy, meta = artifact_paths(uri)
    require_scores(uri)
    try:
        metadata = json.loads(storage.read_bytes(meta))
    except json.JSONDecodeError as e:
        raise UsageError(f'{meta} is not JSON ({e.msg}): {MAKE_SCORES}') from e
    scores = _load_array(npy)
    if scores.dtype != np.float32 or scores.ndim != 1:
        raise UsageError(
            f'{npy} holds {scores.dtype} with shape {scores.shape}, not a 1-D float32 array: {MAKE_SCORES}',
        )
    held_out = int(((metadata.get('dataset') or {}).get('holdout') or {}).get('size') or 0) if isinstance(metadata, dict) else 0
    bad = np.flatnonzero(~np.isfinite(scores))
    if held_out and len(bad) == held_out and not np.isinf(scores[bad]).any():
        bad = bad[:0]  # the past run's held-out validation examples: NaN, never drawn
    if len(bad):
        raise UsageError(
            f'{npy} holds {len(bad)} NaN or infinite score(s) (first at index {bad[0]}): '
            'score again from checkpoints that trained without diverging',
        )
    if not isinstance(metadata, dict) or not isinstance(metadata.get('dataset', {}), dict):
        raise UsageError(f'{meta} is not the metadata of a scores artifact: {MAKE_SCORES}')
    recorded = metadata.get('dataset', {}).get('size')
    if recorded is not None and recorded != len(scores):
        raise UsageError(
            f'{meta} says {recorded} examples but {npy} holds {len(scores)}: the two files are of different '
            f'artifacts; {MAKE_SCORES}',
        )
    if labels is not None:
        check_labels(uri, scores, metadata, labels)
    return scores, metadata


def check_labels(uri: str, scores: np.ndarray, metadata: dict[str, Any], labels: np.ndarray) -> None:
    """Refuse scores of another data set: their length and label fingerprint must match ``labels``."""
    npy, _ = artifact_paths(uri)
    if len(scores) != len(labels):
        raise UsageError(
            f'{npy} scores {len(scores)} examples but the training data has {len(labels)}: '
            'score the data set this run trains on',
        )
    expected = label_fingerprint(labels)
    found = metadata.get('dataset', {}).get('label_sha256')
    if found != expected:
        raise UsageError(
            f'{npy} was computed on other labels (label_sha256 {str(found)[:12]}..., this run has {expected[:12]}...): '
            'score with a past run of the same data set and the same data.label_noise and label_noise_seed',
        )


def scores_cost(uri: str, metadata: dict[str, Any]) -> dict[str, float]:
    """The FLOPs, by source, a run consuming scores artifact ``uri`` reuses: what computing the scores cost (its
    metadata's estimate), and what each past run had spent at the newest checkpoint they came from (the ledger's
    sources, :func:`algorithms.past_run.past_run_cost`)."""
    reused = {f'scores {uri}': float(metadata.get('compute', {}).get('flops_estimate', 0.0))}
    for run in metadata.get('runs', []):
        reused.update(past_run_cost(run, metadata.get('checkpoints', [])))
    return reused
