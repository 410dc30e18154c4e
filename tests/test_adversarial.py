"""PGD: the eps-ball and the [0, 1] box, the loss it raises, the model it leaves untouched; attack parameter checks;
robust accuracy from the CLI and as an in-training callback."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from composer.loggers import InMemoryLogger
from conftest import ROOT, TINY

from algorithms.adversarial_replay.bank import build_bank
from algorithms.adversarial_replay.pgd import ATTACK_TIES, parse_pixel_value, pgd, robust_accuracy
from algorithms.past_run import PastRun
from recipes.config import load_config
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.errors import UsageError
from recipes.core.model import resnet_cifar
from recipes.core.ties import Values
from recipes.trainer import build_trainer

EPS = 8 / 255


def launch_main(script: str):
    """The ``main`` of a launch/ script, imported in this process (no interpreter start-up)."""
    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / 'launch' / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope='module')
def digits_test() -> tuple[torch.Tensor, torch.Tensor]:
    test = MDSImageDataset(resolve_root('digits', None), 'test', 10)
    items = [test[i] for i in range(64)]
    return torch.stack([x for x, _, _ in items]), torch.tensor([y for _, y, _ in items])


def test_pgd_stays_in_ball_and_box_and_raises_the_loss(past_run: str, digits_test) -> None:
    model = PastRun(past_run).load('ep2')
    images, labels = digits_test
    adversarial = pgd(model, images, labels, eps=EPS, step_size=2 / 255, steps=5)
    assert (adversarial - images).abs().max() <= EPS + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert (adversarial - images).abs().mean() > EPS / 4  # it moved
    with torch.no_grad():
        clean_loss = F.cross_entropy(model(images), labels)
        adversarial_loss = F.cross_entropy(model(adversarial), labels)
    assert adversarial_loss > clean_loss + 0.5, (float(clean_loss), float(adversarial_loss))


def test_fgsm_moves_every_free_pixel_by_eps(digits_test) -> None:
    model = resnet_cifar('resnet_20', 10).module
    images, labels = digits_test
    adversarial = pgd(model, images, labels, eps=EPS, step_size=EPS, steps=1, random_start=False)
    free = (images >= EPS) & (images <= 1 - EPS)  # pixels the box does not clip
    moved = (adversarial - images).abs()[free]
    assert free.sum() > 1000
    assert torch.allclose(moved, torch.full_like(moved, EPS), atol=1e-6)


@pytest.mark.parametrize('training', [True, False])
def test_pgd_leaves_mode_batchnorm_statistics_and_gradients_alone(training: bool, digits_test) -> None:
    model = resnet_cifar('resnet_20', 10).module.train(training)
    with torch.no_grad():  # move the BatchNorm statistics off their initial values
        model.train()(torch.rand(16, 3, 32, 32))
    model.train(training)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = digits_test
    with torch.no_grad():  # as inside an evaluation loop
        adversarial = pgd(model, images[:16], labels[:16], eps=EPS, step_size=2 / 255, steps=3)
    assert model.training is training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert not torch.equal(adversarial, images[:16])


def test_random_start_follows_the_generator(digits_test) -> None:
    model = resnet_cifar('resnet_20', 10).module
    images, labels = digits_test
    runs = [
        pgd(model, images[:8], labels[:8], EPS, 2 / 255, 1, generator=torch.Generator().manual_seed(seed))
        for seed in (3, 3, 4)
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_attack_parameters_are_checked() -> None:
    assert parse_pixel_value('8/255', '--eps') == pytest.approx(8 / 255)
    assert parse_pixel_value('0.5', '--eps') == 0.5
    with pytest.raises(UsageError, match=r"--eps='eight' is not a number.*8/255"):
        parse_pixel_value('eight', '--eps')
    with pytest.raises(UsageError, match=r'--eps=2 \(510/255\) is out of range'):
        build_bank('runs/none', ['ep1'], 'bank', 2.0, 0.1, 7)
    with pytest.raises(UsageError, match=r'--step_size=0.1 \(25.5/255\) is out of range: use a step in \(0, eps=0.05 \(12.8/255\)\]'):
        build_bank('runs/none', ['ep1'], 'bank', 0.05, 0.1, 7)
    with pytest.raises(UsageError, match=r'--steps=0 is out of range'):
        build_bank('runs/none', ['ep1'], 'bank', 0.05, 0.01, 0)
    with pytest.raises(UsageError, match=r'^eval_robustness.step_size=0.1 \(25.5/255\) is out of range'):
        ATTACK_TIES.check(Values({'eps': 0.05, 'step_size': 0.1}, prefix='eval_robustness.'))


def test_eval_robustness_cli_reports_clean_and_pgd_accuracy(past_run: str, tmp_path: Path, digits_test) -> None:
    out = tmp_path / 'robustness.json'
    main = launch_main('eval_robustness.py')
    assert main(['--run', past_run, '--checkpoint', 'ep2', '--steps', '3', '--num_samples', '64', '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    model = PastRun(past_run).load('ep2')
    images, labels = digits_test
    clean, adversarial = robust_accuracy(model, images, labels, EPS, EPS / 4, 3, generator=torch.Generator().manual_seed(0))
    assert result['num_samples'] == 64
    assert result['clean_accuracy'] == clean / 64
    assert result['pgd_accuracy'] == adversarial / 64
    # The fixture's ep2 may sit near chance, where PGD has few correct answers to flip: never above clean.
    # That PGD raises the loss is test_pgd_stays_in_ball_and_box_and_raises_the_loss's job.
    assert result['pgd_accuracy'] <= result['clean_accuracy']
    with pytest.raises(UsageError, match='--num_samples=999 is out of range: the test split has 360'):
        main(['--run', past_run, '--num_samples', '999'])


def test_eval_robustness_callback_logs_the_subset_accuracy(digits_test) -> None:
    trainer = build_trainer(load_config(None, [*TINY, 'callbacks={eval_robustness: {steps: 2, num_samples: 48}}']))
    log = InMemoryLogger()
    log.init(trainer.state, trainer.logger)
    trainer.logger.destinations = (*trainer.logger.destinations, log)
    trainer.fit()
    trainer.close()
    clean_log = log.data['metrics/robustness/clean_accuracy']
    pgd_log = log.data['metrics/robustness/pgd_accuracy']
    assert len(clean_log) == len(pgd_log) == 1  # TINY evaluates once, at batch 4
    images, labels = digits_test
    clean, adversarial = robust_accuracy(
        trainer.state.model.module, images[:48], labels[:48], EPS, EPS / 4, 2, generator=torch.Generator().manual_seed(0),
    )
    assert clean_log[0][1] == clean / 48
    assert pgd_log[0][1] == adversarial / 48
