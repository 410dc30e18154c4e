"""Adversarial replay: the dual BatchNorm and its surgery, the number of replayed examples and their routing,
teachers from a replay run, errors before training, and the recipe under ``composer -n 2``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from composer.core import Callback, State
from composer.loggers import Logger
from conftest import TINY, run_cli, train_in_process

from algorithms.adversarial_replay.bank import AdversarialBank, BankPart, build_bank, finish_bank
from algorithms.adversarial_replay.replay import DualBatchNorm2d, add_aux_batchnorms, route_to_aux
from algorithms.past_run import PastRun, load_checkpoint_state
from recipes.config import load_config
from recipes.core.errors import UsageError
from recipes.core.model import resnet_cifar
from recipes.trainer import build_trainer

REPLAY = 'algorithms.adversarial_replay'


@pytest.fixture(scope='module')
def bank(past_run: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """58 FGSM-like examples (one step) from the past run's ep1 and ep2, built in this process."""
    out = str(tmp_path_factory.mktemp('replay') / 'bank')
    build_bank(past_run, ['ep1', 'ep2'], out, eps=8 / 255, step_size=2 / 255, steps=1, fraction=0.02,
               batch_size=64, num_workers=0, progress=False)
    return out


def odd_bank(folder: Path, num_classes: int = 10, shape: tuple[int, int, int] = (3, 32, 32)) -> str:
    """A two-example bank with the given label space and image shape."""
    out = str(folder)
    with BankPart(out, 0, shape) as part:
        part.write(torch.rand(2, *shape), torch.tensor([0, 1]), torch.tensor([0, 1]), 0)
    finish_bank(out, 1, {'num_classes': num_classes, 'image_shape': list(shape), 'checkpoints': ['ep1']})
    return out


def tensors_equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(tensors_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_dual_batchnorm_normalises_each_part_with_its_own_batchnorm() -> None:
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(4)
    dual = DualBatchNorm2d.from_batchnorm(bn)
    main_ref, aux_ref = copy.deepcopy(bn), copy.deepcopy(bn)
    x = torch.randn(10, 4, 5, 5) * 3 + 1
    dual.num_aux = 4
    out = dual(x)
    assert torch.allclose(out[:6], main_ref(x[:6]), atol=1e-6) and torch.allclose(out[6:], aux_ref(x[6:]), atol=1e-6)
    assert torch.allclose(dual.running_mean, main_ref.running_mean) and torch.allclose(dual.aux.running_var, aux_ref.running_var)
    assert int(dual.num_batches_tracked) == 1 and int(dual.aux.num_batches_tracked) == 1
    assert dual.weight is bn.weight and dual.running_mean is bn.running_mean  # the main BN is the original one
    aux_stats = copy.deepcopy(dual.aux.state_dict())
    dual.eval()  # evaluation: the main statistics serve every row, whatever num_aux says
    assert torch.allclose(dual(x), main_ref.eval()(x), atol=1e-6)
    dual.train().num_aux = 0
    dual(x).sum().backward()
    assert tensors_equal(dual.aux.state_dict(), aux_stats)
    # A part that serves no row still gets a (zero) gradient: DDP needs one for every parameter.
    assert torch.equal(dual.aux.weight.grad, torch.zeros(4)) and dual.weight.grad.abs().sum() > 0
    dual.zero_grad(set_to_none=True)
    dual.num_aux = len(x)
    dual(x).pow(2).sum().backward()
    assert torch.equal(dual.weight.grad, torch.zeros(4)) and dual.aux.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('momentum', [0.1, None])
@pytest.mark.parametrize('memory_format', [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('num_aux', [0, 1, 3, 9, 10])
def test_dual_batchnorm_equals_two_separate_batchnorms(num_aux: int, memory_format: torch.memory_format,
                                                      momentum: float | None) -> None:
    """Outputs, input and parameter gradients, running statistics and batch counts of the copy-free dual BatchNorm
    equal those of two nn.BatchNorm2d fed the clean rows and the bank rows, over two training steps."""
    torch.manual_seed(num_aux)
    bn = torch.nn.BatchNorm2d(4, momentum=momentum)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    dual = DualBatchNorm2d.from_batchnorm(copy.deepcopy(bn))
    main_ref, aux_ref = copy.deepcopy(bn), copy.deepcopy(bn)
    clean = 10 - num_aux
    for _ in range(2):
        x = (torch.randn(10, 4, 5, 5) * 3 + 1).to(memory_format=memory_format).requires_grad_()
        x_ref = x.detach().clone().requires_grad_()
        upstream = torch.randn(10, 4, 5, 5)
        dual.num_aux = num_aux
        out = dual(x)
        (out * upstream).sum().backward()
        ref = torch.cat([m(part) for m, part in ((main_ref, x_ref[:clean]), (aux_ref, x_ref[clean:])) if len(part)])
        (ref * upstream).sum().backward()
        assert torch.allclose(out, ref, atol=1e-6) and out.is_contiguous(memory_format=memory_format)
        assert torch.allclose(x.grad, x_ref.grad, atol=1e-6)
    for mine, ref_bn in ((dual, main_ref), (dual.aux, aux_ref)):
        assert torch.allclose(mine.running_mean, ref_bn.running_mean, atol=1e-6)
        assert torch.allclose(mine.running_var, ref_bn.running_var, atol=1e-6)
        assert int(mine.num_batches_tracked) == int(ref_bn.num_batches_tracked)
        for p, p_ref in ((mine.weight, ref_bn.weight), (mine.bias, ref_bn.bias)):
            # a BatchNorm that served no row gets a zero gradient (DDP), where the reference gets none
            assert torch.allclose(p.grad, torch.zeros(4) if p_ref.grad is None else p_ref.grad, atol=1e-5)


def test_dual_batchnorm_takes_bfloat16_rows_with_float_statistics() -> None:
    """Under amp_bf16 a BatchNorm gets bfloat16 activations and keeps float parameters and statistics: the copy-free
    path gives what two nn.BatchNorm2d give then (outputs, input and parameter gradients, running statistics)."""
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(4)
    dual = DualBatchNorm2d.from_batchnorm(copy.deepcopy(bn))
    main_ref, aux_ref = copy.deepcopy(bn), copy.deepcopy(bn)
    x = (torch.randn(10, 4, 5, 5) * 3 + 1).bfloat16().requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    upstream = torch.randn(10, 4, 5, 5)
    dual.num_aux = 3
    out = dual(x)
    (out.float() * upstream).sum().backward()
    ref = torch.cat([main_ref(x_ref[:7]), aux_ref(x_ref[7:])])
    (ref.float() * upstream).sum().backward()
    assert out.dtype == torch.bfloat16 and torch.equal(out, ref) and torch.equal(x.grad, x_ref.grad)
    for mine, ref_bn in ((dual, main_ref), (dual.aux, aux_ref)):
        assert mine.running_mean.dtype == torch.float32 and torch.equal(mine.running_mean, ref_bn.running_mean)
        assert torch.equal(mine.running_var, ref_bn.running_var)
        assert torch.equal(mine.weight.grad, ref_bn.weight.grad) and torch.equal(mine.bias.grad, ref_bn.bias.grad)


def test_dual_batchnorm_slices_when_compiling_or_under_functorch() -> None:
    """The fallback for torch.compile and functorch transforms gives the same numbers as the copy-free path."""
    torch.manual_seed(0)
    dual = DualBatchNorm2d(3)
    x = torch.randn(8, 3, 4, 4)
    dual.num_aux = 3
    fallback = copy.deepcopy(dual)._sliced_forward(x, 3)
    assert torch.allclose(dual(x), fallback, atol=1e-6)
    grads = torch.func.grad(lambda t: copy.deepcopy(dual)(t).pow(2).sum())(x)
    assert grads.shape == x.shape and torch.isfinite(grads).all()


def test_surgery_adds_only_auxiliary_parameters_and_keeps_the_network() -> None:
    model = resnet_cifar('resnet_20', 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = list(model.parameters())
    plain = copy.deepcopy(model)
    duals = add_aux_batchnorms(model, optimizer)
    assert len(duals) == 21 and add_aux_batchnorms(model, optimizer) == duals  # twice is once
    params = optimizer.param_groups[0]['params']
    assert len(params) == len(before) + 2 * 21 and all(any(p is q for q in params) for p in before)
    keys, plain_keys = set(model.state_dict()), set(plain.state_dict())
    assert plain_keys < keys and all('.aux.' in k for k in keys - plain_keys)
    x = torch.rand(4, 3, 32, 32)
    route_to_aux(duals, 2)
    assert torch.equal(model.eval().module(x), plain.eval().module(x))


def test_replay_forward_feeds_main_statistics_with_clean_rows_and_aux_with_bank_rows() -> None:
    torch.manual_seed(0)
    model = resnet_cifar('resnet_20', 10).module
    clean_ref, bank_ref = copy.deepcopy(model).train(), copy.deepcopy(model).train()
    duals = add_aux_batchnorms(model)
    x = torch.rand(12, 3, 32, 32)
    route_to_aux(duals, 4)
    out = model.train()(x)
    assert torch.allclose(out[:8], clean_ref(x[:8]), atol=1e-5) and torch.allclose(out[8:], bank_ref(x[8:]), atol=1e-5)
    for name, dual in model.named_modules():
        if isinstance(dual, DualBatchNorm2d):
            main, aux = clean_ref.get_submodule(name), bank_ref.get_submodule(name)
            assert torch.allclose(dual.running_mean, main.running_mean, atol=1e-6)
            assert torch.allclose(dual.running_var, main.running_var, atol=1e-6)
            assert torch.allclose(dual.aux.running_mean, aux.running_mean, atol=1e-6)
            assert torch.allclose(dual.aux.running_var, aux.running_var, atol=1e-6)


class RecordBatches(Callback):
    """What the model sees at BEFORE_FORWARD (callbacks run after the algorithms)."""

    def __init__(self) -> None:
        self.batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, set[int]]] = []

    def before_forward(self, state: State, logger: Logger) -> None:
        routed = {m.num_aux for m in state.model.modules() if isinstance(m, DualBatchNorm2d)}
        self.batches.append((*(t.clone() for t in state.batch), routed))


def test_replay_adds_exactly_the_stated_number_of_bank_examples(bank: str) -> None:
    trainer = build_trainer(load_config(None, [*TINY, f'{REPLAY}.bank={bank}', f'{REPLAY}.replay_fraction=0.1',
                                               'max_duration=2ba']))
    recorder = RecordBatches()
    trainer.state.callbacks.append(recorder)
    trainer.fit()
    trainer.close()
    stored = AdversarialBank(bank)
    assert len(recorder.batches) == 2
    for inputs, targets, indices, routed in recorder.batches:
        assert len(inputs) == 32 + 3  # round(0.1 * 32)
        assert (indices[:32] >= 0).all() and (indices[32:] < 0).all()
        assert routed == {3}
        bank_indices = (-1 - indices[32:]).tolist()
        images, labels = stored.examples(bank_indices)
        assert torch.equal(inputs[32:], images) and torch.equal(targets[32:], labels)
    assert not torch.equal(recorder.batches[0][2][32:], recorder.batches[1][2][32:])  # fresh draws each batch
    assert {m.num_aux for m in trainer.state.model.modules() if isinstance(m, DualBatchNorm2d)} == {0}


def test_the_checkpoint_loads_as_a_teacher(bank: str, tmp_path: Path) -> None:
    """Exact resumption is the generic tests' (tests/test_algorithms.py)."""
    train_in_process(f'{REPLAY}.bank={bank}', 'max_duration=2ba', 'save_interval=1ba', f'save_folder={tmp_path / "a"}')
    weights = load_checkpoint_state(str(tmp_path / 'a' / 'ep0-ba2-rank0.pt'))['model']
    assert not torch.equal(weights['module.bn.running_mean'], weights['module.bn.aux.running_mean'])

    teacher = PastRun(str(tmp_path / 'a')).load('latest')
    assert not any(isinstance(m, DualBatchNorm2d) for m in teacher.modules())
    student = resnet_cifar('resnet_20', 10)
    add_aux_batchnorms(student)
    student.load_state_dict(weights)
    x = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(teacher(x), student.eval().module(x))


def test_bad_banks_and_fractions_fail_before_training(bank: str, tmp_path: Path) -> None:
    def build(*overrides: str):
        return build_trainer(load_config(None, [*TINY, *overrides]))

    with pytest.raises(UsageError, match='no adversarial bank at .*bank.json is missing'):
        build(f'{REPLAY}.bank={tmp_path / "missing"}')
    empty = tmp_path / 'empty'
    with BankPart(str(empty), 0, (3, 32, 32)):
        pass
    finish_bank(str(empty), 1, {'num_classes': 10, 'image_shape': [3, 32, 32], 'checkpoints': []})
    with pytest.raises(UsageError, match='is empty'):
        build(f'{REPLAY}.bank={empty}')
    with pytest.raises(UsageError, match='has 100 classes but the model has 10: build the bank from a past run on the same'):
        build(f'{REPLAY}.bank={odd_bank(tmp_path / "cifar", num_classes=100)}')
    for fraction in (0, 1.5):
        with pytest.raises(UsageError, match=f'replay_fraction={fraction} is out of range'):
            build(f'{REPLAY}.bank={bank}', f'{REPLAY}.replay_fraction={fraction}')
    with pytest.raises(UsageError, match='adds no example to a batch of 32'):
        build(f'{REPLAY}.bank={bank}', f'{REPLAY}.replay_fraction=0.01').fit()
    trainer = build(f'{REPLAY}.bank={odd_bank(tmp_path / "small", shape=(3, 16, 16))}')
    with pytest.raises(UsageError, match=r'images of shape \(3, 16, 16\) but the training data has \(3, 32, 32\)'):
        trainer.fit()
    assert int(trainer.state.timestamp.batch) == 0


def test_digits_recipe_runs_under_two_ranks(bank: str, tmp_path: Path) -> None:
    result = run_cli(
        'train.py', 'yamls/digits/adv_replay.yaml', *TINY, f'{REPLAY}.bank={bank}', f'save_folder={tmp_path}',
        'callbacks={eval_robustness: {steps: 1, num_samples: 32}}', ranks=2,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'final test accuracy' in result.stdout
    weights = load_checkpoint_state(str(tmp_path / 'ep0-ba4-rank0.pt'))['model']
    aux = [k for k in weights if '.aux.' in k]
    assert len(aux) == 21 * 5  # weight, bias, running mean and var, batches tracked
    assert not torch.equal(weights['module.bn.running_mean'], weights['module.bn.aux.running_mean'])
