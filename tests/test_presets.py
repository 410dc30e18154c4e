"""Presets build what the digits YAMLs build, and a partner's plain Composer Trainer trains with one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from composer import Trainer
from conftest import TINY
from test_reuse_all import make_bank, make_scores

from recipes import presets
from recipes.config import load_config
from recipes.core.data import MDSImageDataset, build_loader, resolve_root
from recipes.core.model import resnet_cifar
from recipes.trainer import build_trainer

KEYS = ('temperature', 'alpha', 'mix_alpha', 'space', 'checkpoints', 'scores_uri', 'order', 'pacing',
        'start_fraction', 'full_at', 'prune_fraction', 'reweight', 'batch_size', 'max_duration', 'replay_fraction',
        'aux_bn')


@pytest.fixture(scope='module')
def scores(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_scores(tmp_path_factory.mktemp('presets'))


@pytest.fixture(scope='module')
def bank(past_run: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_bank(tmp_path_factory.mktemp('presets'), past_run)


def summary(algorithm: object) -> tuple:
    values = {k: getattr(algorithm, k) for k in KEYS if hasattr(algorithm, k)}
    if hasattr(algorithm, 'bank'):
        values['bank'] = algorithm.bank.root
    if hasattr(algorithm, 'teacher'):
        values['teacher'] = [p.detach().clone() for p in algorithm.teacher.parameters()][:3]
    return type(algorithm).__name__, values


def same(a: tuple, b: tuple) -> bool:
    if a[0] != b[0] or a[1].keys() != b[1].keys():
        return False
    for k, v in a[1].items():
        w = b[1][k]
        if k == 'teacher':
            if not all(torch.equal(x, y) for x, y in zip(v, w, strict=True)):
                return False
        elif v != w:
            return False
    return True


def yaml_algorithms(recipe: str, *overrides: str) -> list:
    trainer = build_trainer(load_config(recipe, [*TINY, 'save_folder=null', *overrides]))
    algorithms = list(trainer.state.algorithms)
    trainer.close()
    return algorithms


@pytest.mark.parametrize('name', ['baseline', 'kd', 'kd_mixup', 'grand_curriculum', 'adv_replay', 'reuse_all'])
def test_each_preset_builds_what_its_digits_yaml_builds(name: str, past_run: str, scores: str, bank: str) -> None:
    run = {'past_run_distillation': [f'algorithms.past_run_distillation.run={past_run}'],
           'checkpoint_mixup_teacher': [f'algorithms.checkpoint_mixup_teacher.run={past_run}',
                                        'algorithms.checkpoint_mixup_teacher.checkpoints=[ep1,ep2]'],
           'grand_curriculum': [f'algorithms.grand_curriculum.scores={scores}'],
           'adversarial_replay': [f'algorithms.adversarial_replay.bank={bank}']}
    recipe = f'yamls/digits/{name}.yaml'
    used = [o for key, opts in run.items() if key in open(recipe).read() for o in opts]
    from_yaml = yaml_algorithms(recipe, *used, 'callbacks={}')
    pace = {'batch_size': 32, 'max_duration': '4ba'}  # TINY's
    preset = {
        'baseline': lambda: presets.baseline(),
        'kd': lambda: presets.kd(past_run=past_run),
        'kd_mixup': lambda: presets.kd_mixup(past_run=past_run, checkpoints=['ep1', 'ep2']),
        'grand_curriculum': lambda: presets.grand_curriculum(scores, **pace),
        'adv_replay': lambda: presets.adv_replay(bank),
        'reuse_all': lambda: presets.reuse_all(past_run, ['ep1', 'ep2'], scores, bank, **pace),
    }[name]()
    assert preset.hyperparameters == {}
    assert len(preset.algorithms) == len(from_yaml) == {'baseline': 0, 'reuse_all': 3}.get(name, 1)
    for ours, theirs in zip(preset.algorithms, from_yaml, strict=True):
        assert same(summary(ours), summary(theirs)), (summary(ours), summary(theirs))


def test_a_plain_composer_trainer_trains_with_the_kd_preset(past_run: str) -> None:
    dataset = MDSImageDataset(resolve_root('digits', None), 'train', 10)
    preset = presets.kd(past_run=past_run)
    assert preset.train_sampler(dataset, seed=17) is None
    loader = build_loader(dataset, 32, shuffle=True, drop_last=True, num_workers=0, seed=17)
    model = resnet_cifar('resnet_20', 10)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(model=model, train_dataloader=loader, max_duration='2ba', algorithms=preset.algorithms,
                      seed=17, device='cpu', progress_bar=False)
    trainer.fit()
    assert int(trainer.state.timestamp.batch) == 2
    assert np.isfinite(float(trainer.state.loss))
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
    trainer.close()
