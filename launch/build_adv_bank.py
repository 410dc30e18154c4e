"""Build a bank of adversarial examples from a past run's checkpoints (see algorithms/adversarial_replay/bank.py).

``[composer -n N] python launch/build_adv_bank.py --run RUN --checkpoints ep40,ep80|auto --eps 8/255 --steps 7
--step_size 2/255 [--fraction 1.0] [--seed 0] --out DIR_OR_S3_URI [--strict] [--debug]``

The arguments are :func:`algorithms.adversarial_replay.build.build_adv_bank`'s, read off its declaration.
``--checkpoints auto`` attacks the earliest usable checkpoint and the best-recorded one
(``PastRun.pick_checkpoints('earliest_and_best')``).
"""

from __future__ import annotations

from recipes.cli import builder_main, run_cli


def main(argv: list[str]) -> int:
    from algorithms.adversarial_replay.build import build_adv_bank

    return builder_main(build_adv_bank, __doc__)(argv)


if __name__ == '__main__':
    run_cli(main)
