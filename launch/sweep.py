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
With ``past_runs`` and ``artifacts``, the past runs train first and the artifacts made of them are built next
(their builders' ``launch/`` scripts), each skipped once complete. A run or artifact made with another config
than the sweep gives it now is stale: the sweep stops in one line naming it and the first differing key, or with
``--rerun_stale`` makes it again. ``--dry_run`` prints each step's state, command and what it waits on (past runs,
artifacts, tuning runs, then evaluation runs), and starts nothing and writes nothing; with results in S3 it reads
nothing there (no credentials needed).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from recipes.cli import ArgumentParser, arg_type, run_cli
from recipes.core.rules import LocalFile, Overrides

TRAIN = str(Path(__file__).resolve().with_name('train.py'))


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('sweep', type=arg_type(LocalFile('yamls/sweeps/digits.yaml')),
                        help='sweep YAML, e.g. yamls/sweeps/digits.yaml')
    parser.add_argument('overrides', nargs='*', type=arg_type(Overrides()),
                        help='key=value overrides for every run, e.g. max_duration=4ep; a sweep key sets the sweep, '
                        'e.g. launcher=ray')
    parser.add_argument('--dry_run', action='store_true',
                        help='print every step (past runs, artifacts, tuning and evaluation runs) in order with its '
                        'command and what it waits on; start nothing, write nothing, and with results in S3 read '
                        'nothing there (no credentials needed)')
    parser.add_argument('--rerun_stale', action='store_true',
                        help='train again, from nothing, a run (or build an artifact) that was made with another config '
                        '(or source and arguments) than the sweep gives it now, instead of stopping')
    args = parser.parse_args(argv)

    from recipes.core import storage
    from recipes.study.runner import run_sweep
    from recipes.study.spec import load_sweep, split_overrides

    check_runs = True
    if args.dry_run:  # a dry run of a sweep in S3 touches no storage: its runs' configs name S3 data and past runs
        import yaml

        with open(args.sweep) as f:
            content = yaml.safe_load(f)
        results = (split_overrides(args.overrides)[0].get('results') or (content or {}).get('results')
                   if isinstance(content, dict) else None)
        check_runs = not (isinstance(results, str) and storage.is_s3(results))
    sweep = load_sweep(args.sweep, args.overrides, check_runs=check_runs)
    if not check_runs:
        print('dry run: the runs\' configs name storage, which a dry run does not touch: they are checked when the '
              'sweep starts', flush=True)
    # A scheduler's SIGTERM becomes SystemExit, so run_sweep terminates the runs it started instead of orphaning them.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    code = run_sweep(sweep, TRAIN, dry_run=args.dry_run, rerun_stale=args.rerun_stale, source=args.sweep)
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
