"""Score every training example with checkpoints of past runs; write a scores artifact (``.npy`` + ``.json``).

``[composer -n N] python launch/score.py --run RUN --checkpoints ep2,ep3|auto [--runs RUN2 ...]
--method grand|el2n|loss|recorded_el2n|forgetting --out PATH_OR_S3_URI [--strict] [--debug]``

See ``algorithms/curriculum/scoring.py`` for what each method computes. Each checkpoint used is printed with its
recorded test accuracy and epoch, with a warning when it is near chance or far below the run's best; ``--strict``
refuses such a checkpoint (and one with no recorded accuracy). ``--checkpoints auto`` takes the two earliest
checkpoints of ``--run`` whose recorded accuracy is usable (``PastRun.pick_checkpoints('earliest')``).

The arguments are :func:`algorithms.curriculum.build.score`'s, read off its declaration.
"""

from __future__ import annotations

from recipes.cli import builder_main, run_cli


def main(argv: list[str]) -> int:
    from algorithms.curriculum.build import score

    return builder_main(score, __doc__)(argv)


if __name__ == '__main__':
    run_cli(main)
