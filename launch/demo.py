"""The main job on the embedded digits data: make a past run, reuse it four ways, place it on a fresh-compute frontier.

    python launch/demo.py [--noisy] [--data NAME] [--fresh]

The demo is one study file, ``yamls/sweeps/digits.yaml``, run by ``python launch/sweep.py`` (the command a user
would type): it trains the digits past run (resnet_20, 8 epochs), scores its training examples (EL2N) and attacks
them (an adversarial bank), then trains the baseline at 2, 4 and 8 epochs (the frontier, each budget with the
learning rate and warm-up `make study`'s tuning chose for it), plain warm starting and each reuse recipe (kd,
kd_mixup, grand_curriculum, adv_replay) at 4 epochs, 3 seeds each, two runs at a time (24 runs), and writes the
report (compute multipliers against the frontier and against warm starting, tables, plots).
``--noisy`` runs the same study (yamls/sweeps/digits_noisy.yaml) with 40% of the training labels replaced, from a
past run trained on those labels; ``--data NAME`` runs ``yamls/sweeps/NAME.yaml`` instead. What is complete is
skipped (``--fresh`` deletes the study's results first), so an interrupted demo picks up where it stopped.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from recipes.study.chain import Step, run_chain

ROOT = Path(__file__).resolve().parents[1]


def sweep_file(noisy: bool, data: str) -> str:
    return f'yamls/sweeps/{data}_noisy.yaml' if noisy else f'yamls/sweeps/{data}.yaml'


def steps(noisy: bool, data: str = 'digits') -> list[Step]:
    return [Step('the study: the past run, its scores and bank, the baseline at 2, 4, 8 epochs and warm_start, kd, '
                 'kd_mixup, grand_curriculum, adv_replay at 4 epochs, x 3 seeds, then the report',
                 ['launch/sweep.py', sweep_file(noisy, data)])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--noisy', action='store_true', help='the study on 40%% noisy training labels')
    parser.add_argument('--data', default='digits', choices=('digits', 'fashion_mnist'),
                        help='the data set: its study file is yamls/sweeps/DATA.yaml (default digits)')
    parser.add_argument('--fresh', action='store_true', help="delete the study's results and start over")
    args = parser.parse_args()
    path = ROOT / sweep_file(args.noisy, args.data)
    if not path.is_file():
        parser.error(f'no study file {path.relative_to(ROOT)} for --data {args.data}{" --noisy" if args.noisy else ""}')
    if args.fresh:
        shutil.rmtree(ROOT / yaml.safe_load(path.read_text())['results'], ignore_errors=True)
    return run_chain(steps(args.noisy, args.data), ROOT, 'the demo')


if __name__ == '__main__':
    sys.exit(main())
