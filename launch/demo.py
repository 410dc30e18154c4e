"""The main job on the embedded digits data: make a past run, reuse it four ways, place it on a fresh-compute frontier.

    python launch/demo.py [--noisy] [--fresh]

The chain: train the digits past run (resnet_20, 8 epochs); score its training examples (EL2N) and attack them (an
adversarial bank); then a sweep (yamls/sweeps/digits.yaml: budgets 0.5, 1 and 2 of a 4-epoch schedule) trains the
baseline at 2, 4 and 8 epochs (the frontier) and each reuse recipe (kd, kd_mixup, grand_curriculum, adv_replay) at
4 epochs, 3 seeds each, two runs at a time (21 runs), and writes the report (compute multipliers, tables, plots).
``--noisy`` runs the same study (yamls/sweeps/digits_noisy.yaml) with 40% of the training labels replaced, from a
past run trained on those labels. Each step is the command a user would type; a step whose output already exists is
skipped (``--fresh`` deletes ``runs/`` first), so an interrupted demo picks up where it stopped. The clean demo took
7.7 minutes on the project's idle 2-core CPU and 17.8 with a benchmark running beside it (README).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from recipes.study.chain import Step, digits_reuse_inputs, run_chain

ROOT = Path(__file__).resolve().parents[1]


def steps(noisy: bool) -> list[Step]:
    sweep = 'yamls/sweeps/digits_noisy.yaml' if noisy else 'yamls/sweeps/digits.yaml'
    return [
        *digits_reuse_inputs(noisy),
        Step('the study: the baseline at 2, 4, 8 epochs and kd, kd_mixup, grand_curriculum, adv_replay at 4 epochs, '
             'x 3 seeds, then the report', ['launch/sweep.py', sweep]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--noisy', action='store_true', help='the study on 40%% noisy training labels')
    parser.add_argument('--fresh', action='store_true', help='delete runs/ and start over')
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(ROOT / 'runs', ignore_errors=True)
    return run_chain(steps(args.noisy), ROOT, 'the demo')


if __name__ == '__main__':
    sys.exit(main())
