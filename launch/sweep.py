"""Train every recipe of a sweep at each budget and seed, then report: ``python launch/sweep.py SWEEP.yaml [key=value ...]``.

Runs go one after another (each under ``composer -n ranks`` when ranks > 1), or ``parallel`` at a time, into
``{results}/{recipe}/b{budget}/seed{seed}``; a budget scales the recipe's max_duration and milestones
(``scale_schedule_ratio``). Finished runs are skipped and a run that died resumes from its newest checkpoint,
so an interrupted sweep is continued by the same command; stopping the sweep (Ctrl-C, SIGTERM) stops the runs it
started. With ``tune``, the tuning runs train first, into ``{results}/tuning/...``; the setting each budget's best
mean final accuracy chose goes to ``{results}/tuned.yaml`` and into every evaluation run's overrides, and a resumed
sweep reads it back instead of tuning again. With ``launcher=ray`` each run is a task on a Ray cluster
(docs/cluster.md). A ``key=value`` naming a sweep key (``launcher=ray``, ``ray.address=HOST:6379``) sets it; the other
``key=value`` overrides apply to every run. The sweep YAML's keys: :mod:`recipes.study.spec`.
When every run has finished, the report (``launch/report.py RESULTS``) is written, logged as a summary run to the
trackers the runs use, and its first table printed: per recipe and budget, the compute multipliers against the
baseline's frontier.
``--dry_run`` prints each run's state and command (the tuning runs first; evaluation runs wait on unfinished
tuning), and starts nothing and writes nothing.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from recipes.cli import ArgumentParser, run_cli
from recipes.core.rules import LocalFile, Overrides, arg_type

TRAIN = str(Path(__file__).resolve().with_name('train.py'))


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('sweep', type=arg_type(LocalFile('yamls/sweeps/digits.yaml')),
                        help='sweep YAML, e.g. yamls/sweeps/digits.yaml')
    parser.add_argument('overrides', nargs='*', type=arg_type(Overrides()),
                        help='key=value overrides for every run, e.g. max_duration=4ep; a sweep key sets the sweep, '
                        'e.g. launcher=ray')
    parser.add_argument('--dry_run', action='store_true', help='print the runs and their commands, start nothing')
    args = parser.parse_args(argv)

    from recipes.study.runner import run_sweep
    from recipes.study.spec import load_sweep

    sweep = load_sweep(args.sweep, args.overrides)
    # A scheduler's SIGTERM becomes SystemExit, so run_sweep terminates the runs it started instead of orphaning them.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    code = run_sweep(sweep, TRAIN, dry_run=args.dry_run)
    if code or args.dry_run:
        return code

    from recipes.study.report import write_report

    report = write_report(sweep.results)
    from recipes.study.tracking import log_report

    trackers = log_report(sweep, report.files)
    print('\n' + report.summary)
    print('report: ' + ', '.join(report.files) + ''.join(f'; logged to {name}' for name in trackers), flush=True)
    return 0


if __name__ == '__main__':
    run_cli(main)
