"""Tables and plots of a sweep's results: ``python launch/report.py RESULTS [--out DIR] [--publish NAME]``.

RESULTS is the results folder of ``launch/sweep.py`` (local or s3://). Writes ``results.md`` (the compute
multipliers against the baseline's frontier, the accuracy table, time and FLOPs to the baseline's accuracies),
``results.csv``, ``meta.json``, ``frontier.png`` and ``accuracy_vs_epoch.png`` into ``--out`` (default
``RESULTS/report``, or ``reports/BUCKET/PREFIX`` here for S3 results) and prints results.md. ``--publish NAME`` (one of
the studies of ``make study``) copies the table and what it rests on (every run, every tuning run, each step's
times) to ``docs/results/NAME*``, rewrites ``docs/results/transfer.csv`` and generates ``docs/results.md`` from
them; a study whose committed sweep file makes other comparisons than it registered is refused. Writing the report
is the study's ``report`` step: its times go to ``RESULTS/steps.csv`` (:mod:`recipes.study.steps`) before publishing.
"""

from __future__ import annotations

import argparse

from recipes.cli import ArgumentParser, arg_type, run_cli
from recipes.core.rules import Location
from recipes.study.results_page import STUDIES


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('results', type=arg_type(Location()),
                        help='results folder of a sweep, e.g. runs/sweep-digits or s3://BUCKET/sweeps/x')
    parser.add_argument('--out', type=arg_type(Location(optional=True)), default=None,
                        help='where the files go (local folder or s3://)')
    parser.add_argument('--publish', choices=list(STUDIES), default=None,
                        help='publish the table and its runs to docs/results/NAME*.csv and docs/results.md (a study of make study)')
    args = parser.parse_args(argv)

    from recipes.study.report import write_report
    from recipes.study.steps import timed_step

    with timed_step(args.results, 'report') as clock:
        report = write_report(args.results, args.out)
        clock.worked()
    print(report.markdown)
    print('report: ' + ', '.join(report.files), flush=True)
    if args.publish:
        from recipes.reference import write_pages
        from recipes.study.report import default_out
        from recipes.study.results_page import publish

        written = publish(args.publish, args.out or default_out(args.results), results=args.results)
        print(f'published to docs/results/: {", ".join(p.name for p in written)}; rewrote '
              f'{", ".join(write_pages()) or "nothing"}', flush=True)
    return 0


if __name__ == '__main__':
    run_cli(main)
