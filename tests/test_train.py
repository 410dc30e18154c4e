"""End to end: launch/train.py on the real digits data, one and two ranks, local and S3 run folders."""

import os

import torch
from conftest import TINY, run_cli, train_in_process

from algorithms.past_run import load_checkpoint_state
from recipes.config import load_config
from recipes.core import storage
from recipes.core.run_files import read_history

RECIPE = 'yamls/digits/baseline.yaml'


def weights(uri):
    return load_checkpoint_state(uri)['model']


def test_train_writes_a_self_describing_run_folder(tmp_path):
    folder = tmp_path / 'run'
    result = run_cli('train.py', RECIPE, *TINY, f'save_folder={folder}', 'seed=5')
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(result.stdout.split('final test accuracy:')[1].split()[0])
    assert 0.0 <= accuracy <= 1.0
    assert {'config.yaml', 'metrics.json', 'ep0-ba2-rank0.pt', 'ep0-ba4-rank0.pt'} <= set(os.listdir(folder))
    saved = load_config(str(folder / 'config.yaml'))
    assert (saved.seed, saved.model.name, saved.model.num_classes, saved.precision) == (5, 'resnet_20', 10, 'fp32')
    history = read_history(str(folder))
    assert history['finished'] and history['eval'][-1]['batch'] == 4
    assert abs(history['eval'][-1]['accuracy'] - accuracy) < 1e-4


def test_two_ranks_split_each_epoch(tmp_path):
    folder = tmp_path / 'run2'
    result = run_cli(
        'train.py', RECIPE, *TINY, f'save_folder={folder}', 'max_duration=1ep', 'save_interval=1ep',
        'eval_interval=1ep', 'data.global_batch_size=128', 'data.holdout=0', ranks=2,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    timestamp = load_checkpoint_state(str(folder / 'ep1-ba11-rank0.pt'))['timestamp']['Timestamp']
    # 1,437 digits in batches of 128 (64 per rank): one epoch is 11 batches of the whole split, counted once
    assert (timestamp['epoch'], timestamp['batch'], timestamp['sample']) == (1, 11, 11 * 128)
    assert 'final test accuracy' in result.stdout


def test_s3_checkpoints_and_autoresume_continue_exactly(tmp_path, s3_bucket):
    reference = tmp_path / 'reference'
    train_in_process(f'save_folder={reference}', 'run_name=ref')
    run = f'{s3_bucket}/runs/digits-s3'
    common = [*TINY, f'save_folder={run}', 'run_name=digits-s3', 'autoresume=true']
    first = run_cli('train.py', RECIPE, *common, 'max_duration=2ba')
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli('train.py', RECIPE, *common)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {'config.yaml', 'metrics.json', 'ep0-ba2-rank0.pt', 'ep0-ba4-rank0.pt'} <= set(storage.list_names(run))
    resumed, uninterrupted = weights(f'{run}/ep0-ba4-rank0.pt'), weights(str(reference / 'ep0-ba4-rank0.pt'))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    assert (read_history(run)['resumed_at'], read_history(str(reference))['resumed_at']) == ([2], [])


def test_bad_data_path_and_unreachable_endpoint_exit_with_one_line(tmp_path):
    missing = run_cli('train.py', RECIPE, *TINY, f'data.remote={tmp_path}/none')
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f'error: data.remote={tmp_path}/none: no MDS split at {tmp_path}/none/train ({tmp_path}/none/train/index.json is missing): convert CIFAR-100 '
        'with `python launch/convert_cifar100.py --in_root DIR --out_root ROOT`, or set data.name to digits',
    ]
    unreachable = run_cli(
        'train.py', RECIPE, *TINY, 'save_folder=s3://bucket/run', env={'S3_ENDPOINT_URL': 'http://127.0.0.1:9'},
    )
    assert unreachable.returncode == 2
    [line] = unreachable.stderr.strip().splitlines()
    assert line.startswith('error: cannot reach S3 endpoint http://127.0.0.1:9 for s3://bucket/run')
