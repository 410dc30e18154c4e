"""The adversarial bank: built from a past run's checkpoints, round-tripped from a local folder and from S3 within
``eps + 0.5/255``; unfinished, empty and existing banks; CLI errors; the work split over two ranks."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, run_cli

from algorithms.adversarial_replay.bank import (
    BANK_FILE,
    AdversarialBank,
    BankPart,
    build_bank,
    finish_bank,
    select_sources,
)
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.errors import UsageError
from recipes.core.run_files import write_subset

EPS = 8 / 255
FRACTION = 0.02  # 26 of the 1,293 digits training images outside the validation split (the past run holds out 144)
BOUND = EPS + 0.5 / 255 + 1e-6


def launch_main(script: str):
    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / 'launch' / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def build(past_run: str, out: str, **kwargs) -> None:
    args = dict(eps=EPS, step_size=2 / 255, steps=2, fraction=FRACTION, batch_size=64, num_workers=0, progress=False)
    build_bank(past_run, ['ep1', 'ep2'], out, **{**args, **kwargs})


def contents(bank: AdversarialBank) -> tuple[torch.Tensor, list[int], list[int], list[int]]:
    items = [bank[i] for i in range(len(bank))]
    return torch.stack([x for x, *_ in items]), [y for _, y, _, _ in items], [i for *_, i, _ in items], [c for *_, c in items]


@pytest.fixture(scope='module')
def train_split() -> MDSImageDataset:
    return MDSImageDataset(resolve_root('digits', None), 'train', 10)


@pytest.fixture(scope='module')
def local_bank(past_run: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp('banks') / 'digits-bank')
    build(past_run, out)
    return out


def check_bank(bank: AdversarialBank, train_split: MDSImageDataset) -> None:
    trained = MDSImageDataset(resolve_root('digits', None), 'train', 10, holdout=144)  # the past run's training data
    sources = trained.indices[select_sources(len(trained), FRACTION, seed=0)]  # positions there, indices here
    images, labels, indices, checkpoints = contents(bank)
    assert len(bank) == 2 * len(sources) == 2 * 26
    assert sorted(indices) == sorted(sources.tolist() * 2)
    assert set(indices).isdisjoint(trained.held_out.tolist())
    assert checkpoints.count(0) == checkpoints.count(1) == 26
    clean = torch.stack([train_split[i][0] for i in indices])
    assert labels == [train_split[i][1] for i in indices]
    change = (images - clean).abs()
    assert change.max() <= BOUND
    assert change.mean() > EPS / 4
    assert bank.num_classes == 10 and bank.image_shape == (3, 32, 32) and bank.checkpoints == ['ep1', 'ep2']
    attack = bank.metadata['attack']
    assert (attack['eps'], attack['step_size'], attack['steps']) == (EPS, 2 / 255, 2)
    assert bank.metadata['max_pixel_change'] == EPS + 0.5 / 255
    assert bank.metadata['labels']['label_noise'] == 0.0


def test_bank_round_trips_from_a_local_folder(local_bank: str, train_split: MDSImageDataset) -> None:
    check_bank(AdversarialBank(local_bank), train_split)
    assert not (Path(local_bank).parent / '.tmp-digits-bank').exists()


def test_bank_round_trips_from_s3(past_run: str, local_bank: str, s3_bucket: str, train_split: MDSImageDataset) -> None:
    out = f'{s3_bucket}/banks/digits'
    build(past_run, out)
    bank = AdversarialBank(out)
    check_bank(bank, train_split)
    # Seeded random starts: the same bank as the local one, pixel for pixel.
    assert torch.equal(contents(bank)[0], contents(AdversarialBank(local_bank))[0])
    images, labels = bank.examples([3, 0, 3])
    assert images.shape == (3, 3, 32, 32) and torch.equal(images[0], bank[3][0]) and labels[1] == bank[0][1]


def test_unfinished_empty_and_existing_banks_are_refused(past_run: str, local_bank: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r'no adversarial bank at .*bank.json is missing.*build_adv_bank.py'):
        AdversarialBank(str(tmp_path / 'nowhere'))
    unfinished = str(tmp_path / 'unfinished')
    with BankPart(unfinished, 0, (3, 32, 32)) as part:
        part.write(torch.rand(2, 3, 32, 32), torch.tensor([1, 2]), torch.tensor([5, 6]), 0)
    with pytest.raises(UsageError, match='bank.json is missing'):
        AdversarialBank(unfinished)  # written under .tmp-unfinished, never renamed into place
    empty = str(tmp_path / 'empty')
    with BankPart(empty, 0, (3, 32, 32)):
        pass
    finish_bank(empty, 1, {'num_classes': 10, 'image_shape': [3, 32, 32], 'checkpoints': []})
    assert json.loads((Path(empty) / BANK_FILE).read_text())['size'] == 0
    with pytest.raises(UsageError, match='is empty: rebuild it'):
        AdversarialBank(empty)
    with pytest.raises(UsageError, match='already holds an adversarial bank'):
        build(past_run, local_bank)


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--eps', '2'], r'--eps=2 \(510/255\) is out of range'),
        (['--eps', '2/255', '--step_size', '4/255'], r'--step_size=0.01569 \(4/255\) is out of range.*eps=0.007843 \(2/255\)'),
        (['--steps', '0'], r'--steps=0 is out of range'),
        (['--fraction', '0'], r'--fraction=0 is out of range'),
        (['--fraction', '1.5'], r'--fraction=1.5 is out of range'),
        (['--eps', 'x/255'], r"--eps='x/255' is not a number"),
        (['--checkpoints', 'ep9'], r"no checkpoint 'ep9' .*available: ep1, ep2"),
    ],
)
def test_cli_refuses_bad_values(past_run: str, tmp_path: Path, args: list[str], message: str) -> None:
    base = {'--run': past_run, '--checkpoints': 'ep1', '--out': str(tmp_path / 'bank'), '--num_workers': '0'}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    with pytest.raises(UsageError, match=message):
        launch_main('build_adv_bank.py')([item for pair in base.items() for item in pair])
    assert not (tmp_path / 'bank').exists()


def test_a_past_run_on_a_share_is_attacked_on_that_share_only(past_run: str, tmp_path: Path) -> None:
    """A past run that trained on a 10% share (its subset.json) gives a bank of that share: a new run on the same
    share must get no example from outside it through the bank. --fraction takes a seeded part of the share."""
    shutil.copytree(past_run, tmp_path / 'share-past')
    share = MDSImageDataset(resolve_root('digits', None), 'train', 10, holdout=144, subset_fraction=0.1)
    write_subset(str(tmp_path / 'share-past'), share.indices.tolist(), share.split_size,
                 {'subset_fraction': 0.1, 'subset_seed': 0})
    build(str(tmp_path / 'share-past'), str(tmp_path / 'whole'), fraction=1.0, steps=1)
    build(str(tmp_path / 'share-past'), str(tmp_path / 'half'), fraction=0.5, steps=1)
    whole, half = (contents(AdversarialBank(str(tmp_path / name)))[2] for name in ('whole', 'half'))
    assert len(share) == 128 and sorted(whole) == sorted(share.indices.tolist() * 2)  # two checkpoints
    assert len(half) == 2 * 64 and set(half) < set(share.indices.tolist())


def test_two_ranks_split_the_work(past_run: str, tmp_path: Path, train_split: MDSImageDataset) -> None:
    out = tmp_path / 'bank2'
    result = run_cli(
        'build_adv_bank.py', '--run', past_run, '--checkpoints', 'ep2', '--steps', '1', '--fraction', str(FRACTION),
        '--num_workers', '0', '--out', str(out), ranks=2,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    bank = AdversarialBank(str(out))
    assert bank.metadata['parts'] == 2
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ['part-00000', 'part-00001']
    _, labels, indices, checkpoints = contents(bank)
    trained = MDSImageDataset(resolve_root('digits', None), 'train', 10, holdout=144)  # the past run's training data
    sources = trained.indices[select_sources(len(trained), FRACTION, seed=0)]
    assert sorted(indices) == sources.tolist()  # every selected image once, over both ranks
    assert indices[:13] == sources[0::2].tolist()  # rank 0's part first
    assert set(checkpoints) == {0}
    assert labels == [train_split[i][1] for i in indices]
    assert np.isclose(bank.metadata['attack']['eps'], EPS)
    bad = run_cli('build_adv_bank.py', '--run', past_run, '--checkpoints', 'ep2', '--eps', '2', '--out', str(out))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith('error: --eps=2 (510/255) is out of range')
