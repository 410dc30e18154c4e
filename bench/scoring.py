"""Scoring throughput (GraNd, EL2N, a per-example loop) against training, and the per-step cost of the curriculum
sampler and the record_scores callback; resnet_56, 100 classes, one batch size, one machine, one run.

    python bench/scoring.py [--batch 64] [--rounds 3] [--json out.json]

The four throughputs are measured in interleaved rounds (median of ``--rounds``), so a machine whose load changes
during the run affects them alike. Goals (2-core CPU): GraNd >= 0.4x training and >= 1.7x the loop; EL2N >= 2x
training; the curriculum sampler and record_scores each add under 2% and 3% to a training step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from common import device_name, timed, write_json  # bench/ is this script's directory, first on sys.path

from algorithms.curriculum.curriculum import CurriculumSampler
from algorithms.curriculum.grand import el2n, per_example_grad_norms
from algorithms.curriculum.record_scores import RecordScores
from recipes.core.model import resnet_cifar

CIFAR_TRAIN = 50_000


def loop_norms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The baseline GraNd replaces: one forward and backward per example."""
    norms = []
    for i in range(len(x)):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        norms.append(torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters())))
    return torch.stack(norms)


def sampler_seconds_per_step(batch: int, epochs: int = 3) -> float:
    """Index generation of the curriculum sampler on CIFAR-100-sized data, per training step."""
    order = np.random.default_rng(0).permutation(CIFAR_TRAIN)
    sampler = CurriculumSampler(
        range(CIFAR_TRAIN), order, batch_size=batch, max_duration='160ep', pacing='linear', start_fraction=0.2,
        full_at=0.8, num_replicas=1, rank=0, seed=0,
    )
    start = time.perf_counter()
    for epoch in (0, 60, 150)[:epochs]:  # small, growing and full pools
        sampler.set_epoch(epoch)
        for _ in sampler:
            pass
    return (time.perf_counter() - start) / (epochs * sampler.steps_per_epoch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    torch.manual_seed(0)
    trained = resnet_cifar('resnet_56', 100).to(device)
    scorer = resnet_cifar('resnet_56', 100).module.to(device).eval()
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 100, (args.batch,), device=device)
    indices = torch.arange(args.batch, device=device)
    callback = RecordScores(CIFAR_TRAIN)
    logits = trained((x, y, indices)).detach()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        trained.loss(trained((x, y, indices)), (x, y)).backward()
        optimizer.step()

    def el2n_batch() -> None:
        with torch.no_grad():
            el2n(scorer(x), y)

    def record() -> None:
        for _ in range(20):
            callback.after_forward(SimpleNamespace(batch=(x, y, indices), outputs=logits), None)  # type: ignore[arg-type]

    work = {
        'train': train_step,
        'grand': lambda: per_example_grad_norms(scorer, x, y),
        'el2n': el2n_batch,
        'loop': lambda: loop_norms(scorer, x, y),
        'record_scores_x20': record,
    }
    for fn in work.values():  # warm-up: allocator, kernels, vmap tracing
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(args.rounds):
        for name, fn in work.items():
            seconds[name].append(timed(fn, device))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    rate = {name: args.batch / median[name] for name in ('train', 'grand', 'el2n', 'loop')}
    step = median['train']
    sampler = sampler_seconds_per_step(args.batch)
    result = {
        'device': device_name(),
        'model': 'resnet_56/100',
        'batch': args.batch,
        'rounds': args.rounds,
        'images_per_s': {name: round(value, 1) for name, value in rate.items()},
        'grand_over_train': round(rate['grand'] / rate['train'], 2),
        'grand_over_loop': round(rate['grand'] / rate['loop'], 2),
        'el2n_over_train': round(rate['el2n'] / rate['train'], 2),
        'train_step_s': round(step, 4),
        'sampler_s_per_step': round(sampler, 6),
        'sampler_overhead': round(sampler / step, 5),
        'record_scores_s_per_step': round(median['record_scores_x20'] / 20, 6),
        'record_scores_overhead': round(median['record_scores_x20'] / 20 / step, 5),
        'goals': {'grand_over_train': 0.4, 'grand_over_loop': 1.7, 'el2n_over_train': 2.0, 'sampler_overhead': 0.02,
                  'record_scores_overhead': 0.03},
    }
    print(json.dumps(result))
    print(f"{'what':<34}{'images/s':>10}{'x training':>12}")
    for name, label in (('train', 'resnet_56 training step'), ('grand', 'GraNd, vmap(grad)'), ('el2n', 'EL2N, eval forward'),
                        ('loop', 'GraNd, per-example loop')):
        print(f'{label:<34}{rate[name]:>10.1f}{rate[name] / rate["train"]:>12.2f}')
    print(f"GraNd / loop = {result['grand_over_loop']}x (goal >= 1.7x)")
    print(f"curriculum sampler: {sampler * 1e3:.3f} ms/step = {100 * result['sampler_overhead']:.3f}% of a step (goal < 2%)")
    print(f"record_scores: {result['record_scores_s_per_step'] * 1e3:.3f} ms/step = "
          f"{100 * result['record_scores_overhead']:.3f}% of a step (goal < 3%)")
    write_json(result, args.json)


if __name__ == '__main__':
    main()
