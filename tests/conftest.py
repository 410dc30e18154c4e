"""Shared fixtures: a real S3 server on loopback, a digits data cache, a small past run, and CLI runners."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A few batches of resnet_20 on digits, single process, no worker processes: the smallest real run.
TINY = [
    'model.name=resnet_20',
    'data.name=digits',
    'data.global_batch_size=32',
    'data.eval_batch_size=360',
    'data.holdout=144',  # the digits recipes' validation split, so recipes and the runs tests make reuse each other
    'data.num_workers=0',
    'max_duration=4ba',
    'eval_interval=4ba',
    'save_interval=2ba',
    'scheduler.name=constant',
    'optimizer.lr=0.05',
    'callbacks={}',
]


@pytest.fixture(scope='session', autouse=True)
def _environment(tmp_path_factory: pytest.TempPathFactory):
    """One data cache per session (digits are converted once) and fake credentials for the S3 server."""
    saved = dict(os.environ)
    os.environ['PASTRUN_CACHE'] = str(tmp_path_factory.mktemp('cache'))
    os.environ.update(AWS_ACCESS_KEY_ID='testing', AWS_SECRET_ACCESS_KEY='testing', AWS_DEFAULT_REGION='us-east-1')
    for key in ('AWS_PROFILE', 'AWS_SESSION_TOKEN', 'S3_ENDPOINT_URL'):
        os.environ.pop(key, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope='session')
def s3_server():
    """moto's standalone S3 server on 127.0.0.1; ``S3_ENDPOINT_URL`` points Composer, streaming and boto3 at it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger('werkzeug').setLevel(logging.WARNING)  # one log line per request otherwise

    server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f'http://{host}:{port}'
    os.environ['S3_ENDPOINT_URL'] = endpoint
    yield endpoint
    os.environ.pop('S3_ENDPOINT_URL', None)
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh bucket, as ``s3://name``."""
    import boto3

    name = f'test-{uuid.uuid4().hex[:12]}'
    boto3.client('s3', endpoint_url=s3_server).create_bucket(Bucket=name)
    return f's3://{name}'


def run_cli(script: str, *args: str, ranks: int = 1, timeout: float = 300, env: dict | None = None):
    """Run ``launch/<script>`` as a user would (``composer -n ranks`` when ranks > 1); returns CompletedProcess."""
    if ranks > 1:
        cmd = [str(Path(sys.executable).with_name('composer')), '-n', str(ranks), str(ROOT / 'launch' / script)]
    else:
        cmd = [sys.executable, str(ROOT / 'launch' / script)]
    return subprocess.run(
        [*cmd, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def train_in_process(*overrides: str, recipe: str | None = None):
    """Build and fit a Trainer in this process (no interpreter start-up); returns the finished Trainer."""
    from recipes.config import load_config
    from recipes.trainer import build_trainer

    trainer = build_trainer(load_config(recipe, [*TINY, *overrides]))
    trainer.fit()
    trainer.close()
    return trainer


@pytest.fixture(scope='session')
def past_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A finished digits run folder: resnet_20, 2 epochs of 8 batches, a checkpoint every epoch."""
    folder = tmp_path_factory.mktemp('past') / 'digits-past'
    train_in_process(
        f'save_folder={folder}',
        'run_name=digits-past',
        'max_duration=2ep',
        'eval_interval=1ep',
        'save_interval=1ep',
        'data.global_batch_size=128',
    )
    return str(folder)


@pytest.fixture(scope='session')
def artifacts(past_run: str, tmp_path_factory: pytest.TempPathFactory):
    """The past run, EL2N-like scores for the digits training split (said to come from the past run's ep1, with a
    cost) and a one-step bank made against its ep1 and ep2."""
    import numpy as np
    from algorithm_settings import Artifacts

    from algorithms.adversarial_replay.bank import build_bank
    from algorithms.curriculum.scores import dataset_labels, label_fingerprint, write_scores
    from recipes.core.data import MDSImageDataset, resolve_root

    folder = tmp_path_factory.mktemp('artifacts')
    labels = dataset_labels(MDSImageDataset(resolve_root('digits', None), 'train', 10))
    scores = str(folder / 'el2n.npy')
    write_scores(scores, np.random.default_rng(0).random(len(labels)).astype(np.float32), {
        'method': 'el2n',
        'dataset': {'name': 'digits', 'size': len(labels), 'label_sha256': label_fingerprint(labels)},
        'runs': [past_run], 'checkpoints': ['ep1'], 'compute': {'flops_estimate': 1.0e9},
    })
    bank = str(folder / 'bank')
    build_bank(past_run, ['ep1', 'ep2'], bank, eps=8 / 255, step_size=2 / 255, steps=1, fraction=0.02,
               batch_size=64, num_workers=0, progress=False)
    return Artifacts(past_run=past_run, scores=scores, bank=bank)
