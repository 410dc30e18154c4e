"""Step time of past-run distillation, of the checkpoint-mixup teacher and of distillation from a teacher cache,
relative to the plain step, one run.

    python bench/kd_step.py [--batch 64] [--steps 8] [--rounds 3] [--json out.json]

Five Trainers (plain, ``past_run_distillation``, ``checkpoint_mixup_teacher`` over 4 checkpoints, and, with the
device augmentation, plain and ``past_run_distillation`` reading a teacher cache) are built by the recipe code on
synthetic CIFAR-100-shaped data with resnet_56 (fp32 on CPU, bf16 autocast on GPU), and fitted in turn, ``--steps``
batches at a time for ``--rounds`` rounds, so machine load drifts over all alike. A step is ``BATCH_START`` to
``BATCH_END`` (data loading and the device augmentation, at ``AFTER_DATALOADER``, excluded); the first round is
warm-up. Ratios are of medians, and of minima (the better estimate on a machine shared with other jobs), the cached
row's to the plain step with the device augmentation. The teachers are resnet_56 checkpoints with random weights in
a throw-away run folder: their cost does not depend on their weights. The cache is built first (one view per
example of the 50,000, top 10 of 100 logits) from a resnet_20 of random weights, which makes it quicker to build;
reading it costs the same whatever the teacher was. Goals on a 2-core CPU, resnet_56, batch 64: distillation <=
1.40x, mixup teacher <= 1.75x, cached distillation <= 1.05x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch
from common import device_name, write_json, write_teacher_run  # bench/ is this script's directory, first on sys.path
from composer import Trainer
from composer.core import Callback, Event, State
from composer.loggers import Logger

from algorithms.distillation import build_cache
from algorithms.past_run import PastRun
from recipes.config import load_config
from recipes.trainer import build_trainer

GOALS = {'past_run_distillation': 1.40, 'checkpoint_mixup_teacher': 1.75, 'cached_distillation': 1.05}
REFERENCE = {'past_run_distillation': 'plain', 'checkpoint_mixup_teacher': 'plain', 'cached_distillation': 'plain_device'}


class StepTimer(Callback):
    """Wall time of each training batch, from BATCH_START to BATCH_END."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def run_event(self, event: Event, state: State, logger: Logger) -> None:
        if event in (Event.BATCH_START, Event.BATCH_END) and torch.cuda.is_available():
            torch.cuda.synchronize()
        if event == Event.BATCH_START:
            self._start = time.perf_counter()
        elif event == Event.BATCH_END:
            self.times.append(time.perf_counter() - self._start)


def build(batch: int, algorithm: list[str]) -> tuple[Trainer, StepTimer]:
    cfg = load_config(None, [
        'model.name=resnet_56', 'data.name=synthetic', f'data.global_batch_size={batch}', 'data.num_workers=0',
        'max_duration=1000ba', 'scheduler.name=constant', 'callbacks={}', *algorithm,
    ])
    trainer = build_trainer(cfg)
    trainer.state.evaluators = []  # the bench times training steps only
    timer = StepTimer()
    trainer.state.callbacks.append(timer)
    return trainer, timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--steps', type=int, default=8, help='batches per trainer per round')
    parser.add_argument('--rounds', type=int, default=3, help='rounds; the first one is warm-up')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as run, tempfile.TemporaryDirectory() as small:
        write_teacher_run(run, epochs=4)
        write_teacher_run(small, epochs=1, model='resnet_20', data='synthetic')
        cache = f'{small}/cache'
        build_cache(PastRun(small), ['latest'], cache, top_k=10, views=1)
        variants = {
            'plain': [],
            'past_run_distillation': [
                f'algorithms.past_run_distillation.run={run}', 'algorithms.past_run_distillation.checkpoint=latest',
            ],
            'checkpoint_mixup_teacher': [
                f'algorithms.checkpoint_mixup_teacher.run={run}',
                'algorithms.checkpoint_mixup_teacher.checkpoints=[ep1,ep2,ep3,ep4]',
            ],
            'plain_device': ['data.augment_on=device'],
            'cached_distillation': [
                'data.augment_on=device', f'algorithms.past_run_distillation.run={small}',
                'algorithms.past_run_distillation.checkpoint=latest', f'algorithms.past_run_distillation.cache={cache}',
            ],
        }
        runs = {name: build(args.batch, overrides) for name, overrides in variants.items()}
        for _ in range(args.rounds):
            for trainer, _timer in runs.values():
                trainer.fit(duration=f'{args.steps}ba')
        for trainer, _timer in runs.values():
            trainer.close()

    timed = {name: timer.times[args.steps:] for name, (_trainer, timer) in runs.items()}
    step = {name: statistics.median(times) for name, times in timed.items()}
    fastest = {name: min(times) for name, times in timed.items()}
    ratio = {name: step[name] / step[REFERENCE[name]] for name in GOALS}
    ratio_fastest = {name: fastest[name] / fastest[REFERENCE[name]] for name in GOALS}
    result = {
        'device': device_name(),
        'model': 'resnet_56',
        'batch': args.batch,
        'timed_steps': args.steps * (args.rounds - 1),
        'step_s': {name: round(s, 4) for name, s in step.items()},
        'ratio': {name: round(r, 3) for name, r in ratio.items()},
        'step_min_s': {name: round(s, 4) for name, s in fastest.items()},
        'ratio_of_min': {name: round(r, 3) for name, r in ratio_fastest.items()},
        'goal': GOALS,
    }
    print(json.dumps(result))
    print(f"{'step':<28}{'median s':>10}{'ratio':>8}{'min s':>10}{'ratio':>8}{'goal':>8}")
    for name in ('plain', 'plain_device'):
        print(f"{name:<28}{step[name]:>10.3f}{1.0:>8.2f}{fastest[name]:>10.3f}{1.0:>8.2f}{'':>8}")
    for name, goal in GOALS.items():
        print(f'{name:<28}{step[name]:>10.3f}{ratio[name]:>8.2f}{fastest[name]:>10.3f}{ratio_fastest[name]:>8.2f}{goal:>8.2f}')
    write_json(result, args.json)


if __name__ == '__main__':
    main()
