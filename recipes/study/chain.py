"""A resumable chain of commands, as ``make demo`` and ``make study`` run them.

Each step is the command a user would type (``python launch/...``); a step whose output exists is skipped, so an
interrupted chain is continued by starting it again. The digits past run, its EL2N scores and its adversarial bank
are the inputs every digits study reuses; :func:`digits_reuse_inputs` lists the steps that make them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from recipes.study.runner import RunState, run_state

__all__ = ['Step', 'digits_reuse_inputs', 'finished', 'run_chain']


@dataclass(frozen=True)
class Step:
    title: str
    argv: list[str]  # after ``python``: the script and its arguments, relative to the repository root
    done_when: str = ''  # a run folder whose metrics.json says finished, or a file that exists; '' always runs


def finished(step: Step, root: Path) -> bool:
    if not step.done_when:
        return False  # a sweep skips its finished runs itself and always writes its report
    path = root / step.done_when
    return run_state(str(path)) is RunState.FINISHED if path.is_dir() else path.exists()


def digits_reuse_inputs(noisy: bool) -> list[Step]:
    """The digits past run (8 epochs; on 40% noisy labels if ``noisy``), its EL2N scores and its adversarial bank."""
    tag = '-noisy' if noisy else ''
    past, scores, bank = f'runs/digits-baseline{tag}', f'runs/digits-scores{tag}/el2n.npy', f'runs/digits-advbank{tag}'
    past_run = ['launch/train.py', 'yamls/digits/baseline.yaml']
    if noisy:
        past_run += ['data.label_noise=0.4', f'run_name=digits-baseline{tag}', f'save_folder={past}']
    return [
        Step(f'the past run: resnet_20, 8 epochs{" on 40% noisy labels" if noisy else ""}', past_run, past),
        Step('EL2N scores of every training example from its two earliest usable checkpoints',
             ['launch/score.py', '--run', past, '--checkpoints', 'auto', '--method', 'el2n', '--out', scores],
             scores.removesuffix('.npy') + '.json'),
        Step('an adversarial bank: PGD-7 against its earliest usable and its best checkpoint, on a quarter of the '
             'training split',
             ['launch/build_adv_bank.py', '--run', past, '--checkpoints', 'auto', '--eps', '8/255', '--steps', '7',
              '--step_size', '2/255', '--fraction', '0.25', '--out', bank], f'{bank}/bank.json'),
    ]


def run_chain(steps: list[Step], root: Path, name: str) -> int:
    """Run the steps not done yet, in order, from ``root``; the exit status of the first failure, or 0."""
    start = time.time()
    for number, step in enumerate(steps, 1):
        print(f'\n=== [{number}/{len(steps)}] {step.title}', flush=True)
        if finished(step, root):
            print('already done, skipped', flush=True)
            continue
        print('$ python ' + ' '.join(step.argv), flush=True)
        code = subprocess.call([sys.executable, *step.argv], cwd=root)
        if code:
            print(f'step failed with exit status {code}: {step.title}; run {name} again to continue', file=sys.stderr)
            return code
    print(f'\n{name} finished in {time.time() - start:.0f} s', flush=True)
    return 0
