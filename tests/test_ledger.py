import json
from pathlib import Path

import pytest
import torch
from composer.core import Algorithm, Event
from conftest import TINY, train_in_process

from algorithms.ledger import ComputeLedger, count_flops, spend
from algorithms.past_run import PastRun
from recipes.core.model import resnet_cifar


def test_linear_and_convolution_against_a_hand_count():
    linear = torch.nn.Linear(5, 3)
    assert count_flops(linear, torch.rand(4, 5)) == 2 * 4 * 5 * 3  # one multiply and one add per weight and row
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, torch.rand(2, 3, 10, 10)) == 2 * 2 * 8 * 10 * 10 * 3 * 3 * 3

    def forward_backward(x):
        linear(x).sum().backward()

    # backward: gradient of the input and of the weight, each as large as the forward
    assert count_flops(forward_backward, torch.rand(4, 5, requires_grad=True)) == 3 * 2 * 4 * 5 * 3


def test_spend_attributes_marked_work_while_counting():
    from algorithms.ledger import _Measurement

    teacher, student = torch.nn.Linear(6, 2), torch.nn.Linear(6, 2)
    x = torch.rand(3, 6)
    measurement = _Measurement().start()
    student(x)
    with spend('teacher'):
        teacher(x)
        teacher(x)
    by_purpose = measurement.close()
    assert by_purpose == {'teacher': 2 * (2 * 3 * 6 * 2), 'student': 2 * 3 * 6 * 2}
    with spend('teacher'):  # not counting: a no-op
        teacher(x)


def test_a_run_records_what_it_spent(tmp_path):
    folder = tmp_path / 'run'
    trainer = train_in_process(f'save_folder={folder}', 'max_duration=1ep', 'data.global_batch_size=128', 'eval_interval=1ep',
                               'save_interval=1ep')
    ledger = next(c for c in trainer.state.callbacks if isinstance(c, ComputeLedger))
    recorded = json.loads((folder / 'compute.json').read_text())
    model = resnet_cifar('resnet_20', 10)
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    per_sample = count_flops(lambda: model.loss(model((x, y)), (x, y)).backward()) / 2
    samples = 10 * 128  # 1,293 digits outside the 144 held out, drop_last
    assert recorded['samples'] == samples
    assert recorded['spent']['student'] == pytest.approx(per_sample * samples, rel=1e-6)
    # forward only, on the 360 test images and the 144 held out for validation
    assert recorded['spent']['eval'] == pytest.approx(per_sample / 3 * (360 + 144), rel=0.01)
    assert recorded['spent_total'] == ledger.spent_total == recorded['spent']['student'] + recorded['spent']['eval']
    assert recorded['by_epoch'] == [recorded['spent']['student']]  # the epoch's evaluation runs after it ends
    assert recorded['reused_total'] == 0 and recorded['wall_seconds'] > 0
    assert PastRun(str(folder)).compute_until('ep1') == recorded['by_epoch'][0]


def test_a_reuse_run_records_what_it_reused(tmp_path, past_run):
    folder = tmp_path / 'kd'
    train_in_process(
        f'save_folder={folder}', f'algorithms.past_run_distillation.run={past_run}',
        'algorithms.past_run_distillation.checkpoint=ep1',
    )
    recorded = json.loads((folder / 'compute.json').read_text())
    past = json.loads((Path(past_run) / 'compute.json').read_text())
    assert recorded['reused'] == {f'past run {past_run}': past['by_epoch'][0]}
    assert recorded['reused_total'] == past['by_epoch'][0] > 0
    # a teacher forward is a third of the student's forward and backward (same network)
    assert recorded['spent']['teacher'] == pytest.approx(recorded['spent']['student'] / 3, rel=0.01)


class ChargesOnce(Algorithm):
    """Reports 5e9 FLOPs spent once, outside the training steps, under the purpose 'probe'."""

    def one_off_compute(self) -> dict[str, float]:
        return {'probe': 5e9}

    def match(self, event, state) -> bool:
        return False

    def apply(self, event, state, logger) -> None:
        pass


def test_compute_spent_once_is_booked_once_under_its_purpose(tmp_path):
    from recipes.config import load_config
    from recipes.registry import ALGORITHMS
    from recipes.trainer import build_trainer

    with ALGORITHMS.registered('charges_once', ChargesOnce):
        trainer = build_trainer(load_config(None, [*TINY, 'algorithms.charges_once={}', f'save_folder={tmp_path}']))
    trainer.fit(duration='1ba')
    trainer.fit(duration='1ba')  # a second fit asks again: set, not added
    trainer.close()
    recorded = json.loads((tmp_path / 'compute.json').read_text())
    assert recorded['spent']['probe'] == 5e9
    assert recorded['spent_total'] == pytest.approx(sum(recorded['spent'].values()), rel=1e-12)


class FailsAfterLoading(Algorithm):
    """Raises when a batch arrives: the fit stops in the middle of a counted batch."""

    def match(self, event, state) -> bool:
        return event == Event.AFTER_DATALOADER

    def apply(self, event, state, logger) -> None:
        raise RuntimeError('stopped mid-batch')


def test_a_fit_that_raises_mid_batch_leaves_no_counter_behind():
    from algorithms import ledger
    from recipes.config import load_config
    from recipes.registry import ALGORITHMS
    from recipes.trainer import build_trainer

    with ALGORITHMS.registered('fails_after_loading', FailsAfterLoading):
        failed = build_trainer(load_config(None, [*TINY, 'algorithms.fails_after_loading={}']))
    with pytest.raises(RuntimeError, match='stopped mid-batch'):
        failed.fit()  # not closed, as a test or a notebook that stops at the error leaves it
    train_in_process('max_duration=1ba', 'eval_interval=1ba')  # the next run's first count ends the stale one
    assert ledger._active['measurement'] is None
    linear = torch.nn.Linear(3, 2)
    x = torch.rand(4, 3, requires_grad=True)
    assert torch.autograd.grad(linear(x).sum(), x)[0].shape == x.shape  # no FlopCounterMode hook left to meet
    failed.close()
