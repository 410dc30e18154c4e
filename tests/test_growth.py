"""Model growth (Net2Net): the grown network computes the past one's logits (deeper: identity blocks; wider:
Net2WiderNet at noise 0) in eval and train mode, for CIFAR ResNets and a torchvision pair; the copy method stacks
the stage's last block; mismatches are refused in one line; in a run, the grown student's first evaluation is the
past checkpoint's recorded accuracy and the ledger books the past run once beside distillation."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from conftest import TINY, train_in_process
from torch import nn

from algorithms.growth import GrowFromPastRun, grow, grow_depth, grow_width
from algorithms.past_run import PastRun, past_run_cost, source_key
from recipes.config import load_config
from recipes.core.errors import UsageError
from recipes.core.model import build_model, resnet_cifar
from recipes.trainer import build_trainer


def trained_like(net: nn.Module, seed: int = 0) -> nn.Module:
    """``net`` with BatchNorm scales, shifts and running statistics away from their initial values, as training
    leaves them (a fresh network's statistics would hide a BatchNorm copied from the wrong place)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.2, generator=g)
                m.running_mean.normal_(0, 0.2, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.num_batches_tracked.fill_(100)
    return net


def logits(net: nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    net = copy.deepcopy(net)  # train mode updates running statistics: keep the networks under test as they are
    with torch.no_grad():
        return (net.train() if mode == 'train' else net.eval())(x)


def assert_same_function(past: nn.Module, grown: nn.Module, x: torch.Tensor) -> None:
    for mode in ('eval', 'train'):
        a, b = logits(past, x, mode), logits(grown, x, mode)
        assert (a - b).abs().max().item() <= 1e-5 * max(1.0, a.abs().max().item()), mode


def state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def unchanged(net: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


@pytest.fixture(scope='module')
def past20() -> nn.Module:
    torch.manual_seed(0)
    return trained_like(resnet_cifar('resnet_20', 10).module)


@pytest.fixture(scope='module')
def batch() -> torch.Tensor:
    return torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize('name', ['resnet_32', 'resnet_56'])
def test_identity_growth_keeps_the_past_function_exactly(past20: nn.Module, batch: torch.Tensor, name: str) -> None:
    torch.manual_seed(1)
    fresh = resnet_cifar(name, 10).module
    past_before, fresh_before = state(past20), state(fresh)
    grown = grow_depth(past20, fresh, 'identity')
    assert_same_function(past20, grown, batch)
    assert unchanged(past20, past_before) and unchanged(fresh, fresh_before) and grown is not fresh
    n_past, n_new = len(past20.blocks) // 3, len(grown.blocks) // 3
    for s in range(3):
        for i in range(n_new):
            block = grown.blocks[s * n_new + i]
            if i < n_past:  # the past blocks, in order, at the start of each stage: parameters and statistics
                source = past20.blocks[s * n_past + i].state_dict()
                assert all(torch.equal(v, source[k]) for k, v in block.state_dict().items())
            else:  # new blocks: fresh's initialisation, the branch's last BatchNorm at 0
                assert torch.equal(block.conv1.weight, fresh.blocks[s * n_new + i].conv1.weight)
                assert not block.bn2.weight.any() and not block.bn2.bias.any()
    assert torch.equal(grown.fc.weight, past20.fc.weight) and torch.equal(grown.bn.running_var, past20.bn.running_var)


def test_copy_growth_stacks_each_stages_last_trained_block(past20: nn.Module, batch: torch.Tensor) -> None:
    grown = grow_depth(past20, resnet_cifar('resnet_32', 10).module, 'copy')
    for s in range(3):
        last = past20.blocks[s * 3 + 2].state_dict()
        for i in (3, 4):
            assert all(torch.equal(v, last[k]) for k, v in grown.blocks[s * 5 + i].state_dict().items())
    assert not torch.allclose(logits(past20, batch, 'eval'), logits(grown, batch, 'eval'))  # not function-preserving


def test_a_torchvision_resnet18_grows_into_a_resnet34_exactly(batch: torch.Tensor) -> None:
    torch.manual_seed(2)
    past = trained_like(build_model('torchvision/resnet18', 10))  # Composer models, as a run holds them
    fresh = build_model('torchvision/resnet34', 10)
    grown = grow_depth(past, fresh)
    assert_same_function(past.module, grown.module, batch[:2])
    assert torch.equal(grown.module.net.layer3[5].bn2.weight, torch.zeros(256))


def test_width_growth_at_noise_zero_keeps_the_function_and_the_statistics(past20: nn.Module, batch: torch.Tensor) -> None:
    wide = resnet_cifar('resnet_20', 10, width=24).module
    assert sum(p.numel() for p in resnet_cifar('resnet_20', 10).parameters()) == 272_474  # the default is unchanged
    past_before = state(past20)
    grown = grow_width(past20, wide, noise=0.0, seed=3)
    assert_same_function(past20, grown, batch)
    assert unchanged(past20, past_before)
    assert grown.blocks[8].bn2.running_var.shape == (96,)
    assert torch.equal(grown.blocks[8].bn2.running_var[:64], past20.blocks[8].bn2.running_var)  # old channels kept
    noisy = grow_width(past20, wide, noise=0.1, seed=3)
    assert not torch.allclose(logits(past20, batch, 'eval'), logits(noisy, batch, 'eval'), atol=1e-4)
    wider_deeper = grow(past20, resnet_cifar('resnet_32', 10, width=24).module)  # wider, then deeper
    assert_same_function(past20, wider_deeper, batch)


@pytest.mark.parametrize(('fresh', 'message'), [
    (lambda: build_model('torchvision/resnet18', 10), 'cannot grow a CIFAR ResNet'),
    (lambda: resnet_cifar('resnet_20', 10, width=24), "another width (first mismatch: 'conv.weight'"),
    (lambda: resnet_cifar('resnet_20', 10).module.__class__(14, 10), 'stage 1 of the new model has fewer blocks (2)'),
])
def test_a_mismatch_is_refused_in_one_line(past20: nn.Module, fresh, message: str) -> None:
    with pytest.raises(UsageError) as error:
        grow_depth(past20, fresh())
    assert '\n' not in str(error.value) and message in str(error.value)
    with pytest.raises(UsageError, match='keeps the depth'):
        grow_width(past20, resnet_cifar('resnet_32', 10, width=24))


def built(*overrides: str):
    return build_trainer(load_config(None, [*TINY, 'max_duration=1ba', 'eval_interval=1ba', *overrides]))


def test_the_grown_students_first_evaluation_is_the_past_checkpoints_accuracy(past_run: str) -> None:
    recorded = PastRun(past_run).quality('ep2').accuracy
    for overrides in (['model.name=resnet_32'], ['model.name=resnet_32', 'model.width=24']):
        trainer = built(*overrides, f'algorithms.grow_from_past_run.run={past_run}',
                        'algorithms.grow_from_past_run.checkpoint=ep2')
        alg = next(a for a in trainer.state.algorithms if isinstance(a, GrowFromPastRun))
        assert alg.reused_compute() == past_run_cost(past_run, ['ep2']) and alg.reused_compute()
        trainer.eval()  # before any step
        accuracy = float(trainer.state.eval_metrics['val']['MulticlassAccuracy'].compute())  # quality reads val
        assert accuracy == pytest.approx(recorded, abs=1e-6), overrides
        trainer.close()


def test_growth_stacks_with_distillation_and_books_the_past_run_once(past_run: str, tmp_path: Path) -> None:
    train_in_process('model.name=resnet_32', f'algorithms.grow_from_past_run.run={past_run}',
                     f'algorithms.past_run_distillation.run={past_run}', 'algorithms.grow_from_past_run.method=copy',
                     f'save_folder={tmp_path}', 'max_duration=1ba', 'eval_interval=1ba')
    reused = json.loads((tmp_path / 'compute.json').read_text())['reused']
    assert reused == {source_key(past_run): PastRun(past_run).compute_until('latest')}


@pytest.mark.parametrize(('overrides', 'message'), [
    (['algorithms.warm_start.run={run}'], 'both set the weights the run starts from'),
    (['model.name=torchvision/resnet18'], 'cannot grow a CIFAR ResNet'),
    (['algorithms.grow_from_past_run.method=stack'], "method='stack' is unknown"),
])
def test_a_run_that_cannot_grow_fails_in_one_line(past_run: str, overrides: list[str], message: str) -> None:
    with pytest.raises(UsageError) as error:
        trainer = built(f'algorithms.grow_from_past_run.run={past_run}', *(o.format(run=past_run) for o in overrides))
        trainer.close()
    assert '\n' not in str(error.value) and message in str(error.value), str(error.value)
