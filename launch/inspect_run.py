"""Look at a past run before reusing it: its config, each checkpoint's test accuracy, loss and compute, which
checkpoints are usable as teachers or scorers; draws the accuracy against epoch with the checkpoints marked.

``python launch/inspect_run.py RUN [--plot runs.png] [--debug]``  (RUN: a run folder or s3:// URI)
"""

from __future__ import annotations

import argparse

from recipes.cli import ArgumentParser, arg_type, run_cli
from recipes.core.artifacts import PastRunFolder
from recipes.core.rules import Location


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('run', type=arg_type(PastRunFolder()),
                        help='past run folder or s3:// URI (holds config.yaml, metrics.json, checkpoints)')
    parser.add_argument('--plot', type=arg_type(Location(empty_is_none=True)), default='runs.png',
                        help='where to draw accuracy against epoch (path or s3:// URI; default runs.png; "" for none)')
    args = parser.parse_args(argv)

    from algorithms.past_run import PastRun
    from recipes.core import storage
    from recipes.study.inspect_run import accuracy_plot, inspect_run

    run = PastRun(args.run)
    print(inspect_run(run), flush=True)
    if args.plot:
        storage.write_bytes(args.plot, accuracy_plot(run))
        print(f'accuracy against epoch drawn in {args.plot}', flush=True)
    return 0


if __name__ == '__main__':
    run_cli(main)
