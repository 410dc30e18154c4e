"""Warm starting and shrink-and-perturb: the functional form against the hand computation, the Algorithms in a
run, the ledger, and the one-line refusal across architectures."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import TINY
from torch import nn

from algorithms.past_run import PastRun
from algorithms.warm_start import ShrinkPerturb, WarmStart, shrink_perturb
from recipes.config import load_config
from recipes.core.errors import UsageError
from recipes.trainer import build_trainer


def small(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    for p in net.parameters():
        nn.init.normal_(p)
    net[1].running_mean.normal_()
    net[1].running_var.uniform_(0.5, 2.0)
    return net


def test_shrink_perturb_is_the_hand_computation_and_leaves_its_inputs_alone():
    past, fresh = small(1), small(2)
    past_before, fresh_before = copy.deepcopy(past.state_dict()), copy.deepcopy(fresh.state_dict())
    mixed = shrink_perturb(past, fresh, 0.4, 0.1)
    for name, value in mixed.named_parameters():
        expected = 0.4 * past_before[name].double() + 0.1 * fresh_before[name].double()
        assert torch.allclose(value.double(), expected, atol=1e-7), name
        assert not torch.equal(value, past_before[name]) and not torch.equal(value, fresh_before[name])
    for name in ('1.running_mean', '1.running_var', '1.num_batches_tracked'):
        assert torch.equal(mixed.state_dict()[name], fresh_before[name])  # buffers are the fresh model's
    assert not torch.equal(past_before['1.running_mean'], fresh_before['1.running_mean'])
    for net, before in ((past, past_before), (fresh, fresh_before)):
        assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert mixed is not fresh and mixed is not past


def test_shrink_one_perturb_zero_is_the_past_parameters_bit_for_bit():
    past, fresh = small(3), small(4)
    mixed = shrink_perturb(past, fresh, 1.0, 0.0)
    assert all(torch.equal(p, q) for p, q in zip(mixed.parameters(), past.parameters(), strict=True))


def test_shrink_perturb_refuses_another_architecture():
    with pytest.raises(UsageError, match='another architecture'):
        shrink_perturb(small(1), nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Linear(5, 2)), 0.4, 0.1)


def built(*overrides: str):
    return build_trainer(load_config(None, [*TINY, 'max_duration=1ba', 'eval_interval=1ba', *overrides]))


def student_state(trainer) -> dict[str, torch.Tensor]:
    return {k.removeprefix('module.'): v.clone() for k, v in trainer.state.model.state_dict().items()}


def test_warm_start_starts_from_the_past_weights_and_buffers(past_run: str):
    trainer = built(f'algorithms.warm_start.run={past_run}', 'algorithms.warm_start.checkpoint=ep2')
    past = PastRun(past_run).load('ep2').state_dict()
    start = student_state(trainer)
    assert all(torch.equal(start[k], v) for k, v in past.items())  # parameters and BatchNorm statistics
    alg = next(a for a in trainer.state.algorithms if isinstance(a, WarmStart))
    assert next(iter(alg.reused_compute().values())) > 0
    optimizer_params = {p.data_ptr() for g in trainer.state.optimizers[0].param_groups for p in g['params']}
    assert {p.data_ptr() for p in trainer.state.model.parameters()} == optimizer_params  # copied in place
    trainer.fit()
    assert not torch.equal(student_state(trainer)['fc.weight'], past['fc.weight'])  # it trained from there
    trainer.close()


def test_shrink_perturb_mixes_the_past_run_with_this_runs_own_initialisation(past_run: str):
    fresh = student_state(built())  # the plain run of the same seed: its initial model is `fresh`
    trainer = built(f'algorithms.shrink_perturb.run={past_run}', 'algorithms.shrink_perturb.checkpoint=ep2',
                    'algorithms.shrink_perturb.shrink=0.5', 'algorithms.shrink_perturb.perturb=0.2')
    past = PastRun(past_run).load('ep2').state_dict()
    start = student_state(trainer)
    params = {k for k, _ in trainer.state.model.module.named_parameters()}
    for name, value in start.items():
        if name in params:
            assert torch.allclose(value, 0.5 * past[name] + 0.2 * fresh[name], atol=1e-6), name
        else:
            assert torch.equal(value, fresh[name]), name  # buffers: the fresh model's
    alg = next(a for a in trainer.state.algorithms if isinstance(a, ShrinkPerturb))
    assert alg.reused_compute() == next(a for a in built(f'algorithms.warm_start.run={past_run}',
                                                         'algorithms.warm_start.checkpoint=ep2').state.algorithms).reused


@pytest.mark.parametrize('name', ['warm_start', 'shrink_perturb'])
def test_warm_starting_across_architectures_fails_in_one_line(past_run: str, name: str):
    with pytest.raises(UsageError) as error:
        built('model.name=resnet_32', f'algorithms.{name}.run={past_run}')
    message = str(error.value)
    assert '\n' not in message and 'resnet_20' in message and 'another architecture' in message


@pytest.mark.parametrize(('args', 'message'), [
    ({'shrink': -0.1}, 'shrink=-0.1 must be a number >= 0'),
    ({'perturb': -1}, 'perturb=-1 must be a number >= 0'),
    ({'checkpoint': 'ep9'}, "no checkpoint 'ep9'"),
])
def test_shrink_perturb_errors(past_run: str, args: dict, message: str):
    with pytest.raises(UsageError, match=message.replace('[', r'\[')):
        built(f'algorithms.shrink_perturb.run={past_run}', *(f'algorithms.shrink_perturb.{k}={v}' for k, v in args.items()))


def test_the_shrink_perturb_preset_mixes_into_your_own_trainers_model(past_run: str):
    from composer import Trainer

    from recipes import presets
    from recipes.core.data import MDSImageDataset, build_loader, resolve_root
    from recipes.core.model import resnet_cifar

    preset = presets.shrink_perturb(past_run, 'ep2', shrink=0.4, perturb=0.1)
    assert repr(preset.algorithms[0]) == (  # spelled from the declaration: every argument the YAML may give
        f"ShrinkPerturb(run={past_run!r}, checkpoint='ep2', shrink=0.4, perturb=0.1, strict=False)")
    model = resnet_cifar('resnet_20', 10)
    fresh = {k: v.clone() for k, v in model.module.state_dict().items()}
    loader = build_loader(MDSImageDataset(resolve_root('digits', None), 'train', 10), 32, shuffle=True, drop_last=True,
                          num_workers=0, seed=17)
    trainer = Trainer(model=model, train_dataloader=loader, max_duration='1ba', algorithms=preset.algorithms, seed=17,
                      device='cpu', progress_bar=False)
    past = PastRun(past_run).load('ep2').state_dict()
    start = model.module.state_dict()
    assert torch.allclose(start['fc.weight'], 0.4 * past['fc.weight'] + 0.1 * fresh['fc.weight'], atol=1e-6)
    assert torch.equal(start['bn.running_var'], fresh['bn.running_var'])
    trainer.close()
