"""Any model, any image data set: torchvision classifiers and image folders, with the same reuse algorithms.

The image folder is scikit-learn's digits, upscaled to 32x32 RGB and written as PNG and JPEG files in class
sub-folders (``train/`` and ``val/``), converted to MDS as ``launch/convert_images.py`` does.
"""

from __future__ import annotations

import json
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, run_cli, train_in_process
from PIL import Image

from recipes.config import load_config
from recipes.core.data import MDSImageDataset, data_num_classes, image_transform
from recipes.core.data.folder import (
    CLASSES_FILE,
    JPEG_QUALITY,
    convert_image_folder,
    read_split_labels,
    scan_image_folder,
)
from recipes.core.errors import UsageError
from recipes.core.model import IMAGENET_MEAN, TorchvisionNet, build_model, check_model_name

SIDE = 32
NUM_IMAGES = 200  # 160 train, 40 test (one block of ten images in five goes to val)
IMAGES = ['data.name=images', 'data.resolution=32', 'data.eval_batch_size=40', 'data.holdout=0']  # a small folder: all of it


def digit_pixels(index: int) -> np.ndarray:
    """Digit ``index`` of scikit-learn's set as a (32, 32, 3) uint8 image (nearest upscaling, grey in RGB)."""
    from sklearn.datasets import load_digits

    image = (load_digits().images[index] / 16 * 255).round().astype(np.uint8)
    return np.repeat(np.repeat(image, SIDE // 8, 0), SIDE // 8, 1)[..., None].repeat(3, 2)


def write_folder(root: Path, count: int = NUM_IMAGES, split: bool = True) -> None:
    from sklearn.datasets import load_digits

    targets = load_digits().target
    for i in range(count):
        part = ('val' if (i // 10) % 5 == 0 else 'train') if split else ''  # blocks of ten: every class in both
        folder = root / part / f'digit{targets[i]}'
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(digit_pixels(i))
        if i % 2:
            image.save(folder / f'{i:04d}.png')
        else:
            image.save(folder / f'{i:04d}.jpg', quality=90)


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('folder')
    write_folder(root)
    return root


@pytest.fixture(scope='module')
def image_root(image_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp('mds') / 'digits-images'
    result = run_cli('convert_images.py', '--in_root', str(image_folder), '--out_root', str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert '160 images' in result.stdout and '(40)' in result.stdout and '10 classes' in result.stdout, result.stdout
    return str(out)


@pytest.fixture(scope='module')
def resnet18_run(image_root: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A torchvision resnet18 past run on the image folder: 2 epochs of 5 batches, a checkpoint each epoch."""
    folder = tmp_path_factory.mktemp('past') / 'resnet18-past'
    train_in_process(
        'model.name=torchvision/resnet18', *IMAGES, f'data.remote={image_root}', f'save_folder={folder}',
        'run_name=resnet18-past', 'max_duration=2ep', 'eval_interval=1ep', 'save_interval=1ep',
        'data.global_batch_size=32',
    )
    return str(folder)


# ----- models


@pytest.mark.parametrize(
    ('name', 'classes', 'params'),
    [
        ('torchvision/resnet18', 1000, 11_689_512),  # torchvision's model card
        ('torchvision/resnet18', 10, 11_181_642),
        ('torchvision/mobilenet_v3_small', 1000, 2_542_856),
        ('torchvision/resnet50', 1000, 25_557_032),
        ('torchvision/wide_resnet50_2', 1000, 68_883_240),
        ('torchvision/efficientnet_b0', 1000, 5_288_548),
    ],
)
def test_torchvision_parameter_counts(name, classes, params):
    model = build_model(name, classes)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model.num_classes == classes


def test_cifar_resnets_keep_their_names_and_counts():
    assert sum(p.numel() for p in build_model('resnet_20', 10).parameters()) == 272_474


def test_normalisation_is_the_first_layer_in_pixel_space():
    model = build_model('torchvision/mobilenet_v3_small', 7).eval()
    assert isinstance(model.module, TorchvisionNet)
    grey = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(2, 3, 32, 32)
    assert model.module.normalize(grey).abs().max() < 1e-6
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    out = model((x, y, torch.arange(2)))  # batches with indices, as the reuse algorithms give them
    assert out.shape == (2, 7) and torch.equal(out, model((x, y)))


def test_unknown_model_name_is_one_line_with_the_closest_names():
    with pytest.raises(UsageError) as info:
        load_config(None, [*TINY, 'model.name=torchvision/resnet19'])
    message = str(info.value)
    assert '\n' not in message
    assert "model.name='torchvision/resnet19' is unknown (did you mean 'torchvision/resnet18'?)" in message
    assert 'torchvision/resnet101' in message or 'torchvision/resnet152' in message
    with pytest.raises(UsageError, match=r"did you mean 'torchvision/mobilenet_v3_small'\?"):
        check_model_name('mobilenet_v3_small')  # a torchvision name without its prefix
    check_model_name('torchvision/wide_resnet50_2')  # any torchvision classifier is accepted


def test_pretrained_weights_out_of_reach_is_one_line(tmp_path, monkeypatch):
    import torchvision.models._api as api

    def unreachable(url, *args, **kwargs):
        raise urllib.error.URLError('Name or service not known')

    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setattr(api, 'load_state_dict_from_url', unreachable)
    with pytest.raises(UsageError) as info:
        build_model('torchvision/resnet18', 10, pretrained=True)
    message = str(info.value)
    assert '\n' not in message
    assert 'resnet18-f37072fd.pth' in message and 'model.pretrained=false' in message and 'URLError' in message
    with pytest.raises(UsageError, match='needs a torchvision model'):
        build_model('resnet_20', 10, pretrained=True)


def test_ledger_counts_torchvision_flops():
    from algorithms.ledger import count_flops

    model = build_model('torchvision/resnet18', 1000).eval()
    with torch.no_grad():
        flops = count_flops(model.module, torch.rand(1, 3, 224, 224))
    # torchvision's card: 1.81 GFLOPS, counted as multiply-adds; the ledger counts a multiply-add as two FLOPs.
    assert abs(flops / 2 / 1.814e9 - 1) < 0.01, flops
    small = count_flops(model.module, torch.rand(1, 3, 32, 32))
    assert abs(small / flops - (32 / 224) ** 2) < 0.01  # convolutions scale with the pixels


# ----- conversion


def test_conversion_round_trips_labels_and_pixels(image_folder: Path, image_root: str):
    from streaming import StreamingDataset

    meta = json.loads(Path(image_root, CLASSES_FILE).read_text())
    assert meta['classes'] == [f'digit{c}' for c in range(10)]
    assert meta['splits'] == {'train': 160, 'test': 40} and meta['split_from'] == 'folders'
    _, splits, _ = scan_image_folder(str(image_folder))
    errors = {'.png': [], '.jpg': []}
    for split, samples in splits.items():
        stream = StreamingDataset(local=os.path.join(image_root, split), shuffle=False)
        assert stream.num_samples == len(samples)
        assert read_split_labels(image_root, split, len(samples)).tolist() == [s.label for s in samples]
        assert read_split_labels(image_root, split, len(samples) + 1) is None  # a file of another split is not used
        for i, source in enumerate(samples):
            stored = stream[i]
            index = int(Path(source.path).stem)
            assert stored['y'] == int(Path(source.path).parent.name.removeprefix('digit')) == source.label
            assert stored['i'] == i
            pixels = np.asarray(stored['x'].convert('RGB'), dtype=np.int16)
            if source.path.endswith('.jpg'):  # stored byte for byte: decodes exactly as the file does
                assert np.array_equal(pixels, np.asarray(Image.open(source.path).convert('RGB'), dtype=np.int16))
            errors[Path(source.path).suffix].append(np.abs(pixels - digit_pixels(index)).mean())
    assert len(errors['.png']) == 100 and len(errors['.jpg']) == 100
    # PNGs are re-encoded at JPEG quality 95: within 1.5 grey levels on average (measured on such digits: 0.45 mean, 0.59 worst).
    assert JPEG_QUALITY == 95 and max(errors['.png']) < 1.5, max(errors['.png'])
    assert max(errors['.jpg']) < 4.0, max(errors['.jpg'])  # the quality-90 files the folder held


def test_a_flat_folder_is_split_by_class_with_a_seed(tmp_path: Path):
    write_folder(tmp_path / 'flat', count=120, split=False)
    classes, splits, how = scan_image_folder(str(tmp_path / 'flat'), val_fraction=0.25, seed=3)
    assert how == 'seeded' and len(classes) == 10
    train = {s.path for s in splits['train']}
    test = {s.path for s in splits['test']}
    assert not train & test and len(train | test) == 120
    for c in range(10):
        n_c = sum(s.label == c for s in [*splits['train'], *splits['test']])
        assert sum(s.label == c for s in splits['test']) == round(0.25 * n_c)
    assert {s.path for s in scan_image_folder(str(tmp_path / 'flat'), 0.25, seed=3)[1]['test']} == test
    assert {s.path for s in scan_image_folder(str(tmp_path / 'flat'), 0.25, seed=4)[1]['test']} != test
    write_folder(tmp_path / 'only' / 'train', count=60, split=False)  # train/ without val/: train/ is split
    only_classes, only, how = scan_image_folder(str(tmp_path / 'only'), val_fraction=0.25, seed=3)
    assert how == 'seeded' and only_classes == classes and len(only['train']) + len(only['test']) == 60
    meta = convert_image_folder(str(tmp_path / 'flat'), str(tmp_path / 'out'), val_fraction=0.25, seed=3, progress=False)
    assert meta['splits'] == {'train': len(train), 'test': len(test)} and meta['seed'] == 3


def test_an_empty_folder_is_one_line_naming_it(tmp_path: Path):
    (tmp_path / 'empty' / 'cat').mkdir(parents=True)
    (tmp_path / 'empty' / 'cat' / 'notes.txt').write_text('not an image')
    with pytest.raises(UsageError) as info:
        convert_image_folder(str(tmp_path / 'empty'), str(tmp_path / 'out'), progress=False)
    message = str(info.value)
    assert '\n' not in message and f'{tmp_path / "empty"} holds no JPG/JPEG/PNG images' in message, message
    assert not (tmp_path / 'out').exists()


def test_an_unreadable_image_is_named_and_nothing_is_published(tmp_path: Path):
    write_folder(tmp_path / 'src', count=60)
    good = next((tmp_path / 'src' / 'train').rglob('*.jpg'))
    bad = good.parent / 'zz-truncated.jpg'
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(UsageError) as info:
        convert_image_folder(str(tmp_path / 'src'), str(tmp_path / 'out'), progress=False)
    assert str(bad) in str(info.value) and '\n' not in str(info.value)
    assert not (tmp_path / 'out' / 'train' / 'index.json').exists()
    assert not (tmp_path / 'out' / CLASSES_FILE).exists()


def test_conversion_to_s3_reads_back(image_folder: Path, s3_bucket: str, tmp_path: Path):
    root = f'{s3_bucket}/images'
    meta = convert_image_folder(str(image_folder), root, progress=False)
    assert meta['splits'] == {'train': 160, 'test': 40}
    assert data_num_classes('images', root) == 10
    dataset = MDSImageDataset(root, 'test', 10, resolution=32, cache=str(tmp_path / 'cache'))
    assert len(dataset) == 40 and dataset[0][0].shape == (3, 32, 32)
    labels = dataset.clean_labels()
    _, splits, _ = scan_image_folder(str(image_folder))
    assert labels.tolist() == [s.label for s in splits['test']]


# ----- the data set


def test_images_dataset_transforms_and_subsets(image_root: str):
    assert data_num_classes('images', image_root) == 10
    evaluation = MDSImageDataset(image_root, 'test', 10, resolution=24)
    x, y, i = evaluation[3]
    assert x.shape == (3, 24, 24) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x, evaluation[3][0])  # evaluation is deterministic: resize to 27, centre crop 24
    train = MDSImageDataset(image_root, 'train', 10, resolution=24, augment=True)
    torch.manual_seed(0)
    views = torch.stack([train[0][0] for _ in range(4)])
    assert views.shape == (4, 3, 24, 24) and views.std(0).mean() > 0  # random crops and flips differ
    noisy = MDSImageDataset(image_root, 'train', 10, resolution=24, label_noise=0.5, label_noise_seed=1)
    clean = noisy.clean_labels()  # from the converter's label file, equal to the shards' labels
    assert clean.tolist() == [int(noisy._stream[k]['y']) for k in range(160)]
    flipped = sum(noisy.label(int(clean[k]), k) != clean[k] for k in range(len(clean)))
    assert flipped == 80
    part = MDSImageDataset(image_root, 'train', 10, resolution=24, classes=[0, 1], subset_fraction=0.5)
    assert set(clean[part.indices].tolist()) == {0, 1}
    assert len(part) == sum(max(1, round(0.5 * int((clean == c).sum()))) for c in (0, 1))
    transform = image_transform(64, train=False)
    assert transform(Image.new('RGB', (100, 50))).shape == (3, 64, 64)


def test_jpeg_data_needs_a_resolution(image_root: str):
    with pytest.raises(UsageError, match='set data.resolution'):
        MDSImageDataset(image_root, 'train', 10)


# ----- training and reuse


def test_resnet18_trains_on_an_image_folder(resnet18_run: str):
    from algorithms.past_run import PastRun

    past = PastRun(resnet18_run)
    assert past.config['model'] == {'name': 'torchvision/resnet18', 'num_classes': 10, 'pretrained': False,
                                    'width': None}
    assert past.config['data']['resolution'] == 32
    assert [n.split('-')[0] for n in past.checkpoints()] == ['ep1', 'ep2']
    compute = json.loads(Path(resnet18_run, 'compute.json').read_text())
    # fwd + bwd of resnet18 at 32x32: about 3x its forward (2 x 1.814e9 x (32/224)^2 FLOPs) per image
    per_image = compute['spent']['student'] / compute['samples']
    assert 2.5 < per_image / (2 * 1.814e9 * (32 / 224) ** 2) < 3.5, per_image
    teacher = past.load('latest', num_classes=10)
    assert isinstance(teacher, TorchvisionNet) and not teacher.training
    x = past.training_data()[0][0]
    assert x.shape == (3, 32, 32) and teacher(x[None]).shape == (1, 10)


def test_kd_mixup_from_resnet18_into_mobilenet(resnet18_run: str, image_root: str, tmp_path: Path):
    run = tmp_path / 'student'
    train_in_process(
        'model.name=torchvision/mobilenet_v3_small', *IMAGES, f'data.remote={image_root}', 'data.global_batch_size=8',
        'max_duration=2ba', 'eval_interval=2ba', f'save_folder={run}', 'save_interval=2ba',
        f'algorithms={{checkpoint_mixup_teacher: {{run: {resnet18_run}, checkpoints: [ep1, ep2]}}}}',
    )
    compute = json.loads((run / 'compute.json').read_text())
    assert compute['spent']['teacher'] > compute['spent']['student'] > 0  # two resnet18 teachers, one small student
    past_cost = json.loads(Path(resnet18_run, 'compute.json').read_text())['by_epoch']
    assert compute['reused'] == {f'past run {resnet18_run}': past_cost[1]}
    kd = tmp_path / 'kd'
    train_in_process(
        'model.name=torchvision/mobilenet_v3_small', *IMAGES, f'data.remote={image_root}', 'data.global_batch_size=8',
        'max_duration=2ba', 'eval_interval=2ba', f'save_folder={kd}', 'save_interval=2ba',
        f'algorithms={{past_run_distillation: {{run: {resnet18_run}, checkpoint: ep1}}}}',
    )
    kd_compute = json.loads((kd / 'compute.json').read_text())
    # one resnet18 teacher forward per image: about half of the two-teacher mixup's
    assert 0.4 < kd_compute['spent']['teacher'] / compute['spent']['teacher'] < 0.6
    assert kd_compute['reused'] == {f'past run {resnet18_run}': past_cost[0]}


def test_el2n_and_grand_scores_of_torchvision_runs(resnet18_run: str, image_root: str, tmp_path: Path):
    from algorithms.curriculum.scoring import score_runs
    from algorithms.past_run import PastRun

    el2n = score_runs([PastRun(resnet18_run)], ['ep2'], 'el2n', str(tmp_path / 'el2n.npy'), batch_size=40)
    assert el2n.shape == (160,) and np.isfinite(el2n).all() and el2n.std() > 0
    assert 0 <= el2n.min() and el2n.max() <= np.sqrt(2)  # || softmax - onehot ||_2 lies in [0, sqrt 2]
    small = tmp_path / 'mobilenet'  # GraNd takes one gradient per example: the small network keeps it quick
    train_in_process('model.name=torchvision/mobilenet_v3_small', *IMAGES, f'data.remote={image_root}',
                     f'save_folder={small}', 'max_duration=1ep', 'eval_interval=1ep', 'save_interval=1ep')
    grand = score_runs([PastRun(str(small))], ['ep1'], 'grand', str(tmp_path / 'grand.npy'), batch_size=40)
    assert grand.shape == (160,) and np.isfinite(grand).all() and grand.min() > 0 and grand.std() > 0
    meta = json.loads((tmp_path / 'grand.json').read_text())
    assert meta['dataset']['size'] == 160 and meta['compute']['flops_estimate'] > 0


def test_bank_and_replay_on_torchvision_models(resnet18_run: str, image_root: str, tmp_path: Path):
    from algorithms.adversarial_replay.bank import AdversarialBank, build_bank

    bank = str(tmp_path / 'bank')
    build_bank(resnet18_run, ['ep2'], bank, eps=8 / 255, step_size=2 / 255, steps=1, fraction=0.1, batch_size=16,
               num_workers=0, progress=False)
    assert len(AdversarialBank(bank)) == 16 and AdversarialBank(bank).image_shape == (3, 32, 32)
    common = [*IMAGES, f'data.remote={image_root}', 'data.global_batch_size=8', 'max_duration=1ba',
              'eval_interval=1ba', 'save_interval=1ba']
    trainer = train_in_process('model.name=torchvision/resnet18', *common,
                               f'algorithms={{adversarial_replay: {{bank: {bank}, replay_fraction: 0.25}}}}')
    from algorithms.adversarial_replay.replay import DualBatchNorm2d

    assert sum(isinstance(m, DualBatchNorm2d) for m in trainer.state.model.modules()) == 20  # resnet18's BatchNorms
    with pytest.raises(UsageError, match='SqueezeNet has no BatchNorm2d: set algorithms.adversarial_replay.aux_bn=false'):
        train_in_process('model.name=torchvision/squeezenet1_1', *common,
                         f'algorithms={{adversarial_replay: {{bank: {bank}}}}}')
    train_in_process('model.name=torchvision/squeezenet1_1', *common,
                     f'algorithms={{adversarial_replay: {{bank: {bank}, aux_bn: false}}}}')


# ----- recipes


def test_image_recipes_validate_and_the_baseline_trains(resnet18_run: str, image_root: str, tmp_path: Path):
    from algorithms.adversarial_replay.bank import build_bank

    bank = str(tmp_path / 'bank')
    build_bank(resnet18_run, ['ep1'], bank, eps=8 / 255, step_size=2 / 255, steps=1, fraction=0.05, batch_size=8,
               num_workers=0, progress=False)
    artifacts = {
        'baseline': [],
        'kd_mixup': [f'algorithms.checkpoint_mixup_teacher.run={resnet18_run}',
                     'algorithms.checkpoint_mixup_teacher.checkpoints=[ep1,ep2]'],
        'adv_replay': [f'algorithms.adversarial_replay.bank={bank}'],
    }
    assert sorted(p.stem for p in Path('yamls/images').glob('*.yaml')) == sorted(artifacts)
    for name, overrides in artifacts.items():
        cfg = load_config(f'yamls/images/{name}.yaml', [f'data.remote={image_root}', *overrides])
        assert cfg.model.name == 'torchvision/resnet18' and cfg.data.name == 'images' and cfg.data.resolution == 32
    trainer = train_in_process(
        'model.name=torchvision/resnet18', 'data.name=images', f'data.remote={image_root}',
        f'save_folder={tmp_path / "run"}', 'data.global_batch_size=8', 'max_duration=2ba',
        'callbacks={lr_monitor: {}, record_scores: {}}', recipe='yamls/images/baseline.yaml',
    )
    assert int(trainer.state.timestamp.batch) == 2
    assert (tmp_path / 'run' / 'config.yaml').is_file()


def test_imagenet_recipes_follow_the_torchvision_resnet50_recipe():
    import yaml
    from omegaconf import OmegaConf

    from recipes.config import TrainConfig

    names = sorted(p.stem for p in Path('yamls/imagenet').glob('*.yaml'))
    assert names == ['adv_replay', 'baseline', 'grand_curriculum', 'kd', 'kd_mixup']
    base = yaml.safe_load(Path('yamls/imagenet/baseline.yaml').read_text())
    assert '76.130% top-1' in Path('yamls/imagenet/baseline.yaml').read_text()
    for name in names:
        recipe = yaml.safe_load(Path(f'yamls/imagenet/{name}.yaml').read_text())
        cfg = OmegaConf.merge(OmegaConf.structured(TrainConfig), recipe)  # keys and types of the schema
        check_model_name(cfg.model.name)
        assert cfg.model.name == 'torchvision/resnet50' and cfg.max_duration == '90ep'
        assert cfg.optimizer.lr == 0.1 * cfg.data.global_batch_size / 256
        assert (cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (0.9, 1e-4)
        assert list(cfg.scheduler.milestones) == ['30ep', '60ep'] and cfg.scheduler.gamma == 0.1
        assert cfg.data.resolution == 224 and cfg.data.name == 'images'
        assert {k: v for k, v in recipe.items() if k not in ('run_name', 'algorithms', 'callbacks')} == \
            {k: v for k, v in base.items() if k not in ('run_name', 'algorithms', 'callbacks')}
        assert (name == 'baseline') == (not recipe.get('algorithms'))


def test_image_data_keys_are_checked_against_the_converted_folder(image_root: str):
    from recipes.trainer import build_trainer

    with pytest.raises(UsageError) as info:
        load_config(None, [*TINY, *IMAGES, f'data.remote={image_root}', 'data.classes=[0, 12]'])
    assert "data.classes=[0, 12] holds 12, which is not a class of images" in str(info.value)
    assert 'class ids in 0..9' in str(info.value)
    cfg = load_config(None, [*TINY, 'data.name=images', 'model.name=torchvision/resnet18'])
    with pytest.raises(UsageError, match='data.remote is required for data.name=images: convert an image folder'):
        build_trainer(cfg)
    with pytest.raises(UsageError, match=r'model.num_classes=5 but images has 10 classes'):
        build_trainer(load_config(None, [*TINY, *IMAGES, f'data.remote={image_root}', 'model.num_classes=5']))
    for key in ('data.augment_on=device', 'data.resident=true'):  # the 32x32 pad-and-crop paths
        with pytest.raises(UsageError, match='data.name=images decodes and crops JPEGs in the loader workers'):
            build_trainer(load_config(None, [*TINY, *IMAGES, f'data.remote={image_root}', key]))


def test_the_imagenet_baseline_runs_a_batch_at_224(image_root: str, tmp_path: Path):
    """The GPU recipe as it is (ResNet-50, 224x224 crops, autoresume), one batch of two on one class, on the CPU."""
    trainer = train_in_process(
        *IMAGES[:1], f'data.remote={image_root}', f'save_folder={tmp_path / "run"}', 'model.name=torchvision/resnet50',
        'data.resolution=224', 'data.global_batch_size=2', 'data.eval_batch_size=8', 'max_duration=1ba',
        'data.classes=[0]', 'run_name=imagenet-smoke', recipe='yamls/imagenet/baseline.yaml',
    )
    assert trainer.state.train_dataloader.dataset[0][0].shape == (3, 224, 224)
    assert sum(p.numel() for p in trainer.state.model.parameters()) == 23_528_522  # resnet50 with a 10-class head
    compute = json.loads((tmp_path / 'run' / 'compute.json').read_text())
    assert compute['samples'] == 2
    # fwd + bwd of resnet50 at 224: about 3x its forward (2 x 4.09e9 multiply-adds, torchvision's card)
    assert 2.5 < compute['spent']['student'] / compute['samples'] / (2 * 4.09e9) < 3.5
