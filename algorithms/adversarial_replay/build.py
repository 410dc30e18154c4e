"""The adversarial bank's builder, declared: ``launch/build_adv_bank.py`` is generated from this signature.

Each argument's rule is in its ``Annotated`` type (as an algorithm's constructor declares its own), the rule that
ties ``step_size`` to ``eps`` is :data:`~algorithms.adversarial_replay.pgd.ATTACK_TIES`; the command line
(:func:`recipes.cli.builder_main`), a study file's ``artifacts:`` entry and the docs' table read the same declaration.
"""

from __future__ import annotations

from typing import Annotated

from algorithms.adversarial_replay.pgd import ATTACK_TIES
from recipes.core.artifacts import CheckpointChoice, CheckpointList, NoBank, PastRunFolder
from recipes.core.rules import SEED, Number, PixelValue, named

__all__ = ['build_adv_bank']


def build_adv_bank(
    run: Annotated[str, PastRunFolder(), 'past run folder or s3:// URI (holds config.yaml and checkpoints)'],
    checkpoints: Annotated[CheckpointChoice, CheckpointList(policy='earliest_and_best'),
                           'comma-separated checkpoint names, e.g. ep40,ep80 or latest; auto: the earliest usable and '
                           'the best-recorded'],
    out: Annotated[str, NoBank(), 'bank folder or s3:// URI (must not hold a bank yet)'],
    eps: Annotated[float, PixelValue(), 'L-inf radius in pixel units, e.g. 8/255'] = 8 / 255,
    step_size: Annotated[float, PixelValue(), 'PGD step, at most eps'] = 2 / 255,
    steps: Annotated[int, Number(1, 10_000, integer=True), 'PGD steps (1 with step_size=eps is FGSM)'] = 7,
    fraction: Annotated[float, Number(0, 1, low_open=True),
                        'share of the examples the past run trained on to attack (seeded)'] = 1.0,
    seed: Annotated[int, SEED, 'seed of the subset and of the random starts'] = 0,
    batch_size: Annotated[int, Number(1, 1_000_000, integer=True), 'images attacked at once per rank'] = 256,
    num_workers: Annotated[int, Number(0, 256, integer=True), 'DataLoader workers per rank'] = 2,
    strict: Annotated[bool, 'refuse a checkpoint near chance, far below the run\'s best, or with no recorded '
                      'accuracy'] = False,
) -> str | None:
    """An adversarial bank made against a past run's checkpoints (algorithms/adversarial_replay/bank.py).

    Each checkpoint used is printed with its recorded test accuracy and epoch, with a warning when it is near chance
    or far below the run's best; ``strict`` refuses such a checkpoint (and one with no recorded accuracy) before any
    attack. Every rank calls this (``composer -n N``); rank 0 returns the line to print.
    """
    import torch
    from composer.utils import dist

    from algorithms.adversarial_replay.bank import build_bank
    from algorithms.past_run import PastRun

    past = PastRun(run)
    names = checkpoints.pick(past)
    for name in names:  # each one the run holds, its quality printed (or refused: strict) before any attack
        named('--checkpoints', past.resolve, name)
        past.check(name, strict=strict)
    if dist.get_world_size() > 1:
        dist.initialize_dist('gpu' if torch.cuda.is_available() else 'cpu')
    build_bank(run, names, out, eps, step_size, steps, fraction=fraction, seed=seed, batch_size=batch_size,
               num_workers=num_workers)
    return f'adversarial bank from {",".join(names)} written to {out}' if dist.get_global_rank() == 0 else None


build_adv_bank.ties = ATTACK_TIES  # type: ignore[attr-defined]
