"""Cache a past run's teacher outputs per training example and view (see algorithms/distillation/cache.py).

``python launch/cache_teacher.py --run RUN --checkpoint CKPT | --checkpoints A,B,... --top_k K [--views V]
[--seed S] --out DIR_OR_S3_URI [--strict] [--debug]``

Every example of the run's training split is seen through each of its views of the device augmentation (the pad-4
crops and flips: 162 per image, or a seeded subset of ``--views`` per example); each teacher's top-k logits and the
log-sum-exp of the others are stored. ``--checkpoint`` caches the teacher of ``past_run_distillation``,
``--checkpoints`` the teachers of ``checkpoint_mixup_teacher`` in the order it lists them. Students read it with
``algorithms.past_run_distillation.cache: DIR`` (or the mixup teacher's ``cache``) and ``data.augment_on: device``.
An interrupted build keeps its finished shards: run the same command again. Under ``composer -n N`` the ranks
split the shards (rank r writes shards r, r + N, ...) and rank 0 writes the marker last.
"""

from __future__ import annotations

import argparse

from recipes.cli import ArgumentParser, run_cli
from recipes.core.errors import UsageError
from recipes.core.rules import SEED, CheckpointList, Location, Number, PastRunFolder, arg_type, named


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', required=True, type=arg_type(PastRunFolder()), help='past run folder or s3:// URI')
    parser.add_argument('--checkpoint', type=arg_type(CheckpointList(single=True)),
                        help='the teacher checkpoint of past_run_distillation, e.g. latest or ep8')
    parser.add_argument('--checkpoints', type=arg_type(CheckpointList()),
                        help='the teachers of checkpoint_mixup_teacher, comma-separated, in its order: ep4,ep8')
    parser.add_argument('--top_k', required=True, type=arg_type(Number(1, 1_000_000, integer=True)),
                        help='logits stored per view and teacher; the number of classes stores them all')
    parser.add_argument('--views', type=arg_type(Number(1, 162, integer=True)), default=None,
                        help='views per example, a seeded subset of the 162 (default: all of them)')
    parser.add_argument('--seed', type=arg_type(SEED), default=0, help='seed of the subsets of views')
    parser.add_argument('--out', required=True, type=arg_type(Location()),
                        help='cache folder or s3:// URI, e.g. runs/digits-cache')
    parser.add_argument('--batch_size', type=arg_type(Number(1, 1_000_000, integer=True)), default=512,
                        help='views per teacher forward')
    parser.add_argument('--strict', action='store_true',
                        help='refuse a checkpoint near chance, far below the run\'s best, or with no recorded accuracy')
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (args.checkpoints is None):
        raise UsageError('give --checkpoint (the teacher of past_run_distillation) or --checkpoints (the teachers of '
                         'checkpoint_mixup_teacher), one of the two')

    import torch
    from composer.utils import dist

    from algorithms.distillation.cache import build_cache
    from algorithms.past_run import PastRun
    from recipes.core import storage

    past = PastRun(args.run)
    checkpoints = list((args.checkpoint or args.checkpoints).names)
    for name in checkpoints:
        named('--checkpoint' if args.checkpoint else '--checkpoints', past.resolve, name)
    storage.check_reachable(args.out)
    if dist.get_world_size() > 1:
        dist.initialize_dist('gpu' if torch.cuda.is_available() else 'cpu')
    metadata = build_cache(past, checkpoints, args.out, args.top_k, views=args.views, seed=args.seed,
                           batch_size=args.batch_size, strict=args.strict)
    if dist.get_global_rank() != 0:
        return 0
    print(f'wrote the top-{args.top_k} logits of {",".join(checkpoints)} for {metadata["data"]["size"]} examples x '
          f'{metadata["augmentation"]["views"]} views to {args.out} '
          f'({metadata["compute"]["flops_estimate"]:.3g} FLOPs of teacher forwards)', flush=True)
    return 0


if __name__ == '__main__':
    run_cli(main)
