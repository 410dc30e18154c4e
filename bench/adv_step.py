"""Step time of adversarial replay and of online PGD adversarial training, relative to a plain training step.

``python bench/adv_step.py [--model resnet_56] [--batch_size 64] [--replay_fraction 0.25] [--pgd_steps 7]
[--rounds 5] [--steps 3] [--out FILE.json]``
(``--pgd_steps 0`` leaves out the slow online PGD step, e.g. when timing replay alone)

One process, one model architecture, one batch size. Three training steps (forward, backward, SGD step):

* ``plain``: the clean batch;
* ``replay``: the clean batch plus ``round(replay_fraction * batch_size)`` examples read from an MDS bank by index,
  with auxiliary BatchNorms (what :class:`algorithms.AdversarialReplay` does each step);
* ``pgd``: online adversarial training, ``pgd_steps`` PGD steps on the batch, then a step on the result;
* ``rows``: a plain step on as many rows as a replay step (clean batch plus the replayed count), main BatchNorms
  only: the floor of replay, whose own overhead is ``replay / rows``.

The three run in interleaved rounds (so a change in machine load hits all of them) and each reports its median.
Prints a table and the JSON record (also written to ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
from collections.abc import Callable

import torch
import torch.nn.functional as F
from common import timed, write_json  # bench/ is this script's directory, first on sys.path

from algorithms.adversarial_replay.bank import AdversarialBank, BankPart, finish_bank
from algorithms.adversarial_replay.pgd import pgd
from algorithms.adversarial_replay.replay import (
    add_aux_batchnorms,
    append_replay,
    draw_bank_indices,
    replay_count,
    route_to_aux,
)
from recipes.core.model import resnet_cifar

BANK_SIZE = 512


def make_bank(folder: str, num_classes: int) -> AdversarialBank:
    with BankPart(folder, 0, (3, 32, 32)) as part:
        part.write(torch.rand(BANK_SIZE, 3, 32, 32), torch.randint(0, num_classes, (BANK_SIZE,)), torch.arange(BANK_SIZE), 0)
    finish_bank(folder, 1, {'num_classes': num_classes, 'image_shape': [3, 32, 32], 'checkpoints': ['bench']})
    return AdversarialBank(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='resnet_56')
    parser.add_argument('--num_classes', type=int, default=100)
    parser.add_argument('--batch_size', type=int, default=64)
    parser.add_argument('--replay_fraction', type=float, default=0.25)
    parser.add_argument('--pgd_steps', type=int, default=7, help='0 skips the online PGD step')
    parser.add_argument('--rounds', type=int, default=5, help='interleaved rounds; each times --steps steps per method')
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--out', default=None)
    args = parser.parse_args()

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    torch.manual_seed(0)
    images = torch.rand(args.batch_size, 3, 32, 32)
    labels = torch.randint(0, args.num_classes, (args.batch_size,))
    indices = torch.arange(args.batch_size)

    plain_model = resnet_cifar(args.model, args.num_classes).module.to(device).train()
    replay_model = copy.deepcopy(plain_model)
    duals = add_aux_batchnorms(replay_model)
    pgd_model = copy.deepcopy(plain_model)
    rows_model = copy.deepcopy(plain_model)
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
                  for name, m in (('plain', plain_model), ('replay', replay_model), ('pgd', pgd_model), ('rows', rows_model))}

    def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    with tempfile.TemporaryDirectory() as folder:
        bank = make_bank(f'{folder}/bank', args.num_classes)
        count = replay_count(args.batch_size, args.replay_fraction)
        step_number = iter(range(1 << 30))

        def plain() -> None:
            train_step(plain_model, optimizers['plain'], images.to(device), labels.to(device))

        def replay() -> None:
            drawn = draw_bank_indices(len(bank), count, seed=0, rank=0, batch=next(step_number))
            x, y, _ = append_replay((images, labels, indices), *bank.examples(drawn.tolist()), drawn)
            route_to_aux(duals, count)
            train_step(replay_model, optimizers['replay'], x.to(device), y.to(device))
            route_to_aux(duals, 0)

        more_images = torch.cat([images, torch.rand(count, 3, 32, 32)])
        more_labels = torch.cat([labels, torch.randint(0, args.num_classes, (count,))])

        def rows() -> None:
            train_step(rows_model, optimizers['rows'], more_images.to(device), more_labels.to(device))

        def online_pgd() -> None:
            x, y = images.to(device), labels.to(device)
            x_adv = pgd(pgd_model, x, y, eps=8 / 255, step_size=2 / 255, steps=args.pgd_steps)
            train_step(pgd_model, optimizers['pgd'], x_adv, y)

        methods: dict[str, Callable[[], None]] = {'plain': plain, 'rows': rows, 'replay': replay}
        if args.pgd_steps:
            methods['pgd'] = online_pgd
        for fn in methods.values():  # warm-up
            fn()
        times: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(args.rounds):
            for name, fn in methods.items():
                for _ in range(args.steps):
                    times[name].append(timed(fn, device))

    median = {name: statistics.median(t) for name, t in times.items()}
    record = {
        'model': args.model, 'num_classes': args.num_classes, 'batch_size': args.batch_size,
        'replay_fraction': args.replay_fraction, 'replayed_per_step': count, 'pgd_steps': args.pgd_steps,
        'device': torch.cuda.get_device_name() if device.type == 'cuda' else f'cpu ({torch.get_num_threads()} threads)',
        'steps_timed': args.rounds * args.steps,
        'step_seconds': median,
        'ratio_to_plain': {name: median[name] / median['plain'] for name in median},
        'replay_over_rows': median['replay'] / median['rows'],
    }
    print(f'{"step":<8} {"seconds":>8} {"x plain":>8}')
    for name in methods:
        print(f'{name:<8} {median[name]:>8.3f} {record["ratio_to_plain"][name]:>8.2f}')
    print(json.dumps(record, indent=1))
    write_json(record, args.out)


if __name__ == '__main__':
    main()
