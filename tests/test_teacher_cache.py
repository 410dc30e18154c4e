"""The teacher cache: what it stores rebuilds the teacher's distribution (exactly with k = C, within the method card's
bound otherwise), students trained from it see the outputs the live teacher gives on the very views they drew,
resume bit-exactly, and a cache of another teacher, split or augmentation, or a damaged one, is refused in one line."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from composer.core import Algorithm, Event, State
from composer.loggers import Logger
from conftest import TINY, run_cli, train_in_process

from algorithms.distillation import CheckpointMixupTeacher, PastRunDistillation
from algorithms.distillation.cache import (
    CACHE_FILE,
    TeacherCache,
    build_cache,
    compress,
    expand,
    view_subsets,
)
from algorithms.distillation.distillation import distillation_term
from algorithms.past_run import PastRun, load_checkpoint_state
from recipes.config import load_config
from recipes.core.data.device_augment import num_views
from recipes.core.errors import UsageError
from recipes.trainer import build_trainer

DEVICE = ('data.augment_on=device',)
TWO_BATCHES = ('max_duration=2ba', 'eval_interval=2ba', 'save_interval=1ba')


def kd(past_run: str, cache: str | None, checkpoint: str = 'ep2') -> list[str]:
    args = [f'algorithms.past_run_distillation.run={past_run}', f'algorithms.past_run_distillation.checkpoint={checkpoint}']
    return args + ([f'algorithms.past_run_distillation.cache={cache}'] if cache else [])


@pytest.fixture(scope='session')
def cache(past_run: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every logit (k = C = 10) of the past run's ep2 for two seeded views of each digits training example."""
    out = str(tmp_path_factory.mktemp('teacher-cache') / 'ep2')
    build_cache(PastRun(past_run), ['ep2'], out, top_k=10, views=2, seed=3, progress=False)
    return out


def test_compress_with_every_class_is_the_logits_to_float16() -> None:
    logits = torch.randn(6, 3, 20) * 5
    rebuilt = expand(*compress(logits, 20), 20)
    torch.testing.assert_close(rebuilt, logits.half().float(), rtol=0, atol=0)
    p, q = (F.softmax(z / 4.0, dim=-1) for z in (logits, rebuilt))
    assert float((p - q).abs().max()) < 2e-3


def test_compress_with_fewer_classes_keeps_the_rest_mass_and_stays_within_the_bound() -> None:
    logits = torch.randn(64, 100) * 3
    k = 5
    values, classes, rest = compress(logits, k)
    rebuilt = expand(values, classes, rest, 100)
    top = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, classes, True)
    rest_of = lambda z: z[~top].reshape(64, -1).logsumexp(1)  # noqa: E731 - the others' log-mass at T = 1
    torch.testing.assert_close(rest_of(rebuilt), rest_of(logits), rtol=0, atol=1e-5)
    for temperature in (1.0, 4.0, 20.0):
        p, q = F.softmax(logits / temperature, dim=1), F.softmax(rebuilt / temperature, dim=1)
        bound = 2 * (p[~top].reshape(64, -1).sum(1) + q[~top].reshape(64, -1).sum(1))
        l1 = (p - q).abs().sum(1)
        assert bool((l1 <= bound + 2e-3).all()), (temperature, float((l1 - bound).max()))
        assert float(l1.max()) > 1e-3  # the rest is not exact: the bound is what holds


def test_view_subsets_are_seeded_per_example_whatever_the_shard() -> None:
    whole = view_subsets(10, 16, 4, seed=7, start=0)
    assert whole.shape == (10, 16) and whole.dtype.name == 'uint8'
    assert all(len(set(row.tolist())) == 16 and row.max() < num_views(4) for row in whole)
    assert (view_subsets(4, 16, 4, seed=7, start=6) == whole[6:]).all()
    assert not (view_subsets(10, 16, 4, seed=8, start=0) == whole).all()
    assert (view_subsets(3, 162, 4, seed=7, start=0) == list(range(162))).all()


class Capture(Algorithm):
    """Records, after the teacher ran, the inputs the student saw, the teacher distribution and the student's logits."""

    def __init__(self, teacher: PastRunDistillation) -> None:
        self.teacher = teacher
        self.seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def match(self, event: Event, state: State) -> bool:
        return event == Event.AFTER_FORWARD

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        probs = self.teacher._teacher_probs
        assert probs is not None, 'Capture must run after the teacher at AFTER_FORWARD'
        self.seen.append((state.batch[0].clone(), state.batch[2].clone(), probs.clone(), state.outputs.detach().clone()))


def test_a_student_of_the_cache_gets_the_live_teachers_outputs_on_the_views_it_drew(past_run: str, cache: str) -> None:
    trainer = build_trainer(load_config(None, [*TINY, *DEVICE, *kd(past_run, cache), 'max_duration=2ba']))
    teacher = next(a for a in trainer.state.algorithms if isinstance(a, PastRunDistillation))
    assert teacher.teachers == () and 'cache=' in repr(teacher)
    capture = Capture(teacher)
    trainer.state.algorithms.insert(0, capture)  # AFTER_* events run in reverse: it sees the teacher's output
    trainer.fit()
    trainer.close()
    live = PastRun(past_run).load('ep2')
    for inputs, indices, cached, student in capture.seen:
        expected = F.softmax(live(inputs).float() / teacher.temperature, dim=1)
        assert float((cached - expected).abs().max()) < 2e-3
        loss_cached, loss_live = (distillation_term(student, p, teacher.temperature) for p in (cached, expected))
        assert math.isclose(float(loss_cached), float(loss_live), rel_tol=2e-3)
        allowed = TeacherCache(cache).views[indices]  # each row's view is one of its example's two cached ones
        seen = [any(torch.equal(inputs[r], v) for v in _views_of(trainer, int(i), allowed[r])) for r, i in enumerate(indices)]
        assert all(seen)
    reused = teacher.reused_compute()
    assert reused[f'cache {cache}'] == pytest.approx(TeacherCache(cache).flops) and reused[f'cache {cache}'] > 0


def _views_of(trainer, index: int, views: torch.Tensor) -> list[torch.Tensor]:
    from recipes.core.data.device_augment import apply_views

    dataset = trainer.state.train_dataloader.dataset
    position = index if dataset.indices is None else int(np.searchsorted(dataset.indices, index))
    image, _, found = dataset[position]
    assert found == index
    return [apply_views(image[None], v[None])[0] for v in views]


def test_resumes_bit_exactly_from_the_cache(past_run: str, cache: str, tmp_path: Path) -> None:
    common = (*DEVICE, *kd(past_run, cache), *TWO_BATCHES)
    train_in_process(*common, f'save_folder={tmp_path}/whole')
    train_in_process(*common, f'save_folder={tmp_path}/resumed', f'load_path={tmp_path}/whole/ep0-ba1-rank0.pt')
    a, b = (load_checkpoint_state(f'{tmp_path}/{run}/ep0-ba2-rank0.pt')['model'] for run in ('whole', 'resumed'))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_mixup_teacher_reads_each_of_its_checkpoints_from_one_cache(past_run: str, tmp_path: Path) -> None:
    out = str(tmp_path / 'mix')
    metadata = build_cache(PastRun(past_run), ['ep1', 'ep2'], out, top_k=3, views=1, progress=False)
    assert metadata['compute']['teacher_forwards'] == 2 * (metadata['data']['size'] - 144)  # not the 144 held out
    mixup = [f'algorithms.checkpoint_mixup_teacher.run={past_run}', 'algorithms.checkpoint_mixup_teacher.checkpoints=[ep1,ep2]']
    trainer = train_in_process(*DEVICE, *mixup, f'algorithms.checkpoint_mixup_teacher.cache={out}', 'max_duration=2ba')
    teacher = next(a for a in trainer.state.algorithms if isinstance(a, CheckpointMixupTeacher))
    assert teacher.networks == [] and teacher.last_draw is not None
    with pytest.raises(UsageError, match=r'holds .*ep1 .*ep2 .*, not .*ep2 .*ep1 '):
        build(*DEVICE, f'algorithms.checkpoint_mixup_teacher.run={past_run}',
              'algorithms.checkpoint_mixup_teacher.checkpoints=[ep2,ep1]', f'algorithms.checkpoint_mixup_teacher.cache={out}')


@pytest.fixture
def copy(cache: str, tmp_path: Path) -> Path:
    folder = tmp_path / 'copy'
    shutil.copytree(cache, folder)
    return folder


def build(*overrides: str):
    return build_trainer(load_config(None, [*TINY, *overrides]))


def test_a_cache_without_its_marker_is_refused(past_run: str, copy: Path) -> None:
    (copy / CACHE_FILE).unlink()
    with pytest.raises(UsageError, match=f'no teacher cache at {copy} \\(cache.json is missing.*launch/cache_teacher.py'):
        build(*DEVICE, *kd(past_run, str(copy)))


def test_a_truncated_shard_is_refused(past_run: str, copy: Path) -> None:
    shard = copy / 'shard-00001.npz'
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(UsageError, match=f'{shard} has 1000 bytes .*the cache is damaged'):
        build(*DEVICE, *kd(past_run, str(copy)))


def test_a_cache_of_another_teacher_is_refused(past_run: str, cache: str) -> None:
    with pytest.raises(UsageError, match=r'holds .*:ep2 \(sha256 \w+\), not .*:ep1 .*launch/cache_teacher.py'):
        build(*DEVICE, *kd(past_run, cache, checkpoint='ep1'))


def test_a_cache_of_another_split_is_refused(past_run: str, copy: Path) -> None:
    metadata = json.loads((copy / CACHE_FILE).read_text())
    metadata['data']['label_sha256'] = '0' * 64
    (copy / CACHE_FILE).write_text(json.dumps(metadata))
    with pytest.raises(UsageError, match='was built on another training split'):
        build(*DEVICE, *kd(past_run, str(copy)))


def test_a_cache_needs_the_device_augmentation_and_no_input_mixing(past_run: str, cache: str) -> None:
    with pytest.raises(UsageError, match='has no device augmentation: set data.augment_on: device'):
        build(*kd(past_run, cache))
    with pytest.raises(UsageError, match='MixUp mixes the inputs the teacher sees'):
        build(*DEVICE, *kd(past_run, cache), 'algorithms.mixup.alpha=0.2')


def test_the_cli_builds_on_s3_resumes_a_broken_build_and_errors_in_one_line(past_run: str, s3_bucket: str,
                                                                           tmp_path: Path) -> None:
    out = f'{s3_bucket}/cache/ep2'
    done = run_cli('cache_teacher.py', '--run', past_run, '--checkpoint', 'ep2', '--top_k', '4', '--views', '1',
                   '--out', out)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'wrote the top-4 logits of ep2 for 1293 examples x 1 views' in done.stdout  # 1,437 less 144 held out
    trainer = train_in_process(*DEVICE, *kd(past_run, out), 'max_duration=1ba')
    assert any(isinstance(a, PastRunDistillation) and a.cache is not None for a in trainer.state.algorithms)
    local = str(tmp_path / 'local')
    first = build_cache(PastRun(past_run), ['ep2'], local, top_k=4, views=1, progress=False)
    (tmp_path / 'local' / 'shard-00001.npz').unlink()
    (tmp_path / 'local' / CACHE_FILE).unlink()
    kept = (tmp_path / 'local' / 'shard-00000.npz').stat().st_mtime_ns
    assert build_cache(PastRun(past_run), ['ep2'], local, top_k=4, views=1, progress=False) == first
    assert (tmp_path / 'local' / 'shard-00000.npz').stat().st_mtime_ns == kept
    bad = run_cli('cache_teacher.py', '--run', past_run, '--checkpoint', 'ep9', '--top_k', '4', '--out', local)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and 'ep9' in bad.stderr


def test_two_ranks_split_the_shards_and_write_what_one_process_writes(past_run: str, tmp_path: Path) -> None:
    one = build_cache(PastRun(past_run), ['ep2'], str(tmp_path / 'one'), top_k=4, views=1, progress=False)
    two = run_cli('cache_teacher.py', '--run', past_run, '--checkpoint', 'ep2', '--top_k', '4', '--views', '1',
                  '--out', str(tmp_path / 'two'), ranks=2)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count('wrote the top-4 logits') == 1  # rank 0 alone reports
    assert json.loads((tmp_path / 'two' / CACHE_FILE).read_text()) == one
    for shard in one['shards']:
        assert (tmp_path / 'two' / shard['file']).read_bytes() == (tmp_path / 'one' / shard['file']).read_bytes()
    assert len(one['shards']) == 2  # 1,437 examples: one shard per rank
