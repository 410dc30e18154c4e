"""Training throughput of resnet_56 and throughput of the augmented MDS training loader, on one machine, one run.

    python bench/throughput.py [--batch 64] [--steps 12] [--workers N] [--json out.json]

Training runs on synthetic CIFAR-100-shaped data (fp32 on CPU, bf16 autocast on GPU); the loader reads the same
synthetic MDS split with augmentation, through the DataLoader the Trainer uses. Goal: loader >= 5x training.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from recipes.core.data import MDSImageDataset, build_loader, resolve_root
from recipes.core.model import resnet_cifar


def training_throughput(batch: int, steps: int, device: torch.device, channels_last: bool = False) -> float:
    model = resnet_cifar('resnet_56', 100).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.rand(batch, 3, 32, 32, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 100, (batch,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == 'cuda')

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = model.loss(model((x, y)), (x, y))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--steps', type=int, default=12)
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--channels_last', action='store_true', help='NHWC model and inputs (faster on GPUs)')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    train = training_throughput(args.batch, args.steps, device, args.channels_last)
    load = loader_throughput(args.batch, args.workers, batches=40)
    result = {
        'device': torch.cuda.get_device_name() if device.type == 'cuda' else f'cpu x{os.cpu_count()}',
        'batch': args.batch,
        'channels_last': args.channels_last,
        'loader_workers': args.workers,
        'train_images_per_s': round(train, 1),
        'loader_images_per_s': round(load, 1),
        'loader_over_train': round(load / train, 2),
        'goal_loader_over_train': 5.0,
    }
    print(json.dumps(result))
    print(f"{'what':<28}{'images/s':>12}")
    print(f"{'resnet_56 training step':<28}{train:>12.1f}")
    print(f"{'augmented MDS loader':<28}{load:>12.1f}")
    print(f"loader / training = {load / train:.1f}x (goal >= 5x)")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
