"""Studies in experiment trackers: a sweep's runs named, grouped and tagged, its report attached to a summary run.

A run of a sweep uses the trackers its config names (``loggers.mlflow``, ``loggers.wandb``, ``loggers.tensorboard``,
usually given once in the sweep's ``overrides`` or on the command line). :func:`tracker_overrides` adds, per run:

- the study, the results folder's name (``sweep-digits``), as the group: MLflow's ``run_group`` tag and, unless
  ``experiment_name`` is given, its experiment; W&B's ``group``; for TensorBoard the folder ``LOG_DIR/STUDY``, which
  holds one folder per run;
- tags ``study``, ``recipe``, ``seed``, ``budget`` and ``scenario`` (MLflow tags; W&B tags ``recipe:kd`` ...). The
  scenario is what the study changes in every run, its ``overrides`` (``data.label_noise=0.4``) but the trackers'
  ``loggers.*``, or ``default``. A tuning run (``tune``) also has the tag ``tuning``, its grid point (``p2``).

Runs are named ``RECIPE-bBUDGET-sSEED`` by the sweep (tuning runs ``tune-RECIPE-bBUDGET-pN-sSEED``); each run logs its resolved config as hyperparameters and its
files (:mod:`recipes.tracking`). After the report, :func:`log_report` opens one more run per tracker, ``STUDY-report``
in the same group, holding the report's tables and plots.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from omegaconf import OmegaConf

from recipes.core import storage
from recipes.study.spec import Run, SweepSpec, budget_label, plan

__all__ = ['REPORT_FOLDER', 'log_report', 'run_tags', 'study_name', 'tracker_overrides']

REPORT_FOLDER = 'report'  # the artifact folder of the report's files in the summary run
TENSORBOARD_DIR = 'tensorboard_logs'  # Composer's TensorboardLogger default log_dir
WANDB_TAG_LENGTH = 64  # W&B refuses longer tags


def study_name(sweep: SweepSpec) -> str:
    return PurePosixPath(sweep.results.rstrip('/')).name


def run_tags(sweep: SweepSpec, run: Run) -> dict[str, str]:
    return {
        'study': study_name(sweep),
        'recipe': run.recipe,
        'seed': str(run.seed),
        'budget': budget_label(run.budget),
        'scenario': ' '.join(o for o in sweep.overrides if not o.startswith('loggers.')) or 'default',
        **({'tuning': run.point} if run.point else {}),
    }


def _loggers(yaml: str, overrides: Sequence[str]) -> dict[str, Any]:
    from recipes.config import load_config  # Composer and torch: seconds, which readers of a results folder do not need

    loggers = OmegaConf.to_container(load_config(yaml, list(overrides)).loggers, resolve=True)
    return {name: args or {} for name, args in loggers.items()}  # type: ignore[union-attr]


def _flow(value: Any) -> str:
    """A ``key=value`` override value: JSON, which the YAML parser of overrides reads back exactly."""
    return json.dumps(value)


def tracker_overrides(sweep: SweepSpec, run: Run) -> tuple[str, ...]:
    """The ``loggers.*`` overrides that group and tag ``run`` in the trackers its config uses (none without any)."""
    loggers = _loggers(run.yaml, run.overrides)
    study, tags = study_name(sweep), run_tags(sweep, run)
    overrides: list[str] = []
    if 'mlflow' in loggers:
        overrides += [f'loggers.mlflow.run_group={study}', f'loggers.mlflow.tags={_flow(tags)}']
        if not loggers['mlflow'].get('experiment_name'):
            overrides.append(f'loggers.mlflow.experiment_name={study}')
    if 'wandb' in loggers:
        labels = [f'{key}:{value}'[:WANDB_TAG_LENGTH] for key, value in tags.items()]
        overrides += [f'loggers.wandb.group={study}', f'loggers.wandb.tags={_flow(labels)}']
    if 'tensorboard' in loggers:
        log_dir = loggers['tensorboard'].get('log_dir') or TENSORBOARD_DIR
        overrides.append(f'loggers.tensorboard.log_dir={os.path.join(log_dir, study)}')
    return tuple(overrides)


def _mlflow_report(args: dict[str, Any], study: str, files: Sequence[Path]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(args.get('tracking_uri'))
    experiment = client.get_experiment_by_name(args['experiment_name'])
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(args['experiment_name'])
    tags = {'run_group': study, 'study': study, 'kind': 'report'}
    run_id = client.create_run(experiment_id, run_name=f'{study}-report', tags=tags).info.run_id
    for path in files:
        client.log_artifact(run_id, str(path), REPORT_FOLDER)
    client.set_terminated(run_id)


def _wandb_report(args: dict[str, Any], study: str, files: Sequence[Path]) -> None:
    import wandb

    run = wandb.init(
        project=args.get('project'), entity=args.get('entity'), group=study, name=f'{study}-report',
        job_type='report', tags=[f'study:{study}'[:WANDB_TAG_LENGTH]], reinit=True,
    )
    folder = Path(run.dir) / REPORT_FOLDER
    folder.mkdir(exist_ok=True)
    for path in files:
        shutil.copy(path, folder / path.name)
    run.log({path.stem: wandb.Image(str(path)) for path in files if path.suffix == '.png'})
    run.finish()


def _tensorboard_report(args: dict[str, Any], study: str, files: Sequence[Path]) -> None:
    from matplotlib.image import imread
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(os.path.join(args['log_dir'], f'{study}-report')) as writer:
        for path in files:
            if path.suffix == '.png':
                writer.add_image(f'{REPORT_FOLDER}/{path.stem}', imread(path)[..., :3], dataformats='HWC')
            else:
                writer.add_text(f'{REPORT_FOLDER}/{path.name}', path.read_text())


_REPORTERS = {'mlflow': _mlflow_report, 'wandb': _wandb_report, 'tensorboard': _tensorboard_report}


def log_report(sweep: SweepSpec, files: Sequence[str]) -> list[str]:
    """Log the report's ``files`` (local or s3://) as a summary run ``STUDY-report`` in each tracker of the study.

    Returns the trackers it logged to; a study whose runs use none logs nothing.
    """
    trackers: dict[str, dict[str, Any]] = {}
    for run in plan(sweep):
        grouped = _loggers(run.yaml, [*run.overrides, *tracker_overrides(sweep, run)])
        for name in _REPORTERS.keys() & grouped.keys() - trackers.keys():
            trackers[name] = grouped[name]
    if not trackers:
        return []
    study = study_name(sweep)
    with tempfile.TemporaryDirectory() as folder:
        local = []
        for uri in files:
            local.append(Path(folder) / PurePosixPath(uri).name)
            local[-1].write_bytes(storage.read_bytes(uri))
        for name, args in sorted(trackers.items()):
            _REPORTERS[name](args, study, local)
    return sorted(trackers)
