"""The scores' builder, declared: ``launch/score.py`` is generated from this signature.

Each argument's rule is in its ``Annotated`` type (as an algorithm's constructor declares its own); the command line
(:func:`recipes.cli.builder_main`), a study file's ``artifacts:`` entry and the docs' table read the same declaration.
"""

from __future__ import annotations

import itertools
from typing import Annotated

from recipes.core.artifacts import CheckpointChoice, CheckpointList, PastRunFolder
from recipes.core.rules import Choice, Location, Number, named

__all__ = ['score']


def _methods() -> list[str]:
    from algorithms.curriculum.scoring import COMPUTED, RECORDED

    return [*COMPUTED, *RECORDED]


def score(
    run: Annotated[str, PastRunFolder(), 'past run folder or s3:// URI'],
    method: Annotated[str, Choice(_methods), 'what each example is scored by (algorithms/curriculum/scoring.py)'],
    checkpoints: Annotated[CheckpointChoice, CheckpointList(policy='earliest'),
                           'comma-separated checkpoint names, e.g. ep2,ep3, or auto (the 2 earliest usable ones)'],
    out: Annotated[str, Location(), 'artifact path or URI, e.g. runs/digits-scores/el2n.npy'],
    runs: Annotated[list[str], PastRunFolder(), 'more past runs of the same data (other seeds)'] = [],  # noqa: B006 - never mutated; argparse's default
    batch_size: Annotated[int, Number(1, 1_000_000, integer=True), 'examples per forward pass (per rank)'] = 256,
    num_workers: Annotated[int, Number(0, 256, integer=True), 'DataLoader worker processes per rank'] = 0,
    strict: Annotated[bool, 'refuse a checkpoint near chance, far below the run\'s best, or with no recorded '
                      'accuracy'] = False,
) -> str | None:
    """Per-example scores of the training split from past runs' checkpoints: a scores artifact (``.npy`` + ``.json``).

    Each checkpoint used is printed with its recorded test accuracy and epoch, with a warning when it is near chance
    or far below the run's best; ``strict`` refuses such a checkpoint (and one with no recorded accuracy). Every rank
    calls this (``composer -n N``); rank 0 returns the line to print.
    """
    import torch
    from composer.utils import dist

    from algorithms.curriculum.scoring import score_runs
    from algorithms.past_run import PastRun
    from recipes.core import storage

    past = [PastRun(folder) for folder in [run, *runs]]
    names = checkpoints.pick(past[0])
    for each, name in itertools.product(past, names):  # each run holds each checkpoint, before anything is read
        named('--checkpoints', each.resolve, name)
    storage.check_reachable(out)
    if dist.get_world_size() > 1:
        dist.initialize_dist('gpu' if torch.cuda.is_available() else 'cpu')
    scores = score_runs(past, names, method, out, batch_size=batch_size, num_workers=num_workers, strict=strict)
    if dist.get_world_size() > 1:
        dist.barrier()
    return None if scores is None else f'wrote {len(scores)} {method} scores from {",".join(names)} to {out}'


score.suffix = '.npy'  # type: ignore[attr-defined]  # the artifact is PATH.npy (and PATH.json); the others are folders
