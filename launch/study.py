"""The digits study of ``make study``: reuse against a tuned fresh-compute frontier, over 10 seeds and 3 past runs.

    python launch/study.py [--fresh]

1. The past runs (``yamls/sweeps/study/past.yaml``): three seeds each of a past run of the same task, one on half the
   training split, one on 40% noisy labels and one of an older recipe; resnet_20, 8 epochs.
2. What reuse makes of them (``runs/study-artifacts``): per past run, the EL2N scores (the curriculum), the losses
   (reducible-loss selection's irreducible losses), an adversarial bank and a teacher cache (8 views per example).
3. The studies, each a sweep whose frontier is tuned first (learning rate and warm-up on 3 tuning seeds, per budget)
   and whose evaluation seeds reuse the past runs in turn: ``clean`` (reuse of the same task, and the new-data,
   noise-cleaned and new-hyperparameter scenarios, each against its own warm start too), ``noisy`` and
   ``new_model`` (resnet_20 teachers, resnet_32 students). Each writes its report; its first table and what it rests
   on are published to ``docs/results/`` and the page ``docs/results.md`` is generated from them.

Each step is the command a user would type; a step whose output exists is skipped, and a sweep skips its finished
runs and its finished tuning, so an interrupted study is continued by running it again (``--fresh`` deletes the
study's results first, keeping the past runs and their artifacts).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from recipes.study.chain import Step, run_chain
from recipes.study.results_page import STUDIES

ROOT = Path(__file__).resolve().parents[1]
PAST_SEEDS = (17, 18, 19)  # yamls/sweeps/study/past.yaml's seeds: the studies' `past`
PAST = 'runs/study-past'
# Views per example of the teacher caches: the kd_cached students of one past run (10 seeds over 3 past runs, 4 epochs
# each) run about 13 teacher forwards per example; 8 views cost fewer, so the cache is cheaper than the live teacher
CACHE_VIEWS = 8
ARTIFACTS = 'runs/study-artifacts'
RESULTS = {name: f'runs/study-{name}' for name in STUDIES}  # each study's results folder, as its sweep YAML names it


def artifact_steps() -> list[Step]:
    """Per past run: EL2N scores of the clean, half and noisy past runs, losses of the clean and half ones, and an
    adversarial bank and a teacher cache of the clean ones."""
    steps = []
    for seed in PAST_SEEDS:
        for family, method, checkpoints in (('clean', 'el2n', 'auto'), ('half', 'el2n', 'auto'),
                                            ('noisy', 'el2n', 'auto'), ('clean', 'loss', 'latest'),
                                            ('half', 'loss', 'latest')):
            out = f'{ARTIFACTS}/{method}-{family}-s{seed}.npy'
            steps.append(Step(
                f'{method} of every training example, from the {family} past run of seed {seed} ({checkpoints})',
                ['launch/score.py', '--run', f'{PAST}/{family}/b1/seed{seed}', '--checkpoints', checkpoints,
                 '--method', method, '--out', out], out.removesuffix('.npy') + '.json'))
        bank = f'{ARTIFACTS}/bank-clean-s{seed}'
        steps.append(Step(
            f'an adversarial bank: PGD-7 against the clean past run of seed {seed}, a quarter of the training split',
            ['launch/build_adv_bank.py', '--run', f'{PAST}/clean/b1/seed{seed}', '--checkpoints', 'auto', '--eps',
             '8/255', '--steps', '7', '--step_size', '2/255', '--fraction', '0.25', '--seed', str(seed), '--out', bank],
            f'{bank}/bank.json'))
        cache = f'{ARTIFACTS}/cache-clean-s{seed}'
        steps.append(Step(
            f'a teacher cache: every logit of the clean past run of seed {seed}, 8 views per training example',
            ['launch/cache_teacher.py', '--run', f'{PAST}/clean/b1/seed{seed}', '--checkpoint', 'latest', '--top_k',
             '10', '--views', str(CACHE_VIEWS), '--seed', str(seed), '--out', cache], f'{cache}/cache.json'))
    return steps


def study_steps() -> list[Step]:
    steps = [Step('the past runs: 3 seeds of 4 families, resnet_20, 8 epochs', ['launch/sweep.py',
                                                                               'yamls/sweeps/study/past.yaml'])]
    steps += artifact_steps()
    for name, results in RESULTS.items():
        steps += [
            Step(f'the {name} study: tuning, then the evaluation runs and the report',
                 ['launch/sweep.py', f'yamls/sweeps/study/{name.replace("-", "_")}.yaml']),
            Step(f'its table published to docs/results/{name}.csv and docs/results.md',
                 ['launch/report.py', results, '--publish', name]),
        ]
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--fresh', action='store_true', help="delete the studies' results first (past runs stay)")
    args = parser.parse_args()
    if args.fresh:
        for folder in RESULTS.values():
            shutil.rmtree(ROOT / folder, ignore_errors=True)
    code = run_chain(study_steps(), ROOT, 'the study')
    if not code:
        print('reports: ' + ', '.join(f'{folder}/report/results.md' for folder in RESULTS.values())
              + '; the tables: docs/results.md', flush=True)
    return code


if __name__ == '__main__':
    sys.exit(main())
