"""Training throughput of resnet_56 on in-memory tensors, of the augmented MDS training loader, and of the full
Trainer step fed by each data path, on one machine, one run.

    python bench/throughput.py [--batch 64] [--steps 12] [--workers N] [--channels_last] [--compile]
        [--paths workers,device,resident] [--trainer_steps 8] [--model resnet_56] [--json out.json]

* synthetic: a training step on CIFAR-100-shaped tensors already in memory (fp32 on CPU, bf16 autocast on GPU);
* loader: the augmented MDS loader alone (workers), through the DataLoader the Trainer uses. Goal: >= 5x training;
* trainer_<path>: ``recipes.trainer.build_trainer`` on the synthetic MDS split (``data.name=synthetic``), the whole
  Trainer step (loading, augmentation, device move, forward, backward, optimizer), one per data path:
  ``workers`` (augmentation in loader workers), ``device`` (``data.augment_on=device``), ``resident``
  (``data.resident=true``). Timed from the end of the warm-up batches to the last batch (evaluation is left out);
  ``trainer_<path>_over_synthetic`` is the share of the in-memory speed the real step keeps.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
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
    """Images/s of the full Trainer step on the synthetic MDS split fed by data ``path``, and its peak memory."""
    overrides = [
        'data.name=synthetic', f'model.name={model_name}', f'data.global_batch_size={batch}',
        f'data.num_workers={workers}', f'max_duration={warmup + steps}ba', 'scheduler.name=constant',
        'save_folder=null', 'callbacks={}', 'eval_interval=1000ep',
        {'workers': 'data.augment_on=workers', 'device': 'data.augment_on=device', 'resident': 'data.resident=true'}[path],
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
                        help='data paths of the full Trainer step to time, comma-separated; empty for none')
    parser.add_argument('--trainer_steps', type=int, default=8, help='timed Trainer batches per path (after 3 warm-up)')
    parser.add_argument('--loader_batches', type=int, default=40)
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    train = training_throughput(args.batch, args.steps, device, args.channels_last, args.compile, args.model)
    load = loader_throughput(args.batch, args.workers, batches=args.loader_batches)
    paths = [p for p in args.paths.split(',') if p]
    trainer = {p: trainer_throughput(p, args.batch, args.trainer_steps, args.workers, args.channels_last, args.compile,
                                     args.model) for p in paths}
    result = {
        'device': torch.cuda.get_device_name() if device.type == 'cuda' else f'cpu x{os.cpu_count()}',
        'model': args.model,
        'batch': args.batch,
        'channels_last': args.channels_last,
        'compile': args.compile,
        'loader_workers': args.workers,
        'train_images_per_s': round(train, 1),
        'loader_images_per_s': round(load, 1),
        'loader_over_train': round(load / train, 2),
        'goal_loader_over_train': 5.0,
    }
    for p, r in trainer.items():
        result[f'trainer_{p}_images_per_s'] = round(r['images_per_s'], 1)
        result[f'trainer_{p}_over_synthetic'] = round(r['images_per_s'] / train, 3)
        if 'peak_memory_gib' in r:
            result[f'trainer_{p}_peak_memory_gib'] = round(r['peak_memory_gib'], 2)
    print(json.dumps(result))
    print(f"{'what':<28}{'images/s':>12}")
    print(f"{args.model + ' training step':<28}{train:>12.1f}")
    print(f"{'augmented MDS loader':<28}{load:>12.1f}")
    for p, r in trainer.items():
        print(f"{'Trainer step, ' + p:<28}{r['images_per_s']:>12.1f}   {r['images_per_s'] / train:.2f}x synthetic")
    print(f"loader / training = {load / train:.1f}x (goal >= 5x)")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
