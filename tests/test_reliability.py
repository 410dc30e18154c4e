"""Runs that die come back with nothing lost; storage faults never corrupt a checkpoint; untrusted files can't run code."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY, run_cli, train_in_process

from algorithms.past_run import PastRun, load_checkpoint_state
from recipes.config import load_config
from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.trainer import build_trainer

RECIPE = 'yamls/digits/baseline.yaml'
LONG = ['max_duration=24ba', 'save_interval=4ba', 'eval_interval=24ba']  # all checkpoints mid-epoch (44 batches)


def launcher(log: Path, ranks: int) -> list[str]:
    """The interpreter, or ``composer -n ranks`` writing each rank's own output beside ``log``: the launcher prints
    only rank 0's, so a run that dies on another rank would otherwise not say why (see :func:`read_logs`)."""
    if ranks == 1:
        return [sys.executable]
    stem = str(log.with_suffix(''))
    return [str(Path(sys.executable).with_name('composer')), '-n', str(ranks),
            '--stdout', f'{stem}-rank{{rank}}.stdout', '--stderr', f'{stem}-rank{{rank}}.stderr']


def read_logs(log: Path, tail: int = 3000) -> str:
    """The end of ``log`` and of every other rank's own output files."""
    files = [log, *sorted(log.parent.glob(f'{log.stem}-rank*'))]
    return '\n'.join(f'--- {f.name}\n{f.read_text()[-tail:]}' for f in files if f.exists())


def start_train(log: Path, *args: str, ranks: int = 1, recipe: str = RECIPE) -> subprocess.Popen:
    """launch/train.py in a process group of its own, output to ``log`` (a pipe nobody reads could block it)."""
    with open(log, 'w') as out:
        return subprocess.Popen(
            [*launcher(log, ranks), str(ROOT / 'launch' / 'train.py'), recipe, *args],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.2)


def equal_weights(a: str, b: str) -> bool:
    wa, wb = load_checkpoint_state(a)['model'], load_checkpoint_state(b)['model']
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def kill_and_resume(logs: Path, run: str, overrides: list[str], ranks: int, recipe: str = RECIPE) -> int:
    """Start a run, SIGKILL every rank once a mid-epoch checkpoint is in S3, start it again, let it finish.

    Returns the batch the second start resumed at.
    """
    args = [*TINY, *LONG, *overrides, f'save_folder={run}', 'run_name=killed', 'autoresume=true']
    process = start_train(logs / 'first.log', *args, ranks=ranks, recipe=recipe)
    try:
        wait_for(lambda: storage.exists(f'{run}/ep0-ba8-rank0.pt') or process.poll() is not None, 240, 'ba8 upload')
        assert process.poll() is None, 'the run ended before it could be killed: ' + read_logs(logs / 'first.log')
        assert not storage.exists(f'{run}/ep0-ba24-rank0.pt')
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    resumed = start_train(logs / 'second.log', *args, ranks=ranks, recipe=recipe)
    assert resumed.wait(timeout=400) == 0, read_logs(logs / 'second.log')
    return int((logs / 'second.log').read_text().split('resumed at batch ')[1].split()[0])


@pytest.mark.parametrize('ranks', [1, pytest.param(2, marks=pytest.mark.slow)])
def test_sigkill_then_autoresume_equals_an_uninterrupted_run(tmp_path, s3_bucket, ranks):
    reference = tmp_path / 'reference'
    if ranks == 1:
        train_in_process(*LONG, f'save_folder={reference}', 'run_name=reference')
    else:
        done = run_cli('train.py', RECIPE, *TINY, *LONG, f'save_folder={reference}', ranks=2)
        assert done.returncode == 0, done.stderr[-3000:]
    run = f'{s3_bucket}/runs/killed'
    assert kill_and_resume(tmp_path, run, [], ranks) >= 8
    assert equal_weights(f'{run}/ep0-ba24-rank0.pt', str(reference / 'ep0-ba24-rank0.pt'))


@pytest.fixture(scope='module')
def reuse_inputs(past_run: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """EL2N scores and a small FGSM bank from the past run, made in this process."""
    import numpy as np

    from algorithms.adversarial_replay.bank import build_bank
    from algorithms.curriculum.scores import dataset_labels, label_fingerprint, write_scores
    from recipes.core.data import MDSImageDataset, resolve_root

    folder = tmp_path_factory.mktemp('reuse')
    labels = dataset_labels(MDSImageDataset(resolve_root('digits', None), 'train', 10))
    scores = np.random.default_rng(0).random(len(labels)).astype(np.float32)
    dataset = {'name': 'digits', 'size': len(labels), 'label_sha256': label_fingerprint(labels)}
    write_scores(str(folder / 'scores.npy'), scores, {'method': 'el2n', 'dataset': dataset})
    build_bank(past_run, ['ep1', 'ep2'], str(folder / 'bank'), eps=8 / 255, step_size=8 / 255, steps=1,
               fraction=0.05, batch_size=128, num_workers=0, progress=False)
    return {'scores': str(folder / 'scores.npy'), 'bank': str(folder / 'bank')}


REUSE = {
    'kd': ('yamls/digits/kd.yaml', ['algorithms.past_run_distillation.run={past}']),
    'kd_mixup': ('yamls/digits/kd_mixup.yaml', ['algorithms.checkpoint_mixup_teacher.run={past}',
                                                'algorithms.checkpoint_mixup_teacher.checkpoints=[ep1,ep2]']),
    'grand_curriculum': ('yamls/digits/grand_curriculum.yaml', ['algorithms.grand_curriculum.scores={scores}',
                                                                'algorithms.grand_curriculum.reweight=inverse']),
    'adv_replay': ('yamls/digits/adv_replay.yaml', ['algorithms.adversarial_replay.bank={bank}',
                                                    'callbacks.eval_robustness.num_samples=32']),
}


@pytest.mark.slow
@pytest.mark.parametrize('name', list(REUSE))
def test_each_reuse_algorithm_resumes_exactly_after_sigkill(tmp_path, s3_bucket, past_run, reuse_inputs, name):
    recipe, template = REUSE[name]
    overrides = [o.format(past=past_run, **reuse_inputs) for o in template]
    reference = tmp_path / 'reference'
    train_in_process(*LONG, *overrides, f'save_folder={reference}', 'run_name=reference', recipe=recipe)
    run = f'{s3_bucket}/runs/{name}'
    assert kill_and_resume(tmp_path, run, overrides, ranks=1, recipe=recipe) >= 8
    assert equal_weights(f'{run}/ep0-ba24-rank0.pt', str(reference / 'ep0-ba24-rank0.pt'))


def test_a_pickle_with_a_payload_is_refused(tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    evil = tmp_path / 'evil.pt'
    torch.save({'state': {'model': {}}, 'x': Payload()}, evil)
    with pytest.raises(UsageError, match='refused to load .*evil.pt: it holds Python objects'):
        load_checkpoint_state(str(evil))
    assert not marker.exists()
    with open(tmp_path / 'plain.pkl', 'wb') as f:
        pickle.dump(Payload(), f)
    with pytest.raises(UsageError, match='plain.pkl is not a Composer checkpoint'):
        load_checkpoint_state(str(tmp_path / 'plain.pkl'))  # not torch's format: refused before unpickling code
    assert not marker.exists()


def test_a_planted_payload_is_refused_on_resume_too(tmp_path, past_run):
    """Composer's loader would unpickle a resumed checkpoint in full: the trainer checks it with the allowlist first."""
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    checkpoint = torch.load(PastRun(past_run).resolve('ep1'), map_location='cpu', weights_only=False)
    checkpoint['state']['callbacks']['Planted'] = Payload()
    evil = tmp_path / 'evil.pt'
    torch.save(checkpoint, evil)
    with pytest.raises(UsageError, match='refused to load .*evil.pt: it holds Python objects'):
        build_trainer(load_config(None, [*TINY, f'load_path={evil}']))
    folder = tmp_path / 'run'  # autoresume: Composer would follow the folder's latest link
    folder.mkdir()
    (folder / 'latest-rank0.pt').symlink_to(evil)
    with pytest.raises(UsageError, match='refused to load .*latest-rank0.pt: it holds Python objects'):
        build_trainer(load_config(None, [*TINY, f'save_folder={folder}', 'run_name=evil', 'autoresume=true']))
    assert not marker.exists()


def test_truncated_and_foreign_checkpoints_are_named(tmp_path, past_run):
    source = PastRun(past_run).resolve('ep1')
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(Path(source).read_bytes()[:5000])
    with pytest.raises(UsageError, match='truncated.pt is not a Composer checkpoint or is truncated'):
        load_checkpoint_state(str(truncated))
    foreign = tmp_path / 'foreign.pt'
    torch.save({'weights': torch.zeros(3)}, foreign)
    with pytest.raises(UsageError, match=r'foreign.pt is not a Composer checkpoint \(no state.model\)'):
        load_checkpoint_state(str(foreign))


def test_s3_uri_errors_are_named(s3_bucket):
    with pytest.raises(UsageError, match="'s3:///key' is not an S3 URI with a bucket"):
        storage.split_s3('s3:///key')
    with pytest.raises(UsageError, match=f'{s3_bucket}/missing.json does not exist'):
        storage.read_bytes(f'{s3_bucket}/missing.json')
    with pytest.raises(UsageError, match="bucket 'no-such-bucket' of s3://no-such-bucket/x does not exist"):
        storage.check_reachable('s3://no-such-bucket/x')
    with pytest.raises(UsageError, match=f'checkpoint {s3_bucket}/run/ep1-ba1-rank0.pt does not exist'):
        PastRun(f'{s3_bucket}/run').load(f'{s3_bucket}/run/ep1-ba1-rank0.pt')


def test_no_credential_reaches_the_run_folder_or_the_logs(tmp_path, s3_bucket):
    folder = tmp_path / 'run'
    result = run_cli(
        'train.py', RECIPE, *TINY, f'save_folder={folder}', f'loggers.file.filename={tmp_path}/log.txt',
        env={'AWS_SECRET_ACCESS_KEY': 'sEcReT-kEy-1234', 'AWS_ACCESS_KEY_ID': 'AKIA-ID-5678'},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    texts = [result.stdout, result.stderr, (tmp_path / 'log.txt').read_text()]
    texts += [(folder / name).read_text() for name in ('config.yaml', 'metrics.json', 'compute.json')]
    assert all('sEcReT-kEy-1234' not in t and 'AKIA-ID-5678' not in t for t in texts)


@pytest.mark.slow
def test_s3_outage_during_uploads_never_leaves_a_bad_checkpoint(tmp_path):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f'http://{host}:{port}'
    import boto3

    boto3.client('s3', endpoint_url=endpoint).create_bucket(Bucket='outage')
    run = 's3://outage/runs/outage'
    env = {**os.environ, 'S3_ENDPOINT_URL': endpoint}
    log = tmp_path / 'train.log'
    with open(log, 'w') as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / 'launch' / 'train.py'), RECIPE, *TINY, 'max_duration=16ba', 'save_interval=2ba',
             f'save_folder={run}', 'run_name=outage', 'autoresume=true'],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    listing = boto3.client('s3', endpoint_url=endpoint)

    def names():
        return [o['Key'] for o in listing.list_objects_v2(Bucket='outage').get('Contents', [])]

    wait_for(lambda: any(n.endswith('ba2-rank0.pt') for n in names()) or process.poll() is not None, 240, 'first upload')
    server.stop()  # the endpoint goes away for 4 s while the run keeps saving
    time.sleep(4)
    server = ThreadedMotoServer(ip_address='127.0.0.1', port=port, verbose=False)
    server.start()
    try:
        code = process.wait(timeout=400)
        text = log.read_text()
        if code != 0:  # stopping is allowed, with one clear line (progress bars may surround it)
            assert code == 2 and 'error: lost the connection to storage while saving to s3://outage/runs/outage' in text
        checkpoints = [n for n in names() if n.endswith('-rank0.pt')]
        assert checkpoints
        os.environ['S3_ENDPOINT_URL'], saved = endpoint, os.environ.get('S3_ENDPOINT_URL')
        try:
            for name in checkpoints:  # every object that exists is a whole checkpoint
                assert 'model' in load_checkpoint_state(f's3://outage/{name}')
        finally:
            if saved is None:
                os.environ.pop('S3_ENDPOINT_URL')
            else:
                os.environ['S3_ENDPOINT_URL'] = saved
        if code == 0:
            assert any(n.endswith('ba16-rank0.pt') for n in checkpoints)
        print(f'S3 outage of 4 s: run exit status {code}, {len(checkpoints)} whole checkpoints in the bucket')
    finally:
        server.stop()


@pytest.mark.slow
def test_two_ranks_with_workers_streaming_from_s3_leak_nothing(tmp_path, s3_bucket):
    import psutil

    from recipes.core.data.builtin import digits_arrays
    from recipes.core.data.mds import write_split

    for split, (images, labels) in digits_arrays().items():
        write_split(f'{s3_bucket}/digits', split, images, labels, progress=False)
    shm_before = set(os.listdir('/dev/shm'))
    overrides = [*TINY, f'data.remote={s3_bucket}/digits', f'data.cache={tmp_path}/cache', 'data.num_workers=4',
                 'max_duration=200ba', 'eval_interval=200ba', 'save_interval=200ba', f'save_folder={tmp_path}/run']
    log = tmp_path / 'load.log'
    with open(log, 'w') as out:
        process = subprocess.Popen(
            [*launcher(log, 2), str(ROOT / 'launch' / 'train.py'), RECIPE, *overrides],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    seen: dict[int, psutil.Process] = {}
    samples: list[float] = []  # resident memory of the whole process tree, once a second
    while process.poll() is None:
        try:
            tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
            seen.update({p.pid: p for p in tree})
            samples.append(sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20)
        except psutil.Error:
            pass
        time.sleep(1)
    assert process.returncode == 0, read_logs(log)
    time.sleep(2)
    alive = [p for p in seen.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f'processes left behind: {[p.cmdline()[:3] for p in alive]}'
    assert set(os.listdir('/dev/shm')) - shm_before == set()
    steady = samples[len(samples) // 3 :]
    third = max(1, len(steady) // 3)
    early, late = sorted(steady[:third])[third // 2], sorted(steady[-third:])[third // 2]
    print(f'memory of {len(seen)} processes over {len(samples)} s: median {early:.0f} MiB early, {late:.0f} MiB late')
    assert late < early * 1.15
