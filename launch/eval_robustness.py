"""Clean and PGD accuracy of a past run's checkpoint on its test split.

``python launch/eval_robustness.py --run RUN --checkpoint ep8 [--eps 8/255] [--steps 10] [--step_size 2/255]
[--num_samples N] [--json OUT] [--debug]``
"""

from __future__ import annotations

import argparse
import json

from recipes.cli import ArgumentParser, arg_type, run_cli
from recipes.core.artifacts import CheckpointList, PastRunFolder
from recipes.core.rules import SEED, Location, Number, PixelValue, named


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', required=True, type=arg_type(PastRunFolder()), help='past run folder or s3:// URI')
    parser.add_argument('--checkpoint', type=arg_type(CheckpointList(single=True)), default='latest',
                        help='checkpoint name: latest (default), epN, a file or a URI')
    parser.add_argument('--eps', type=arg_type(PixelValue()), default='8/255',
                        help='L-inf radius in pixel units (default 8/255)')
    parser.add_argument('--step_size', type=arg_type(PixelValue(optional=True)), default=None,
                        help='PGD step, at most eps (default eps/4)')
    parser.add_argument('--steps', type=arg_type(Number(1, 10_000, integer=True)), default=10,
                        help='PGD steps (default 10)')
    parser.add_argument('--num_samples', type=arg_type(Number(1, 10**9, integer=True, optional=True)), default=None,
                        help='first N test images (default: all)')
    parser.add_argument('--batch_size', type=arg_type(Number(1, 1_000_000, integer=True)), default=256,
                        help='images attacked at once')
    parser.add_argument('--seed', type=arg_type(SEED), default=0, help='seed of the random starts')
    parser.add_argument('--json', type=arg_type(Location(optional=True)), default=None,
                        help='also write the numbers to this JSON file (local or s3://)')
    args = parser.parse_args(argv)

    from algorithms.adversarial_replay.pgd import ATTACK_TIES
    from recipes.core.ties import Values

    eps = args.eps
    step_size = eps / 4 if args.step_size is None else args.step_size
    ATTACK_TIES.check(Values({'eps': eps, 'step_size': step_size}))  # a step larger than eps: the two together

    import torch
    from tqdm import tqdm

    from algorithms.adversarial_replay.pgd import robust_accuracy
    from algorithms.past_run import PastRun
    from recipes.core import storage
    from recipes.core.data import MDSImageDataset, resolve_root
    from recipes.core.errors import UsageError

    past = PastRun(args.run)
    [checkpoint] = args.checkpoint.pick(past)
    named('--checkpoint', past.resolve, checkpoint)  # the run holds it
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model = past.load(checkpoint, device=device)
    data = past.config['data']
    test = MDSImageDataset(resolve_root(data['name'], data.get('remote')), 'test', past.num_classes,
                          resolution=data.get('resolution'))
    count = len(test) if args.num_samples is None else args.num_samples
    if not 0 < count <= len(test):
        raise UsageError(f'--num_samples={count} is out of range: the test split has {len(test)} images')

    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(test, range(count)), batch_size=args.batch_size)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    clean = adversarial = 0
    for images, labels, _ in tqdm(loader, desc='attacking', unit='batch'):
        c, a = robust_accuracy(model, images, labels, eps, step_size, args.steps, args.batch_size, generator)
        clean, adversarial = clean + c, adversarial + a
    result = {
        'run': args.run, 'checkpoint': checkpoint, 'num_samples': count,
        'attack': {'name': 'pgd_linf', 'eps': eps, 'step_size': step_size, 'steps': args.steps, 'random_start': True},
        'clean_accuracy': clean / count, 'pgd_accuracy': adversarial / count,
    }
    print(f'{"checkpoint":<12} {"samples":>8} {"eps*255":>8} {"steps":>6} {"clean":>7} {"pgd":>7}')
    print(f'{checkpoint:<12} {count:>8} {eps * 255:>8.2f} {args.steps:>6} '
          f'{result["clean_accuracy"]:>7.4f} {result["pgd_accuracy"]:>7.4f}')
    if args.json:
        storage.write_bytes(args.json, json.dumps(result, indent=1).encode())
    return 0


if __name__ == '__main__':
    run_cli(main)
