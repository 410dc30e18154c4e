"""Score every training example with checkpoints of past runs, and write the scores artifact (``launch/score.py``).

* ``grand``, ``el2n``, ``loss`` (:data:`COMPUTED`): each named checkpoint of each run scores the training split in
  eval mode, without augmentation, on the labels the run trained on (its label noise); the scores are averaged over
  all of them (Data Diet averages over seeds). Under ``composer -n N`` each rank scores a contiguous share of the
  data and rank 0 gathers them.
* ``recorded_el2n``, ``forgetting`` (:data:`RECORDED`): what the run's ``record_scores`` callback kept in those
  checkpoints (the EL2N of that epoch's training forward passes; forgetting events so far): no forward pass at all.

Every checkpoint used is first checked against the run's recorded accuracy (:meth:`PastRun.check`): a near-chance
checkpoint scores every example as hard, so its scores order nothing.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from composer.utils import dist, model_eval_mode
from torch.utils.data import DataLoader, Subset
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from algorithms.curriculum.grand import el2n, per_example_grad_norms, per_example_loss
from algorithms.curriculum.record_scores import forgetting_scores
from algorithms.curriculum.scores import dataset_labels, label_fingerprint, write_scores
from algorithms.past_run import PastRun, load_checkpoint_state
from recipes.core.data import MDSImageDataset
from recipes.core.errors import UsageError

__all__ = ['COMPUTED', 'RECORDED', 'computed_scores', 'recorded_scores', 'score_runs', 'shared_training_labels']

COMPUTED = ('grand', 'el2n', 'loss')
RECORDED = ('recorded_el2n', 'forgetting')
RECORD_KEY = 'RecordScores'  # the record_scores callback's entry in a checkpoint's callbacks state


def shared_training_labels(runs: Sequence[PastRun]) -> dict[str, Any]:
    """The training data the runs share (:attr:`PastRun.training_labels`); other data would mix labels."""
    first = runs[0].training_labels
    for run in runs[1:]:
        if run.training_labels != first or run.num_classes != runs[0].num_classes:
            raise UsageError(
                f'past runs {runs[0].folder} and {run.folder} trained on different data ({first} vs '
                f'{run.training_labels}): score runs of the same data set and label noise together',
            )
    return first


def _forward_flops(model: torch.nn.Module, device: torch.device, shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of ``model`` on one image of ``shape`` (C, H, W)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *shape, device=device))
    return counter.get_total_flops()


def _score_batch(model: torch.nn.Module, method: str, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if method == 'grand':
        return per_example_grad_norms(model, inputs, targets)
    with torch.no_grad():
        logits = model(inputs)
    return el2n(logits, targets) if method == 'el2n' else per_example_loss(logits, targets)


def computed_scores(
    checkpoints: Sequence[tuple[PastRun, str]],
    method: str,
    dataset: MDSImageDataset,
    device: torch.device,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    strict: bool = False,
    progress: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], dict[str, Any]]:
    """This rank's share of the mean ``method`` scores over ``checkpoints`` (the examples' indices in the whole split
    and their values), and the compute it cost (forward and backward passes, FLOPs over all ranks)."""
    share = np.array_split(np.arange(len(dataset)), dist.get_world_size())[dist.get_global_rank()]
    loader = DataLoader(Subset(dataset, share.tolist()), batch_size=batch_size, num_workers=num_workers)
    total = torch.zeros(len(share), dtype=torch.float64)
    bar = tqdm(total=len(checkpoints) * len(share), desc=f'{method} scores', unit='img',
               disable=not progress or dist.get_global_rank() != 0)
    flops = 0
    for run, name in checkpoints:
        model = run.load(name, device=device, strict=strict)
        if method == 'grand':
            model.requires_grad_(True)
        flops += _forward_flops(model, device, tuple(dataset[0][0].shape)) * len(share) * (3 if method == 'grand' else 1)
        offset = 0
        with model_eval_mode(model):  # BatchNorm uses running statistics: a score does not depend on its batch
            for inputs, targets, _ in loader:
                values = _score_batch(model, method, inputs.to(device), targets.to(device))
                total[offset : offset + len(values)] += values.double().cpu()
                offset += len(values)
                bar.update(len(values))
    bar.close()
    compute = {
        'forward_passes': len(checkpoints) * len(dataset),
        'backward_passes': len(checkpoints) * len(dataset) if method == 'grand' else 0,
        'flops_estimate': flops * dist.get_world_size(),
    }
    indices = share if dataset.indices is None else dataset.indices[share]  # positions in the whole split
    return (indices, (total / len(checkpoints)).numpy()), compute


def recorded_scores(
    checkpoints: Sequence[tuple[PastRun, str]], method: str, size: int, *, strict: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Scores from the ``record_scores`` state in ``checkpoints``, averaged; unrecorded examples get the mean."""
    columns = []
    for run, name in checkpoints:
        run.check(name, strict=strict)
        uri = run.resolve(name)
        record = load_checkpoint_state(uri).get('callbacks', {}).get(RECORD_KEY, {}).get('record')
        if record is None:
            raise UsageError(
                f'{uri} holds no recorded scores: train the past run with callbacks.record_scores, '
                'or use --method el2n|grand|loss',
            )
        if len(record['el2n']) != size:
            raise UsageError(f'{uri} recorded {len(record["el2n"])} examples but the training split has {size}')
        column = record['el2n'].numpy() if method == 'recorded_el2n' else forgetting_scores(record)
        columns.append(column.astype(np.float64))
    stacked = np.stack(columns)
    seen = np.isfinite(stacked)
    unrecorded = int((~seen.any(axis=0)).sum())
    if unrecorded == size:
        names = [name for _, name in checkpoints]
        raise UsageError(f'checkpoints {names} recorded no example: name checkpoints of finished epochs')
    sums = np.where(seen, stacked, 0.0).sum(axis=0)
    counts = seen.sum(axis=0)
    scores = np.divide(sums, counts, out=np.full(size, np.nan), where=counts > 0)
    scores[counts == 0] = np.nanmean(scores)
    return scores, {'forward_passes': 0, 'backward_passes': 0, 'flops_estimate': 0, 'unrecorded': unrecorded}


def _trained_on(run: PastRun) -> dict[str, Any]:
    """The share of the split ``run`` trained on: its ``subset_fraction`` and ``classes`` (1 and None: all of it)."""
    data = run.config['data']
    return {'subset_fraction': float(data.get('subset_fraction') or 1.0), 'classes': data.get('classes')}


def score_runs(
    runs: Sequence[PastRun],
    checkpoints: Sequence[str],
    method: str,
    out: str,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    strict: bool = False,
) -> np.ndarray | None:
    """Score the runs' shared training split with each of ``checkpoints`` of each run and write artifact ``out``.

    Every rank calls this; rank 0 writes the artifact and returns the scores (other ranks return None).
    """
    if method not in (*COMPUTED, *RECORDED):
        raise UsageError(f'--method {method} is not a scoring method: choose one of {", ".join((*COMPUTED, *RECORDED))}')
    data = shared_training_labels(runs)
    dataset = runs[0].training_data()
    device = torch.device(f'cuda:{dist.get_local_rank()}' if torch.cuda.is_available() else 'cpu')
    pairs = [(run, name) for run in runs for name in checkpoints]
    for run, name in pairs:  # every checkpoint's quality is known (or refused) before any scoring starts
        run.check(name, strict=strict)
    start = time.time()
    if method in COMPUTED:
        part, compute = computed_scores(pairs, method, dataset, device, batch_size=batch_size,
                                        num_workers=num_workers, strict=strict)
        scores = np.full(dataset.split_size, np.nan)  # the held-out validation examples stay NaN
        for indices, values in dist.all_gather_object(part):
            scores[indices] = values
    elif dist.get_global_rank() == 0:
        scores, compute = recorded_scores(pairs, method, dataset.split_size, strict=strict)
        scores[dataset.held_out] = np.nan
    seconds = time.time() - start
    if dist.get_global_rank() != 0:
        return None
    metadata = {
        'method': method,
        'runs': [run.folder for run in runs],
        'checkpoints': list(checkpoints),
        'dataset': {
            'name': data['name'],
            'split': 'train',
            'size': dataset.split_size,
            'label_sha256': label_fingerprint(dataset_labels(dataset)),
            'label_noise': data['label_noise'],
            'label_noise_seed': data['label_noise_seed'],
            # Every example of the split is scored, also those a past run trained without (data.subset_fraction,
            # data.classes): a score needs only its checkpoints' forward (and backward) passes.
            'covers': 'the whole training split' + (' but its held-out validation examples (NaN)' if data['holdout'] else ''),
            'holdout': {'size': int(data['holdout']), 'seed': int(data['holdout_seed'])},
            'past_runs_trained_on': {run.folder: _trained_on(run) for run in runs},
        },
        'seconds': round(seconds, 3),
        'compute': {**compute, 'device': str(device), 'ranks': dist.get_world_size()},
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    }
    write_scores(out, scores.astype(np.float32), metadata)
    return scores
