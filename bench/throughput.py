"""Training throughput of resnet_56 on in-memory tensors, of the augmented MDS training loader, and of the full
Trainer step fed by each data path, on one machine, one run.

    python bench/throughput.py [--batch 64] [--steps 12] [--workers N] [--channels_last] [--compile]
        [--paths workers,device,resident] [--trainer_steps 8] [--rounds 3] [--model resnet_56] [--json out.json]

* synthetic: a bare training step (forward, loss, backward, SGD) on CIFAR-100-shaped tensors already in memory
  (fp32 on CPU, bf16 autocast on GPU), no Trainer;
* loader: the augmented MDS loader alone (workers), through the DataLoader the Trainer uses. Goal: >= 5x training;
* trainer_memory: ``recipes.trainer.build_trainer``'s Trainer fed batches that already sit in memory (on the device,
  normalised): the whole Trainer step with no data work at all, the reference the data paths are held to;
* trainer_<path>: the same Trainer on the synthetic MDS split (``data.name=synthetic``), fed by data ``path``:
  ``workers`` (augmentation in loader workers), ``device`` (``data.augment_on=device``), ``resident``
  (``data.resident=true``). ``trainer_<path>_over_memory`` is the share of the no-data speed a path keeps: what the
  data costs. ``trainer_<path>_over_synthetic`` also counts the Trainer's own work (events, train metrics).

Trainer steps are timed from the end of the warm-up batches to the last batch (evaluation is left out). The bare
step and the Trainer runs go in ``--rounds`` interleaved rounds (so a change in machine load hits all of them); each
reports its median images/s, and each ratio is the median of the rounds' own ratios.
Goal: with the best path, the Trainer step keeps >= 0.95 of the no-data Trainer step (data costs nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from common import device_name, write_json  # bench/ is this script's directory, first on sys.path
from composer.core import Callback, State
from composer.loggers import Logger

from recipes.config import load_config
from recipes.core.data import MDSImageDataset, build_loader, resolve_root
from recipes.core.model import resnet_cifar
from recipes.trainer import build_trainer


def training_throughput(batch: int, steps: int, device: torch.device, channels_last: bool = False,
                        compile: bool = False, model_name: str = 'resnet_56') -> float:
    model = resnet_cifar(model_name, 100).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.rand(batch, 3, 32, 32, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 100, (batch,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == 'cuda')

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = model.loss(forward((x, y)), (x, y))
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def loader_throughput(batch: int, workers: int, batches: int) -> float:
    dataset = MDSImageDataset(resolve_root('synthetic', None), 'train', 100, augment=True)
    loader = build_loader(dataset, batch, shuffle=True, drop_last=True, num_workers=workers, seed=0)
    it = iter(loader)
    next(it)  # worker start-up is paid once per run, not per batch
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(next(it)[0])
    return seen / (time.perf_counter() - start)


class BatchTimes(Callback):
    """perf_counter at the end of every training batch (after a device sync)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def batch_end(self, state: State, logger: Logger) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


def trainer_throughput(path: str, batch: int, steps: int, workers: int, channels_last: bool = False,
                       compile: bool = False, model_name: str = 'resnet_56', warmup: int = 3) -> dict[str, float]:
    """Images/s of the full Trainer step fed by data ``path`` (``memory``: batches already on the device), and its
    peak memory."""
    overrides = [
        'data.name=synthetic', f'model.name={model_name}', f'data.global_batch_size={batch}',
        f'data.num_workers={workers}', f'max_duration={warmup + steps}ba', 'scheduler.name=constant',
        'save_folder=null', 'callbacks={}', 'eval_interval=1000ep',
        {'workers': 'data.augment_on=workers', 'device': 'data.augment_on=device', 'resident': 'data.resident=true',
         'memory': 'data.augment_on=workers'}[path],
    ]
    if channels_last:
        overrides.append('algorithms={channels_last: {}}')
    if compile:
        overrides.append('compile=true')
    trainer = build_trainer(load_config(None, overrides))
    trainer.state.evaluators = []  # time training only
    timer = BatchTimes()
    trainer.state.callbacks.append(timer)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if path == 'memory':  # the MDS loader is built but never iterated: no worker starts
        device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
        batches = [[torch.rand(batch, 3, 32, 32, device=device), torch.randint(0, 100, (batch,), device=device),
                    torch.arange(batch, device=device)] for _ in range(warmup + steps)]
        trainer.fit(train_dataloader=batches)
    else:
        trainer.fit()
    trainer.close()
    timed = timer.times[warmup - 1 :]
    result = {'images_per_s': batch * (len(timed) - 1) / (timed[-1] - timed[0])}
    if torch.cuda.is_available():
        result['peak_memory_gib'] = torch.cuda.max_memory_allocated() / 2**30
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--steps', type=int, default=12)
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--channels_last', action='store_true', help='NHWC model and inputs (faster on GPUs)')
    parser.add_argument('--compile', action='store_true', help='torch.compile the model (Trainer: compile=true)')
    parser.add_argument('--model', default='resnet_56')
    parser.add_argument('--paths', default='workers,device,resident',
                        help='data paths of the full Trainer step to time, comma-separated, beside the no-data one')
    parser.add_argument('--trainer_steps', type=int, default=8, help='timed Trainer batches per path (after 3 warm-up)')
    parser.add_argument('--rounds', type=int, default=3, help='interleaved rounds of the synthetic step and each path')
    parser.add_argument('--loader_batches', type=int, default=40)
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    paths = ['memory', *(p for p in args.paths.split(',') if p and p != 'memory')]
    train: list[float] = []
    trainer: dict[str, list[dict[str, float]]] = {p: [] for p in paths}
    for _ in range(args.rounds):
        train.append(training_throughput(args.batch, args.steps, device, args.channels_last, args.compile, args.model))
        for p in paths:
            trainer[p].append(trainer_throughput(p, args.batch, args.trainer_steps, args.workers, args.channels_last,
                                                 args.compile, args.model))
    load = loader_throughput(args.batch, args.workers, batches=args.loader_batches)
    train_median = statistics.median(train)
    result = {
        'device': device_name(),
        'model': args.model,
        'batch': args.batch,
        'channels_last': args.channels_last,
        'compile': args.compile,
        'rounds': args.rounds,
        'loader_workers': args.workers,
        'train_images_per_s': round(train_median, 1),
        'train_images_per_s_rounds': [round(t, 1) for t in train],
        'loader_images_per_s': round(load, 1),
        'loader_over_train': round(load / train_median, 2),
        'goal_loader_over_train': 5.0,
        'goal_trainer_over_memory': 0.95,
    }
    ratios: dict[str, float] = {}
    for p, rounds in trainer.items():
        per_round = zip(rounds, trainer['memory'], strict=True)
        ratios[p] = statistics.median(r['images_per_s'] / m['images_per_s'] for r, m in per_round)
        result[f'trainer_{p}_images_per_s'] = round(statistics.median(r['images_per_s'] for r in rounds), 1)
        result[f'trainer_{p}_images_per_s_rounds'] = [round(r['images_per_s'], 1) for r in rounds]
        result[f'trainer_{p}_over_synthetic'] = round(
            statistics.median(r['images_per_s'] / t for r, t in zip(rounds, train, strict=True)), 3)
        if p != 'memory':
            result[f'trainer_{p}_over_memory'] = round(ratios[p], 3)
        if 'peak_memory_gib' in rounds[0]:
            result[f'trainer_{p}_peak_memory_gib'] = round(max(r['peak_memory_gib'] for r in rounds), 2)
    print(json.dumps(result))
    print(f"{'what':<28}{'images/s':>12}")
    print(f"{args.model + ' training step':<28}{train_median:>12.1f}")
    print(f"{'augmented MDS loader':<28}{load:>12.1f}")
    for p in paths:
        print(f"{'Trainer step, ' + p:<28}{result[f'trainer_{p}_images_per_s']:>12.1f}   "
              f"{result[f'trainer_{p}_over_synthetic']:.2f}x bare step, {ratios[p]:.2f}x no-data Trainer step")
    best = max((r for p, r in ratios.items() if p != 'memory'), default=float('nan'))
    print(f"loader / training = {load / train_median:.1f}x (goal >= 5x); best data path / no-data Trainer step = "
          f"{best:.2f}x (goal >= 0.95x)")
    write_json(result, args.json)


if __name__ == '__main__':
    main()
