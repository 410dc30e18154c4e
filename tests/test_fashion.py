"""Fashion-MNIST: the IDX reader on files the test writes (every refusal one line naming the file), and a run, its
scores and a warm start on a small share of the real files, which the suite reads from Debian's package
(``make`` installs it: no skip)."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from recipes.config import load_config
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.data.fashion import DEFAULT_PATH, FILES, IMAGES_MAGIC, LABELS_MAGIC, check_files, read_idx
from recipes.core.errors import UsageError
from recipes.core.model import build_model

SMALL = [  # an epoch (3 batches) of resnet_20 on 2% of two classes of Fashion-MNIST (test: their 2,000), 500 held out
    'data.subset_fraction=0.02', 'data.classes=[0,1]', 'data.holdout=500', 'data.num_workers=0',
    'data.global_batch_size=64', 'data.eval_batch_size=1000', 'max_duration=1ep', 'eval_interval=1ep',
    'save_interval=1ep',
]


def idx_file(path: Path, magic: int, dims: tuple[int, ...], data: bytes | None = None, cut: int = 0) -> Path:
    """A gzipped IDX file: big-endian magic and dimensions, then ``data`` (zeros by default), ``cut`` bytes short."""
    body = struct.pack('>I' + 'I' * len(dims), magic, *dims)
    body += data if data is not None else bytes(int(np.prod(dims)))
    path.write_bytes(gzip.compress(body[: len(body) - cut]))
    return path


def test_the_reader_checks_magic_shape_length_and_labels(tmp_path: Path) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = idx_file(tmp_path / 'img.gz', IMAGES_MAGIC, (2, 28, 28), images.tobytes())
    assert np.array_equal(read_idx(str(path), IMAGES_MAGIC, (2, 28, 28)), images)
    labels = idx_file(tmp_path / 'lab.gz', LABELS_MAGIC, (3,), bytes([0, 9, 4]))
    assert read_idx(str(labels), LABELS_MAGIC, (3,)).tolist() == [0, 9, 4]
    with pytest.raises(UsageError, match=r'holds IDX magic 2049 with shape \(3,\), not magic 2051') as error:
        read_idx(str(labels), IMAGES_MAGIC, (3, 28, 28))
    assert '\n' not in str(error.value) and 'apt-get install -y dataset-fashion-mnist' in str(error.value)
    short = idx_file(tmp_path / 'short.gz', IMAGES_MAGIC, (2, 28, 28), images.tobytes(), cut=10)
    with pytest.raises(UsageError, match=r'short.gz holds 1574 bytes, not the 1584 its header says: truncated'):
        read_idx(str(short), IMAGES_MAGIC, (2, 28, 28))
    noise = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()  # incompressible
    broken = idx_file(tmp_path / 'broken.gz', LABELS_MAGIC, (4000,), noise)
    broken.write_bytes(broken.read_bytes()[:2000])  # the gzip stream cut off in its middle
    with pytest.raises(UsageError, match=r'broken.gz is truncated \(its gzip stream ends early\)'):
        read_idx(str(broken), LABELS_MAGIC, (4000,))


def test_a_folder_of_foreign_missing_or_out_of_range_files_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r'file train-images-idx3-ubyte.gz is missing from .*data.path is now') as error:
        check_files(str(tmp_path))
    assert '\n' not in str(error.value)
    for split, (images, labels) in FILES.items():  # headers of the right shape; the test labels are images
        n = 60_000 if split == 'train' else 10_000
        idx_file(tmp_path / images, IMAGES_MAGIC, (n, 28, 28), b'')
        idx_file(tmp_path / labels, *((IMAGES_MAGIC, (n, 28, 28)) if split == 'test' else (LABELS_MAGIC, (n,))), b'')
    with pytest.raises(UsageError, match=r't10k-labels-idx1-ubyte.gz has IDX magic number 2051, not 2049'):
        check_files(str(tmp_path))
    with pytest.raises(UsageError, match=r'Fashion-MNIST file train-images-idx3-ubyte.gz is missing from /nowhere'):
        load_config('yamls/fashion/baseline.yaml', ['data.path=/nowhere'])
    real = tmp_path / 'real'
    shutil.copytree(DEFAULT_PATH, real)
    labels = np.frombuffer(gzip.open(real / FILES['test'][1]).read(), np.uint8, offset=8).copy()
    labels[7] = 12
    idx_file(real / FILES['test'][1], LABELS_MAGIC, (10_000,), labels.tobytes())
    from recipes.core.data.fashion import fashion_arrays

    with pytest.raises(UsageError, match=r't10k-labels-idx1-ubyte.gz holds label 12 at 7, outside 0..9'):
        fashion_arrays(str(real))


def test_the_real_files_convert_to_28x28_grey_with_its_split_sizes() -> None:
    check_files(DEFAULT_PATH)  # the package the Makefile installs
    root = resolve_root('fashion_mnist', None)
    train = MDSImageDataset(root, 'train', 10, holdout=500)
    test = MDSImageDataset(root, 'test', 10)
    assert (train.split_size, test.split_size, len(train)) == (60_000, 10_000, 59_500)
    image, label, index = test[0]
    assert image.shape == (1, 28, 28) and 0 <= label < 10 and index == 0
    assert np.bincount(test.clean_labels()).tolist() == [1000] * 10
    assert np.bincount(train.clean_labels()[train.held_out]).tolist() == [50] * 10
    model = build_model('resnet_20', 10, channels=1, stats=((0.2860,), (0.3530,)))
    assert model.module(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_a_run_its_scores_and_a_warm_start_on_real_fashion_mnist(tmp_path: Path) -> None:
    past = tmp_path / 'past'
    done = run_cli('train.py', 'yamls/fashion/baseline.yaml', *SMALL, f'save_folder={past}', 'seed=3',
                   'callbacks={record_scores: {}}')
    assert done.returncode == 0, done.stderr[-2000:]
    holdout = json.loads((past / 'holdout.json').read_text())
    assert holdout['size'] == 500 and len(holdout['indices']) == 500
    train_labels = MDSImageDataset(resolve_root('fashion_mnist', None), 'train', 10).clean_labels()
    assert np.bincount(train_labels[holdout['indices']]).tolist() == [50] * 10
    row = json.loads((past / 'metrics.json').read_text())['eval'][-1]
    assert {'accuracy', 'cross_entropy', 'val_accuracy', 'val_cross_entropy'} <= set(row)

    scores = tmp_path / 'el2n.npy'
    done = run_cli('score.py', '--run', str(past), '--checkpoints', 'latest', '--method', 'recorded_el2n',
                   '--out', str(scores))
    assert done.returncode == 0, done.stderr[-2000:]
    values = np.load(scores)
    assert len(values) == 60_000 and np.isnan(values).sum() == 500 and np.isnan(values[holdout['indices']]).all()

    warm = tmp_path / 'warm'
    args = ['yamls/fashion/warm_start.yaml', *SMALL, 'callbacks={}', f'algorithms.warm_start.run={past}',
            f'save_folder={warm}']
    done = run_cli('train.py', *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((warm / 'holdout.json').read_text())['indices'] == holdout['indices']
    compute = json.loads((warm / 'compute.json').read_text())
    assert any(str(past) in source for source in compute['reused'])
    refused = run_cli('train.py', *args, 'data.holdout=400', f'save_folder={tmp_path / "other"}')
    assert refused.returncode != 0
    line = refused.stderr.strip().splitlines()[-1]
    assert 'held out data.holdout=500 data.holdout_seed=0 but this run holds out data.holdout=400' in line
