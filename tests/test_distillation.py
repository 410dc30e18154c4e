"""Past-run distillation: kd_loss, the frozen teacher outside the student, S3 teachers, errors, exact resumption of
a teacher pool (each algorithm's own: tests/test_algorithms.py), when to distil (``until``, ``every``), a teacher of another architecture, the
random-weight control, and the mixup recipe under ``composer -n 2``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import boto3
import pytest
import torch
import torch.nn.functional as F
from composer import Trainer
from composer.core import Callback, Event, State
from composer.loggers import InMemoryLogger, Logger
from conftest import TINY, run_cli, train_in_process

from algorithms import PastRunDistillation, kd_loss
from algorithms.distillation import RandomTeacherDistillation, TeacherDistillation, teacher_active
from algorithms.distillation.distillation import random_network
from algorithms.ledger import ComputeLedger, count_flops
from algorithms.past_run import PastRun, load_checkpoint_state
from algorithms.protocols import ReusesCompute
from recipes.config import load_config
from recipes.core.errors import UsageError
from recipes.registry import ALGORITHMS, BuildContext, build_one
from recipes.trainer import build_trainer

KD = 'algorithms.past_run_distillation'
MIXUP_TEACHER = 'algorithms.checkpoint_mixup_teacher'


def kd_args(past_run: str, **args: object) -> list[str]:
    return [f'{KD}.run={past_run}', f'{KD}.checkpoint=ep2', *(f'{KD}.{k}={v}' for k, v in args.items())]


def with_log(*overrides: str) -> tuple[Trainer, InMemoryLogger]:
    """A TINY run's Trainer, not yet fitted, and an in-memory log of its metrics."""
    trainer = build_trainer(load_config(None, [*TINY, *overrides]))
    log = InMemoryLogger()
    log.init(trainer.state, trainer.logger)
    trainer.logger.destinations = (*trainer.logger.destinations, log)
    return trainer, log


def fit(*overrides: str, callbacks: tuple[Callback, ...] = ()) -> tuple[Trainer, InMemoryLogger]:
    """Fit a TINY run with extra callbacks; returns the trainer and the log of its metrics."""
    trainer, log = with_log(*overrides)
    trainer.state.callbacks.extend(callbacks)
    trainer.fit()
    trainer.close()
    return trainer, log


def logged(log: InMemoryLogger, key: str) -> list[float]:
    return [value for _, value in log.data[key]]


def kd_direct(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor, t: float, a: float) -> torch.Tensor:
    """The definition, written out sample by sample in float64."""
    s, te = student.double(), teacher.double()
    soft = F.one_hot(target, s.shape[1]).double() if target.ndim == 1 else target.double()
    total = torch.zeros((), dtype=torch.float64)
    for n in range(s.shape[0]):
        ce = -(soft[n] * torch.log(torch.exp(s[n]) / torch.exp(s[n]).sum())).sum()
        p = torch.exp(te[n] / t) / torch.exp(te[n] / t).sum()
        q = torch.exp(s[n] / t) / torch.exp(s[n] / t).sum()
        total += (1 - a) * ce + a * t**2 * (p * (p.log() - q.log())).sum()
    return total / s.shape[0]


@pytest.mark.parametrize('soft', [False, True], ids=['indices', 'soft'])
@pytest.mark.parametrize('temperature', [1.0, 4.0, 10.0])
@pytest.mark.parametrize('alpha', [0.0, 0.3, 0.9, 1.0])
def test_kd_loss_matches_the_definition(soft: bool, temperature: float, alpha: float):
    gen = torch.Generator().manual_seed(int(temperature * 10 + alpha * 100) + soft)
    student, teacher = torch.randn(6, 5, generator=gen) * 3, torch.randn(6, 5, generator=gen) * 3
    target = torch.randint(0, 5, (6,), generator=gen)
    if soft:  # a MixUp-style target: two one-hot rows mixed
        target = 0.7 * F.one_hot(target, 5).float() + 0.3 * F.one_hot(target.roll(1), 5).float()
    got = kd_loss(student, teacher, target, temperature, alpha)
    assert torch.allclose(got.double(), kd_direct(student, teacher, target, temperature, alpha), rtol=1e-5, atol=1e-6)


def test_kd_loss_is_zero_kd_for_a_teacher_equal_to_the_student():
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    assert torch.allclose(kd_loss(logits, logits, target, 4.0, 1.0), torch.zeros(()), atol=1e-6)
    assert torch.equal(kd_loss(logits, logits + 1, target, 4.0, 0.0), F.cross_entropy(logits, target))


class RecordStep(Callback):
    """At AFTER_LOSS (after every algorithm) keep what the student saw, the targets, outputs and loss."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def run_event(self, event: Event, state: State, logger: Logger) -> None:
        if event == Event.AFTER_LOSS:
            self.steps.append({
                'input': state.batch[0].clone(),
                'target': state.batch[1].clone(),
                'outputs': state.outputs.detach().clone(),
                'loss': state.loss.detach().clone(),
            })


def test_teacher_is_frozen_outside_the_student_and_sees_the_mixed_input(past_run: str):
    record = RecordStep()
    trainer, log = fit('max_duration=2ba', 'eval_interval=2ba', 'algorithms.mixup.alpha=1.0',
                       *kd_args(past_run, alpha=0.7, temperature=3.0), callbacks=(record,))
    alg = next(a for a in trainer.state.algorithms if isinstance(a, PastRunDistillation))
    teacher = alg.teacher
    student_params = {p.data_ptr() for p in trainer.state.model.parameters()}
    assert not any(p.data_ptr() in student_params for p in teacher.parameters())
    assert not any(m is teacher for m in trainer.state.model.modules())
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters()) and not teacher.training
    reference = PastRun(past_run).load('ep2')
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), reference.state_dict().values(), strict=True))

    assert len(record.steps) == 2
    for step in record.steps:
        assert step['target'].ndim == 2 and ((step['target'] > 0) & (step['target'] < 1)).any()  # MixUp mixed them
        with torch.no_grad():
            teacher_logits = reference(step['input'])
        expected = kd_loss(step['outputs'], teacher_logits, step['target'], 3.0, 0.7)
        assert torch.allclose(step['loss'], expected, rtol=1e-6)
    ce, kd = logged(log, 'kd/ce'), logged(log, 'kd/kd')
    assert len(ce) == 2 and all(k > 0 for k in kd)
    assert logged(log, 'loss/train/total') == pytest.approx([0.3 * c + 0.7 * k for c, k in zip(ce, kd, strict=True)], rel=1e-5)
    assert all(0.0 <= a <= 1.0 for a in logged(log, 'kd/teacher_accuracy'))
    ledger = next(c for c in trainer.state.callbacks if isinstance(c, ComputeLedger))
    assert 0.2 < ledger.spent['teacher'] / ledger.spent['student'] < 0.5  # a forward is about 1/3 of a step


def test_alpha_zero_trains_bit_for_bit_like_the_plain_run(past_run: str):
    plain = train_in_process('max_duration=2ba', 'eval_interval=2ba')
    kd, log = fit('max_duration=2ba', 'eval_interval=2ba', *kd_args(past_run, alpha=0.0))
    assert min(logged(log, 'kd/kd')) > 0  # the teacher ran and its term was not zero
    for (name, a), b in zip(plain.state.model.state_dict().items(), kd.state.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_teacher_from_the_s3_server(past_run: str, s3_bucket: str):
    client = boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT_URL'])
    bucket = s3_bucket.removeprefix('s3://')
    for name in os.listdir(past_run):
        client.upload_file(os.path.join(past_run, name), bucket, f'runs/digits-past/{name}')
    ctx = BuildContext(num_classes=10, device='cpu', precision='fp32', train_dataset=None, seed=0)  # type: ignore[arg-type]
    alg = build_one('algorithms', ALGORITHMS, 'past_run_distillation',
                    {'run': f'{s3_bucket}/runs/digits-past', 'checkpoint': 'ep1'}, ctx)
    local = PastRun(past_run).load('ep1').state_dict()
    assert all(torch.equal(a, local[k]) for k, a in alg.teacher.state_dict().items())
    assert not torch.equal(local['fc.weight'], PastRun(past_run).load('ep2').state_dict()['fc.weight'])


@pytest.fixture
def broken_runs(past_run: str, tmp_path: Path) -> dict[str, str]:
    """Copies of the past run with a truncated checkpoint, a non-checkpoint file, and 100 classes in its config."""
    runs = {}
    for kind in ('truncated', 'garbage', 'classes'):
        runs[kind] = str(shutil.copytree(past_run, tmp_path / kind))
    ep2 = next(n for n in os.listdir(past_run) if n.startswith('ep2-'))
    data = (Path(past_run) / ep2).read_bytes()
    (Path(runs['truncated']) / ep2).write_bytes(data[: len(data) // 2])
    (Path(runs['garbage']) / ep2).write_bytes(b'not a checkpoint at all')
    config = Path(runs['classes']) / 'config.yaml'
    config.write_text(config.read_text().replace('num_classes: 10', 'num_classes: 100'))
    return runs


@pytest.mark.parametrize(('case', 'args', 'message'), [
    ('missing-run', {'run': '/nonexistent/run'}, 'no past run at /nonexistent/run'),
    ('missing-checkpoint', {'checkpoint': 'ep9'}, "no checkpoint 'ep9'"),
    ('truncated', {}, 'is not a Composer checkpoint or is truncated'),
    ('garbage', {}, 'is not a Composer checkpoint or is truncated'),
    ('classes', {}, 'has 100 classes but this run has 10'),
    ('temperature', {'temperature': 0}, 'temperature=0 must be a number > 0'),
    ('alpha', {'alpha': 1.5}, 'alpha=1.5 is the weight of the KD term and must lie in [0, 1]'),
])
def test_errors_stop_the_run_before_training(past_run, broken_runs, case, args, message):
    run = broken_runs.get(case, past_run)
    overrides = [*kd_args(run), *(f'{KD}.{k}={v}' for k, v in args.items())]
    with pytest.raises(UsageError) as error:
        build_trainer(load_config(None, [*TINY, *overrides]))
    assert message in str(error.value)


def teacher_args(past_run: str) -> dict[str, list[str]]:
    return {
        'kd': kd_args(past_run),
        'kd_mixup': [f'{MIXUP_TEACHER}.run={past_run}', f'{MIXUP_TEACHER}.checkpoints=[ep1,ep2]'],
    }


def test_mixup_recipe_runs_under_two_ranks(past_run: str, tmp_path: Path):
    """One launch for the test budget: the mixup teacher exercises the shared TeacherDistillation under DDP."""
    folder = tmp_path / 'kd_mixup'
    result = run_cli('train.py', 'yamls/digits/kd_mixup.yaml', *TINY, *teacher_args(past_run)['kd_mixup'],
                     f'save_folder={folder}', 'max_duration=2ba', 'eval_interval=2ba', ranks=2)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 0.0 <= float(result.stdout.split('final test accuracy:')[1].split()[0]) <= 1.0
    state = load_checkpoint_state(str(folder / 'ep0-ba2-rank0.pt'))
    student = PastRun(past_run).load('ep1').state_dict()
    assert set(state['model']) == {f'module.{k}' for k in student}  # the teachers are not part of the student


def test_pool_resumption_is_exact(past_run: str, tmp_path: Path):
    second = str(shutil.copytree(past_run, tmp_path / 'seed2'))
    args = [f'{MIXUP_TEACHER}.runs=[{past_run},{second}]',
            f'{MIXUP_TEACHER}.checkpoints=[ep1,ep2]', f'{MIXUP_TEACHER}.draw=dirichlet', f'{MIXUP_TEACHER}.k=3',
            'max_duration=2ba', 'eval_interval=2ba', 'save_interval=1ba']
    whole = train_in_process(*args, f'save_folder={tmp_path}/whole')
    resumed = train_in_process(*args, f'save_folder={tmp_path}/resumed', f'load_path={tmp_path}/whole/ep0-ba1-rank0.pt')
    assert int(resumed.state.timestamp.batch) == 2
    for (name, a), b in zip(whole.state.model.state_dict().items(), resumed.state.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_teacher_active_epochs():
    assert [teacher_active(e, None, 1) for e in range(4)] == [True] * 4
    assert [teacher_active(e, 2, 1) for e in range(4)] == [True, True, False, False]
    assert [teacher_active(e, None, 3) for e in range(7)] == [True, False, False, True, False, False, True]
    assert [teacher_active(e, 4, 2) for e in range(6)] == [True, False, True, False, False, False]


# A twentieth of the digits (71 examples) is 2 batches of 32 an epoch.
BATCHES = 2
SHORT_EPOCHS = ['data.subset_fraction=0.05', 'eval_interval=3ep', 'save_interval=3ep']


@pytest.mark.parametrize(('teacher', 'schedule', 'on'), [
    ('kd', 'until=1ep', [1, 0]),
    ('kd_mixup', 'every=2', [1, 0, 1]),
])
def test_no_teacher_forward_runs_when_the_schedule_says_off(past_run: str, teacher: str, schedule: str, on: list[int]):
    section = KD if teacher == 'kd' else MIXUP_TEACHER
    trainer, log = with_log(*SHORT_EPOCHS, f'max_duration={len(on)}ep', *teacher_args(past_run)[teacher],
                            f'{section}.{schedule}')
    alg = next(a for a in trainer.state.algorithms if isinstance(a, TeacherDistillation))
    forwards: list[int] = []
    for net in alg.teachers:
        net.register_forward_hook(lambda _m, inputs, _o: forwards.append(len(inputs[0])))
    trainer.fit()
    trainer.close()
    assert logged(log, 'kd/teacher_on') == [flag for flag in on for _ in range(BATCHES)]
    assert len(logged(log, 'kd/kd')) == BATCHES * sum(on)  # KD metrics only while the teacher runs
    assert set(forwards) == {32}
    forwards_per_batch = 1 if teacher == 'kd' else 2
    assert len(forwards) == forwards_per_batch * BATCHES * sum(on)
    ledger = next(c for c in trainer.state.callbacks if isinstance(c, ComputeLedger))
    one = count_flops(alg.teachers[0], torch.zeros(1, 3, 32, 32))  # a teacher forward of one image
    assert ledger.spent['teacher'] == pytest.approx(forwards_per_batch * one * 32 * BATCHES * sum(on), rel=1e-6)
    assert ledger.spent['student'] > 0


def test_a_resnet_20_teacher_teaches_a_resnet_56_student(past_run: str):
    record = RecordStep()
    trainer, _ = fit('model.name=resnet_56', 'max_duration=1ba', 'eval_interval=1ba',
                     *kd_args(past_run, alpha=0.5), callbacks=(record,))
    assert sum(p.numel() for p in trainer.state.model.parameters()) == 855_770  # resnet_56, 10 classes
    reference = PastRun(past_run).load('ep2')
    assert sum(p.numel() for p in reference.parameters()) == 272_474  # resnet_20
    with torch.no_grad():
        teacher_logits = reference(record.steps[0]['input'])
    expected = kd_loss(record.steps[0]['outputs'], teacher_logits, record.steps[0]['target'], 4.0, 0.5)
    assert torch.allclose(record.steps[0]['loss'], expected, rtol=1e-6)


def test_the_random_weight_control_runs_a_teacher_that_knows_nothing(past_run: str):
    trainer, log = fit('max_duration=2ba', 'eval_interval=2ba', 'algorithms.random_teacher_distillation.run=' + past_run)
    alg = next(a for a in trainer.state.algorithms if isinstance(a, RandomTeacherDistillation))
    assert not isinstance(alg, ReusesCompute) and alg.seed == trainer.state.rank_zero_seed + 1  # it reuses nothing
    trained = PastRun(past_run).load('latest').state_dict()
    teacher = alg.teacher.state_dict()
    assert set(teacher) == set(trained) and not torch.equal(teacher['fc.weight'], trained['fc.weight'])
    assert all(torch.equal(a, b) for a, b in zip(teacher.values(), random_network(past_run, alg.seed).state_dict().values(),
                                                  strict=True))
    assert not torch.equal(random_network(past_run, 1).state_dict()['fc.weight'], teacher['fc.weight'])
    assert len(logged(log, 'kd/kd')) == 2 and min(logged(log, 'kd/kd')) > 0
    assert max(logged(log, 'kd/teacher_accuracy')) < 0.5  # chance is 0.1: no knowledge
    ledger = next(c for c in trainer.state.callbacks if isinstance(c, ComputeLedger))
    assert 0.2 < ledger.spent['teacher'] / ledger.spent['student'] < 0.5  # the cost of a real teacher
