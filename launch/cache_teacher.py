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

The arguments are :func:`algorithms.distillation.build.cache_teacher`'s, read off its declaration.
"""

from __future__ import annotations

from recipes.cli import builder_main, run_cli


def main(argv: list[str]) -> int:
    from algorithms.distillation.build import cache_teacher

    return builder_main(cache_teacher, __doc__)(argv)


if __name__ == '__main__':
    run_cli(main)
