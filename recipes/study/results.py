"""Reading a sweep's results folder (local or ``s3://``): each finished run's evaluations, wall time and compute.

The folder's ``sweep.yaml`` (:func:`recipes.study.spec.read_manifest`) names the recipes, their budgets, the seeds
and the baseline; each run folder's ``metrics.json`` holds its evaluations and ``compute.json`` (where the run
recorded one) the FLOPs it spent and reused. Runs that have not finished, or never evaluated, are left out and named.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from recipes.core.errors import UsageError
from recipes.core.run_files import read_compute, read_history
from recipes.study.runner import RunState, run_state
from recipes.study.spec import budget_label, read_manifest, run_folder

__all__ = ['ACCOUNTINGS', 'Groups', 'RunResult', 'collect', 'time_unit']

ACCOUNTINGS = ('sunk', 'total')  # the two ways RunResult.compute counts a run's compute
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

    @property
    def final(self) -> float:
        return self.accuracies[-1]

    @property
    def best(self) -> float:
        return max(self.accuracies)

    def compute(self, accounting: str) -> float:
        """FLOPs of the run: ``sunk`` counts what it spent, ``total`` adds what it reused."""
        return self.spent if accounting == 'sunk' else self.spent + self.reused

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


def _read_run(recipe: str, budget: float, seed: int, folder: str, history: dict) -> RunResult:
    evals = history['eval']
    spent = reused = NAN
    compute = read_compute(folder)
    if compute is not None:
        spent, reused = float(compute['spent_total']), float(compute['reused_total'])
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
    return sweep.baseline, groups, left_out


def time_unit(runs: Sequence[RunResult]) -> str:
    """'epoch' when every run evaluates at the ends of epochs (batch = epoch x batches per epoch), else 'batch'."""
    at_epoch_ends = all(
        r.epochs[0] >= 1 and all(b * r.epochs[0] == e * r.batches[0] for e, b in zip(r.epochs, r.batches, strict=True))
        for r in runs
    )
    return 'epoch' if at_epoch_ends else 'batch'
