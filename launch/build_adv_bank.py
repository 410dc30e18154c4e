"""Build a bank of adversarial examples from a past run's checkpoints (see algorithms/adversarial_replay/bank.py).

``[composer -n N] python launch/build_adv_bank.py --run RUN --checkpoints ep40,ep80|auto --eps 8/255 --steps 7
--step_size 2/255 [--fraction 1.0] [--seed 0] --out DIR_OR_S3_URI [--strict] [--debug]``

Each checkpoint used is printed with its recorded test accuracy and epoch, with a warning when it is near chance or
far below the run's best; ``--strict`` refuses such a checkpoint (and one with no recorded accuracy) before any
attack. ``--checkpoints auto`` attacks the earliest usable checkpoint and the best-recorded one
(``PastRun.pick_checkpoints('earliest_and_best')``).
"""

from __future__ import annotations

import argparse

from recipes.cli import ArgumentParser, run_cli
from recipes.core.rules import SEED, CheckpointList, NoBank, Number, PastRunFolder, PixelValue, arg_type, named


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', required=True, type=arg_type(PastRunFolder()),
                        help='past run folder or s3:// URI (holds config.yaml and checkpoints)')
    parser.add_argument('--checkpoints', required=True, type=arg_type(CheckpointList(policy='earliest_and_best')),
                        help='comma-separated checkpoint names, e.g. ep40,ep80 or latest; auto: the earliest usable '
                        'and the best-recorded')
    parser.add_argument('--out', required=True, type=arg_type(NoBank()),
                        help='bank folder or s3:// URI (must not hold a bank yet)')
    parser.add_argument('--eps', type=arg_type(PixelValue()), default='8/255',
                        help='L-inf radius in pixel units, e.g. 8/255 (default)')
    parser.add_argument('--step_size', type=arg_type(PixelValue()), default='2/255',
                        help='PGD step, at most eps (default 2/255)')
    parser.add_argument('--steps', type=arg_type(Number(1, 10_000, integer=True)), default=7,
                        help='PGD steps (default 7; 1 with step_size=eps is FGSM)')
    parser.add_argument('--fraction', type=arg_type(Number(0, 1, low_open=True)), default=1.0,
                        help='share of the training split to attack (seeded)')
    parser.add_argument('--seed', type=arg_type(SEED), default=0, help='seed of the subset and of the random starts')
    parser.add_argument('--batch_size', type=arg_type(Number(1, 1_000_000, integer=True)), default=256,
                        help='images attacked at once per rank')
    parser.add_argument('--num_workers', type=arg_type(Number(0, 256, integer=True)), default=2,
                        help='DataLoader workers per rank')
    parser.add_argument('--strict', action='store_true',
                        help='refuse a checkpoint near chance, far below the run\'s best, or with no recorded accuracy')
    args = parser.parse_args(argv)

    from algorithms.adversarial_replay.pgd import check_attack

    check_attack(args.eps, args.step_size, args.steps)  # a step larger than eps: the two arguments together

    from composer.utils import dist

    from algorithms.adversarial_replay.bank import build_bank
    from algorithms.past_run import PastRun

    past = PastRun(args.run)
    checkpoints = args.checkpoints.pick(past)
    for name in checkpoints:  # each one the run holds, its quality printed (or refused: --strict) before any attack
        named('--checkpoints', past.resolve, name)
        past.check(name, strict=args.strict)
    if dist.get_world_size() > 1:
        import torch

        dist.initialize_dist('gpu' if torch.cuda.is_available() else 'cpu')
    build_bank(
        args.run, checkpoints, args.out, args.eps, args.step_size, args.steps,
        fraction=args.fraction, seed=args.seed, batch_size=args.batch_size, num_workers=args.num_workers,
    )
    if dist.get_global_rank() == 0:
        print(f'adversarial bank from {",".join(checkpoints)} written to {args.out}', flush=True)
    return 0


if __name__ == '__main__':
    run_cli(main)
