"""The studies of ``make study`` (digits) and ``make study-fashion`` (Fashion-MNIST): reuse against a tuned
fresh-compute frontier, over 10 evaluation seeds, each with a past run of its own.

    python launch/study.py [--data digits|fashion_mnist] [--fresh]

Each study is one file, run by ``python launch/sweep.py FILE``, which trains its past runs, builds what reuse makes
of them, tunes every recipe (9 points over its own knobs, as the frontier tunes learning rate x warm-up), trains the
evaluation runs and writes the report. Digits: ``yamls/sweeps/study/clean.yaml`` (reuse of the same task and the
new-data scenario), ``noisy.yaml`` (40% noisy labels) and ``new_model.yaml`` (resnet_20 past runs teach or grow into
resnet_32 students); Fashion-MNIST: the same three designs in ``fashion_clean.yaml``, ``fashion_noisy.yaml`` and
``fashion_new_model.yaml``. The studies of one data set share their past runs and artifacts (``past_root``): each is
made once, by the first study that declares it. Then each study's table, every run it rests on and the times of its
steps are published to ``docs/results/`` and the page ``docs/results.md`` is generated from them.

A sweep skips what is complete (finished runs, built artifacts, finished tuning), so an interrupted study is
continued by running it again (``--fresh`` deletes the studies' results first, keeping the past runs and their
artifacts). Run it on an otherwise idle machine: the published times are the steps' wall-clock times.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from recipes.study.chain import Step, run_chain

ROOT = Path(__file__).resolve().parents[1]
# The studies of each data set, in the order they run: name -> results folder (as its sweep file names it).
STUDIES = {
    'digits': ('clean', 'noisy', 'new-model'),
    'fashion_mnist': ('fashion-clean', 'fashion-noisy', 'fashion-new-model'),
}


def results_folder(name: str) -> str:
    return f'runs/study-{name}'


def study_steps(data: str) -> list[Step]:
    steps = []
    for name in STUDIES[data]:
        results = results_folder(name)
        steps += [
            Step(f'the {name} study: its past runs and artifacts, tuning, the evaluation runs and the report',
                 ['launch/sweep.py', f'yamls/sweeps/study/{name.replace("-", "_")}.yaml']),
            Step(f'its table, runs and steps published to docs/results/{name}*.csv and docs/results.md',
                 ['launch/report.py', results, '--publish', name]),
        ]
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', choices=list(STUDIES), default='digits', help='which data set\'s studies to run')
    parser.add_argument('--fresh', action='store_true', help="delete the studies' results first (past runs stay)")
    args = parser.parse_args()
    if args.fresh:
        for name in STUDIES[args.data]:
            shutil.rmtree(ROOT / results_folder(name), ignore_errors=True)
    code = run_chain(study_steps(args.data), ROOT, f'the {args.data} studies')
    if not code:
        print('reports: ' + ', '.join(f'{results_folder(name)}/report/results.md' for name in STUDIES[args.data])
              + '; the tables: docs/results.md', flush=True)
    return code


if __name__ == '__main__':
    sys.exit(main())
