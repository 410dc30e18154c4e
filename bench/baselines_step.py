"""Step time of Composer's SelectiveBackprop and of reducible-loss selection against the plain step, and the cost of
DASH's gradient pass per example against the plain step's; one run.

    python bench/baselines_step.py [--batch 64] [--steps 8] [--rounds 3] [--dash_examples 256] [--json out.json]

Three Trainers (plain; ``selective_backprop`` pruning every batch, ``keep`` 0.5; ``reducible_loss_selection``,
``keep`` 0.1, so the loader gives 10 x ``--batch``) are built by the recipe code on synthetic CIFAR-100-shaped data
with resnet_56 (fp32 on CPU, bf16 autocast on GPU) and fitted in turn, ``--steps`` batches at a time for
``--rounds`` rounds, so machine load drifts over all three alike. A step is timed from ``AFTER_DATALOADER``, before
any algorithm sees the batch (the selections run there), to ``BATCH_END``: loading is excluded, so reducible-loss
selection's loader, which reads 10 x the examples, is not in its number. The first round is warm-up. Ratios are of
medians, of minima and of median CPU times (this process's, all threads: on a machine shared with other jobs they
move least with its load). The irreducible losses are random (their values do not change the cost). DASH's step is a
plain step; its one-off pass (``averaged_gradient`` on about ``--dash_examples`` training examples, in pieces of the
run's batch, from a resnet_56 checkpoint with random weights) is timed in each round too, and its time per example
is set against the plain step's (medians, and minima). No goals: these are the algorithms' published designs,
measured. On a shared machine, many short rounds (``--steps 2 --rounds 9``) let a change of load fall on all three
alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from common import (  # bench/ is this script's directory, first on sys.path
    device_name,
    timed,
    write_json,
    write_teacher_run,
)
from composer import Trainer
from composer.core import Algorithm, Event, State
from composer.loggers import Logger

from algorithms.curriculum.scores import dataset_labels, label_fingerprint, write_scores
from algorithms.past_run import PastRun
from algorithms.warm_start import averaged_gradient
from recipes.config import load_config
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.trainer import build_trainer

TIMED = ('selective_backprop', 'reducible_loss_selection')


class StepClock(Algorithm):
    """Wall time and this process's CPU time of each training step from AFTER_DATALOADER (listed last, it runs first
    there: AFTER_* events run the algorithms in reverse order) to BATCH_END. On a CPU shared with other jobs the CPU
    time (all of the process's threads) moves less with their load than the wall time does."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cpu_times: list[float] = []
        self._start = (0.0, 0.0)

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.AFTER_DATALOADER, Event.BATCH_END)

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = (time.perf_counter(), time.process_time())
        if event == Event.AFTER_DATALOADER:
            self._start = now
        else:
            self.times.append(now[0] - self._start[0])
            self.cpu_times.append(now[1] - self._start[1])


def synthetic_scores(folder: str) -> str:
    """Random irreducible losses for the synthetic training split, as a scores artifact."""
    labels = dataset_labels(MDSImageDataset(resolve_root('synthetic', None), 'train', 100))
    uri = os.path.join(folder, 'il.npy')
    write_scores(uri, np.random.default_rng(0).random(len(labels)).astype(np.float32), {
        'method': 'loss', 'runs': [], 'checkpoints': [], 'compute': {'flops_estimate': 0.0},
        'dataset': {'name': 'synthetic', 'size': len(labels), 'label_sha256': label_fingerprint(labels)},
    })
    return uri


def build(batch: int, algorithm: list[str]) -> tuple[Trainer, StepClock]:
    cfg = load_config(None, [
        'model.name=resnet_56', 'data.name=synthetic', f'data.global_batch_size={batch}', 'data.num_workers=0',
        'max_duration=1000ba', 'scheduler.name=constant', 'callbacks={}', *algorithm,
    ])
    trainer = build_trainer(cfg)
    trainer.state.evaluators = []  # the bench times training steps only
    clock = StepClock()
    trainer.state.algorithms.append(clock)
    return trainer, clock


def dash_pass(run: str, batch: int, examples: int, device: torch.device) -> tuple[Callable[[], float], int]:
    """A call that times DASH's gradient pass over about ``examples`` synthetic training examples (a class-stratified
    share of the split), in pieces of ``batch``, and how many examples it passes over."""
    network = PastRun(run).load('latest', device=device).requires_grad_(True)
    data = MDSImageDataset(resolve_root('synthetic', None), 'train', 100, subset_fraction=examples / 50_000).unaugmented()

    def seconds() -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == 'cuda'):
            return timed(lambda: averaged_gradient(network, data, batch_size=1000, alpha=0.3, micro_batch=batch,
                                                   device=device), device)

    return seconds, len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--steps', type=int, default=8, help='batches per trainer per round')
    parser.add_argument('--rounds', type=int, default=3, help='rounds; the first one is warm-up')
    parser.add_argument('--dash_examples', type=int, default=256, help='examples of each timed DASH gradient pass')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as folder:
        write_teacher_run(folder, epochs=1)
        variants = {
            'plain': [],
            'selective_backprop': ['algorithms.selective_backprop.start=0.0', 'algorithms.selective_backprop.end=1.0',
                                   'algorithms.selective_backprop.keep=0.5', 'algorithms.selective_backprop.interrupt=0'],
            'reducible_loss_selection': [f'algorithms.reducible_loss_selection.scores={synthetic_scores(folder)}',
                                         'algorithms.reducible_loss_selection.keep=0.1'],
        }
        runs = {name: build(args.batch, overrides) for name, overrides in variants.items()}
        dash, dash_examples = dash_pass(folder, args.batch, args.dash_examples, device)
        dash_rounds = []
        for _ in range(args.rounds):
            for trainer, _clock in runs.values():
                trainer.fit(duration=f'{args.steps}ba')
            dash_rounds.append(dash())
        for trainer, _clock in runs.values():
            trainer.close()
    dash_seconds, dash_fastest = statistics.median(dash_rounds[1:]), min(dash_rounds[1:])

    timed_steps = {name: clock.times[args.steps:] for name, (_trainer, clock) in runs.items()}
    step = {name: statistics.median(times) for name, times in timed_steps.items()}
    fastest = {name: min(times) for name, times in timed_steps.items()}
    cpu = {name: statistics.median(clock.cpu_times[args.steps:]) for name, (_trainer, clock) in runs.items()}
    per_example = {'median': dash_seconds / dash_examples / (step['plain'] / args.batch),
                   'min': dash_fastest / dash_examples / (fastest['plain'] / args.batch)}
    result = {
        'device': device_name(),
        'model': 'resnet_56',
        'batch': args.batch,
        'timed_steps': args.steps * (args.rounds - 1),
        'load_average_before_after': [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        'step_s': {name: round(s, 4) for name, s in step.items()},
        'ratio': {name: round(step[name] / step['plain'], 3) for name in TIMED},
        'step_min_s': {name: round(s, 4) for name, s in fastest.items()},
        'ratio_of_min': {name: round(fastest[name] / fastest['plain'], 3) for name in TIMED},
        'step_cpu_s': {name: round(s, 4) for name, s in cpu.items()},
        'ratio_of_cpu': {name: round(cpu[name] / cpu['plain'], 3) for name in TIMED},
        'dash_pass_s': round(dash_seconds, 3),
        'dash_pass_rounds_s': [round(x, 3) for x in dash_rounds],
        'dash_pass_examples': dash_examples,
        'dash_per_example_vs_plain_step_per_example': round(per_example['median'], 3),
        'dash_per_example_vs_plain_step_per_example_of_min': round(per_example['min'], 3),
    }
    print(json.dumps(result))
    print(f"{'step':<28}{'median s':>10}{'ratio':>8}{'min s':>10}{'ratio':>8}{'cpu s':>10}{'ratio':>8}")
    print(f"{'plain':<28}{step['plain']:>10.3f}{1.0:>8.2f}{fastest['plain']:>10.3f}{1.0:>8.2f}{cpu['plain']:>10.3f}{1.0:>8.2f}")
    for name in TIMED:
        print(f"{name:<28}{step[name]:>10.3f}{result['ratio'][name]:>8.2f}{fastest[name]:>10.3f}"
              f"{result['ratio_of_min'][name]:>8.2f}{cpu[name]:>10.3f}{result['ratio_of_cpu'][name]:>8.2f}")
    print(f"dash gradient pass: {dash_seconds:.2f} s (median; min {dash_fastest:.2f} s) for {dash_examples} examples, "
          f"{per_example['median']:.2f}x a plain step's time per example ({per_example['min']:.2f}x of minima)")
    write_json(result, args.json)


if __name__ == '__main__':
    main()
