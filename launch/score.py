"""Score every training example with checkpoints of past runs; write a scores artifact (``.npy`` + ``.json``).

``[composer -n N] python launch/score.py --run RUN --checkpoints ep2,ep3|auto [--runs RUN2 ...]
--method grand|el2n|loss|recorded_el2n|forgetting --out PATH_OR_S3_URI [--strict] [--debug]``

See ``algorithms/curriculum/scoring.py`` for what each method computes. Each checkpoint used is printed with its
recorded test accuracy and epoch, with a warning when it is near chance or far below the run's best; ``--strict``
refuses such a checkpoint (and one with no recorded accuracy). ``--checkpoints auto`` takes the two earliest
checkpoints of ``--run`` whose recorded accuracy is usable.
"""

from __future__ import annotations

import argparse

from recipes.cli import ArgumentParser, run_cli

METHODS = ('grand', 'el2n', 'loss', 'recorded_el2n', 'forgetting')


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', required=True, help='past run folder or s3:// URI')
    parser.add_argument('--runs', nargs='*', default=[], help='more past runs of the same data (other seeds)')
    parser.add_argument('--checkpoints', required=True,
                        help='comma-separated checkpoint names, e.g. ep2,ep3, or auto (the 2 earliest usable ones)')
    parser.add_argument('--method', required=True, choices=METHODS)
    parser.add_argument('--out', required=True, help='artifact path or URI, e.g. runs/digits-scores/el2n.npy')
    parser.add_argument('--batch_size', type=int, default=256, help='examples per forward pass (per rank)')
    parser.add_argument('--num_workers', type=int, default=0, help='DataLoader worker processes per rank')
    parser.add_argument('--strict', action='store_true',
                        help='refuse a checkpoint near chance, far below the run\'s best, or with no recorded accuracy')
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    from recipes.arguments import check_arguments

    args = _parse(argv)
    check_arguments('score', args)

    import torch
    from composer.utils import dist

    from algorithms.curriculum.scoring import auto_checkpoints, score_runs
    from algorithms.past_run import PastRun
    from recipes.core import storage

    storage.check_reachable(args.out)
    runs = [PastRun(folder) for folder in [args.run, *args.runs]]
    if args.checkpoints.strip() == 'auto':
        checkpoints = auto_checkpoints(runs[0])
    else:  # check_arguments made sure the list names at least one
        checkpoints = [c.strip() for c in args.checkpoints.split(',') if c.strip()]
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
