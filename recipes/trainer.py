"""Assemble a Composer Trainer from a validated config."""

from __future__ import annotations

import logging
import os

import torch
from composer import Trainer
from composer.core import DataSpec, Evaluator
from composer.optim import ConstantScheduler, CosineAnnealingWithWarmupScheduler, MultiStepWithWarmupScheduler
from composer.utils import dist, reproducibility
from omegaconf import DictConfig

from algorithms.ledger import ComputeLedger
from algorithms.past_run import PastRun, load_checkpoint_state
from algorithms.protocols import ChoosesTrainingOrder, SelectsFromLargerBatch, loader_batch_size
from recipes.config import to_yaml
from recipes.core import storage
from recipes.core.data import (
    IMAGES,
    MDSImageDataset,
    batch_size_per_rank,
    build_loader,
    data_channels,
    data_num_classes,
    data_stats,
    resolve_root,
)
from recipes.core.data.device_augment import DeviceAugment
from recipes.core.data.resident import load_resident, resident_loader
from recipes.core.errors import UsageError
from recipes.core.history import VALIDATION, RunHistory
from recipes.core.model import build_model
from recipes.core.run_files import CONFIG_FILE, read_holdout, read_subset, write_holdout, write_subset
from recipes.registry import ALGORITHMS, CALLBACKS, LOGGERS, BuildContext, build_all
from recipes.tracking import TrackRun
from recipes.validate import scaled_duration

__all__ = ['DEFAULT_RESOLUTION', 'build_trainer', 'check_resume_checkpoint', 'newest_checkpoint', 'resolve', 'scaled_duration']

DEFAULT_RESOLUTION = 224  # data.name=images without data.resolution: ImageNet's training crop

log = logging.getLogger(__name__)


def resolve(cfg: DictConfig) -> DictConfig:
    """Fill the values left to the machine or the data (precision, classes, resolution) and format ``save_folder``.

    It checks nothing: the rules that tie keys together ran when the config was loaded
    (:data:`recipes.validate.RUN_TIES`)."""
    cfg = cfg.copy()
    on_gpu = torch.cuda.is_available()
    if cfg.precision is None:
        cfg.precision = 'amp_bf16' if on_gpu else 'fp32'
    if cfg.data.augment_on is None:  # device augmentation is the 32x32 pad-and-crop; image folders crop in workers
        cfg.data.augment_on = 'device' if (on_gpu or cfg.data.resident) and cfg.data.name != IMAGES else 'workers'
    if cfg.data.name == IMAGES and cfg.data.resolution is None:
        cfg.data.resolution = DEFAULT_RESOLUTION
    if cfg.model.num_classes is None:
        cfg.model.num_classes = data_num_classes(cfg.data.name, cfg.data.remote)
    if cfg.save_folder and '{run_name}' in cfg.save_folder:
        cfg.save_folder = cfg.save_folder.replace('{run_name}', cfg.run_name)
    return cfg


def _optimizer(cfg: DictConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    o = cfg.optimizer
    if o.name == 'sgd':
        return torch.optim.SGD(
            model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov,
        )
    if o.name == 'adamw':
        return torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    raise UsageError(f'optimizer.name={o.name!r} is not supported: choose sgd or adamw')


def _scheduler(cfg: DictConfig):
    s = cfg.scheduler
    if s.name == 'multistep_with_warmup':
        return MultiStepWithWarmupScheduler(t_warmup=s.t_warmup, milestones=list(s.milestones), gamma=s.gamma)
    if s.name == 'cosine_with_warmup':
        return CosineAnnealingWithWarmupScheduler(t_warmup=s.t_warmup, alpha_f=s.alpha_f)
    if s.name == 'constant':
        return ConstantScheduler()
    raise UsageError(f'scheduler.name={s.name!r} is not supported: choose multistep_with_warmup, cosine_with_warmup or constant')


def newest_checkpoint(save_folder: str) -> str | None:
    """The newest checkpoint in an S3 run folder, found by listing.

    An S3 object exists only once its upload completed, so listing never offers a half-written checkpoint, and
    it finds checkpoints Composer's ``latest`` link does not point to yet (Composer uploads that link only after
    confirming the checkpoint upload, up to tens of seconds later).
    """
    checkpoints = PastRun(save_folder).checkpoints()
    return storage.join(save_folder, checkpoints[-1]) if checkpoints else None


def check_resume_checkpoint(cfg: DictConfig, resume: str | None) -> None:
    """Load the checkpoint Composer is about to resume from with the teachers' weights_only allowlist first.

    Composer's loader unpickles a checkpoint in full; a file holding more than Composer writes (a planted payload)
    is refused here, in one line, before it is. Checks what Composer will load: the newest S3 checkpoint, else the
    local ``latest`` link of an autoresumed folder, else ``load_path``.
    """
    source = resume or cfg.load_path
    if resume is None and cfg.autoresume and not storage.is_s3(cfg.save_folder):
        latest = os.path.join(cfg.save_folder, 'latest-rank0.pt')
        source = latest if os.path.exists(latest) else source
    if source:
        load_checkpoint_state(source)


def _write_config(cfg: DictConfig) -> None:
    if cfg.save_folder and dist.get_global_rank() == 0:
        storage.write_bytes(storage.join(cfg.save_folder, CONFIG_FILE), to_yaml(cfg).encode())


def _record_subset(cfg: DictConfig, train_ds: MDSImageDataset) -> None:
    """Write ``subset.json`` for a run on part of its split; a resumed run must find the indices it trained on."""
    if train_ds.indices is None or not cfg.save_folder or dist.get_global_rank() != 0:
        return
    recorded = read_subset(cfg.save_folder) if cfg.autoresume else None
    if recorded is not None and recorded['indices'] != train_ds.indices.tolist():
        raise UsageError(
            f'{cfg.save_folder} trained on another subset of the training split than data.subset_fraction='
            f'{cfg.data.subset_fraction} data.subset_seed={cfg.data.subset_seed} data.classes={cfg.data.classes} '
            'give: resume with the data keys it was started with',
        )
    data = {k: cfg.data[k] for k in ('subset_fraction', 'subset_seed')}
    write_subset(cfg.save_folder, train_ds.indices, train_ds.split_size,
                 {**data, 'classes': None if cfg.data.classes is None else list(cfg.data.classes)})


def _record_holdout(cfg: DictConfig, train_ds: MDSImageDataset) -> None:
    """Write ``holdout.json`` for a run that holds out a validation split; a resumed run must hold out the same."""
    if not len(train_ds.held_out) or not cfg.save_folder or dist.get_global_rank() != 0:
        return
    recorded = read_holdout(cfg.save_folder) if cfg.autoresume else None
    if recorded is not None and recorded['indices'] != train_ds.held_out.tolist():
        raise UsageError(
            f'{cfg.save_folder} held out other examples (data.holdout={recorded["size"]} data.holdout_seed='
            f'{recorded["seed"]}) than data.holdout={cfg.data.holdout} data.holdout_seed={cfg.data.holdout_seed}: '
            'resume with the data keys it was started with',
        )
    write_holdout(cfg.save_folder, train_ds.held_out, cfg.data.holdout_seed)


def _loader_batch(algorithms: list, train_batch: int, choosing_order: bool) -> int:
    """The batch per rank the training loader yields (:func:`~algorithms.protocols.loader_batch_size`): an algorithm
    that selects from a larger batch cannot share the run with one that chooses the order, whose pacing is per step."""
    selecting = [alg for alg in algorithms if isinstance(alg, SelectsFromLargerBatch)]
    if selecting and choosing_order:
        raise UsageError(
            f'{type(selecting[0]).__name__} selects from larger loader batches and another algorithm (a curriculum) '
            'chooses the training order, whose pacing is per trained batch: keep one of them',
        )
    return loader_batch_size(algorithms, train_batch)


def build_trainer(cfg: DictConfig) -> Trainer:
    """Build the Trainer of a run; its resolved config is written to ``save_folder`` before training starts."""
    cfg = resolve(cfg)
    for uri in (cfg.save_folder, cfg.load_path):
        if uri:
            storage.check_reachable(uri)
    reproducibility.seed_all(cfg.seed)
    # One process group for the whole run, before any StreamingDataset exists: otherwise each StreamingDataset
    # opens a Gloo group of its own and destroys it, and under load a rank still connecting to a group its peer has
    # already torn down dies with "DistNetworkError: failed to recv, got 0 bytes". The Trainer reuses this group.
    # A single process has no peer to race, and leaves torch.distributed alone until the Trainer starts.
    if dist.get_world_size() > 1:
        dist.initialize_dist('gpu' if torch.cuda.is_available() else 'cpu')

    d = cfg.data
    root = resolve_root(d.name, d.remote, d.cache, d.path)
    num_classes = cfg.model.num_classes
    on_device = d.augment_on == 'device'  # the workers only read uint8 images; DeviceAugment finishes them
    train_ds = MDSImageDataset(
        root, 'train', num_classes, augment=d.augment and not on_device, label_noise=d.label_noise,
        label_noise_seed=d.label_noise_seed, cache=d.cache, subset_fraction=d.subset_fraction,
        subset_seed=d.subset_seed, classes=d.classes, resolution=d.resolution, raw=on_device,
        holdout=d.holdout, holdout_seed=d.holdout_seed,
    )
    eval_ds = MDSImageDataset(root, 'test', num_classes, cache=d.cache, classes=d.classes, resolution=d.resolution)
    train_batch = batch_size_per_rank(d.global_batch_size)
    eval_batch = batch_size_per_rank(d.eval_batch_size, key='data.eval_batch_size')

    model = build_model(cfg.model.name, num_classes, pretrained=cfg.model.pretrained, width=cfg.model.width,
                        channels=data_channels(d.name), stats=data_stats(d.name))
    ctx = BuildContext(
        num_classes=num_classes,
        device='gpu' if torch.cuda.is_available() else 'cpu',
        precision=cfg.precision,
        train_dataset=train_ds,
        seed=cfg.seed,
        train_batch_size=train_batch,
        max_duration=scaled_duration(cfg),
    )
    algorithms = build_all('algorithms', ALGORITHMS, cfg.algorithms, ctx)
    if on_device:  # listed last: Composer runs AFTER_DATALOADER in reverse order, so it sees the loader's batch first
        algorithms.append(DeviceAugment(cfg.seed, crop_flip=d.augment))
    history = RunHistory(cfg.save_folder)
    callbacks = [*build_all('callbacks', CALLBACKS, cfg.callbacks, ctx), history, ComputeLedger(cfg.save_folder)]
    loggers = build_all('loggers', LOGGERS, cfg.loggers, ctx)
    if loggers:  # trackers get the config, the reused checkpoints and the run's files (after the ledger's totals)
        callbacks.append(TrackRun(cfg))

    samplers = [alg.train_sampler(train_ds, seed=cfg.seed) for alg in algorithms if isinstance(alg, ChoosesTrainingOrder)]
    if len(samplers) > 1:
        raise UsageError('two algorithms both choose the training order: keep one of them')
    loader_batch = _loader_batch(algorithms, train_batch, choosing_order=bool(samplers))
    resident = None
    if d.resident:  # None when the split is above the budget: it is streamed (one logged line)
        device = torch.device(f'cuda:{dist.get_local_rank()}') if torch.cuda.is_available() else torch.device('cpu')
        resident = load_resident(train_ds, device, num_workers=d.num_workers)
    if resident is not None:
        sampler = samplers[0] if samplers else dist.get_sampler(resident, shuffle=True, drop_last=True, seed=cfg.seed)
        train_loader = resident_loader(resident, loader_batch, sampler, drop_last=True)
    else:
        train_loader = build_loader(
            train_ds, loader_batch, shuffle=True, drop_last=True, num_workers=d.num_workers, seed=cfg.seed,
            sampler=samplers[0] if samplers else None,
        )
    def evaluation(dataset: MDSImageDataset, label: str, interval: str | None = None) -> Evaluator:
        loader = build_loader(dataset, eval_batch, shuffle=False, drop_last=False, num_workers=min(d.num_workers, 2),
                              seed=cfg.seed)
        return Evaluator(label=label, dataloader=loader, eval_interval=interval)

    # The test split first: callbacks that read "the evaluation data" (eval_robustness) take the first evaluator.
    evaluators = [evaluation(eval_ds, 'eval', cfg.test_interval)]
    if d.holdout:
        evaluators.append(evaluation(train_ds.validation(), VALIDATION))

    # Autoresume: Composer's own for local folders (its latest link is written with the checkpoint); for S3, the
    # newest complete checkpoint found by listing.
    resume = newest_checkpoint(cfg.save_folder) if cfg.autoresume and storage.is_s3(cfg.save_folder) else None
    check_resume_checkpoint(cfg, resume)
    _write_config(cfg)
    _record_subset(cfg, train_ds)
    _record_holdout(cfg, train_ds)
    optimizer = _optimizer(cfg, model)
    if cfg.compile:
        log.info(f'compile: Composer compiles the model (torch.compile, backend {cfg.compile_backend}); teachers, '
                 'scorers and attacks run eagerly, and auxiliary BatchNorms take their slicing form')
    trainer = Trainer(
        model=model,
        train_dataloader=DataSpec(train_loader),
        eval_dataloader=evaluators,
        max_duration=cfg.max_duration,
        scale_schedule_ratio=cfg.scale_schedule_ratio,
        eval_interval=cfg.eval_interval,
        optimizers=optimizer,
        schedulers=_scheduler(cfg),
        algorithms=algorithms,
        callbacks=callbacks,
        loggers=loggers,
        run_name=cfg.run_name,
        seed=cfg.seed,
        device=ctx.device,
        precision=cfg.precision,
        device_train_microbatch_size=cfg.device_train_microbatch_size,
        compile_config={'backend': cfg.compile_backend} if cfg.compile else None,
        save_folder=cfg.save_folder,
        save_interval=cfg.save_interval,
        save_filename=cfg.save_filename,
        # After a resume, redone checkpoints replace the ones the dead run left after its last 'latest' link.
        save_overwrite=cfg.autoresume,
        autoresume=cfg.autoresume and resume is None and not storage.is_s3(cfg.save_folder),
        load_path=resume or cfg.load_path,
        load_weights_only=cfg.load_weights_only and resume is None,
        progress_bar=True,
    )
    if trainer._checkpoint_saver is not None:
        # Composer 0.32.1 polls for a finished upload every 30 s before it uploads the latest link, and fit() waits
        # for that poll: a short interval makes S3 runs end promptly. A private attribute, checked at this pin.
        trainer._checkpoint_saver._symlink_upload_wait_before_next_try_in_seconds = 1.0
    return trainer
