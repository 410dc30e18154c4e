"""Build a bank of adversarial examples from a past run's checkpoints (see algorithms/adv_bank.py).

``[composer -n N] python launch/build_adv_bank.py --run RUN --checkpoints ep40,ep80|auto --eps 8/255 --steps 7
--step_size 2/255 [--fraction 1.0] [--seed 0] --out DIR_OR_S3_URI [--strict] [--debug]``

Each checkpoint used is printed with its recorded test accuracy and epoch, with a warning when it is near chance or
far below the run's best; ``--strict`` refuses such a checkpoint (and one with no recorded accuracy) before any
attack. ``--checkpoints auto`` attacks the earliest usable checkpoint and the best-recorded one.
"""

from __future__ import annotations

import argparse
from typing import Any

from recipes.cli import ArgumentParser, run_cli


def auto_checkpoints(past: Any) -> list[str]:
    """The earliest usable checkpoint of ``past`` and its best-recorded one: two points of its trajectory."""
    from recipes.core.errors import UsageError

    usable = past.usable_checkpoints()
    if not usable:
        raise UsageError(
            f'--checkpoints auto: past run {past.folder} has no checkpoint with a usable recorded accuracy: '
            f'look at it with python launch/inspect_run.py {past.folder} and name checkpoints',
        )
    best = max(usable, key=lambda q: q.accuracy)
    return list(dict.fromkeys([usable[0].checkpoint, best.checkpoint]))


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', required=True, help='past run folder or s3:// URI (holds config.yaml and checkpoints)')
    parser.add_argument('--checkpoints', required=True,
                        help='comma-separated checkpoint names, e.g. ep40,ep80 or latest; auto: the earliest usable '
                        'and the best-recorded')
    parser.add_argument('--out', required=True, help='bank folder or s3:// URI (must not hold a bank yet)')
    parser.add_argument('--eps', default='8/255', help='L-inf radius in pixel units, e.g. 8/255 (default)')
    parser.add_argument('--step_size', default='2/255', help='PGD step, at most eps (default 2/255)')
    parser.add_argument('--steps', type=int, default=7, help='PGD steps (default 7; 1 with step_size=eps is FGSM)')
    parser.add_argument('--fraction', type=float, default=1.0, help='share of the training split to attack (seeded)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the subset and of the random starts')
    parser.add_argument('--batch_size', type=int, default=256, help='images attacked at once per rank')
    parser.add_argument('--num_workers', type=int, default=2, help='DataLoader workers per rank')
    parser.add_argument('--strict', action='store_true',
                        help='refuse a checkpoint near chance, far below the run\'s best, or with no recorded accuracy')
    args = parser.parse_args(argv)
    from recipes.arguments import check_arguments

    check_arguments('build_adv_bank', args)

    from composer.utils import dist

    from algorithms.adversarial_replay.bank import build_bank
    from algorithms.adversarial_replay.pgd import parse_pixel_value
    from algorithms.past_run import PastRun

    eps = parse_pixel_value(args.eps, '--eps')
    step_size = parse_pixel_value(args.step_size, '--step_size')
    past = PastRun(args.run)
    if args.checkpoints.strip() == 'auto':
        checkpoints = auto_checkpoints(past)
    else:
        checkpoints = [c.strip() for c in args.checkpoints.split(',') if c.strip()]
    for name in checkpoints:  # each checkpoint's quality is printed (or refused) before any attack
        past.check(name, strict=args.strict)
    if dist.get_world_size() > 1:
        import torch

        dist.initialize_dist('gpu' if torch.cuda.is_available() else 'cpu')
    build_bank(
        args.run, checkpoints, args.out, eps, step_size, args.steps,
        fraction=args.fraction, seed=args.seed, batch_size=args.batch_size, num_workers=args.num_workers,
    )
    if dist.get_global_rank() == 0:
        print(f'adversarial bank from {",".join(checkpoints)} written to {args.out}', flush=True)
    return 0


if __name__ == '__main__':
    run_cli(main)
