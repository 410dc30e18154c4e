"""DASH: the shrink against hand-computed numbers (a linear layer, a 2x2-kernel convolution with two input channels),
normalisation layers left alone, the averaged gradient against its recursion, and in a run: the shrink happens once,
before the first step, and its gradient pass is charged to the run."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from algorithms.past_run import PastRun
from algorithms.warm_start import DashWarmStart, averaged_gradient, dash_shrink
from recipes.config import load_config
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.errors import UsageError
from recipes.trainer import build_trainer

R = 1 / math.sqrt(2)


def test_a_linear_layer_shrinks_each_output_row_and_its_bias_as_one_vector():
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0], [1.0, 1.0], [0.0, 2.0]]))
        layer.bias.copy_(torch.tensor([1.0, 2.0, 2.0]))
    grads = {
        'weight': torch.tensor([[-3.0, -4.0],   # descent [3, 4]: cos 1, the row stays
                                [-1.0, 0.0],    # descent [1, 0] against [1, 1]: cos 1/sqrt(2)
                                [0.0, 1.0]]),   # descent [0, -1] against [0, 2]: cos -1, shrunk to lam
        'bias': torch.tensor([-1.0, 0.0, 0.0]),  # descent [1, 0, 0] against [1, 2, 2]: cos 1/3 > lam
    }
    dash_shrink(layer, grads, lam=0.3)
    torch.testing.assert_close(layer.weight, torch.tensor([[3.0, 4.0], [R, R], [0.0, 0.6]]))
    torch.testing.assert_close(layer.bias, torch.tensor([1 / 3, 2 / 3, 2 / 3]))


def test_a_convolution_shrinks_each_output_input_channel_kernel_on_its_own():
    conv = nn.Conv2d(2, 2, kernel_size=2)
    kernels = torch.tensor([
        [[[1.0, 0.0], [0.0, 1.0]], [[2.0, 2.0], [2.0, 2.0]]],  # output 0: input channels 0 and 1
        [[[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 0.0]]],  # output 1
    ])
    with torch.no_grad():
        conv.weight.copy_(kernels)
        conv.bias.copy_(torch.tensor([2.0, 0.0]))
    grads = {
        'weight': torch.tensor([
            [[[-1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]],   # cos 1/sqrt(2); cos -1 -> lam
            [[[-1.0, -2.0], [-3.0, -4.0]], [[0.0, -1.0], [0.0, 0.0]]],  # cos 1; cos 0 -> lam
        ]),
        'bias': torch.tensor([-1.0, -1.0]),  # descent [1, 1] against [2, 0]: cos 1/sqrt(2)
    }
    dash_shrink(conv, grads, lam=0.3)
    expected = torch.tensor([
        [[[R, 0.0], [0.0, R]], [[0.6, 0.6], [0.6, 0.6]]],
        [[[1.0, 2.0], [3.0, 4.0]], [[0.3, 0.0], [0.0, 0.0]]],  # one filter, two factors: per channel pair, not filter
    ])
    torch.testing.assert_close(conv.weight, expected)
    torch.testing.assert_close(conv.bias, torch.tensor([2 * R, 0.0]))


def small_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 2), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3 * 2 * 2, 4))
    net[1].running_mean.normal_()
    net[1].running_var.uniform_(0.5, 2.0)
    net[1].num_batches_tracked.fill_(7)
    with torch.no_grad():
        net[1].weight.normal_()
    return net


def test_normalisation_layers_parameters_and_buffers_are_left_alone():
    net = small_net()
    before = copy.deepcopy(net.state_dict())
    grads = {name: torch.randn_like(p) for name, p in net.named_parameters()}
    dash_shrink(net, grads, lam=0.3)
    after = net.state_dict()
    for name in ('1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked'):
        assert torch.equal(after[name], before[name]), name
    assert not torch.equal(after['0.weight'], before['0.weight']) and not torch.equal(after['3.weight'], before['3.weight'])


def test_dash_shrink_refuses_a_missing_gradient_and_lam_out_of_range():
    net = small_net()
    grads = {name: torch.zeros_like(p) for name, p in net.named_parameters() if name != '3.bias'}
    with pytest.raises(ValueError, match="no gradient for '3.bias'"):
        dash_shrink(net, grads, 0.3)
    with pytest.raises(ValueError, match='lam=1.5 is out of range'):
        dash_shrink(net, {**grads, '3.bias': torch.zeros(4)}, 1.5)


def test_the_averaged_gradient_is_the_moving_average_of_the_batches_mean_gradients():
    net = small_net()
    torch.manual_seed(1)
    data = [(torch.rand(2, 3, 3), int(torch.randint(4, ())), i) for i in range(5)]  # batches [0, 1], [2, 3], [4]
    alpha = 0.3
    expected = {name: torch.zeros_like(p) for name, p in net.named_parameters()}
    net.eval()
    for start in (0, 2, 4):
        rows = data[start:start + 2]
        x, y = torch.stack([r[0] for r in rows]), torch.tensor([r[1] for r in rows])
        net.zero_grad()
        F.cross_entropy(net(x), y).backward()
        for name, p in net.named_parameters():
            expected[name] = (1 - alpha) * expected[name] + alpha * p.grad
    net.zero_grad(set_to_none=True)
    net.train()
    state, rng = copy.deepcopy(net.state_dict()), torch.get_rng_state()
    got = averaged_gradient(net, data, batch_size=2, alpha=alpha, micro_batch=1, device=torch.device('cpu'))
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-7)
    assert net.training and all(p.grad is None for p in net.parameters())  # mode restored, no .grad written
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())  # BatchNorm ran on running statistics
    assert torch.equal(torch.get_rng_state(), rng)


def built(*overrides: str):
    return build_trainer(load_config(None, [*TINY, 'max_duration=1ba', 'eval_interval=1ba', *overrides]))


def network_state(trainer) -> dict[str, torch.Tensor]:
    return {k.removeprefix('module.'): v.clone() for k, v in trainer.state.model.state_dict().items()}


def test_the_shrink_happens_once_before_the_first_step_and_its_pass_is_charged(past_run: str, tmp_path):
    """After one batch the weights are the past checkpoint's, shrunk by DASH's rule, plus one step: the same as a
    warm start whose student was shrunk by hand before it trained."""
    dash = [f'algorithms.dash_warm_start.run={past_run}', 'algorithms.dash_warm_start.checkpoint=ep2',
            'algorithms.dash_warm_start.batch_size=500']
    expected = PastRun(past_run).load('ep2').requires_grad_(True)
    dataset = MDSImageDataset(resolve_root('digits', None), 'train', 10, holdout=144)  # the run's training data
    with FlopCounterMode(display=False) as counter:
        grads = averaged_gradient(expected, dataset, batch_size=500, alpha=0.3, micro_batch=32, device=torch.device('cpu'))
    dash_shrink(expected, grads, 0.3)
    shrunk = {k: v.clone() for k, v in expected.state_dict().items()}
    past = PastRun(past_run).load('ep2').state_dict()  # before the trainers: building a network draws random numbers

    trainer = built(*dash, f'save_folder={tmp_path}/dash')
    assert all(torch.equal(v, past[k]) for k, v in network_state(trainer).items())  # INIT: the past weights
    trainer.fit()  # FIT_START shrinks, then one step
    stepped = network_state(trainer)
    trainer.close()

    by_hand = built(f'algorithms.warm_start.run={past_run}', 'algorithms.warm_start.checkpoint=ep2')
    with torch.no_grad():
        for name, value in by_hand.state.model.module.state_dict().items():
            value.copy_(shrunk[name])
    by_hand.fit()
    for name, value in network_state(by_hand).items():
        torch.testing.assert_close(stepped[name], value, rtol=0, atol=1e-6, msg=name)
    by_hand.close()
    assert not torch.equal(stepped['fc.weight'], shrunk['fc.weight'])  # and it did step

    spent = json.loads((tmp_path / 'dash' / 'compute.json').read_text())['spent']
    assert spent['dash'] == counter.get_total_flops() > 0


def test_two_warm_starts_in_one_run_are_refused_in_one_line(past_run: str):
    with pytest.raises(UsageError) as error:
        built(f'algorithms.warm_start.run={past_run}', f'algorithms.dash_warm_start.run={past_run}')
    assert '\n' not in str(error.value) and 'both set the weights the run starts from' in str(error.value)


def test_a_trainer_whose_data_is_no_mdsimagedataset_is_told_what_to_pass(past_run: str):
    from composer import Trainer
    from torch.utils.data import DataLoader, TensorDataset

    from recipes.core.model import resnet_cifar

    data = TensorDataset(torch.rand(8, 3, 32, 32), torch.randint(10, (8,)), torch.arange(8))
    trainer = Trainer(model=resnet_cifar('resnet_20', 10), train_dataloader=DataLoader(data, batch_size=4),
                      max_duration='1ba', algorithms=[DashWarmStart(past_run, 'ep2')], device='cpu', progress_bar=False)
    with pytest.raises(UsageError, match='found TensorDataset: pass dataset='):
        trainer.fit()
    trainer.close()
