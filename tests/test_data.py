import pickle

import numpy as np
import pytest
import torch
from streaming import StreamingDataset

from recipes.core.data import (
    MDSImageDataset,
    augment_cifar,
    batch_size_per_rank,
    build_loader,
    noisy_label_offsets,
    resolve_root,
)
from recipes.core.data.cifar100 import convert_cifar100
from recipes.core.errors import UsageError


def fake_cifar100(root, n_train=40, n_test=12, seed=0):
    """A CIFAR-100 'python version' archive in the real format: pickled dicts of row-major RGB planes."""
    rng = np.random.default_rng(seed)
    folder = root / 'cifar-100-python'
    folder.mkdir(parents=True)
    arrays = {}
    for split, n in (('train', n_train), ('test', n_test)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, n).tolist()
        coarse = rng.integers(0, 20, n).tolist()
        entry = {'batch_label': split, 'filenames': [f'{i}.png' for i in range(n)], 'data': data,
                 'fine_labels': fine, 'coarse_labels': coarse}
        with open(folder / split, 'wb') as f:
            pickle.dump(entry, f)
        arrays[split] = (data, fine, coarse)
    with open(folder / 'meta', 'wb') as f:
        pickle.dump({'fine_label_names': [str(i) for i in range(100)], 'coarse_label_names': [str(i) for i in range(20)]}, f)
    return arrays


def assert_round_trip(out_root, arrays):
    for split, (data, fine, _) in arrays.items():
        ds = MDSImageDataset(out_root, split, num_classes=100)
        assert len(ds) == len(fine)
        for i in range(len(fine)):
            image, label, index = ds[i]
            expected = torch.from_numpy(data[i].reshape(3, 32, 32)).float() / 255
            assert torch.equal(image, expected)
            assert (label, index) == (fine[i], i)


def test_converter_round_trip_local(tmp_path):
    arrays = fake_cifar100(tmp_path / 'in')
    convert_cifar100(str(tmp_path / 'in'), str(tmp_path / 'mds'), progress=False)
    assert_round_trip(str(tmp_path / 'mds'), arrays)
    raw = StreamingDataset(local=str(tmp_path / 'mds' / 'train'), shuffle=False)
    sample = raw[5]
    assert sample['x'].shape == (32, 32, 3) and sample['x'].dtype == np.uint8
    assert (sample['y'], sample['y_coarse'], sample['i']) == (arrays['train'][1][5], arrays['train'][2][5], 5)
    assert not [p for p in (tmp_path / 'mds').iterdir() if p.name.startswith('.tmp')]


def test_converter_round_trip_s3(tmp_path, s3_bucket):
    arrays = fake_cifar100(tmp_path / 'in', n_train=20, n_test=6, seed=1)
    root = f'{s3_bucket}/cifar100'
    convert_cifar100(str(tmp_path / 'in'), root, progress=False)
    assert_round_trip(root, arrays)


def test_converter_refuses_to_overwrite(tmp_path):
    fake_cifar100(tmp_path / 'in', n_train=4, n_test=2)
    convert_cifar100(str(tmp_path / 'in'), str(tmp_path / 'mds'), progress=False)
    with pytest.raises(UsageError, match='already holds an MDS split'):
        convert_cifar100(str(tmp_path / 'in'), str(tmp_path / 'mds'), progress=False)


def test_converter_names_a_missing_archive(tmp_path):
    with pytest.raises(UsageError, match='no CIFAR-100 python archive.*--download'):
        convert_cifar100(str(tmp_path), str(tmp_path / 'out'))


def test_augmentation_is_a_padded_crop_or_flip_and_seeded():
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    views = {(top, left, flip): padded[:, top:top + 32, left:left + 32].flip(-1) if flip
             else padded[:, top:top + 32, left:left + 32]
             for top in range(9) for left in range(9) for flip in (0, 1)}
    torch.manual_seed(3)
    drawn = [augment_cifar(image) for _ in range(50)]
    assert all(v.shape == (3, 32, 32) for v in drawn)
    keys = [next(k for k, v in views.items() if torch.equal(v, d)) for d in drawn]
    assert len(set(keys)) > 20  # crops and flips vary
    torch.manual_seed(3)
    assert all(torch.equal(augment_cifar(image), d) for d in drawn)


def test_train_loader_is_deterministic_under_a_seed():
    root = resolve_root('digits', None)
    ds = MDSImageDataset(root, 'train', 10, augment=True)

    def first_batch(seed):
        torch.manual_seed(seed)
        return next(iter(build_loader(ds, 16, shuffle=True, drop_last=True, num_workers=2, seed=seed)))

    a, b, c = first_batch(1), first_batch(1), first_batch(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[2], c[2])
    images, labels, indices = a
    assert images.shape == (16, 3, 32, 32) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    assert all(labels[k] == ds.clean_label(int(indices[k])) for k in range(16))


def test_digits_are_converted_once_with_a_fixed_split():
    root = resolve_root('digits', None)
    assert resolve_root('digits', None) == root
    train, test = MDSImageDataset(root, 'train', 10), MDSImageDataset(root, 'test', 10)
    assert (len(train), len(test)) == (1437, 360)
    assert sorted({test[i][1] for i in range(len(test))}) == list(range(10))


def test_a_cached_built_in_split_of_another_size_is_written_again(tmp_path):
    """A cache left by an older version (synthetic data had 4,096 training images) is replaced, not served."""
    from recipes.core.data.builtin import SYNTHETIC_SIZES, builtin_root
    from recipes.core.data.mds import split_samples, write_split

    stale = tmp_path / 'mds' / 'synthetic'
    write_split(str(stale), 'train', np.zeros((16, 32, 32, 3), np.uint8), np.zeros(16, np.int64), progress=False)
    root = builtin_root('synthetic', str(tmp_path))
    assert root == str(stale)
    assert {split: split_samples(root, split) for split in ('train', 'test')} == SYNTHETIC_SIZES == {'train': 50_000, 'test': 10_000}
    assert len(MDSImageDataset(root, 'train', 100)) == 50_000


def test_label_noise_flips_an_exact_seeded_share():
    offsets = noisy_label_offsets(1000, 10, 0.4, seed=5)
    assert (offsets != 0).sum() == 400
    assert offsets.min() == 0 and offsets.max() <= 9
    assert np.array_equal(offsets, noisy_label_offsets(1000, 10, 0.4, seed=5))
    assert not np.array_equal(offsets, noisy_label_offsets(1000, 10, 0.4, seed=6))
    counts = np.bincount(offsets[offsets != 0], minlength=10)[1:]
    assert counts.min() > 20  # every other class is drawn


def test_label_noise_keeps_clean_labels_and_spares_the_test_split():
    root = resolve_root('digits', None)
    noisy = MDSImageDataset(root, 'train', 10, label_noise=0.4, label_noise_seed=0)
    changed = [i for i in range(len(noisy)) if noisy[i][1] != noisy.clean_label(i)]
    assert len(changed) == round(0.4 * len(noisy))
    test = MDSImageDataset(root, 'test', 10)
    assert all(test[i][1] == test.clean_label(i) for i in range(0, len(test), 7))
    with pytest.raises(UsageError, match='label_noise=1.5'):
        noisy_label_offsets(10, 10, 1.5, 0)


def test_batch_size_must_divide_over_ranks(monkeypatch):
    monkeypatch.setenv('WORLD_SIZE', '3')
    assert batch_size_per_rank(96) == 32
    with pytest.raises(UsageError, match=r'data.global_batch_size=100 does not divide over 3 rank\(s\)'):
        batch_size_per_rank(100)


def test_missing_data_path_names_the_fix(tmp_path):
    with pytest.raises(UsageError, match='no MDS split .*convert_cifar100.py'):
        MDSImageDataset(str(tmp_path / 'nowhere'), 'train', 100)
    with pytest.raises(UsageError, match='data.remote is required for cifar100'):
        resolve_root('cifar100', None)


def test_a_shared_memory_prefix_taken_in_the_same_instant_is_retried(monkeypatch):
    """Two parallel runs can pick the same free streaming prefix; the loser's FileExistsError is retried, once per
    race, and a persistent one is raised."""
    from recipes.core.data import dataset as module

    real, calls = module.StreamingDataset, []

    def racing(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise FileExistsError(17, 'File exists', '/000044_locals')
        return real(**kwargs)

    monkeypatch.setattr(module, 'StreamingDataset', racing)
    root = resolve_root('digits', None)
    opened = module._streaming(local=f'{root}/test', shuffle=False)
    assert len(calls) == 2 and opened.num_samples == 360
    monkeypatch.setattr(module, 'StreamingDataset', lambda **kwargs: (_ for _ in ()).throw(FileExistsError(17, 'File exists')))
    with pytest.raises(FileExistsError):
        module._streaming(attempts=2, local=f'{root}/test', shuffle=False)
