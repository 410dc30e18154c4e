"""Experiment trackers offline: each logger on a short digits run with a reuse algorithm, read back with the
tracker's own reader (TensorBoard's EventAccumulator, MLflow's client, the W&B offline run folder), and a digits
sweep logged to a local MLflow store as one group with its report attached."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import TINY, run_cli, train_in_process

from algorithms.curriculum.scores import dataset_labels, label_fingerprint, write_scores
from algorithms.past_run import past_run_cost
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.core.errors import UsageError
from recipes.registry import LOGGERS, build_one

KD = 'algorithms.past_run_distillation'
MIXUP = 'algorithms.checkpoint_mixup_teacher'


def _key(item: Any) -> str:
    return item.key or '/'.join(item.nested_key)  # wandb-core writes keys as nested_key


@pytest.fixture
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """W&B in offline mode writing under ``tmp_path``; its process-wide session is restarted to read the settings."""
    import wandb

    wandb.teardown()
    monkeypatch.setenv('WANDB_MODE', 'offline')
    monkeypatch.setenv('WANDB_DIR', str(tmp_path))
    yield tmp_path / 'wandb'
    wandb.teardown()


def wandb_records(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The config and the history rows of an offline W&B run, read from its ``run-ID.wandb`` record file."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    store.open_for_scan(str(path))
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof('record_type')
        if kind == 'config':
            config.update({_key(item): json.loads(item.value_json) for item in record.config.update})
        elif kind == 'history':
            history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
    return config, history


def finished_wandb_records(path: Path, timeout: float = 60.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``wandb_records`` once wandb-core has written the file: it may still be flushing after ``wandb.finish()``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            config, history = wandb_records(path)
            if config and history:
                return config, history
        except AssertionError:  # wandb's reader asserts on a header not written yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f'{path} held no complete W&B records {timeout:.0f} s after the run closed')
        time.sleep(0.5)


@pytest.mark.parametrize('name, module', [
    ('tensorboard', 'torch.utils.tensorboard'), ('mlflow', 'mlflow'), ('wandb', 'wandb'),
])
def test_a_tracker_without_its_package_is_one_line_naming_the_extra(
    name: str, module: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the package were not installed
    with pytest.raises(UsageError) as e:
        build_one('loggers', LOGGERS, name, {}, ctx=None)  # type: ignore[arg-type]
    message = str(e.value)
    assert '\n' not in message
    assert message.startswith(f'loggers.{name} needs the {name} package') and "pip install -e '.[tracking]'" in message


def test_tensorboard_event_files_hold_loss_accuracy_distillation_and_the_config(past_run: str, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    train_in_process('run_name=tb', f'loggers.tensorboard.log_dir={tmp_path}', f'{KD}.run={past_run}', f'{KD}.checkpoint=ep2')

    events = EventAccumulator(str(tmp_path / 'tb'))
    events.Reload()
    scalars = events.Tags()['scalars']
    steps = {'loss/train/total': [0, 1, 2, 3], 'kd/kd': [1, 2, 3, 4], 'kd/ce': [1, 2, 3, 4]}
    for tag, expected in steps.items():  # Composer logs the loss before the step counts, algorithms after
        assert [e.step for e in events.Scalars(tag)] == expected, tag
        assert all(math.isfinite(e.value) for e in events.Scalars(tag)), tag
    assert all(e.value > 0 for e in events.Scalars('kd/kd'))
    (accuracy,) = events.Scalars('metrics/eval/MulticlassAccuracy')
    assert accuracy.step == 4 and 0.0 <= accuracy.value <= 1.0
    assert sorted({e.step for e in events.Scalars('compute/spent_flops')}) == [1, 2, 3, 4]
    assert 'compute/spent/teacher' in scalars and events.Scalars('compute/spent/teacher')[-1].value > 0
    (reused,) = {e.value for e in events.Scalars('compute/reused_flops')}
    assert reused == pytest.approx(sum(past_run_cost(past_run, ['ep2']).values()))

    hparams = EventAccumulator(str(next((tmp_path / 'tb').glob('*/'))))  # add_hparams writes a child folder
    hparams.Reload()
    content = hparams.PluginTagToContent('hparams')['_hparams_/session_start_info']
    logged = HParamsPluginData.FromString(content).session_start_info.hparams
    # Composer's TensorBoard logger formats hyperparameters as text: numbers to 4 places, strings quoted
    assert logged['optimizer.lr'].string_value == '0.0500' and logged['model.name'].string_value == '"resnet_20"'
    assert logged['reuse/checkpoints'].string_value == f'"{past_run}:ep2"'


def test_mlflow_sqlite_store_holds_params_metrics_by_step_and_the_run_files(
    past_run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # a SQLite store keeps artifacts in ./mlruns
    uri = f'sqlite:///{tmp_path / "mlflow.db"}'
    trainer = train_in_process(
        'run_name=mlf', f'loggers.mlflow.tracking_uri={uri}', 'loggers.mlflow.experiment_name=tracking-test',
        f'{MIXUP}.run={past_run}', f'{MIXUP}.checkpoints=[ep1,ep2]',
    )

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name('tracking-test').experiment_id])
    assert run.info.run_name == 'mlf' and run.info.status == 'FINISHED'
    params = run.data.params
    assert params['optimizer.lr'] == '0.05' and params['max_duration'] == '4ba'
    assert params[f'{MIXUP}.checkpoints'] == '["ep1", "ep2"]'
    assert params['reuse/checkpoints'] == f'{past_run}:ep1, {past_run}:ep2'
    assert json.loads(params['compute/reused_by_source']) == past_run_cost(past_run, ['ep1', 'ep2'])
    lam = client.get_metric_history(run.info.run_id, 'kd/lam')
    assert [m.step for m in lam] == [1, 2, 3, 4] and all(0.0 <= m.value <= 1.0 for m in lam)
    assert [m.step for m in client.get_metric_history(run.info.run_id, 'kd/kd')] == [1, 2, 3, 4]
    assert len(client.get_metric_history(run.info.run_id, 'metrics/eval/MulticlassAccuracy')) == 1

    files = {a.path for a in client.list_artifacts(run.info.run_id, 'run')}
    assert files == {'run/config.yaml', 'run/compute.json'}
    (tmp_path / 'got').mkdir()
    folder = Path(client.download_artifacts(run.info.run_id, 'run', str(tmp_path / 'got')))
    compute = json.loads((folder / 'compute.json').read_text())
    ledger = next(c for c in trainer.state.callbacks if type(c).__name__ == 'ComputeLedger')
    assert compute['spent_total'] == pytest.approx(ledger.spent_total) and compute['spent']['teacher'] > 0
    assert run.data.metrics['compute/spent/teacher'] == pytest.approx(compute['spent']['teacher'])
    assert yaml.safe_load((folder / 'config.yaml').read_text())['algorithms']['checkpoint_mixup_teacher']['checkpoints'] == ['ep1', 'ep2']


def test_wandb_offline_run_folder_holds_the_config_metrics_and_run_files(
    past_run: str, tmp_path: Path, wandb_offline: Path,
) -> None:
    labels = dataset_labels(MDSImageDataset(resolve_root('digits', None), 'train', 10))
    scores = str(tmp_path / 'el2n.npy')
    write_scores(scores, np.random.default_rng(0).random(len(labels)).astype(np.float32), {
        'method': 'el2n', 'runs': [past_run], 'checkpoints': ['ep1'], 'compute': {'flops_estimate': 1.5e9},
        'dataset': {'name': 'digits', 'size': len(labels), 'label_sha256': label_fingerprint(labels)},
    })

    train_in_process('run_name=wb', 'loggers.wandb.project=pastrun-test', f'algorithms.grand_curriculum.scores={scores}')

    (folder,) = wandb_offline.glob('offline-run-*')
    config, history = finished_wandb_records(next(folder.glob('run-*.wandb')))
    assert config['optimizer.lr'] == 0.05 and config['algorithms.grand_curriculum.scores'] == scores
    assert config['reuse/checkpoints'] == f'{past_run}:ep1'
    (pool,) = [row['curriculum/pool_size'] for row in history if 'curriculum/pool_size' in row]
    assert 0 < pool < 1437  # the easiest examples first, of the 1437 training digits
    assert [row['_step'] for row in history if 'compute/spent_flops' in row] == [1, 2, 3, 4]
    assert [row['_step'] for row in history if 'loss/train/total' in row] == [0, 1, 2, 3]
    last = {key: value for row in history for key, value in row.items()}
    reused = 1.5e9 + sum(past_run_cost(past_run, ['ep1']).values())
    assert last['compute/reused_flops'] == pytest.approx(reused) and last['compute/spent/student'] > 0
    assert 0.0 <= last['metrics/eval/MulticlassAccuracy'] <= 1.0
    assert yaml.safe_load((folder / 'files' / 'run' / 'config.yaml').read_text())['run_name'] == 'wb'
    assert json.loads((folder / 'files' / 'run' / 'compute.json').read_text())['reused_total'] == pytest.approx(reused)


@pytest.mark.slow
def test_a_digits_sweep_is_one_group_in_mlflow_with_its_report_attached(past_run: str, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    store = f'file:{tmp_path / "mlruns"}'
    results = tmp_path / 'sweep-tiny'
    sweep = tmp_path / 'sweep.yaml'
    sweep.write_text(yaml.safe_dump({
        'results': str(results), 'seeds': [1], 'baseline': 'baseline',
        'overrides': [*TINY, f'loggers.mlflow.tracking_uri={store}'],
        'recipes': {
            'baseline': {'yaml': 'yamls/digits/baseline.yaml'},
            'kd': {'yaml': 'yamls/digits/kd.yaml', 'overrides': [f'{KD}.run={past_run}', f'{KD}.checkpoint=ep2']},
        },
    }))

    done = run_cli('sweep.py', str(sweep), timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'logged to mlflow' in done.stdout

    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name('sweep-tiny').experiment_id])
    assert {r.data.tags['run_group'] for r in runs} == {'sweep-tiny'}
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {'baseline-b1-s1', 'kd-b1-s1', 'sweep-tiny-report'}
    kd = by_name['kd-b1-s1'].data
    tags = {key: kd.tags[key] for key in ('study', 'recipe', 'seed', 'budget', 'scenario')}
    assert tags == {'study': 'sweep-tiny', 'recipe': 'kd', 'seed': '1', 'budget': '1', 'scenario': ' '.join(TINY)}
    assert kd.params['seed'] == '1' and kd.params[f'{KD}.checkpoint'] == 'ep2'
    assert kd.params['reuse/checkpoints'] == f'{past_run}:ep2'
    assert by_name['baseline-b1-s1'].data.params['reuse/checkpoints'] == 'none'
    assert len(client.get_metric_history(by_name['kd-b1-s1'].info.run_id, 'kd/kd')) == 4

    report_run = by_name['sweep-tiny-report'].info.run_id
    written = sorted(p.name for p in (results / 'report').iterdir())
    assert written and {'results.md', 'results.csv'} <= set(written)
    assert sorted(a.path for a in client.list_artifacts(report_run, 'report')) == [f'report/{n}' for n in written]
    (tmp_path / 'got').mkdir()
    got = Path(client.download_artifacts(report_run, 'report/results.md', str(tmp_path / 'got')))
    assert got.read_text() == (results / 'report' / 'results.md').read_text()


def test_reused_checkpoints_come_from_teacher_arguments_and_the_artifacts_metadata(tmp_path: Path) -> None:
    from recipes.tracking import reused_checkpoints

    (tmp_path / 'el2n.json').write_text(json.dumps({'runs': ['past/a', 'past/b'], 'checkpoints': ['ep2', 'ep3']}))
    (tmp_path / 'bank').mkdir()
    (tmp_path / 'bank' / 'bank.json').write_text(json.dumps({'run': 'past/a', 'checkpoints': ['ep4', 'ep8']}))
    found = reused_checkpoints({
        'checkpoint_mixup_teacher': {'runs': ['s1', 's2'], 'checkpoints': ['ep4', 'other/run:ep8']},
        'warm_start': {'run': 'past/a'},
        'grand_curriculum': {'scores': str(tmp_path / 'el2n.npy')},
        'adversarial_replay': {'bank': str(tmp_path / 'bank')},
        'mixup': {},
    })
    assert found == [
        's1:ep4', 's2:ep4', 'other/run:ep8', 'past/a:latest', 'past/a:ep2', 'past/a:ep3', 'past/b:ep2', 'past/b:ep3',
        'past/a:ep4', 'past/a:ep8',
    ]


def study(tmp_path: Path, *overrides: str):
    from recipes.study.spec import Recipe, Sweep, plan

    sweep = Sweep(
        results=str(tmp_path / 'sweep-x'), seeds=(3,), baseline='baseline', budgets=(0.5,),
        recipes={'baseline': Recipe('yamls/digits/baseline.yaml')}, overrides=('data.label_noise=0.4', *overrides),
    )
    return sweep, plan(sweep)[0]


def test_sweep_runs_are_grouped_and_tagged_in_each_tracker_their_config_names(tmp_path: Path) -> None:
    from recipes.config import load_config
    from recipes.study.tracking import tracker_overrides

    tags = {'study': 'sweep-x', 'recipe': 'baseline', 'seed': '3', 'budget': '0.5', 'scenario': 'data.label_noise=0.4'}
    sweep, run = study(tmp_path)
    assert tracker_overrides(sweep, run) == ()
    sweep, run = study(tmp_path, 'loggers.mlflow={}', 'loggers.wandb.project=p', f'loggers.tensorboard.log_dir={tmp_path}')
    loggers = load_config(run.yaml, [*run.overrides, *tracker_overrides(sweep, run)]).loggers
    assert loggers.mlflow.run_group == 'sweep-x' and loggers.mlflow.experiment_name == 'sweep-x'
    assert dict(loggers.mlflow.tags) == tags
    assert loggers.wandb.group == 'sweep-x' and loggers.wandb.project == 'p'
    assert list(loggers.wandb.tags) == [f'{key}:{value}' for key, value in tags.items()]
    assert loggers.tensorboard.log_dir == str(tmp_path / 'sweep-x')
    sweep, run = study(tmp_path, 'loggers.mlflow.experiment_name=mine')
    assert load_config(run.yaml, [*run.overrides, *tracker_overrides(sweep, run)]).loggers.mlflow.experiment_name == 'mine'


def test_the_report_becomes_a_summary_run_in_tensorboard_and_wandb(tmp_path: Path, wandb_offline: Path) -> None:
    from matplotlib import pyplot as plt
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from recipes.study.tracking import log_report

    report = tmp_path / 'report'
    report.mkdir()
    (report / 'results.md').write_text('| recipe | acc |\n|---|---|\n| baseline | 87.2 |\n')
    plt.figure(figsize=(2, 1)).savefig(report / 'frontier.png')
    plt.close('all')
    sweep, _ = study(tmp_path, f'loggers.tensorboard.log_dir={tmp_path / "tb"}', 'loggers.wandb.project=p')

    assert log_report(sweep, [str(report / 'results.md'), str(report / 'frontier.png')]) == ['tensorboard', 'wandb']

    events = EventAccumulator(str(tmp_path / 'tb' / 'sweep-x' / 'sweep-x-report'))
    events.Reload()
    assert events.Tags()['images'] == ['report/frontier']
    assert 'report/results.md/text_summary' in events.Tags()['tensors']
    (folder,) = wandb_offline.glob('offline-run-*')
    assert (folder / 'files' / 'report' / 'results.md').read_text() == (report / 'results.md').read_text()
    assert (folder / 'files' / 'report' / 'frontier.png').read_bytes() == (report / 'frontier.png').read_bytes()
