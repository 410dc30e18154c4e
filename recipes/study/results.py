"""Reading a sweep's results folder (local or ``s3://``): each finished run's evaluations, wall time and compute.

The folder's ``sweep.yaml`` (:func:`recipes.study.spec.read_manifest`) names the recipes, their budgets, the seeds
and the baseline; each run folder's ``metrics.json`` holds its evaluations and the machine it ran on,
``config.yaml`` its number of classes (chance), and ``compute.json`` (where the run recorded one) the FLOPs it spent
and reused, by source. Runs that have not finished, or never evaluated, are left out and named.

A run's compute is counted three ways (:data:`ACCOUNTINGS`): ``sunk``, the FLOPs it spent itself (the past run and
its by-products are already paid for); ``fresh``, sunk plus the by-products of the past run that a team reusing it
would make anew for this run (scores, adversarial banks, teacher caches: every reused source but the past run's own
training; a source that several runs of the study read, a teacher cache, is divided over them); ``total``, fresh plus
the past run's training up to the checkpoints reused.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.core.run_files import CONFIG_FILE, read_compute, read_history
from recipes.study.runner import RunState, run_state
from recipes.study.spec import budget_label, read_manifest, run_folder

__all__ = ['ACCOUNTINGS', 'COLLAPSE_MARGIN', 'PAST_RUN', 'SHARED', 'Groups', 'RunResult', 'collect', 'time_unit']

ACCOUNTINGS = ('sunk', 'fresh', 'total')  # the three ways RunResult.compute counts a run's compute
PAST_RUN = 'past run '  # the ledger's source name of a past run's own training
SHARED = ('cache ',)  # sources many runs read at once (a teacher cache): fresh divides them over those runs
COLLAPSE_MARGIN = 0.10  # a run whose final accuracy is within this of chance has collapsed
NAN = math.nan


@dataclass(frozen=True)
class RunResult:
    """One finished run: its evaluations, wall time and, where recorded, the compute it spent and reused."""

    recipe: str
    budget: float
    seed: int
    epochs: tuple[int, ...]
    batches: tuple[int, ...]
    accuracies: tuple[float, ...]
    wall_seconds: float
    spent: float  # FLOPs; nan without compute.json
    reused: float
    reused_by_source: Mapping[str, float] = field(default_factory=dict)  # compute.json's reused, FLOPs by source
    chance: float = NAN  # 1 / the run's number of classes
    machine: Mapping[str, Any] = field(default_factory=dict)  # metrics.json's machine: CPU, GPU, library versions
    shared_by: Mapping[str, int] = field(default_factory=dict)  # per shared source, how many runs of the study read it
    val_accuracy: float | None = None  # the last validation accuracy (data.holdout); None without a validation split

    @property
    def final(self) -> float:
        return self.accuracies[-1]

    @property
    def best(self) -> float:
        return max(self.accuracies)

    @property
    def collapsed(self) -> bool:
        """Its final accuracy lies within :data:`COLLAPSE_MARGIN` of chance: the run did not learn."""
        return self.final < self.chance + COLLAPSE_MARGIN

    def compute(self, accounting: str) -> float:
        """FLOPs of the run counted as ``sunk``, ``fresh`` or ``total`` (see the module's docstring)."""
        if accounting == 'sunk':
            return self.spent
        if accounting == 'total':
            return self.spent + self.reused
        if accounting != 'fresh':
            raise ValueError(f'accounting={accounting!r}: choose one of {", ".join(ACCOUNTINGS)}')
        made_anew = sum(flops / (self.shared_by.get(source, 1) if source.startswith(SHARED) else 1)
                        for source, flops in self.reused_by_source.items() if not source.startswith(PAST_RUN))
        return self.spent + made_anew

    def times(self, unit: str) -> tuple[int, ...]:
        return self.epochs if unit == 'epoch' else self.batches

    def reach(self, threshold: float, unit: str) -> tuple[float, float] | None:
        """``(time, FLOPs spent)`` at the first evaluation at or above ``threshold``; None if none is.

        The FLOPs are the run's, pro rata by batches (the ledger records the run's total).
        """
        for time, batch, accuracy in zip(self.times(unit), self.batches, self.accuracies, strict=True):
            if accuracy >= threshold:
                return float(time), self.spent * batch / self.batches[-1]
        return None


Groups = dict[tuple[str, float], list[RunResult]]  # (recipe, budget) -> its finished runs, in sweep order


def _chance(folder: str) -> float:
    uri = storage.join(folder, CONFIG_FILE)
    if not storage.exists(uri):
        return NAN
    classes = (yaml.safe_load(storage.read_bytes(uri)) or {}).get('model', {}).get('num_classes')
    return 1.0 / int(classes) if classes else NAN


def _read_run(recipe: str, budget: float, seed: int, folder: str, history: dict) -> RunResult:
    evals = [e for e in history['eval'] if 'accuracy' in e]  # the test split's evaluations (test_interval)
    validations = [float(e['val_accuracy']) for e in history['eval'] if e.get('val_accuracy') is not None]
    spent = reused = NAN
    by_source: dict[str, float] = {}
    compute = read_compute(folder)
    if compute is not None:
        spent, reused = float(compute['spent_total']), float(compute['reused_total'])
        by_source = {str(k): float(v) for k, v in compute.get('reused', {}).items()}
    return RunResult(
        recipe=recipe,
        budget=budget,
        seed=seed,
        epochs=tuple(int(e['epoch']) for e in evals),
        batches=tuple(int(e['batch']) for e in evals),
        accuracies=tuple(float(e['accuracy']) for e in evals),
        wall_seconds=float(history['wall_seconds']),
        spent=spent,
        reused=reused,
        reused_by_source=by_source,
        chance=_chance(folder),
        machine=history.get('machine', {}),
        val_accuracy=validations[-1] if validations else None,
    )


def collect(results: str) -> tuple[str, Groups, list[str]]:
    """``(baseline, finished runs per recipe and budget, 'recipe bB seed S (why)' for each run left out)``."""
    sweep = read_manifest(results)
    groups: Groups = {}
    left_out: list[str] = []
    for name in sweep.recipes:
        for budget in sweep.budgets_of(name):
            runs = groups.setdefault((name, budget), [])
            for seed in sweep.seeds:
                folder = run_folder(results, name, budget, seed)
                where = f'{name} b{budget_label(budget)} seed {seed}'
                state = run_state(folder)
                if state is not RunState.FINISHED:
                    left_out.append(f'{where} ({"not started" if state is RunState.NEW else "not finished"})')
                    continue
                history = read_history(folder)
                if not history.get('eval'):
                    left_out.append(f'{where} (no evaluation)')
                    continue
                runs.append(_read_run(name, budget, seed, folder, history))
    if not any(groups.values()):
        raise UsageError(f'no finished runs in {results}: run launch/sweep.py on its sweep YAML first')
    readers = Counter(s for rs in groups.values() for r in rs for s in r.reused_by_source if s.startswith(SHARED))
    groups = {key: [replace(r, shared_by=dict(readers)) for r in rs] for key, rs in groups.items()}
    return sweep.baseline, groups, left_out


def time_unit(runs: Sequence[RunResult]) -> str:
    """'epoch' when every run evaluates at the ends of epochs (batch = epoch x batches per epoch), else 'batch'."""
    at_epoch_ends = all(
        r.epochs[0] >= 1 and all(b * r.epochs[0] == e * r.batches[0] for e, b in zip(r.epochs, r.batches, strict=True))
        for r in runs
    )
    return 'epoch' if at_epoch_ends else 'batch'
