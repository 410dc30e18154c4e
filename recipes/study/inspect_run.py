"""A look at a past run before reusing it: what ran, what each checkpoint reached and cost, which ones are usable.

:func:`inspect_run` reads only the run folder (``config.yaml``, ``metrics.json``, ``compute.json`` and the checkpoint
file names; no checkpoint is loaded) and returns the text ``launch/inspect_run.py`` prints; :func:`accuracy_plot`
draws the accuracy against epoch with the checkpoints marked (``runs.png``). A checkpoint is usable as a teacher or
scorer when :func:`algorithms.past_run.checkpoint_quality` says so: its recorded test accuracy is more than
``NEAR_CHANCE`` above chance and has closed at least ``FAR_BELOW_BEST`` of the gap between chance and the run's best.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.figure import Figure

from algorithms.past_run import FAR_BELOW_BEST, NEAR_CHANCE, CheckpointQuality, PastRun
from recipes.core import storage
from recipes.core.run_files import METRICS_FILE, read_compute, read_history

__all__ = ['accuracy_plot', 'inspect_run']


def _flops(value: float | None) -> str:
    return '-' if value is None else f'{value:.3g}'


def _percent(value: float | None) -> str:
    return '-' if value is None else f'{value:.1%}'


def _config_lines(run: PastRun) -> list[str]:
    config = run.config
    data = run.training_labels
    optimizer = config.get('optimizer', {})
    algorithms = ', '.join(config.get('algorithms') or {}) or 'none'
    return [
        f'past run {run.folder}',
        f'  model {config["model"]["name"]}, {run.num_classes} classes; data {data["name"]}'
        + (f' from {data["remote"]}' if data['remote'] else '')
        + f', label noise {data["label_noise"]:g} (seed {data["label_noise_seed"]})',
        f'  {config.get("max_duration")} at global batch {config.get("data", {}).get("global_batch_size")}, '
        f'{optimizer.get("name")} lr {optimizer.get("lr")}, seed {config.get("seed")}; algorithms: {algorithms}',
    ]


def _loss_at(evals: list[dict[str, Any]], quality: CheckpointQuality) -> float | None:
    rows = [r for r in evals if r.get('batch') == quality.batch and r.get('cross_entropy') is not None]
    return float(rows[-1]['cross_entropy']) if rows else None


def inspect_run(run: PastRun) -> str:
    """The run's config summary, each checkpoint's accuracy, loss and compute, and the usable ones."""
    evals = run.evals()
    qualities = run.qualities()
    compute = read_compute(run.folder)
    by_epoch = compute.get('by_epoch', []) if compute else []
    lines = _config_lines(run)
    if storage.exists(storage.join(run.folder, METRICS_FILE)):
        history = read_history(run.folder)
        state = 'finished' if history.get('finished') else 'not finished (running, or stopped early)'
        lines.append(f'  {state} after {float(history.get("wall_seconds", 0.0)):.0f} s of training')
    if compute:
        lines.append(f'  compute: {_flops(compute.get("spent_total"))} FLOPs spent, '
                     f'{_flops(compute.get("reused_total"))} reused')
    lines.append('')
    split = 'val' if any(r.get('val_accuracy') is not None for r in evals) else 'test'  # what judges a checkpoint
    lines.append(f'{"checkpoint":<24} {"epoch":>5} {split + " acc":>9} {"test loss":>9} {"FLOPs by then":>13}  verdict')
    for q in qualities:
        spent = by_epoch[q.epoch - 1] if q.epoch is not None and 0 < q.epoch <= len(by_epoch) else None
        lines.append(f'{q.checkpoint:<24} {q.epoch if q.epoch is not None else "-":>5} {_percent(q.accuracy):>9} '
                     f'{_flops(_loss_at(evals, q)):>9} {_flops(spent):>13}  {q.verdict}')
    if not qualities:
        lines.append('(no checkpoints)')
    chance = 1.0 / run.num_classes
    key = 'val_accuracy' if split == 'val' else 'accuracy'
    best = max((float(r[key]) for r in evals if r.get(key) is not None), default=None)
    lines.append('')
    lines.append(f'chance {chance:.1%}, best recorded {split} accuracy {_percent(best)}'
                 + ('' if evals else ' (the run recorded no evaluation: no metrics.json)')
                 + f'; usable: above chance + {NEAR_CHANCE:.0%} and at least {FAR_BELOW_BEST:.0%} of the way from '
                 'chance to the best')
    usable = [q.checkpoint for q in qualities if q.usable]
    lines.append('usable as teachers or scorers: ' + (', '.join(usable) if usable else
                                                      'none (no checkpoint with a usable recorded accuracy)'))
    return '\n'.join(lines)


def _batches_per_epoch(evals: list[dict[str, Any]]) -> float | None:
    """Batches in one epoch, from the evaluations at epoch ends (``batch / epoch`` is smallest there)."""
    ratios = [int(r['batch']) / int(r['epoch']) for r in evals if int(r.get('epoch', 0)) > 0]
    return min(ratios) if ratios else None


def accuracy_plot(run: PastRun) -> bytes:
    """``runs.png``: test accuracy against epoch, each checkpoint marked and coloured by its verdict."""
    evals = [r for r in run.evals() if r.get('accuracy') is not None]
    per_epoch = _batches_per_epoch(evals)

    def x(batch: int) -> float:
        return batch / per_epoch if per_epoch else batch

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot([x(int(r['batch'])) for r in evals], [100 * float(r['accuracy']) for r in evals], color='C0',
            label='test accuracy')
    ax.axhline(100 / run.num_classes, color='grey', linestyle='--', label='chance')
    colors = {'usable': 'C2', 'near chance': 'C3', 'far below best': 'C1'}
    for q in run.qualities():
        if q.accuracy is None:
            continue
        batch = int(q.batch or 0)
        ax.scatter([x(batch)], [100 * q.accuracy], color=colors[q.verdict], zorder=3,
                   label=q.verdict if q.verdict not in ax.get_legend_handles_labels()[1] else None)
        ax.annotate(f'ep{q.epoch}', (x(batch), 100 * q.accuracy), textcoords='offset points', xytext=(0, 6),
                    ha='center', fontsize=7)
    ax.set_xlabel('epoch' if per_epoch else 'batch')
    ax.set_ylim(bottom=0)
    ax.set_ylabel('test accuracy %')
    ax.set_title(f'{run.folder}: checkpoints by recorded accuracy', fontsize=9)
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=120, bbox_inches='tight')
    return buf.getvalue()
