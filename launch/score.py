"""Score every training example with checkpoints of past runs; write a scores artifact (``.npy`` + ``.json``).

``[composer -n N] python launch/score.py --run RUN --checkpoints ep2,ep3 [--runs RUN2 ...]
--method grand|el2n|loss|recorded_el2n|forgetting --out PATH_OR_S3_URI [--debug]``

* ``grand``, ``el2n``, ``loss``: each named checkpoint of each run scores the training split in eval mode, without
  augmentation, on the labels the run trained on (its ``data.label_noise`` and ``label_noise_seed``); the scores are
  averaged over all of them (Data Diet averages over seeds). Under ``composer -n N`` each rank scores a contiguous
  share of the data and rank 0 gathers and writes the artifact.
* ``recorded_el2n``, ``forgetting``: what the run's ``record_scores`` callback kept in those checkpoints (the EL2N of
  that epoch's training forward passes; forgetting events so far): no forward pass at all.
"""

from __future__ import annotations

import argparse
import datetime
import time
from typing import Any

from recipes.cli import ArgumentParser, run_cli

COMPUTED = ('grand', 'el2n', 'loss')
RECORDED = ('recorded_el2n', 'forgetting')
RECORD_KEY = 'RecordScores'


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', required=True, help='past run folder or s3:// URI')
    parser.add_argument('--runs', nargs='*', default=[], help='more past runs of the same data (other seeds)')
    parser.add_argument('--checkpoints', required=True, help='comma-separated checkpoint names, e.g. ep2,ep3')
    parser.add_argument('--method', required=True, choices=[*COMPUTED, *RECORDED])
    parser.add_argument('--out', required=True, help='artifact path or URI, e.g. runs/digits-scores/el2n.npy')
    parser.add_argument('--batch_size', type=int, default=256, help='examples per forward pass (per rank)')
    parser.add_argument('--num_workers', type=int, default=0, help='DataLoader worker processes per rank')
    return parser.parse_args(argv)


def _data_config(runs: list[Any]) -> dict[str, Any]:
    """The training data the runs share: the same set, classes and label noise, or the scores would mix labels."""
    from recipes.core.errors import UsageError

    keys = ('name', 'remote', 'label_noise', 'label_noise_seed')
    first = {k: runs[0].config['data'].get(k) for k in keys}
    for run in runs[1:]:
        other = {k: run.config['data'].get(k) for k in keys}
        if other != first or run.num_classes != runs[0].num_classes:
            raise UsageError(
                f'past runs {runs[0].folder} and {run.folder} trained on different data ({first} vs {other}): '
                'score runs of the same data set and label noise together',
            )
    return first


def _forward_flops(model: Any, device: Any) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 32, 32, device=device))
    return counter.get_total_flops()


def _computed(args: argparse.Namespace, runs: list[Any], dataset: Any, device: Any) -> tuple[Any, dict[str, Any]]:
    """This rank's share of the scores (its indices and values) and the compute it spent."""
    import numpy as np
    import torch
    from composer.utils import dist
    from torch.utils.data import DataLoader, Subset
    from tqdm import tqdm

    from algorithms.curriculum.grand import el2n, per_example_grad_norms, per_example_loss

    share = np.array_split(np.arange(len(dataset)), dist.get_world_size())[dist.get_global_rank()]
    loader = DataLoader(Subset(dataset, share.tolist()), batch_size=args.batch_size, num_workers=args.num_workers)
    names = [(run, name) for run in runs for name in args.checkpoints]
    total = torch.zeros(len(share), dtype=torch.float64)
    bar = tqdm(total=len(names) * len(share), desc=f'{args.method} scores', unit='img', disable=dist.get_global_rank() != 0)
    flops = 0
    for run, name in names:
        model = run.load(name, device=device)
        if args.method == 'grand':
            model.requires_grad_(True)  # eval mode stays: BatchNorm uses running statistics
        flops += _forward_flops(model, device) * len(share) * (3 if args.method == 'grand' else 1)
        offset = 0
        for inputs, targets, _ in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            if args.method == 'grand':
                values = per_example_grad_norms(model, inputs, targets)
            else:
                with torch.no_grad():
                    logits = model(inputs)
                values = el2n(logits, targets) if args.method == 'el2n' else per_example_loss(logits, targets)
            total[offset : offset + len(values)] += values.double().cpu()
            offset += len(values)
            bar.update(len(values))
    bar.close()
    compute = {
        'forward_passes': len(names) * len(dataset),
        'backward_passes': len(names) * len(dataset) if args.method == 'grand' else 0,
        'flops_estimate': flops * dist.get_world_size(),
    }
    return (share, (total / len(names)).numpy()), compute


def _recorded(args: argparse.Namespace, runs: list[Any], size: int) -> tuple[Any, dict[str, Any]]:
    """Scores from the ``record_scores`` state in the checkpoints, averaged; unrecorded examples get the mean."""
    import numpy as np
    from tqdm import tqdm

    from algorithms.curriculum.record_scores import forgetting_scores
    from algorithms.past_run import load_checkpoint_state
    from recipes.core.errors import UsageError

    columns = []
    names = [(run, name) for run in runs for name in args.checkpoints]
    for run, name in tqdm(names, desc='reading records', unit='ckpt'):
        uri = run.resolve(name)
        record = load_checkpoint_state(uri).get('callbacks', {}).get(RECORD_KEY, {}).get('record')
        if record is None:
            raise UsageError(
                f'{uri} holds no recorded scores: train the past run with callbacks.record_scores, '
                'or use --method el2n|grand|loss',
            )
        if len(record['el2n']) != size:
            raise UsageError(f'{uri} recorded {len(record["el2n"])} examples but the training split has {size}')
        column = record['el2n'].numpy() if args.method == 'recorded_el2n' else forgetting_scores(record)
        columns.append(column.astype(np.float64))
    stacked = np.stack(columns)
    seen = np.isfinite(stacked)
    unrecorded = int((~seen.any(axis=0)).sum())
    if unrecorded == size:
        raise UsageError(f'checkpoints {args.checkpoints} recorded no example: name checkpoints of finished epochs')
    sums = np.where(seen, stacked, 0.0).sum(axis=0)
    counts = seen.sum(axis=0)
    scores = np.divide(sums, counts, out=np.full(size, np.nan), where=counts > 0)
    scores[counts == 0] = np.nanmean(scores)
    return scores, {'forward_passes': 0, 'backward_passes': 0, 'flops_estimate': 0, 'unrecorded': unrecorded}


def main(argv: list[str]) -> int:
    from recipes.arguments import check_arguments

    args = _parse(argv)
    check_arguments('score', args)

    import numpy as np
    import torch
    from composer.utils import dist

    from algorithms.curriculum.scores import dataset_labels, label_fingerprint, write_scores
    from algorithms.past_run import PastRun
    from recipes.core import storage
    from recipes.core.data import MDSImageDataset, resolve_root
    from recipes.core.errors import UsageError

    args.checkpoints = [c.strip() for c in args.checkpoints.split(',') if c.strip()]
    if not args.checkpoints:
        raise UsageError('--checkpoints names no checkpoint: pass e.g. --checkpoints ep2,ep3')
    if args.batch_size <= 0:
        raise UsageError(f'--batch_size={args.batch_size} must be positive')
    storage.check_reachable(args.out)
    if dist.get_world_size() > 1:
        dist.initialize_dist('gpu' if torch.cuda.is_available() else 'cpu')
    device = torch.device(f'cuda:{dist.get_local_rank()}' if torch.cuda.is_available() else 'cpu')

    runs = [PastRun(folder) for folder in [args.run, *args.runs]]
    data = _data_config(runs)
    dataset = MDSImageDataset(
        resolve_root(data['name'], data['remote']), 'train', runs[0].num_classes,
        label_noise=data['label_noise'] or 0.0, label_noise_seed=data['label_noise_seed'] or 0,
    )
    start = time.time()
    if args.method in COMPUTED:
        part, compute = _computed(args, runs, dataset, device)
        parts = dist.all_gather_object(part)
        scores = np.empty(len(dataset), dtype=np.float64)
        for indices, values in parts:
            scores[indices] = values
    else:
        scores, compute = _recorded(args, runs, len(dataset)) if dist.get_global_rank() == 0 else (None, {})
    seconds = time.time() - start
    if dist.get_global_rank() == 0:
        labels = dataset_labels(dataset)
        metadata = {
            'method': args.method,
            'runs': [run.folder for run in runs],
            'checkpoints': args.checkpoints,
            'dataset': {
                'name': data['name'],
                'split': 'train',
                'size': len(dataset),
                'label_sha256': label_fingerprint(labels),
                'label_noise': data['label_noise'] or 0.0,
                'label_noise_seed': data['label_noise_seed'] or 0,
            },
            'seconds': round(seconds, 3),
            'compute': {**compute, 'device': str(device), 'ranks': dist.get_world_size()},
            'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        }
        write_scores(args.out, scores.astype(np.float32), metadata)
        print(f'wrote {len(scores)} {args.method} scores to {args.out} in {seconds:.1f} s', flush=True)
    if dist.get_world_size() > 1:
        dist.barrier()
    return 0


if __name__ == '__main__':
    run_cli(main)
