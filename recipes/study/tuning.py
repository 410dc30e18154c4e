"""A sweep's tuning (its ``tune`` key): the choice of each tuned recipe's settings per budget, and ``tuned.yaml``.

The tuning runs (:func:`recipes.study.spec.tuning_plan`) train each tuned recipe (the baseline, and every recipe
that declares its own ``tune``) at each of its budgets, once per point of its grid and tuning seed, in
``{results}/tuning/{recipe}/b{budget}/p{N}/seed{S}`` (p1 is the grid's first point). :func:`choose` reads their final
validation accuracies (``val_accuracy``: the examples ``data.holdout`` keeps out of training; never the test
split's ``accuracy``) and picks, per recipe and budget, the point with the best mean over the tuning seeds; where
points tie, the first in grid order, and the choice says so. The test accuracy is recorded beside it, to show,
never to choose. ``{results}/tuned.yaml`` records every choice
(:func:`write_tuned`); a resumed sweep reads it back (:func:`read_tuned`), trains no tuning run for a choice it
holds, and refuses one made with another tune spec (:func:`check_tuned`). The evaluation runs of recipe R at budget
B train with :meth:`Tuned.choice` ``(R, B)``: R's own settings where R declares ``tune``, else the baseline's.

``tuned.yaml`` (accuracies are fractions, as in ``metrics.json``)::

    split: val                                               # the split that chose: the validation split
    tune: {seeds: [101], grid: {optimizer.lr: [0.05, 0.1]}}  # the sweep's tune, as sweep.yaml holds it
    uses: {baseline: baseline, kd: baseline}                 # recipe -> the tuned recipe whose settings it trains with
    recipes:
      baseline:
        grid: {optimizer.lr: [0.05, 0.1]}                    # the grid it was tuned over: the sweep's, or its own
        budgets:
          '0.5':
            overrides: [optimizer.lr=0.1]                    # what its evaluation runs add
            point: p2
            mean_val_accuracy: 0.85                          # what chose it
            mean_accuracy: 0.84                              # the test split's, shown beside it
            tie: ''                                          # or 'p1 and p2 tie at 85.00%: the first in grid order'
            edges: []                                        # axes of 3+ ordered values whose first or last it took
            runs: runs/sweep/tuning/baseline/b0.5            # where it came from: p1/seed101, p2/seed101
            seeds: [101]
            points:
              p1: {overrides: [optimizer.lr=0.05], mean_val_accuracy: 0.81, mean_accuracy: 0.80,
                   val_accuracy: {101: 0.81}, accuracy: {101: 0.80}}
              p2: {overrides: [optimizer.lr=0.1], mean_val_accuracy: 0.85, mean_accuracy: 0.84,
                   val_accuracy: {101: 0.85}, accuracy: {101: 0.84}}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from recipes.core import storage
from recipes.core.errors import UsageError
from recipes.core.run_files import METRICS_FILE, read_history
from recipes.study.spec import SweepSpec, budget_label, grid_edges, grid_points, plain, tuning_folder

__all__ = ['TUNED_FILE', 'Choice', 'Point', 'Tuned', 'check_tuned', 'choose', 'read_tuned', 'with_choices', 'write_tuned']

TUNED_FILE = 'tuned.yaml'
SPLIT = 'val'  # the split tuning chooses on: the validation split (data.holdout), never the test split
HEADER = ('# The settings the sweep\'s tuning chose (recipes.study.tuning), per tuned recipe and budget: the grid point\n'
          '# with the best mean final validation accuracy (val_accuracy: data.holdout\'s examples) on the tuning seeds\n'
          '# (ties: the first in grid order); the test accuracy is shown beside it, never chosen on. `uses`: the tuned\n'
          '# recipe whose settings each recipe\'s evaluation runs train with.\n')


@dataclass(frozen=True)
class Point:
    """One grid point of a tuned recipe at a budget: its overrides and each tuning seed's final accuracy."""

    label: str  # p1, p2, ...: its place in grid order
    overrides: tuple[str, ...]
    accuracy: dict[int, float]  # the test split's: shown, never chosen on
    val_accuracy: dict[int, float]  # the validation split's: what chooses

    @property
    def mean_accuracy(self) -> float:
        return sum(self.accuracy.values()) / len(self.accuracy)

    @property
    def mean_val_accuracy(self) -> float:
        return sum(self.val_accuracy.values()) / len(self.val_accuracy)


@dataclass(frozen=True)
class Choice:
    """The settings chosen for a tuned recipe at a budget, the points they were chosen from and where those ran."""

    recipe: str
    budget: float
    points: tuple[Point, ...]
    best: int  # index into points
    tie: str  # '' or the sentence that says which points tied
    runs: str  # the folder of the tuning runs: {runs}/{point}/seed{S}
    seeds: tuple[int, ...]
    edges: tuple[str, ...] = ()  # the grid's axes on whose first or last value the choice lies (grid_edges)

    @property
    def overrides(self) -> tuple[str, ...]:
        return self.points[self.best].overrides

    @property
    def point(self) -> str:
        return self.points[self.best].label

    @property
    def mean_accuracy(self) -> float:
        return self.points[self.best].mean_accuracy

    @property
    def mean_val_accuracy(self) -> float:
        return self.points[self.best].mean_val_accuracy

    def summary(self) -> str:
        """``baseline budget 0.5: optimizer.lr=0.1 (p2 of 2, chosen on val: mean final val accuracy 85.00%, test
        84.00%, on tuning seeds 101)``."""
        seeds = ', '.join(map(str, self.seeds))
        return (f'{self.recipe} budget {budget_label(self.budget)}: {" ".join(self.overrides)} ({self.point} of '
                f'{len(self.points)}, chosen on val: mean final val accuracy {100 * self.mean_val_accuracy:.2f}%, test '
                f'{100 * self.mean_accuracy:.2f}%, on tuning seeds {seeds})' + (f'; {self.tie}' if self.tie else '')
                + (f'; on the edge of its grid in {", ".join(self.edges)}' if self.edges else ''))


def _pick(points: Sequence[Point]) -> tuple[int, str]:
    """The index of the point with the best mean accuracy, the first in grid order among those that tie, and the
    sentence that says so ('' without a tie)."""
    means = [p.mean_val_accuracy for p in points]
    top = max(means)
    tied = [i for i, mean in enumerate(means) if math.isclose(mean, top, rel_tol=1e-12, abs_tol=1e-12)]
    if len(tied) == 1:
        return tied[0], ''
    names = ', '.join(points[i].label for i in tied[:-1]) + f' and {points[tied[-1]].label}'
    return tied[0], f'{names} tie at {100 * top:.2f}%: the first in grid order was chosen'


def _final_accuracies(folder: str) -> tuple[float, float]:
    """The final ``(val_accuracy, accuracy)`` of a finished tuning run."""
    history = read_history(folder) if storage.exists(storage.join(folder, METRICS_FILE)) else {}
    if not history.get('finished') or not history.get('eval'):
        raise UsageError(f'tuning run {folder} has not finished with an evaluation: start the sweep again to train it')
    last = history['eval'][-1]
    if last.get('val_accuracy') is None:
        raise UsageError(f'tuning run {folder} has no val_accuracy in its last evaluation: tuning chooses on the '
                         'validation split, never the test split, so train the tuning runs with data.holdout > 0')
    return float(last['val_accuracy']), float(last['accuracy'])


def choose(sweep: SweepSpec, recipe: str, budget: float) -> Choice:
    """The best point of ``recipe``'s grid at ``budget``, from the final accuracies of its finished tuning runs."""
    assert sweep.tune is not None and sweep.tune.seeds is not None
    seeds = sweep.tune.seeds
    runs = tuning_folder(sweep.results, recipe, budget)
    points = []
    for label, overrides in grid_points(sweep.grid_of(recipe)).items():
        finals = {seed: _final_accuracies(storage.join(runs, label, f'seed{seed}')) for seed in seeds}
        points.append(Point(label, overrides, {s: f[1] for s, f in finals.items()}, {s: f[0] for s, f in finals.items()}))
    best, tie = _pick(points)
    return Choice(recipe, budget, tuple(points), best, tie, runs, tuple(seeds),
                  grid_edges(sweep.grid_of(recipe), points[best].label))


@dataclass(frozen=True)
class Tuned:
    """What ``tuned.yaml`` holds: the tune spec, which tuned recipe each recipe follows, and every choice."""

    tune: dict[str, Any]  # the sweep's tune, as sweep.yaml holds it
    split: str  # the split that chose: 'val' (a tuned.yaml without it chose on the test split: refused)
    grids: dict[str, dict[str, list[Any]]]  # tuned recipe -> the grid it was tuned over
    uses: dict[str, str]  # recipe -> the tuned recipe whose settings it trains with
    choices: dict[tuple[str, float], Choice]  # (tuned recipe, budget) -> its choice

    def choice(self, recipe: str, budget: float) -> Choice:
        """The choice ``recipe``'s evaluation runs at ``budget`` train with: its own, or the baseline's."""
        return self.choices[self.uses[recipe], budget]

    def overrides(self) -> dict[tuple[str, float], tuple[str, ...]]:
        """``(recipe, budget) -> overrides`` for every recipe of :attr:`uses` at every budget tuned for it, as
        :func:`recipes.study.spec.plan` takes them."""
        return {(recipe, budget): choice.overrides for recipe, tuned_by in self.uses.items()
                for (name, budget), choice in self.choices.items() if name == tuned_by}

    def to_yaml(self) -> str:
        recipes: dict[str, Any] = {name: {'grid': grid, 'budgets': {}} for name, grid in self.grids.items()}
        for (name, budget), c in sorted(self.choices.items()):
            recipes[name]['budgets'][budget_label(budget)] = {
                'overrides': list(c.overrides), 'point': c.point, 'mean_val_accuracy': c.mean_val_accuracy,
                'mean_accuracy': c.mean_accuracy, 'tie': c.tie, 'edges': list(c.edges), 'runs': c.runs,
                'seeds': list(c.seeds),
                'points': {p.label: {'overrides': list(p.overrides), 'mean_val_accuracy': p.mean_val_accuracy,
                                     'mean_accuracy': p.mean_accuracy, 'val_accuracy': dict(p.val_accuracy),
                                     'accuracy': dict(p.accuracy)} for p in c.points},
            }
        content = {'split': self.split, 'tune': self.tune, 'uses': self.uses, 'recipes': recipes}
        return HEADER + yaml.safe_dump(content, sort_keys=False, default_flow_style=None, width=120)


def _choice(recipe: str, label: str, entry: dict[str, Any]) -> Choice:
    points = tuple(Point(name, tuple(p['overrides']), {int(s): float(a) for s, a in p['accuracy'].items()},
                         {int(s): float(a) for s, a in (p.get('val_accuracy') or {}).items()})
                   for name, p in entry['points'].items())
    best = next(i for i, p in enumerate(points) if p.label == entry['point'])
    return Choice(recipe, float(label), points, best, entry['tie'], entry['runs'], tuple(entry['seeds']),
                  tuple(entry.get('edges', ())))


def read_tuned(results: str) -> Tuned | None:
    """``{results}/tuned.yaml`` (local or s3://), or None where the sweep has not tuned (yet)."""
    uri = storage.join(results, TUNED_FILE)
    if not storage.exists(uri):
        return None
    try:
        content = yaml.safe_load(storage.read_bytes(uri))
        choices = {(name, float(label)): _choice(name, label, entry)
                   for name, recipe in content['recipes'].items() for label, entry in recipe['budgets'].items()}
        grids = {name: recipe['grid'] for name, recipe in content['recipes'].items()}
        return Tuned(content['tune'], content.get('split', 'test'), grids, content['uses'], choices)
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError, StopIteration) as e:
        raise UsageError(f'{uri} is not a tuned.yaml the sweep wrote ({type(e).__name__}: {e}): delete it to tune '
                         'again') from None


def write_tuned(results: str, tuned: Tuned) -> None:
    storage.write_bytes(storage.join(results, TUNED_FILE), tuned.to_yaml().encode())


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()


def check_tuned(sweep: SweepSpec, earlier: Tuned) -> None:
    """Refuse ``tuned.yaml`` made with another tune spec than ``sweep``'s: its tune, a tuned recipe's grid, or which
    tuned recipe's settings a recipe trains with."""
    uri = storage.join(sweep.results, TUNED_FILE)
    how = (f'to retune, give the sweep a new results folder, or delete {uri}, {storage.join(sweep.results, "tuning")} '
           'and the evaluation runs trained with its settings')
    if earlier.split != SPLIT:
        raise UsageError(f'{uri} chose its settings on the {earlier.split} split (made before tuning chose on the '
                         f'validation split): {how}')
    if earlier.tune != plain(sweep.tune):
        raise UsageError(f'{uri} was tuned with tune: {_flow(earlier.tune)}, not this sweep\'s {_flow(plain(sweep.tune))}: {how}')
    for name, grid in earlier.grids.items():
        if name in sweep.recipes and sweep.tuned_by(name) == name and grid != sweep.grid_of(name):
            raise UsageError(f'{uri} tuned {name} over the grid {_flow(grid)}, not this sweep\'s '
                             f'{_flow(sweep.grid_of(name))}: {how}')
    for name, tuned_by in earlier.uses.items():
        if name in sweep.recipes and sweep.tuned_by(name) != tuned_by:
            raise UsageError(f'{uri} has {name} train with the settings tuned for {tuned_by}, not for '
                             f'{sweep.tuned_by(name)} as this sweep says: {how}')


def with_choices(sweep: SweepSpec, earlier: Tuned | None, choices: Sequence[Choice]) -> Tuned:
    """``earlier``'s choices (checked against ``sweep`` by :func:`check_tuned`) and the new ``choices``, with which
    tuned recipe each of ``sweep``'s recipes follows."""
    grids = dict(earlier.grids) if earlier else {}
    grids.update({c.recipe: sweep.grid_of(c.recipe) for c in choices})
    known = dict(earlier.choices) if earlier else {}
    known.update({(c.recipe, c.budget): c for c in choices})
    return Tuned(plain(sweep.tune), SPLIT, grids, {name: sweep.tuned_by(name) for name in sweep.recipes}, known)
