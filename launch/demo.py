"""The main job on the embedded digits data: make a past run, reuse it four ways, place it on a fresh-compute frontier.

    python launch/demo.py [--noisy] [--fresh]

The chain: train the digits past run (resnet_20, 8 epochs); score its training examples (EL2N) and attack them (an
adversarial bank); then a sweep (yamls/sweeps/digits.yaml: budgets 0.25, 0.5 and 1 of the 8-epoch recipe, each
with the learning rate and warm-up `make study`'s tuning chose for it) trains the baseline at 2, 4 and 8 epochs (the
frontier), plain warm starting and each reuse recipe (kd, kd_mixup, grand_curriculum, adv_replay) at 4 epochs, 3
seeds each, two runs at a time (24 runs), and writes the report (compute multipliers against the frontier and
against warm starting, tables, plots).
``--noisy`` runs the same study (yamls/sweeps/digits_noisy.yaml) with 40% of the training labels replaced, from a
past run trained on those labels. Each step is the command a user would type; a step whose output already exists is
skipped (``--fresh`` deletes ``runs/`` first), so an interrupted demo picks up where it stopped.
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
        Step('the study: the baseline at 2, 4, 8 epochs and warm_start, kd, kd_mixup, grand_curriculum, adv_replay at '
             '4 epochs, x 3 seeds, then the report', ['launch/sweep.py', sweep]),
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
