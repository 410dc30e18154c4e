"""Images/s and peak memory of the real entry point, ``launch/train.py RECIPE``, per data path, compiled and not.

    python bench/train_path.py [--recipe yamls/baseline.yaml] [--batch 1024] [--warmup 3] [--steps 10]
        [--paths workers,device,resident] [--compile no,yes] [--model resnet_56] [--workers N] [--json FILE]

Each run calls ``launch/train.py``'s ``main`` in this process with the recipe and these overrides: synthetic
CIFAR-100-shaped data (``data.name=synthetic``), no S3 and no checkpoints, channels-last (Composer's algorithm),
the default precision (bf16 autocast on a GPU, fp32 on the CPU), ``compile=true`` or not, the data path
(``data.augment_on=workers``, ``data.augment_on=device``, ``data.resident=true``), ``warmup + steps`` batches.
The only change to the path: the built Trainer gets a callback that stamps the end of every batch, and its
evaluators are dropped (training throughput only). Images/s count the batches after the warm-up (which pays for
compilation); peak memory is ``torch.cuda.max_memory_allocated`` (GPU only). Runs share the process, so later
compiled runs may reuse Inductor's on-disk cache; ``seconds`` is each run's wall time, compilation included.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

import torch
from common import device_name, write_json  # bench/ is this script's directory, first on sys.path
from throughput import BatchTimes

import recipes.trainer

ROOT = Path(__file__).resolve().parents[1]
PATHS = {'workers': 'data.augment_on=workers', 'device': 'data.augment_on=device', 'resident': 'data.resident=true'}


def run(recipe: str, overrides: list[str]) -> tuple[list[float], float]:
    """Run launch/train.py's main; returns the batch end times and the wall seconds."""
    spec = importlib.util.spec_from_file_location('launch_train', ROOT / 'launch' / 'train.py')
    assert spec and spec.loader
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    timer = BatchTimes()
    build = recipes.trainer.build_trainer

    def build_and_time(cfg):  # noqa: ANN001, ANN202
        trainer = build(cfg)
        trainer.state.callbacks.append(timer)
        trainer.state.evaluators = []
        return trainer

    recipes.trainer.build_trainer = build_and_time  # launch/train.py imports it inside main
    start = time.perf_counter()
    try:
        status = train.main([recipe, *overrides])
    finally:
        recipes.trainer.build_trainer = build
    if status:
        raise SystemExit(f'launch/train.py exited with {status}')
    return timer.times, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--recipe', default=str(ROOT / 'yamls' / 'baseline.yaml'))
    parser.add_argument('--batch', type=int, default=1024)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--paths', default='workers,device,resident')
    parser.add_argument('--compile', default='no,yes', help='no, yes or both (no,yes)')
    parser.add_argument('--model', default=None, help="override the recipe's model.name")
    parser.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()

    on_gpu = torch.cuda.is_available()
    runs = []
    for compiled in [c == 'yes' for c in args.compile.split(',') if c]:
        for path in [p for p in args.paths.split(',') if p]:
            overrides = [
                'data.name=synthetic', 'data.remote=null', 'save_folder=null', 'autoresume=false', 'load_path=null',
                f'data.global_batch_size={args.batch}', f'data.num_workers={args.workers}',
                f'max_duration={args.warmup + args.steps}ba', 'eval_interval=1000ep', 'algorithms={channels_last: {}}',
                f'compile={str(compiled).lower()}', PATHS[path],
            ]
            if args.model:
                overrides.append(f'model.name={args.model}')
            if on_gpu:
                torch.cuda.reset_peak_memory_stats()
            try:
                times, seconds = run(args.recipe, overrides)
            except Exception as e:  # one failed configuration (say, Inductor on a CPU) must not hide the others
                record = {'path': path, 'compile': compiled, 'error': f'{type(e).__name__}: {str(e).splitlines()[0][:300]}'}
                print(json.dumps(record), flush=True)
                runs.append(record)
                continue
            timed = times[args.warmup - 1 :]
            record = {
                'path': path, 'compile': compiled, 'batch': args.batch, 'timed_batches': len(timed) - 1,
                'images_per_s': round(args.batch * (len(timed) - 1) / (timed[-1] - timed[0]), 1),
                'seconds': round(seconds, 1),
            }
            if on_gpu:
                record['peak_memory_gib'] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            print(json.dumps(record), flush=True)
            runs.append(record)
    result = {
        'device': device_name(),
        'recipe': os.path.relpath(args.recipe, ROOT), 'model': args.model or 'recipe', 'channels_last': True,
        'precision': 'amp_bf16' if on_gpu else 'fp32', 'runs': runs,
    }
    print(json.dumps(result))
    write_json(result, args.json)


if __name__ == '__main__':
    main()
