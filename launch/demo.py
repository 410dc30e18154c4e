"""The main job on the embedded digits data: train the past run, reuse it, print what each run reached.

    python launch/demo.py [--fresh]

Each step is the command a user would type. A training step whose run folder already holds a finished run is
skipped (``--fresh`` deletes ``runs/`` first), so an interrupted demo picks up where it stopped.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Step:
    title: str
    argv: list[str]
    run_folder: str | None = None  # training steps: skipped when this run already finished
    outputs: list[str] = field(default_factory=list)  # other steps: skipped when all of these exist


STEPS = [
    Step('digits past run (resnet_20, 8 epochs)', ['launch/train.py', 'yamls/digits/baseline.yaml'], 'runs/digits-baseline'),
]


def finished(step: Step) -> bool:
    from recipes.run_files import read_history

    if step.run_folder:
        try:
            return bool(read_history(str(ROOT / step.run_folder)).get('finished'))
        except Exception:  # noqa: BLE001 - no or unreadable history: not finished
            return False
    return bool(step.outputs) and all((ROOT / p).exists() for p in step.outputs)


def summary() -> list[tuple[str, float, float, float]]:
    from recipes.run_files import read_history

    rows = []
    for step in STEPS:
        if step.run_folder:
            history = read_history(str(ROOT / step.run_folder))
            accuracies = [e['accuracy'] for e in history['eval']]
            rows.append((step.run_folder.removeprefix('runs/'), accuracies[-1], max(accuracies), history['wall_seconds']))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--fresh', action='store_true', help='delete runs/ and start over')
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(ROOT / 'runs', ignore_errors=True)

    start = time.time()
    for number, step in enumerate(STEPS, 1):
        print(f'\n=== [{number}/{len(STEPS)}] {step.title}', flush=True)
        if finished(step):
            print('already done, skipped', flush=True)
            continue
        print('$ python ' + ' '.join(step.argv), flush=True)
        code = subprocess.call([sys.executable, *step.argv], cwd=ROOT)
        if code:
            print(f'step failed with exit status {code}: {step.title}', file=sys.stderr)
            return code

    print(f'\nDemo finished in {time.time() - start:.0f} s. Test accuracy on the digits test split (360 images):')
    print(f"{'run':<28}{'final':>8}{'best':>8}{'wall s':>9}")
    for name, final, best, wall in summary():
        print(f'{name:<28}{final:>8.4f}{best:>8.4f}{wall:>9.0f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
