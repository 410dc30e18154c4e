"""Build a bank of adversarial examples from a past run's checkpoints (see algorithms/adv_bank.py).

``[composer -n N] python launch/build_adv_bank.py --run RUN --checkpoints ep40,ep80 --eps 8/255 --steps 7
--step_size 2/255 [--fraction 1.0] [--seed 0] --out DIR_OR_S3_URI [--debug]``
"""

from __future__ import annotations

import argparse

from recipes.cli import ArgumentParser, run_cli


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', required=True, help='past run folder or s3:// URI (holds config.yaml and checkpoints)')
    parser.add_argument('--checkpoints', required=True, help='comma-separated checkpoint names, e.g. ep40,ep80 or latest')
    parser.add_argument('--out', required=True, help='bank folder or s3:// URI (must not hold a bank yet)')
    parser.add_argument('--eps', default='8/255', help='L-inf radius in pixel units, e.g. 8/255 (default)')
    parser.add_argument('--step_size', default='2/255', help='PGD step, at most eps (default 2/255)')
    parser.add_argument('--steps', type=int, default=7, help='PGD steps (default 7; 1 with step_size=eps is FGSM)')
    parser.add_argument('--fraction', type=float, default=1.0, help='share of the training split to attack (seeded)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the subset and of the random starts')
    parser.add_argument('--batch_size', type=int, default=256, help='images attacked at once per rank')
    parser.add_argument('--num_workers', type=int, default=2, help='DataLoader workers per rank')
    args = parser.parse_args(argv)
    from recipes.arguments import check_arguments

    check_arguments('build_adv_bank', args)

    from composer.utils import dist

    from algorithms.adversarial_replay.bank import build_bank
    from algorithms.adversarial_replay.pgd import parse_pixel_value

    eps = parse_pixel_value(args.eps, '--eps')
    step_size = parse_pixel_value(args.step_size, '--step_size')
    if dist.get_world_size() > 1:
        import torch

        dist.initialize_dist('gpu' if torch.cuda.is_available() else 'cpu')
    build_bank(
        args.run, [c.strip() for c in args.checkpoints.split(',') if c.strip()], args.out, eps, step_size, args.steps,
        fraction=args.fraction, seed=args.seed, batch_size=args.batch_size, num_workers=args.num_workers,
    )
    if dist.get_global_rank() == 0:
        print(f'adversarial bank written to {args.out}', flush=True)
    return 0


if __name__ == '__main__':
    run_cli(main)
