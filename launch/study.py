"""The digits study of ``make study``: reuse against a tuned fresh-compute frontier, over 10 seeds and 3 past runs.

    python launch/study.py [--fresh]

Each study is one file, run by ``python launch/sweep.py FILE``, which trains its past runs, builds what reuse makes
of them, tunes the frontier, trains the evaluation runs and writes the report: ``yamls/sweeps/study/clean.yaml``
(reuse of the same task, and the new-data, noise-cleaned and new-hyperparameter scenarios, each against its own warm
start too; its past runs are three seeds of four families, resnet_20, 8 epochs, and its artifacts the EL2N scores,
losses, an adversarial bank and a teacher cache of 8 views per example), ``noisy.yaml`` and ``new_model.yaml``
(resnet_20 teachers, resnet_32 students). They share their past runs and artifacts (``past_root: runs/study-past``):
each is made once, by the first study that declares it. Then each study's first table and what it rests on are
published to ``docs/results/`` and the page ``docs/results.md`` is generated from them.

A sweep skips what is complete (finished runs, built artifacts, finished tuning), so an interrupted study is
continued by running it again (``--fresh`` deletes the studies' results first, keeping the past runs and their
artifacts).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from recipes.study.chain import Step, run_chain
from recipes.study.results_page import STUDIES

ROOT = Path(__file__).resolve().parents[1]
RESULTS = {name: f'runs/study-{name}' for name in STUDIES}  # each study's results folder, as its file names it


def study_steps() -> list[Step]:
    steps = []
    for name, results in RESULTS.items():
        steps += [
            Step(f'the {name} study: its past runs and artifacts, tuning, the evaluation runs and the report',
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
