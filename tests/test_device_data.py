"""The device data paths: batched augmentation on the training device (``data.augment_on: device``) and the
training split held in device memory (``data.resident: true``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from composer.core import Callback, State
from composer.loggers import Logger
from composer.utils import dist
from conftest import TINY, train_in_process

from algorithms.past_run import load_checkpoint_state
from recipes.config import load_config
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.data.device_augment import DeviceAugment, augment_batch, batch_generator
from recipes.core.data.loader import build_loader
from recipes.core.data.resident import ResidentImages, load_resident, resident_loader
from recipes.core.errors import UsageError
from recipes.trainer import build_trainer

DEVICE = ('data.augment_on=device',)


def uint8_batch(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def drawn(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The offsets and flips augment_batch draws for a generator seeded with ``seed`` (same order: top, left, flip)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 9, (n,), generator=g), torch.randint(0, 9, (n,), generator=g), torch.rand(n, generator=g) < 0.5


def test_each_row_is_its_crop_of_the_padded_image_flipped_or_not() -> None:
    images = uint8_batch(64)
    out = augment_batch(images, torch.Generator().manual_seed(5))
    assert out.shape == images.shape and out.dtype == torch.float32 and out.is_contiguous()
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    top, left, flip = drawn(64, 5)
    padded = F.pad(images, (4, 4, 4, 4))
    for n in range(64):
        crop = padded[n, :, top[n] : top[n] + 32, left[n] : left[n] + 32]  # inside the padded image by construction
        expected = (crop.flip(-1) if flip[n] else crop).float() / 255
        assert torch.equal(out[n], expected), n
    assert 0 < int(flip.sum()) < 64 and len(set(top.tolist())) > 3 and len(set(left.tolist())) > 3
    # the 4-pixel border of zeros shows where a crop reaches into the padding
    corner = next(n for n in range(64) if top[n] == 0 and left[n] == 0 and not flip[n])
    assert torch.equal(out[corner, :, :4], torch.zeros(3, 4, 32)) and torch.equal(out[corner, :, 4:, 4:], images[corner, :, :28, :28].float() / 255)


def test_the_views_are_those_of_the_workers_path() -> None:
    """For the same offsets and flip, augment_cifar (one sample in a worker, then / 255) makes the same pixels."""
    images = uint8_batch(8)
    out = augment_batch(images, torch.Generator().manual_seed(1))
    top, left, flip = drawn(8, 1)
    for n in range(8):
        torch.manual_seed(0)
        ref = F.pad(images[n], (4, 4, 4, 4))[:, top[n] : top[n] + 32, left[n] : left[n] + 32]
        ref = ref.flip(-1) if flip[n] else ref
        assert torch.equal(out[n], ref.float().div_(255))
    assert torch.equal(augment_batch(images, None, crop_flip=False), images.float() / 255)


def test_the_same_seed_epoch_and_batch_give_the_same_views() -> None:
    images = uint8_batch(32)
    first = augment_batch(images, batch_generator(17, 0, 2, 5))
    assert torch.equal(first, augment_batch(images, batch_generator(17, 0, 2, 5)))
    for other in (batch_generator(18, 0, 2, 5), batch_generator(17, 1, 2, 5), batch_generator(17, 0, 3, 5),
                  batch_generator(17, 0, 2, 6)):
        assert not torch.equal(first, augment_batch(images, other))


def test_raw_items_are_the_stored_uint8_images() -> None:
    root = resolve_root('digits', None)
    raw, plain = MDSImageDataset(root, 'train', 10, raw=True), MDSImageDataset(root, 'train', 10)
    image, label, index = raw[7]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
    assert torch.equal(image.float() / 255, plain[7][0]) and (label, index) == plain[7][1:]
    with pytest.raises(ValueError, match='raw'):
        MDSImageDataset(root, 'train', 10, raw=True, augment=True)


class RecordInputs(Callback):
    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []

    def before_forward(self, state: State, logger: Logger) -> None:
        self.inputs.append(state.batch[0].clone())


def test_the_trainer_augments_on_the_device_and_defaults_to_workers_on_the_cpu() -> None:
    trainer = build_trainer(load_config(None, [*TINY, *DEVICE, 'save_folder=null', 'max_duration=2ba']))
    assert isinstance(trainer.state.algorithms[-1], DeviceAugment)
    seen = RecordInputs()
    trainer.state.callbacks.append(seen)
    trainer.fit()
    trainer.close()
    assert len(seen.inputs) == 2 and all(x.dtype == torch.float32 and x.shape == (32, 3, 32, 32) for x in seen.inputs)
    assert not torch.equal(seen.inputs[0], seen.inputs[1])
    cpu = build_trainer(load_config(None, [*TINY, 'save_folder=null']))
    assert not any(isinstance(a, DeviceAugment) for a in cpu.state.algorithms)
    cpu.close()
    with pytest.raises(UsageError, match='augment_on'):
        load_config(None, [*TINY, 'data.augment_on=gpu'])


def test_device_augmentation_resumes_bit_exactly_mid_epoch(tmp_path: Path) -> None:
    two = (*DEVICE, 'max_duration=2ba', 'eval_interval=2ba', 'save_interval=1ba')
    train_in_process(*two, f'save_folder={tmp_path}/whole')
    train_in_process(*two, f'save_folder={tmp_path}/resumed', f'load_path={tmp_path}/whole/ep0-ba1-rank0.pt')
    a, b = (load_checkpoint_state(f'{tmp_path}/{run}/ep0-ba2-rank0.pt') for run in ('whole', 'resumed'))
    first = load_checkpoint_state(f'{tmp_path}/whole/ep0-ba1-rank0.pt')
    assert not torch.equal(first['model']['module.fc.weight'], a['model']['module.fc.weight'])
    for key, tensor in a['model'].items():
        assert torch.equal(tensor, b['model'][key]), key


def test_replayed_bank_rows_are_appended_after_the_device_augmentation(tmp_path: Path) -> None:
    """Bank rows are finished pixels: they reach the model as stored, the clean rows augmented on the device."""
    from algorithms.adversarial_replay.bank import AdversarialBank, BankPart, finish_bank

    folder = str(tmp_path / 'bank')
    with BankPart(folder, 0, (3, 32, 32)) as part:
        part.write(torch.rand(6, 3, 32, 32), torch.arange(6) % 10, torch.arange(6), 0)
    finish_bank(folder, 1, {'num_classes': 10, 'image_shape': [3, 32, 32], 'checkpoints': ['ep1']})
    trainer = build_trainer(load_config(None, [*TINY, *DEVICE, 'save_folder=null', 'max_duration=1ba',
                                               f'algorithms.adversarial_replay.bank={folder}']))
    seen = RecordInputs()
    indices: list[torch.Tensor] = []
    trainer.state.callbacks.append(seen)
    trainer.state.callbacks.append(type('Indices', (Callback,), {
        'before_forward': lambda self, state, logger: indices.append(state.batch[2].clone())})())
    trainer.fit()
    trainer.close()
    (x,), (index,) = seen.inputs, indices
    replayed = index < 0
    assert int(replayed.sum()) == 8 and x.dtype == torch.float32
    images, _ = AdversarialBank(folder).examples((-1 - index[replayed]).tolist())
    assert torch.equal(x[replayed], images)
    raw = MDSImageDataset(resolve_root('digits', None), 'train', 10, raw=True)
    clean = torch.stack([raw[int(i)][0] for i in index[~replayed]]).float() / 255
    assert not torch.equal(x[~replayed], clean)  # augmented: crops and flips moved the pixels


def test_resident_batches_are_the_streamed_batches_for_the_same_sampler_order() -> None:
    """Indices, labels (with label noise, on a subset) and pixels of every batch equal the streaming loader's."""
    kept = MDSImageDataset(resolve_root('digits', None), 'train', 10, label_noise=0.3, label_noise_seed=4,
                           subset_fraction=0.5, raw=True)
    resident = load_resident(kept, 'cpu')
    assert isinstance(resident, ResidentImages) and len(resident) == len(kept) < kept.split_size
    streamed_sampler = dist.get_sampler(kept, shuffle=True, drop_last=True, seed=3)
    resident_sampler = dist.get_sampler(resident, shuffle=True, drop_last=True, seed=3)
    streamed = build_loader(kept, 32, shuffle=True, drop_last=True, num_workers=0, seed=3, sampler=streamed_sampler)
    served = resident_loader(resident, 32, resident_sampler, drop_last=True)
    for epoch in (0, 1):
        streamed_sampler.set_epoch(epoch)
        resident_sampler.set_epoch(epoch)
        pairs = list(zip(streamed, served, strict=True))
        assert len(pairs) == len(kept) // 32
        for a, b in pairs:
            assert b[0].dtype == torch.uint8
            for x, y in zip(a, b, strict=True):
                assert torch.equal(x, y)


def test_a_split_above_the_budget_is_streamed_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    kept = MDSImageDataset(resolve_root('digits', None), 'train', 10)
    with caplog.at_level('WARNING'):
        assert load_resident(kept, 'cpu', budget_bytes=1_000_000) is None
    assert len(caplog.records) == 1 and 'streaming it instead' in caplog.records[0].getMessage()


def test_a_resident_run_trains_without_workers_and_resumes_bit_exactly(tmp_path: Path) -> None:
    two = ('data.resident=true', 'data.num_workers=2', 'max_duration=2ba', 'eval_interval=2ba', 'save_interval=1ba')
    whole = train_in_process(*two, f'save_folder={tmp_path}/whole')
    loader = whole.state.train_dataloader
    assert isinstance(loader.dataset, ResidentImages) and loader.num_workers == 0
    assert isinstance(whole.state.algorithms[-1], DeviceAugment)
    train_in_process(*two, f'save_folder={tmp_path}/resumed', f'load_path={tmp_path}/whole/ep0-ba1-rank0.pt')
    a, b = (load_checkpoint_state(f'{tmp_path}/{run}/ep0-ba2-rank0.pt') for run in ('whole', 'resumed'))
    for key, tensor in a['model'].items():
        assert torch.equal(tensor, b['model'][key]), key
    with pytest.raises(UsageError, match='data.resident'):
        load_config(None, [*TINY, 'data.resident=true', 'data.augment_on=workers'])


def test_a_curriculum_and_replay_train_on_the_resident_path(tmp_path: Path) -> None:
    """The curriculum's sampler chooses the resident rows of every batch, in its order, and replay appends its bank
    rows after them; no loader worker runs."""
    from test_reuse_all import make_scores

    from algorithms.adversarial_replay.bank import BankPart, finish_bank
    from algorithms.curriculum.curriculum import ScoreCurriculum

    bank = str(tmp_path / 'bank')
    with BankPart(bank, 0, (3, 32, 32)) as part:
        part.write(torch.rand(6, 3, 32, 32), torch.arange(6) % 10, torch.arange(6), 0)
    finish_bank(bank, 1, {'num_classes': 10, 'image_shape': [3, 32, 32], 'checkpoints': ['ep1']})
    trainer = build_trainer(load_config(None, [
        *TINY, 'data.resident=true', 'save_folder=null', 'max_duration=3ba', 'eval_interval=3ba',
        f'algorithms.grand_curriculum.scores={make_scores(tmp_path)}', f'algorithms.adversarial_replay.bank={bank}']))
    indices: list[torch.Tensor] = []
    trainer.state.callbacks.append(type('Indices', (Callback,), {
        'before_forward': lambda self, state, logger: indices.append(state.batch[2].clone())})())
    trainer.fit()
    trainer.close()
    loader = trainer.state.train_dataloader
    assert isinstance(loader.dataset, ResidentImages) and loader.num_workers == 0
    curriculum = next(a for a in trainer.state.algorithms if isinstance(a, ScoreCurriculum))
    positions = list(curriculum.sampler)[: 3 * 32]
    assert len(indices) == 3
    for step, index in enumerate(indices):
        assert len(index) == 32 + 8 and bool((index[32:] < 0).all())  # replay_fraction 0.25: 8 bank rows, last
        expected = loader.dataset.indices[positions[32 * step : 32 * (step + 1)]]
        assert torch.equal(index[:32], expected.to(index.device))
    easiest = set(curriculum.kept[: round(0.2 * len(curriculum.kept))].tolist())
    assert set(indices[0][:32].tolist()) <= easiest  # the first batch draws from the first pool: the easiest 20%
    assert torch.isfinite(trainer.state.loss).all()


INDUCTOR_ON_THIS_CPU = (
    "torch 2.7.0 Inductor's C++ code for the CPU training graph of resnet_20 does not compile on this project's "
    "machine: CppCompileError, conflicting declaration 'float tmp_acc0_arr [2]'; the forward alone compiles")


@pytest.mark.parametrize('backend', [
    'aot_eager',  # dynamo and AOTAutograd trace forward and backward; no code generation
    pytest.param('inductor', marks=[
        pytest.mark.slow,  # inductor compiles C++ kernels for the CPU: about a minute on 2 cores
        pytest.mark.xfail(not torch.cuda.is_available(), raises=Exception, strict=False, reason=INDUCTOR_ON_THIS_CPU),
    ]),
])
def test_a_compiled_model_trains_a_few_batches(tmp_path: Path, backend: str) -> None:
    """compile=true goes through Composer's compile_config with the chosen backend; with device augmentation and
    replay's dual BatchNorms (which take their slicing form under torch.compile) the run trains and its loss is
    finite, and the compute ledger's eager counted batch does not make dynamo give up on the model."""
    from algorithms.adversarial_replay.bank import BankPart, finish_bank

    folder = str(tmp_path / 'bank')
    with BankPart(folder, 0, (3, 32, 32)) as part:
        part.write(torch.rand(6, 3, 32, 32), torch.arange(6) % 10, torch.arange(6), 0)
    finish_bank(folder, 1, {'num_classes': 10, 'image_shape': [3, 32, 32], 'checkpoints': ['ep1']})
    graphs: list[int] = []  # Composer's close() resets dynamo (and its counters): read them during training
    torch._dynamo.reset()
    trainer = build_trainer(load_config(None, [
        *TINY, 'compile=true', f'compile_backend={backend}', *DEVICE, 'max_duration=3ba', 'eval_interval=3ba',
        'save_folder=null', f'algorithms.adversarial_replay.bank={folder}']))
    trainer.state.callbacks.append(type('Graphs', (Callback,), {'batch_end': lambda self, state, logger: graphs.append(
        torch._dynamo.utils.counters['stats']['unique_graphs'])})())
    trainer.fit()
    trainer.close()
    assert int(trainer.state.timestamp.batch) == 3
    # The compute ledger counts the first batch of each epoch eagerly; dynamo captures the model on the second and
    # keeps it (no recompilation on the third).
    assert graphs[0] == 0 and graphs[1] > 0 and graphs[2] == graphs[1], graphs
    assert torch.isfinite(trainer.state.loss).all()


def test_an_unknown_compile_backend_is_named_with_the_choices() -> None:
    with pytest.raises(UsageError, match=r"compile_backend='inductr' is unknown \(did you mean 'inductor'\?\): choose one of .*aot_eager"):
        load_config(None, [*TINY, 'compile=true', 'compile_backend=inductr'])


@pytest.mark.parametrize('rank', [0, 1])
def test_a_curriculum_sampler_chooses_the_resident_rows_and_each_rank_gets_its_share(rank: int) -> None:
    from algorithms.curriculum.curriculum import CurriculumSampler

    kept = MDSImageDataset(resolve_root('digits', None), 'train', 10, raw=True)
    resident = load_resident(kept, 'cpu')
    order = torch.randperm(len(kept), generator=torch.Generator().manual_seed(0)).numpy()

    def sampler() -> CurriculumSampler:
        return CurriculumSampler(kept, order, batch_size=16, max_duration='2ep', pacing='linear', start_fraction=0.2,
                                 full_at=0.5, num_replicas=2, rank=rank, seed=5)

    streamed = build_loader(kept, 16, shuffle=True, drop_last=True, num_workers=0, seed=5, sampler=sampler())
    served_sampler = sampler()
    served = resident_loader(resident, 16, served_sampler, drop_last=True)
    batches = list(zip(streamed, served, strict=True))
    assert len(batches) == len(kept) // 32
    for a, b in batches:
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)
    positions = list(served_sampler)[:16]
    assert torch.equal(batches[0][1][2], resident.indices[positions])
    assert set(positions) <= set(order[: max(32, round(0.2 * len(order)))].tolist())  # the easiest first
