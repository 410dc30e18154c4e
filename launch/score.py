"""Score every training example with checkpoints of past runs; write a scores artifact (``.npy`` + ``.json``).

``[composer -n N] python launch/score.py --run RUN --checkpoints ep2,ep3|auto [--runs RUN2 ...]
--method grand|el2n|loss|recorded_el2n|forgetting --out PATH_OR_S3_URI [--strict] [--debug]``

See ``algorithms/curriculum/scoring.py`` for what each method computes. Each checkpoint used is printed with its
recorded test accuracy and epoch, with a warning when it is near chance or far below the run's best; ``--strict``
refuses such a checkpoint (and one with no recorded accuracy). ``--checkpoints auto`` takes the two earliest
checkpoints of ``--run`` whose recorded accuracy is usable (``PastRun.pick_checkpoints('earliest')``).
"""

from __future__ import annotations

import argparse
import itertools

from recipes.cli import ArgumentParser, run_cli
from recipes.core.rules import CheckpointList, Location, Number, PastRunFolder, arg_type, named


def _parse(argv: list[str]) -> argparse.Namespace:
    from algorithms.curriculum.scoring import COMPUTED, RECORDED

    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', required=True, type=arg_type(PastRunFolder()), help='past run folder or s3:// URI')
    parser.add_argument('--runs', nargs='*', default=[], type=arg_type(PastRunFolder()),
                        help='more past runs of the same data (other seeds)')
    parser.add_argument('--checkpoints', required=True, type=arg_type(CheckpointList(policy='earliest')),
                        help='comma-separated checkpoint names, e.g. ep2,ep3, or auto (the 2 earliest usable ones)')
    parser.add_argument('--method', required=True, choices=(*COMPUTED, *RECORDED))
    parser.add_argument('--out', required=True, type=arg_type(Location()),
                        help='artifact path or URI, e.g. runs/digits-scores/el2n.npy')
    parser.add_argument('--batch_size', type=arg_type(Number(1, 1_000_000, integer=True)), default=256,
                        help='examples per forward pass (per rank)')
    parser.add_argument('--num_workers', type=arg_type(Number(0, 256, integer=True)), default=0,
                        help='DataLoader worker processes per rank')
    parser.add_argument('--strict', action='store_true',
                        help='refuse a checkpoint near chance, far below the run\'s best, or with no recorded accuracy')
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)

    import torch
    from composer.utils import dist

    from algorithms.curriculum.scoring import score_runs
    from algorithms.past_run import PastRun
    from recipes.core import storage

    runs = [PastRun(folder) for folder in [args.run, *args.runs]]
    checkpoints = args.checkpoints.pick(runs[0])
    for run, name in itertools.product(runs, checkpoints):  # each run holds each checkpoint, before anything is read
        named('--checkpoints', run.resolve, name)
    storage.check_reachable(args.out)
    if dist.get_world_size() > 1:
        dist.initialize_dist('gpu' if torch.cuda.is_available() else 'cpu')
    scores = score_runs(runs, checkpoints, args.method, args.out, batch_size=args.batch_size,
                        num_workers=args.num_workers, strict=args.strict)
    if scores is not None:
        print(f'wrote {len(scores)} {args.method} scores from {",".join(checkpoints)} to {args.out}', flush=True)
    if dist.get_world_size() > 1:
        dist.barrier()
    return 0


if __name__ == '__main__':
    run_cli(main)
