"""The teacher cache's builder, declared: ``launch/cache_teacher.py`` is generated from this signature.

Each argument's rule is in its ``Annotated`` type (as an algorithm's constructor declares its own), the rule that
ties ``checkpoint`` to ``checkpoints`` is in :data:`CACHE_TIES`; the command line (:func:`recipes.cli.builder_main`),
a study file's ``artifacts:`` entry and the docs' table read the same declaration.
"""

from __future__ import annotations

from typing import Annotated

from recipes.core.artifacts import CheckpointChoice, CheckpointList, PastRunFolder
from recipes.core.errors import UsageError
from recipes.core.rules import SEED, Location, Number, named
from recipes.core.ties import Ties, Values

__all__ = ['CACHE_TIES', 'cache_teacher']

CACHE_TIES = Ties('the teacher cache builder')


@CACHE_TIES.tie('checkpoint', 'checkpoints')
def _one_teacher_list(args: Values) -> None:
    """Exactly one of ``checkpoint`` (the teacher of past_run_distillation) and ``checkpoints`` (the teachers of
    checkpoint_mixup_teacher)."""
    if (args.get('checkpoint') is None) == (args.get('checkpoints') is None):
        raise UsageError(f'give {args.key("checkpoint")} (the teacher of past_run_distillation) or '
                         f'{args.key("checkpoints")} (the teachers of checkpoint_mixup_teacher), one of the two')


def cache_teacher(
    run: Annotated[str, PastRunFolder(), 'past run folder or s3:// URI'],
    top_k: Annotated[int, Number(1, 1_000_000, integer=True),
                     'logits stored per view and teacher; the number of classes stores them all'],
    out: Annotated[str, Location(), 'cache folder or s3:// URI, e.g. runs/digits-cache'],
    checkpoint: Annotated[CheckpointChoice | None, CheckpointList(single=True),
                          'the teacher checkpoint of past_run_distillation, e.g. latest or ep8'] = None,
    checkpoints: Annotated[CheckpointChoice | None, CheckpointList(),
                           'the teachers of checkpoint_mixup_teacher, comma-separated, in its order: ep4,ep8'] = None,
    views: Annotated[int | None, Number(1, 162, integer=True, optional=True),
                     'views per example, a seeded subset of the 162 (default: all of them)'] = None,
    seed: Annotated[int, SEED, 'seed of the subsets of views'] = 0,
    batch_size: Annotated[int, Number(1, 1_000_000, integer=True), 'views per teacher forward'] = 512,
    strict: Annotated[bool, 'refuse a checkpoint near chance, far below the run\'s best, or with no recorded '
                      'accuracy'] = False,
) -> str | None:
    """A cache of a past run's teacher outputs per training example and view (algorithms/distillation/cache.py).

    Every rank calls this (``composer -n N``: the ranks split the shards); rank 0 returns the line to print.
    """
    import torch
    from composer.utils import dist

    from algorithms.distillation.cache import build_cache
    from algorithms.past_run import PastRun
    from recipes.core import storage

    past = PastRun(run)
    chosen = checkpoint or checkpoints
    assert chosen is not None, 'CACHE_TIES: one of the two'
    names = list(chosen.names)
    for name in names:
        named('--checkpoint' if checkpoint else '--checkpoints', past.resolve, name)
    storage.check_reachable(out)
    if dist.get_world_size() > 1:
        dist.initialize_dist('gpu' if torch.cuda.is_available() else 'cpu')
    metadata = build_cache(past, names, out, top_k, views=views, seed=seed, batch_size=batch_size, strict=strict)
    if dist.get_global_rank() != 0:
        return None
    held = metadata['data']['holdout']['size']
    return (f'wrote the top-{top_k} logits of {",".join(names)} for {metadata["data"]["size"] - held} examples x '
            f'{metadata["augmentation"]["views"]} views to {out} '
            f'({metadata["compute"]["flops_estimate"]:.3g} FLOPs of teacher forwards'
            + (f'; the {held} held out for validation left out)' if held else ')'))


cache_teacher.ties = CACHE_TIES  # type: ignore[attr-defined]
