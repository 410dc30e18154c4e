"""The main job on the embedded digits data: make a past run, reuse it four ways, compare with fresh runs.

    python launch/demo.py [--noisy] [--fresh]

The chain: train the digits past run; score its training examples (EL2N) and attack them (an adversarial bank);
then a sweep trains the baseline and each reuse recipe with 3 seeds at an equal budget (4 epochs) and writes the
report (table and plots). ``--noisy`` runs the same study with 40% of the training labels replaced, from a past
run trained on those labels. Each step is the command a user would type; a step whose output already exists is
skipped (``--fresh`` deletes ``runs/`` first), so an interrupted demo picks up where it stopped.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The study's budget: every recipe and seed trains 4 epochs, the learning rate drops after 3.
BUDGET = ['max_duration=4ep', 'scheduler.milestones=[3ep]', 'callbacks.eval_robustness.num_samples=120']


@dataclass
class Step:
    title: str
    argv: list[str]
    done_when: str  # a run folder whose metrics.json says finished, or a file that exists


def steps(noisy: bool) -> list[Step]:
    tag = '-noisy' if noisy else ''
    past, scores, bank = f'runs/digits-baseline{tag}', f'runs/digits-scores{tag}/el2n.npy', f'runs/digits-advbank{tag}'
    past_run = ['launch/train.py', 'yamls/digits/baseline.yaml']
    if noisy:
        past_run += ['data.label_noise=0.4', f'run_name=digits-baseline{tag}', f'save_folder={past}']
    sweep = 'yamls/sweeps/digits_noisy.yaml' if noisy else 'yamls/sweeps/digits.yaml'
    return [
        Step(f'the past run: resnet_20, 8 epochs{" on 40% noisy labels" if noisy else ""}', past_run, past),
        Step('EL2N scores of every training example from its checkpoints ep2, ep3',
             ['launch/score.py', '--run', past, '--checkpoints', 'ep2,ep3', '--method', 'el2n', '--out', scores],
             scores.removesuffix('.npy') + '.json'),
        Step('an adversarial bank: PGD-7 against checkpoints ep4, ep8 on a quarter of the training split',
             ['launch/build_adv_bank.py', '--run', past, '--checkpoints', 'ep4,ep8', '--eps', '8/255', '--steps', '7',
              '--step_size', '2/255', '--fraction', '0.25', '--out', bank], f'{bank}/bank.json'),
        Step('the study: baseline, kd, kd_mixup, grand_curriculum, adv_replay x 3 seeds, then the report',
             ['launch/sweep.py', sweep, *BUDGET], ''),
    ]


def finished(step: Step) -> bool:
    from recipes.core.run_files import read_history

    if not step.done_when:
        return False  # the sweep skips its finished runs itself and always writes the report
    path = ROOT / step.done_when
    if path.is_dir():
        try:
            return bool(read_history(str(path)).get('finished'))
        except Exception:  # noqa: BLE001 - no or unreadable history: not finished
            return False
    return path.exists()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--noisy', action='store_true', help='the study on 40%% noisy training labels')
    parser.add_argument('--fresh', action='store_true', help='delete runs/ and start over')
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(ROOT / 'runs', ignore_errors=True)

    start = time.time()
    chain = steps(args.noisy)
    for number, step in enumerate(chain, 1):
        print(f'\n=== [{number}/{len(chain)}] {step.title}', flush=True)
        if finished(step):
            print('already done, skipped', flush=True)
            continue
        print('$ python ' + ' '.join(step.argv), flush=True)
        code = subprocess.call([sys.executable, *step.argv], cwd=ROOT)
        if code:
            print(f'step failed with exit status {code}: {step.title}', file=sys.stderr)
            return code
    print(f'\ndemo finished in {time.time() - start:.0f} s', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
