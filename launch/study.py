"""The fuller digits study of ``make study``: reuse against a fresh-compute frontier, on clean and 40%-noisy labels.

    python launch/study.py [--fresh]

Per label setting: the past run, its EL2N scores and its adversarial bank (shared with ``make demo``), then a sweep
that trains the baseline at four budgets (1, 2, 4 and 8 epochs: the frontier) and each reuse recipe at two (2 and 4
epochs), 5 seeds each, two runs at a time, and writes its report: per recipe and budget the compute multipliers
(sunk and total) with their 95% bootstrap intervals. Then the scenario sweeps (new data, new model). Each step is
the command a user would type; a step whose output exists is skipped, and a sweep skips its finished runs, so an
interrupted study is continued by running it again (``--fresh`` deletes the study's results first, keeping the
past runs).

Measured on the 2-core CPU (load average 2-4, other work beside it): clean labels 28 minutes, noisy 23 (past runs,
scores and banks included), the new-data scenario 12 (45 runs), the new-model scenario 19 (18 resnet_56 runs): 83
minutes. The budgets reach 8 epochs because resnet_20 on digits stays near chance for its first 2-3 epochs, and a
frontier of shorter budgets (an earlier version of this study) priced every recipe against chance.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from recipes.study.chain import Step, digits_reuse_inputs, run_chain

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ('runs/study-digits', 'runs/study-digits-noisy', 'runs/scenario-digits-new-data', 'runs/scenario-digits-new-model')


def frontier_steps() -> list[Step]:
    """Reuse against the frontier, clean then noisy: each setting's inputs, then its sweep and report."""
    chain = []
    for noisy, sweep in ((False, 'yamls/sweeps/digits_study.yaml'), (True, 'yamls/sweeps/digits_noisy_study.yaml')):
        labels = '40% noisy labels' if noisy else 'clean labels'
        chain += [
            *digits_reuse_inputs(noisy),
            Step(f'{labels}: the baseline at 4 budgets, each reuse recipe at 2, x 5 seeds, then the report',
                 ['launch/sweep.py', sweep]),
        ]
    return chain


# The scenario sweeps (new data, with the warm-start and shrink-and-perturb reuse baselines; new model) and the past
# run the new-data sweep reuses: one Step each, the command a user would type, in the order they run (31 minutes
# measured, see above).
SCENARIO_STEPS: list[Step] = [
    Step('new data: the past run, resnet_20 on a class-stratified half of the training split, 8 epochs',
         ['launch/train.py', 'yamls/scenarios/digits_new_data_past.yaml'], 'runs/digits-half-past'),
    Step('new data: new runs on the whole split; baseline (3 budgets), warm_start, shrink_perturb, random teacher, '
         'label smoothing, kd, kd_mixup, x 5 seeds, then the report',
         ['launch/sweep.py', 'yamls/sweeps/scenarios/digits_new_data.yaml']),
    Step('new model: resnet_56 new runs taught by the resnet_20 past run; baseline (3 budgets), random teacher, '
         'kd, kd_mixup, x 3 seeds, then the report',
         ['launch/sweep.py', 'yamls/sweeps/scenarios/digits_new_model.yaml']),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--fresh', action='store_true', help="delete the study's results first (past runs stay)")
    args = parser.parse_args()
    if args.fresh:
        for folder in RESULTS:
            shutil.rmtree(ROOT / folder, ignore_errors=True)
    code = run_chain([*frontier_steps(), *SCENARIO_STEPS], ROOT, 'the study')
    if not code:
        print('multipliers (clean, noisy, new data, new model): ' + ', '.join(f'{folder}/report/results.md' for folder in RESULTS),
              flush=True)
    return code


if __name__ == '__main__':
    sys.exit(main())
