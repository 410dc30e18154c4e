"""A sweep's specification: its YAML keys, each declared once with its rule, and the runs they plan.

A sweep YAML names the results folder (local or ``s3://``), the seeds, the recipe the others are compared with,
and each recipe as a training YAML plus ``key=value`` overrides; optionally the settings to tune first, the past
runs its seeds spread over, and its primary comparison::

    results: runs/sweep-digits
    ranks: 1
    parallel: 2
    seeds: [1, 2, 3]
    budgets: [0.25, 0.5, 1, 2]
    baseline: baseline
    reference: warm_start
    primary: {recipe: kd, budget: 0.5}
    tune:
      seeds: [101, 102, 103]
      grid: {optimizer.lr: [0.05, 0.1, 0.2], scheduler.t_warmup: [0.1dur, 0.25dur]}
    past: [17, 18, 19]
    overrides: [data.label_noise=0.4]
    recipes:
      baseline: {yaml: yamls/digits/baseline.yaml}
      kd: {yaml: yamls/digits/kd.yaml, overrides: ['algorithms.past_run_distillation.run=runs/digits-s{past}'],
           budgets: [0.5, 1], tune: true}
      warm_start: {yaml: yamls/digits/baseline.yaml, overrides: [algorithms.warm_start.run=runs/digits-baseline]}

Each key is a field of :class:`SweepSpec` (an entry of ``recipes:``, of :class:`RecipeSpec`; ``tune:``, of
:class:`TuneSpec`; ``primary:``, of :class:`PrimarySpec`) whose type carries its rule from
:mod:`recipes.core.rules` and what it is for: ``ranks: Annotated[int, Number(1, integer=True, ...), '1, or N: ...']
= 1``. One reader, :func:`read_schema`, applies them: an unknown key is refused with the closest known one, a key
without a default needs a value, a key left out or given as null takes its default, each value passes its field's
rule (and arrives as the value the rule returns), and a mapping whose type is a dataclass is read the same way.
Then the rules that tie keys together (:data:`SWEEP_TIES`, :mod:`recipes.core.ties`) run on the whole sweep. A new key is one annotated
field, plus a function declared in :data:`SWEEP_TIES` with the keys it ties if it constrains others.

A budget is a ratio of each recipe's own ``max_duration``, applied as Composer's ``scale_schedule_ratio`` (the
duration and the scheduler's milestones scale, the warmup does not, unless given in ``dur``). The baseline trains at
every budget (it is the frontier the report places the others on); another recipe may narrow the list with its own
``budgets``. Evaluation run ``(recipe, budget, seed)`` lives in ``{results}/{recipe}/b{budget}/seed{seed}`` and is
``launch/train.py YAML`` with the sweep's overrides, then the recipe's, then the command line's, then the tuned
settings (below), then ``seed``, ``scale_schedule_ratio``, ``run_name``, ``save_folder`` and ``autoresume=true``
(set by the sweep alone; later overrides win), so starting the sweep again skips the runs whose ``metrics.json``
says finished and continues a run that died from its newest checkpoint (:mod:`recipes.study.runner`). The
effective sweep is written to ``{results}/sweep.yaml`` (:meth:`SweepSpec.to_yaml`): the report reads the recipes,
seeds and baseline from there (:func:`read_manifest`).

``tune`` (optional) tunes the frontier before the evaluation runs: for each budget, the baseline trains once per
point of ``grid`` (every combination of its values, the last key varying fastest) and tuning seed, in
``{results}/tuning/{recipe}/b{budget}/p{N}/seed{seed}`` (:func:`tuning_plan`); the point with the best mean final
accuracy is chosen (ties: the first in grid order) and recorded in ``{results}/tuned.yaml``
(:mod:`recipes.study.tuning`), and every recipe's evaluation runs at that budget train with it. A recipe with its own
``tune`` (``true``: the sweep's grid; or a grid of its own with as many points, on the same tuning seeds) is tuned
the same way and trains with its own choice. Tuning seeds and evaluation seeds never overlap.

``schedules`` (optional, instead of ``tune``) fixes the settings of each budget for every recipe, where another
sweep's tuning chose them: a short sweep (the demo's) trains with the study's choices without tuning again. Every
budget a recipe trains at must be listed; the settings take the tuned settings' place in the run's overrides.

``past`` (optional) lists what ``{past}`` stands for in the sweep's and recipes' overrides: the runs of seed s
(evaluation or tuning) get ``past[s mod len(past)]``, so a study spreads several past runs (their teachers, scores,
banks) over its seeds (quote an override that holds ``{past}`` inside a ``[...]`` list: YAML reads braces there).
``{past}`` without ``past``, and ``past`` without ``{past}``, are refused.

``reference`` (optional) names a second recipe every other one is compared with at the same budget: the reuse
baseline a method must beat (``warm_start``), beside the fresh baseline's frontier; a recipe's own ``reference``
replaces it for that recipe (a sweep holding several scenarios compares each with its own warm start). ``primary`` (optional) names the
one comparison the study is designed to test, a recipe other than the baseline at one of its budgets; the report
reads it from ``sweep.yaml``.

``parallel: N`` trains N runs at once (one process each, ``ranks: 1`` only), each with ``OMP_NUM_THREADS`` set to
its share of the CPU cores, and writes each run's output to ``{logs}/{run name}.log`` instead of the terminal.
Small models on a few CPU cores gain most: one run cannot keep two cores busy.

``launcher: ray`` runs each run as a task on a Ray cluster instead (:mod:`recipes.study.ray_launcher`), with the keys
under ``ray:`` (:class:`RaySpec`): the cluster's address, the resources of one run and the retries of a run whose node
died. A sweep key given on the command line as ``key=value`` (``launcher=ray``, ``ray.address=HOST:6379``) sets it
for this sweep (:func:`split_overrides`); every other ``key=value`` goes to every run.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, TypeVar

import yaml

from recipes.core import storage
from recipes.core.declare import rule_of
from recipes.core.errors import UsageError, did_you_mean
from recipes.core.rules import Choice, Folder, Location, Number, OneOf, RunName
from recipes.core.ties import Ties
from recipes.study.sweep_rules import (
    Budgets,
    BudgetSettings,
    Grid,
    NamedEntries,
    OverrideList,
    PastValues,
    RayAddress,
    Section,
    SweepSeeds,
    YamlMapping,
)

__all__ = [
    'ARTIFACTS_FOLDER',
    'PAST',
    'ArtifactSpec',
    'Build',
    'PastRunSpec',
    'artifact_plan',
    'past_root',
    'past_run_plan',
    'SET_BY_SWEEP',
    'SWEEP_FILE',
    'TUNING_FOLDER',
    'PrimarySpec',
    'Recipe',
    'RecipeSpec',
    'RaySpec',
    'Run',
    'Sweep',
    'SWEEP_TIES',
    'SweepSpec',
    'TuneSpec',
    'budget_label',
    'grid_edges',
    'grid_points',
    'load_sweep',
    'parse_sweep',
    'plain',
    'plan',
    'read_manifest',
    'read_schema',
    'run_folder',
    'split_overrides',
    'tuned_pairs',
    'tuning_folder',
    'tuning_plan',
]

SWEEP_FILE = 'sweep.yaml'
SET_BY_SWEEP = ('seed', 'scale_schedule_ratio', 'run_name', 'save_folder', 'autoresume', 'threads')
TUNING_FOLDER = 'tuning'  # {results}/tuning/{recipe}/b{budget}/p{N}/seed{S}: the tuning runs
PAST = '{past}'  # in the sweep's and recipes' overrides: the past run of each seed, past[seed mod len(past)]
# {past_runs.NAME} and {artifacts.NAME} in the overrides: family NAME's past run of the seed's past value, and the
# artifact NAME made of it (paths under past_root)
PLACEHOLDER = re.compile(r'\{(past_runs|artifacts)\.([^{}]*)\}')
ARTIFACTS_FOLDER = 'artifacts'  # {past_root}/artifacts/{name}-s{past}: the artifacts
PAST_FOLDER = 'past'  # {results}/past: past_root when the file names none


def budget_label(budget: float) -> str:
    """``0.25``, ``0.5``, ``1``, ``2``: the shortest form, as in folder names ``b0.25``."""
    return f'{budget:g}'


@dataclass(frozen=True, kw_only=True)
class TuneSpec:
    """``tune:``, the settings tried before the evaluation runs: per budget, each point of ``grid`` on each seed of
    ``seeds``. A recipe's own ``tune`` may leave ``seeds`` out: it tunes on the sweep's."""

    seeds: Annotated[tuple[int, ...] | None, SweepSeeds(),
                     'tuning seeds, none of them an evaluation seed; in a recipe\'s tune, optional and the sweep\'s'] = None
    grid: Annotated[dict[str, list[Any]], Grid(SET_BY_SWEEP),
                    'config key -> the values to try; the grid is every combination, the last key varying fastest; '
                    'give times in `dur` (`0.1dur`) to scale with the budget']


@dataclass(frozen=True, kw_only=True)
class PrimarySpec:
    """``primary:``, the one comparison a study is designed to test: a recipe against the frontier at a budget."""

    recipe: Annotated[str, RunName(), 'a recipe other than the baseline']
    budget: Annotated[float, Number(0, 100, low_open=True), 'one of that recipe\'s budgets']

    def __post_init__(self) -> None:
        object.__setattr__(self, 'budget', float(self.budget))


@dataclass(frozen=True)
class RecipeSpec:
    """One entry of ``recipes:``: a training YAML, the overrides of its runs and, optionally, its budgets and tuning."""

    yaml: Annotated[str, Location(), 'the training YAML, relative to the directory the sweep starts in']
    overrides: Annotated[tuple[str, ...], OverrideList(),
                         '`key=value` for its runs, after the sweep\'s; may hold `{past}`'] = ()
    budgets: Annotated[tuple[float, ...] | None, Budgets(),
                       'narrows the sweep\'s budgets for this recipe (the baseline trains at every one)'] = None
    tune: Annotated[bool | TuneSpec | None, Section('{grid: {KEY: [VALUES]}}', "the sweep's grid"),
                    'tune this recipe itself, on the sweep\'s tuning seeds: `true` for the sweep\'s grid, or a grid '
                    'of its own with as many points; without it, it trains with the baseline\'s tuned settings'] = None
    reference: Annotated[str | None, RunName(),
                         'the recipe this one is compared with at each budget, in place of the sweep\'s `reference`: a '
                         'scenario\'s own reuse baseline, when one sweep holds several scenarios'] = None


@dataclass(frozen=True)
class PastRunSpec:
    """One entry of ``past_runs:``, a family of past runs: one run of the YAML per value of ``past``, that value its
    seed, in ``{past_root}/{family}/seed{past}``."""

    yaml: Annotated[str, Location(), 'the training YAML of the past runs']
    overrides: Annotated[tuple[str, ...], OverrideList(),
                         '`key=value` for its runs (the sweep\'s overrides are the new runs\', not theirs)'] = ()
    cpus: Annotated[float | None, Number(0, 1024, optional=True), 'with launcher ray: CPUs each of its runs asks for; '
                    'null: `ray.cpus_per_run`'] = None
    gpus: Annotated[float | None, Number(0, 1024, optional=True), 'with launcher ray: GPUs each of its runs asks for; '
                    'null: `ray.gpus_per_run`'] = None


def _builder_names() -> list[str]:
    from recipes.study.builders import builder_names  # the registry: Composer, which a sweep without artifacts skips

    return builder_names()


@dataclass(frozen=True)
class ArtifactSpec:
    """One entry of ``artifacts:``, what reuse makes of a family's past runs: one per past run, built by a builder
    of :mod:`recipes.study.builders` after that run, in ``{past_root}/artifacts/{name}-s{past}``."""

    builder: Annotated[str, Choice(_builder_names),
                       '`score` (launch/score.py), `adv_bank` (launch/build_adv_bank.py), `teacher_cache` '
                       '(launch/cache_teacher.py)']
    run: Annotated[str, RunName(), 'the family of `past_runs` it is made of']
    args: Annotated[dict[str, Any] | None, YamlMapping('{method: el2n, checkpoints: auto}', optional=True),
                    "the builder's arguments but --run and --out, as its script takes them; `{past}` in a value "
                    'stands for the past run\'s value'] = None
    cpus: Annotated[float | None, Number(0, 1024, optional=True), 'with launcher ray: CPUs its builds ask for; '
                    'null: `ray.cpus_per_run`'] = None
    gpus: Annotated[float | None, Number(0, 1024, optional=True), 'with launcher ray: GPUs its builds ask for; '
                    'null: `ray.gpus_per_run`'] = None


@dataclass(frozen=True)
class RaySpec:
    """The keys under ``ray:``, read when ``launcher: ray``: where the cluster is and what one run asks of it."""

    address: Annotated[str, RayAddress(), '`auto` (the cluster this machine belongs to), `HOST:6379` or '
                       '`ray://HOST:10001`'] = 'auto'
    gpus_per_run: Annotated[float | None, Number(0, 1024, optional=True, message='must be a number of GPUs >= 0 '
                                                  '(null: one per rank of the run)'),
                            'GPUs each run asks for; null: `ranks`, one per rank'] = None
    cpus_per_run: Annotated[float, Number(0, 1024, message='must be a number of CPUs >= 0'),
                            'CPUs each run asks for (Ray sets its `OMP_NUM_THREADS` to them)'] = 1
    max_retries: Annotated[int, Number(0, 100, integer=True, message='must be a whole number >= 0 (retries of a run '
                                                                     'whose worker or node died)'),
                           'how often a run whose worker or node died starts again'] = 3
    runtime_env: Annotated[dict[str, Any] | None, YamlMapping('{env_vars: {NAME: value}}', optional=True),
                           "Ray's `runtime_env` for every run's task"] = None


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A sweep YAML's keys (see the module's docstring), in the order ``sweep.yaml`` writes them."""

    results: Annotated[str, Folder(optional=False),
                       'local folder or `s3://bucket/prefix`; the sweep writes `sweep.yaml` there']
    ranks: Annotated[int, Number(1, integer=True, message='must be a whole number >= 1 (processes per run)'),
                     '1, or N: each run under `composer -n N`'] = 1
    parallel: Annotated[int, Number(1, integer=True, message='must be a whole number >= 1 (runs trained at once)'),
                        '1, or N runs at once (`ranks: 1` only), each with `OMP_NUM_THREADS` = its share of the cores '
                        'and its output in `RESULTS/logs/RUN.log`'] = 1
    threads_per_run: Annotated[int, Number(1, 1024, integer=True, message='must be a whole number >= 1 (CPU threads '
                                                                          'of a run)'),
                               'CPU threads each run (and each artifact\'s build) computes with: its config\'s `threads`, '
                               'the same under every launcher, so where a run trains does not change its result'] = 1
    launcher: Annotated[str, OneOf('local', 'ray'), '`local`: runs as processes on this machine; `ray`: each run a task '
                        'on a Ray cluster (docs/cluster.md)'] = 'local'
    seeds: Annotated[tuple[int, ...], SweepSeeds(), 'the evaluation seeds, one independent run each']
    budgets: Annotated[tuple[float, ...], Budgets(), 'ratios of each recipe\'s `max_duration`'] = (1.0,)
    baseline: Annotated[str, RunName(), 'the recipe the others are compared with; it trains at every budget']
    reference: Annotated[str | None, RunName(),
                         'a second recipe (a reuse baseline such as `warm_start`) every other one is compared with at '
                         'the same budget'] = None
    primary: Annotated[PrimarySpec | None, Section('{recipe: NAME, budget: B}'),
                       'the comparison the study is designed to test: a recipe and one of its budgets; the report reads '
                       'it from `sweep.yaml`'] = None
    tune: Annotated[TuneSpec | None, Section('{seeds: [...], grid: {KEY: [VALUES]}}'),
                    'tune the frontier first: per budget, the baseline over the grid on the tuning seeds; the best '
                    'mean final validation accuracy wins (`RESULTS/tuned.yaml`; needs `data.holdout`), and every '
                    'evaluation run trains with it'] = None
    schedules: Annotated[dict[float, tuple[str, ...]] | None, BudgetSettings(),
                         'fixed settings per budget for every recipe, instead of tuning them (another sweep\'s '
                         '`tuned.yaml` choices, say): budget -> `[key=value, ...]`, every budget listed'] = None
    past: Annotated[tuple[Any, ...] | None, PastValues(),
                    'what `{past}` in the overrides stands for: evaluation (and tuning) seed s gets past[s mod '
                    'len(past)]'] = None
    past_root: Annotated[str | None, Folder(),
                         'where the past runs and artifacts live (`{past_root}/{family}/seed{past}`, '
                         '`{past_root}/artifacts/{name}-s{past}`): several study files naming one share them; '
                         'null: `RESULTS/past`'] = None
    past_runs: Annotated[dict[str, PastRunSpec] | None, NamedEntries('past-run family', '{yaml: PATH, overrides: [...]}'),
                         'families of past runs the sweep trains first: one run per value of `past`, that value its '
                         'seed; `{past_runs.NAME}` in an override is the folder of the seed\'s one'] = None
    artifacts: Annotated[dict[str, ArtifactSpec] | None,
                         NamedEntries('artifact', '{builder: score, run: FAMILY, args: {...}}'),
                         'what reuse makes of each past run of a family, built after it: `{artifacts.NAME}` in an '
                         'override is the seed\'s one'] = None
    overrides: Annotated[tuple[str, ...], OverrideList(),
                         '`key=value` for every run; may hold `{past}`, `{past_runs.NAME}`, `{artifacts.NAME}`'] = ()
    recipes: Annotated[dict[str, RecipeSpec], NamedEntries('recipe', '{yaml: PATH, overrides: [...]}'),
                       'name -> `{yaml: PATH, overrides: [...], budgets: [...], tune: ...}`']
    ray: Annotated[RaySpec, Section('{address: auto, gpus_per_run: 8, ...}'),
                   'with `launcher: ray`: where the cluster is and what each run asks of it (`ray.*` below)'] = field(
        default_factory=RaySpec)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'results', self.results.rstrip('/') or self.results)

    def budgets_of(self, recipe: str) -> tuple[float, ...]:
        return self.recipes[recipe].budgets or self.budgets

    def fixed_settings(self) -> dict[tuple[str, float], tuple[str, ...]]:
        """``(recipe, budget) -> overrides`` from ``schedules``, as :func:`plan` takes the tuned ones."""
        return {(name, budget): tuple((self.schedules or {}).get(budget, ()))
                for name in self.recipes for budget in self.budgets_of(name)}

    def tuned_by(self, recipe: str) -> str:
        """The recipe whose tuned settings ``recipe``'s runs train with: itself where it declares ``tune``, else the
        baseline."""
        return recipe if self.recipes[recipe].tune is not None else self.baseline

    def grid_of(self, recipe: str) -> dict[str, list[Any]]:
        """The grid a tuned recipe is tuned over: its own, else the sweep's (``tune`` must be set)."""
        own = self.recipes[recipe].tune
        assert self.tune is not None, 'grid_of needs the sweep\'s tune'
        return own.grid if isinstance(own, TuneSpec) else self.tune.grid

    def gpus_per_run(self) -> float:
        """The GPUs a run asks of a Ray cluster: ``ray.gpus_per_run``, else one per rank."""
        return self.ranks if self.ray.gpus_per_run is None else self.ray.gpus_per_run

    def to_yaml(self) -> str:
        """The sweep as ``sweep.yaml`` holds it: every key but those that are null, which :func:`parse_sweep` reads
        back to the same sweep."""
        return yaml.safe_dump(plain(self), sort_keys=False)


Sweep = SweepSpec  # the names the study's modules and tests have always used
Recipe = RecipeSpec


def plain(value: Any) -> Any:
    """A spec's value as YAML writes it: a dataclass as a mapping of its fields that are not None, tuples as lists."""
    if dataclasses.is_dataclass(value):
        fields = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
        return {name: plain(v) for name, v in fields if v is not None}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


# ----- reading a mapping into a spec ---------------------------------------------------------------------------------

T = TypeVar('T')


def _keys(schema: type) -> list[str]:
    return [f.name for f in dataclasses.fields(schema)]


def _typed(hint: Any, value: Any, key: str) -> Any:
    """``value`` (as its rule returned it) in the field's type: a tuple for ``tuple[...]``, a mapping for a dataclass
    read by :func:`read_schema`, and for a mapping of names to a dataclass, each entry read so."""
    base = typing.get_args(hint)[0]  # Annotated[base, rule]
    members = typing.get_args(base) if typing.get_origin(base) in (typing.Union, types.UnionType) else (base,)
    section = next((m for m in members if dataclasses.is_dataclass(m)), None)
    if section is not None and isinstance(value, dict):
        return read_schema(section, value, f'{key}.')
    base = next(m for m in members if m is not type(None))  # X | None
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin is tuple:
        return tuple(value)
    if origin is dict and dataclasses.is_dataclass(args[1]):
        return {name: read_schema(args[1], entry, f'{key}.{name}.') for name, entry in value.items()}
    return value


def read_schema(schema: type[T], content: dict[str, Any], where: str = '') -> T:
    """``content`` (a mapping read from YAML) as a ``schema`` dataclass whose fields carry their rules.

    Every key of ``content`` must be a field (else one line with the closest field); a field without a default needs
    a value; a key that is absent or null takes its field's default; every value passes its field's rule, and a section
    (``ray:``, ``tune:``) is read the same way by its own dataclass. ``where`` prefixes the keys in messages
    (``recipes.kd.``).
    """
    keys = _keys(schema)
    if not isinstance(content, dict):
        raise UsageError(f'{where.rstrip(".") or schema.__name__} must be a mapping with the keys {", ".join(keys)}')
    for key in content:
        if key not in keys:
            hint = did_you_mean(str(key), keys, spell=lambda m: f'{where}{m!r}') or f' (keys: {", ".join(keys)})'
            raise UsageError(f'unknown key {where}{key!r}{hint}')
    hints = typing.get_type_hints(schema, include_extras=True)
    values = {}
    for f in dataclasses.fields(schema):
        key, value = f'{where}{f.name}', content.get(f.name)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and (value is None or value in ('', [], {})):
            raise UsageError(f'{key} needs a value (see the sweep YAML format in the README)')
        if value is not None:
            values[f.name] = _typed(hints[f.name], rule_of(hints[f.name]).check(key, value), key)
    return schema(**values)


# ----- rules that tie keys together ----------------------------------------------------------------------------------

SWEEP_TIES = Ties('the sweep file')  # run by parse_sweep, in this order, once every key has passed its own rule


@SWEEP_TIES.tie('baseline', 'recipes')
def _baseline_is_a_recipe(sweep: SweepSpec) -> None:
    if sweep.baseline not in sweep.recipes:
        raise UsageError(f'baseline {sweep.baseline!r} is not one of the recipes ({", ".join(sweep.recipes)})')


@SWEEP_TIES.tie('reference', 'recipes')
def _reference_is_another_recipe(sweep: SweepSpec) -> None:
    named = [('reference', sweep.reference, None)] + [
        (f'recipes.{name}.reference', recipe.reference, name) for name, recipe in sweep.recipes.items()]
    for key, reference, owner in named:
        if reference is not None and (reference not in sweep.recipes or reference in (sweep.baseline, owner)):
            others = ', '.join(r for r in sweep.recipes if r not in (sweep.baseline, owner)) or 'none'
            raise UsageError(f'{key} {reference!r} must be one of the recipes other than the baseline ({others}), e.g. '
                             'warm_start')


@SWEEP_TIES.tie('recipes', 'budgets')
def _recipe_budgets_narrow_the_sweeps(sweep: SweepSpec) -> None:
    for name, recipe in sweep.recipes.items():
        extra = sorted(set(recipe.budgets or sweep.budgets) - set(sweep.budgets))
        if extra:
            raise UsageError(
                f'recipes.{name}.budgets has {", ".join(map(budget_label, extra))}, not in budgets '
                f'{list(sweep.budgets)}: a recipe may only narrow the sweep\'s budgets',
            )


@SWEEP_TIES.tie('baseline', 'budgets')
def _baseline_trains_at_every_budget(sweep: SweepSpec) -> None:
    own = sweep.recipes[sweep.baseline].budgets
    if own is not None and own != sweep.budgets:
        raise UsageError(
            f'recipes.{sweep.baseline}.budgets narrows the baseline: it trains at every budget (the frontier), '
            'so remove its budgets',
        )


@SWEEP_TIES.tie('parallel', 'ranks')
def _parallel_runs_have_one_rank(sweep: SweepSpec) -> None:
    if sweep.parallel > 1 and sweep.ranks > 1:
        raise UsageError(
            f'parallel={sweep.parallel} with ranks={sweep.ranks}: runs of several ranks already share the machine, '
            'so train them one at a time (parallel: 1), or use ranks: 1',
        )


@SWEEP_TIES.tie('parallel', 'launcher')
def _parallel_is_for_the_local_launcher(sweep: SweepSpec) -> None:
    if sweep.launcher == 'ray' and sweep.parallel > 1:
        raise UsageError(
            f'parallel={sweep.parallel} is for launcher local: a Ray cluster runs as many runs at once as its resources '
            'allow (ray.gpus_per_run, ray.cpus_per_run each), so pass parallel=1',
        )


@SWEEP_TIES.tie('ranks', 'launcher', 'ray')
def _each_rank_has_a_gpu(sweep: SweepSpec) -> None:
    gpus = sweep.gpus_per_run()
    if sweep.launcher != 'ray':
        return
    if gpus > 1 and gpus != int(gpus):
        raise UsageError(f'ray.gpus_per_run={gpus:g}: Ray grants whole GPUs, or a fraction of one: use a whole number')
    if sweep.ranks > 1 and 0 < gpus < sweep.ranks:
        raise UsageError(
            f'ray.gpus_per_run={gpus:g} with ranks={sweep.ranks}: give each rank of composer -n {sweep.ranks} a GPU '
            f'(gpus_per_run: {sweep.ranks}), or 0 for runs on CPUs',
        )


def _leave_the_sweeps_keys(key: str, overrides: Sequence[str]) -> None:
    """Refuse an override of a key the sweep sets for every run (:data:`SET_BY_SWEEP`)."""
    for override in overrides:
        name = override.split('=', 1)[0].strip()
        if name in SET_BY_SWEEP:
            raise UsageError(
                f'{key} sets {name!r}, which the sweep sets for every run ({", ".join(SET_BY_SWEEP)}): '
                'remove it (seeds go in seeds:, folders under results:)',
            )


@SWEEP_TIES.tie('overrides', 'recipes')
def _overrides_leave_the_sweeps_keys(sweep: SweepSpec) -> None:
    for name, recipe in sweep.recipes.items():
        _leave_the_sweeps_keys(f'recipes.{name}.overrides', recipe.overrides)
    _leave_the_sweeps_keys('overrides', sweep.overrides)


@SWEEP_TIES.tie('tune', 'seeds')
def _tuning_seeds_stand_apart(sweep: SweepSpec) -> None:
    tune = sweep.tune
    if tune is None:
        return
    top = max(sweep.seeds)
    suggestion = list(range(top + 1, top + 1 + len(tune.seeds or (0, 0, 0))))
    if tune.seeds is None:
        raise UsageError(f'tune.seeds needs a value: list the tuning seeds, none of them in seeds, e.g. {suggestion}')
    shared = sorted(set(tune.seeds) & set(sweep.seeds))
    if shared:
        raise UsageError(
            f'tune.seeds {list(tune.seeds)} share {", ".join(map(str, shared))} with seeds {list(sweep.seeds)}: '
            f'tune on seeds no evaluation run uses, e.g. {suggestion}',
        )
    if TUNING_FOLDER in sweep.recipes:
        raise UsageError(f'recipe {TUNING_FOLDER!r} would share its folder with the tuning runs: rename it')


@SWEEP_TIES.tie('schedules', 'budgets', 'recipes', 'tune')
def _schedules_fix_every_budget(sweep: SweepSpec) -> None:
    if sweep.schedules is None:
        return
    if sweep.tune is not None:
        raise UsageError('give tune (choose the settings per budget) or schedules (fixed settings per budget), not both')
    budgets = {b for name in sweep.recipes for b in sweep.budgets_of(name)}
    extra, missing = sorted(set(sweep.schedules) - budgets), sorted(budgets - set(sweep.schedules))
    if extra:
        raise UsageError(f'schedules has budget {extra[0]:g}, which no recipe trains at: remove it')
    if missing:
        raise UsageError(f'schedules lacks budget {missing[0]:g}: give every budget its settings, so none trains with '
                         'the recipes\' defaults by omission')
    for budget, overrides in sweep.schedules.items():
        _leave_the_sweeps_keys(f'schedules.{budget:g}', overrides)


@SWEEP_TIES.tie('recipes', 'tune')
def _recipes_tune_with_equal_effort(sweep: SweepSpec) -> None:
    for name, recipe in sweep.recipes.items():
        own, key = recipe.tune, f'recipes.{name}.tune'
        if own is None:
            continue
        if sweep.tune is None:
            raise UsageError(f'{key} needs the sweep\'s tune (tuning seeds and grid): add tune: {{seeds: [...], grid: '
                             f'{{...}}}}, or remove {key}')
        if name == sweep.baseline:
            raise UsageError(f'{key}: the baseline is tuned by the sweep\'s tune: remove {key}')
        if not isinstance(own, TuneSpec):
            continue
        if own.seeds is not None and sorted(own.seeds) != sorted(sweep.tune.seeds or ()):
            raise UsageError(
                f'{key}.seeds {list(own.seeds)} are not tune.seeds {list(sweep.tune.seeds or ())}: every tuned recipe '
                f'tunes on the sweep\'s tuning seeds (equal tuning effort), so remove {key}.seeds',
            )
        mine, theirs = len(grid_points(own.grid)), len(grid_points(sweep.tune.grid))
        if mine != theirs:
            raise UsageError(
                f'{key}.grid has {mine} points and tune.grid {theirs}: equal tuning effort needs as many, so give it '
                f'{theirs} (or write tune: true for the sweep\'s grid)',
            )


def _uses_past(overrides: Sequence[str]) -> bool:
    return any(PAST in override or PLACEHOLDER.search(override) for override in overrides)


def _all_overrides(sweep: SweepSpec) -> list[tuple[str, str]]:
    """``(key, override)`` of the sweep's and every recipe's overrides."""
    return [('overrides', o) for o in sweep.overrides] + [
        (f'recipes.{name}.overrides', o) for name, recipe in sweep.recipes.items() for o in recipe.overrides]


@SWEEP_TIES.tie('overrides', 'recipes', 'past_runs', 'artifacts')
def _placeholders_name_declared_past_runs_and_artifacts(sweep: SweepSpec) -> None:
    for key, override in _all_overrides(sweep):
        for match in PLACEHOLDER.finditer(override):
            kind, name = match.group(1), match.group(2)
            declared = (sweep.past_runs if kind == 'past_runs' else sweep.artifacts) or {}
            if name not in declared:
                hint = did_you_mean(name, list(declared), spell=lambda m, kind=kind: f'{{{kind}.{m}}}')
                known = f' (it declares {", ".join(declared)})' if declared and not hint else ''
                raise UsageError(f'{key} names {match.group(0)}, which {kind} does not declare{hint}{known}: declare it '
                                 f'under {kind}:, or name one that is')


@SWEEP_TIES.tie('past', 'past_runs', 'artifacts')
def _past_runs_and_artifacts_are_whole(sweep: SweepSpec) -> None:
    from recipes.study.builders import check_builder_args

    if (sweep.past_runs or sweep.artifacts) and sweep.past is None:
        raise UsageError('past_runs and artifacts are made once per value of past: list the past runs\' seeds, e.g. '
                         'past: [17, 18, 19]')
    if sweep.past_runs:
        bad = [v for v in sweep.past or () if not isinstance(v, int) or isinstance(v, bool)]
        if bad:
            raise UsageError(f'past value {bad[0]!r} is the seed of a past run (past_runs): make every value of past '
                             'a whole number, e.g. past: [17, 18, 19]')
        if ARTIFACTS_FOLDER in sweep.past_runs:
            raise UsageError(f'past_runs.{ARTIFACTS_FOLDER} would share its folder with the artifacts: rename it')
    families = list(sweep.past_runs or {})
    for name, artifact in (sweep.artifacts or {}).items():
        key = f'artifacts.{name}'
        if artifact.run not in families:
            hint = did_you_mean(artifact.run, families, spell=repr)
            raise UsageError(f'{key}.run {artifact.run!r} is not a family of past_runs{hint} (it declares '
                             f'{", ".join(families) or "none"}): name one, or declare it under past_runs:')
        check_builder_args(f'{key}.args', artifact.builder, artifact.args or {},
                           None if sweep.past is None else _past_of(sweep, 0))


@SWEEP_TIES.tie('past', 'overrides', 'recipes', 'past_runs')
def _past_fills_the_placeholders(sweep: SweepSpec) -> None:
    users = ['overrides'] * _uses_past(sweep.overrides) + [
        f'recipes.{name}.overrides' for name, recipe in sweep.recipes.items() if _uses_past(recipe.overrides)]
    if users and sweep.past is None:
        raise UsageError(f'{users[0]} holds {PAST} but the sweep has no past: list what it stands for, one value per '
                         'past run, e.g. past: [17, 18, 19] (seed s gets past[s mod 3])')
    if sweep.past is not None and not users:
        if not sweep.past_runs:
            raise UsageError(f'past {list(sweep.past)} fills no override: write {PAST} where an override names a past '
                             f'run, e.g. algorithms.past_run_distillation.run=runs/digits-baseline-s{PAST}')


@SWEEP_TIES.tie('primary', 'recipes', 'baseline')
def _primary_is_a_comparison(sweep: SweepSpec) -> None:
    primary = sweep.primary
    if primary is None:
        return
    others = [name for name in sweep.recipes if name != sweep.baseline]
    if primary.recipe not in others:
        raise UsageError(f'primary.recipe {primary.recipe!r} must be one of the recipes compared with the baseline '
                         f'({", ".join(others) or "none"})')
    budgets = sweep.budgets_of(primary.recipe)
    if primary.budget not in budgets:
        raise UsageError(f'primary.budget {budget_label(primary.budget)} is not a budget of {primary.recipe} '
                         f'({", ".join(map(budget_label, budgets))}): name one of them')


# ----- reading a sweep -----------------------------------------------------------------------------------------------


def parse_sweep(content: Any, source: str) -> SweepSpec:
    """Check a loaded sweep mapping key by key, then across keys; every mistake is one UsageError naming ``source``,
    the key and the fix."""
    if not isinstance(content, dict):
        raise UsageError(f'{source} must hold a mapping with the keys {", ".join(_keys(SweepSpec))}')
    try:
        sweep = read_schema(SweepSpec, content)
        SWEEP_TIES.check(sweep)
    except UsageError as e:
        raise UsageError(f'{source}: {e}') from None
    return sweep


def _parse_yaml(text: str | bytes, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f'{source} is not valid YAML: {str(e).splitlines()[0]}') from e


def split_overrides(overrides: Sequence[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Command-line ``key=value`` pairs split into sweep keys and run overrides.

    A pair whose key is a sweep key (``launcher=ray``) or a key under one (``ray.address=HOST:6379``) becomes an entry
    of the returned mapping, nested as in the sweep YAML, its value read as YAML (``ray.gpus_per_run=8`` is a number);
    every other pair is an override of every run. No config key shares a name with a sweep key
    (``tests/test_sweep.py``), so the split is unambiguous.
    """
    settings: dict[str, Any] = {}
    runs = []
    for override in overrides:
        key, _, text = override.partition('=')
        path = key.strip().split('.')
        if path[0] not in _keys(SweepSpec):
            runs.append(override)
            continue
        where = settings
        for part in path[:-1]:
            if not isinstance(where.get(part), dict):
                where[part] = {}
            where = where[part]
        where[path[-1]] = _parse_yaml(text, f'command line {key.strip()}=')
    return settings, tuple(runs)


def _merge(content: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """``content`` with ``settings`` laid over it, mapping into mapping (the command line's sweep keys win)."""
    merged = dict(content)
    for key, value in settings.items():
        below = merged.get(key)
        merged[key] = _merge(below, value) if isinstance(value, dict) and isinstance(below, dict) else value
    return merged


def load_sweep(path: str, extra_overrides: Sequence[str] = (), check_runs: bool = True) -> SweepSpec:
    """Read and check a sweep YAML with the command line's ``key=value`` pairs: those naming a sweep key set it
    (:func:`split_overrides`), the others go last in every recipe's overrides.

    Each run's training config is loaded and checked too (YAML present, keys known, values typed), so a typo in
    the last recipe stops the sweep before the first run starts (:func:`check_run_configs`; not with
    ``check_runs=False``, which a dry run of a sweep in S3 passes: it touches no storage).
    """
    if not os.path.isfile(path):
        raise UsageError(f'sweep {path} does not exist: pass a sweep YAML such as yamls/sweeps/digits.yaml')
    settings, run_overrides = split_overrides(extra_overrides)
    with open(path) as f:
        content = _parse_yaml(f.read(), path)
    sweep = parse_sweep(_merge(content, settings) if isinstance(content, dict) else content, path)
    try:
        extra = tuple(OverrideList().check('override', list(run_overrides)))
        _leave_the_sweeps_keys('override', extra)
    except UsageError as e:
        raise UsageError(f'command line: {e}') from None
    recipes = {name: replace(r, overrides=r.overrides + extra) for name, r in sweep.recipes.items()}  # command line wins
    sweep = replace(sweep, recipes=recipes)

    yamls = [(f'recipes.{name}.yaml', r.yaml) for name, r in sweep.recipes.items()] + [
        (f'past_runs.{name}.yaml', r.yaml) for name, r in (sweep.past_runs or {}).items()]
    for key, yaml_path in yamls:
        if not os.path.isfile(yaml_path):
            raise UsageError(f'{path}: {key}={yaml_path} does not exist (paths are relative to {os.getcwd()})')
    if check_runs:
        check_run_configs(sweep, path, pending=True)
    return sweep


def _made_by_the_sweep(sweep: SweepSpec) -> list[str]:
    """The paths of the past runs and artifacts the sweep makes: its runs may name them before they exist."""
    return [run.folder for run in past_run_plan(sweep)] + [build.out for build in artifact_plan(sweep)]


def check_run_configs(sweep: SweepSpec, source: str, pending: bool = False) -> None:
    """Load and check the config of a run per recipe, past value and tuning point, and of every past run; refuse a
    tuned recipe whose runs hold out no validation examples (tuning chooses on them). With ``pending``, a run whose
    only fault is a past run or artifact the sweep has not made yet passes: it is checked again once they are made."""
    from recipes.config import load_config  # Composer and torch: seconds, which reading a manifest does not need

    made = _made_by_the_sweep(sweep) if pending else []
    checked = [(run, f' past run {run.recipe!r} seed {run.seed}') for run in past_run_plan(sweep)]
    checked += [(run, f' recipe {run.recipe!r}{what}') for run, what in _runs_to_check(sweep)]
    unheld = None  # the first tuned run that holds out no validation examples: refused once every config passed
    for run, what in checked:
        try:
            cfg = load_config(run.yaml, run.overrides, machine=sweep.launcher != 'ray')  # Ray: another machine trains
        except UsageError as e:
            if any(folder in str(e) for folder in made):
                continue
            raise UsageError(f'{source}:{what}: {e}') from None
        tuned = sweep.tune is not None and run.kind != 'past' and sweep.tuned_by(run.recipe) == run.recipe
        if tuned and not ('holdout' in cfg.data and cfg.data.holdout) and unheld is None:
            unheld = what
    if unheld is not None:
        raise UsageError(
            f'{source}:{unheld}: tune chooses by the final accuracy on a validation split, never the test split, and '
            'these runs hold out none (data.holdout 0): set it for every run, e.g. overrides: [data.holdout=144]',
        )


def _runs_to_check(sweep: SweepSpec) -> list[tuple[Run, str]]:
    """A run per recipe, budget and past run (the first seed's of each: a budget scales the recipe's schedule, which
    the run config's ties check), and per grid point of the settings it may be tuned to: each with what to add to a
    message about it."""
    firsts: dict[tuple[str, str, float], Run] = {}
    for run in plan(sweep, sweep.fixed_settings()):  # in sweep order
        past = _past_of(sweep, run.seed) if sweep.past is not None else ''
        firsts.setdefault((run.recipe, past, run.budget), run)
    found = [(run, f' at budget {budget_label(budget)}' + (f' with past {past}' if past else ''))
             for (_, past, budget), run in firsts.items()]
    for name in sweep.recipes if sweep.tune is not None else ():
        budgets: dict[float, Run] = {}  # each budget's first run: a tuning point's schedule is scaled by each budget
        for (recipe, _, budget), run in firsts.items():
            if recipe == name:
                budgets.setdefault(budget, run)
        grid = sweep.grid_of(sweep.tuned_by(name))
        for budget, first in budgets.items():
            for label, point in grid_points(grid).items():
                run = replace(first, overrides=(*first.overrides, *point))
                found.append((run, f' at budget {budget_label(budget)} at tuning point {label} ({" ".join(point)})'))
    return found


def read_manifest(results: str) -> SweepSpec:
    """The ``sweep.yaml`` a sweep wrote into its results folder (local or s3://)."""
    uri = storage.join(results, SWEEP_FILE)
    if not storage.exists(uri):
        raise UsageError(f'no {SWEEP_FILE} in {results}: pass the results folder of launch/sweep.py')
    return parse_sweep(_parse_yaml(storage.read_bytes(uri), uri), uri)


# ----- the plan ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    recipe: str
    budget: float
    seed: int
    folder: str
    yaml: str
    overrides: tuple[str, ...]  # the sweep's, the recipe's, the command line's, tuned ones, then the keys the sweep sets
    point: str = ''  # a tuning run's grid point (p1, p2, ...); '' for an evaluation run
    kind: str = ''  # 'past' for a past run (recipe: its family; seed: its past value); '' for the others
    needs: tuple[str, ...] = ()  # the names of the past runs and artifacts (Build.name) it reads

    @property
    def name(self) -> str:
        if self.kind == 'past':
            return f'past-{self.recipe}-s{self.seed}'
        if self.point:
            return f'tune-{self.recipe}-b{budget_label(self.budget)}-{self.point}-s{self.seed}'
        return f'{self.recipe}-b{budget_label(self.budget)}-s{self.seed}'

    @property
    def title(self) -> str:
        """``kd budget 0.5 seed 3``; ``baseline budget 0.5 p2 seed 101`` for a tuning run."""
        if self.kind == 'past':
            return f'past run {self.recipe} seed {self.seed}'
        point = f' {self.point}' if self.point else ''
        return f'{self.recipe} budget {budget_label(self.budget)}{point} seed {self.seed}'


def run_folder(results: str, recipe: str, budget: float, seed: int) -> str:
    return storage.join(results, recipe, f'b{budget_label(budget)}', f'seed{seed}')


def tuning_folder(results: str, recipe: str, budget: float, point: str = '', seed: int | None = None) -> str:
    """``{results}/tuning/{recipe}/b{budget}``, and below it ``/{point}/seed{seed}`` for one tuning run."""
    folder = storage.join(results, TUNING_FOLDER, recipe, f'b{budget_label(budget)}')
    return storage.join(folder, point, f'seed{seed}') if point else folder


def _value_text(value: Any) -> str:
    """``value`` as the text after ``key=`` that the override parser (YAML) reads back as ``value``: a string as it
    is unless YAML would read it as something else (``0.1dur`` stays, ``'17'`` is quoted), the rest as JSON."""
    if isinstance(value, str):
        try:
            if yaml.safe_load(value) == value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value)


def _setting(key: str, value: Any) -> tuple[str, ...]:
    """One axis's value as overrides: ``key=value``, or for tied settings ``{sub: v, ...}`` one ``key.sub=v`` each."""
    if isinstance(value, dict):
        return tuple(f'{key}.{sub}={_value_text(v)}' for sub, v in value.items())
    return (f'{key}={_value_text(value)}',)


def grid_points(grid: dict[str, list[Any]]) -> dict[str, tuple[str, ...]]:
    """Every setting of ``grid`` as ``key=value`` overrides, in grid order (the last key varying fastest), by its
    label: ``p1``, ``p2``, ... An axis of tied settings (``optimizer: [{name: adamw, lr: 0.001}, ...]``) sets each
    of its keys (``optimizer.name=adamw optimizer.lr=0.001``)."""
    settings = itertools.product(*grid.values())
    return {f'p{number}': tuple(o for key, v in zip(grid, values, strict=True) for o in _setting(key, v))
            for number, values in enumerate(settings, 1)}


def grid_edges(grid: dict[str, list[Any]], label: str) -> tuple[str, ...]:
    """The axes of ``grid`` (of three values or more) on whose first or last value point ``label`` lies: a choice
    there may lie outside the grid. ``grid_edges({'a': [1, 2, 3], 'b': [4, 5, 6]}, 'p3')`` is ``('a', 'b')``."""
    index = int(label.removeprefix('p')) - 1
    place = []
    for values in reversed(list(grid.values())):  # the last key varies fastest
        index, at = divmod(index, len(values))
        place.append(at)
    return tuple(key for (key, values), at in zip(grid.items(), reversed(place), strict=True)
                 if len(values) >= 3 and _ordered(values) and at in (0, len(values) - 1))


def _ordered(values: list[Any]) -> bool:
    """An axis whose values lie on a line (numbers, or times such as ``0.1dur``), so that its ends are edges; not
    tied settings or names (``pacing: [linear, root, quad]``)."""
    return all(isinstance(v, int | float) and not isinstance(v, bool)
               or isinstance(v, str) and re.fullmatch(r'[0-9.e+-]+[a-z]*', v) for v in values)


def _past_of(sweep: SweepSpec, seed: int) -> str:
    """What ``{past}`` stands for in ``seed``'s runs: ``past[seed mod len(past)]``, as text."""
    assert sweep.past is not None
    value = sweep.past[seed % len(sweep.past)]
    return value if isinstance(value, str) else json.dumps(value)


def past_root(sweep: SweepSpec) -> str:
    """Where the past runs and artifacts live: ``past_root``, else ``{results}/past``."""
    return sweep.past_root.rstrip('/') if sweep.past_root else storage.join(sweep.results, PAST_FOLDER)


def past_run_folder(sweep: SweepSpec, family: str, past: str) -> str:
    return storage.join(past_root(sweep), family, f'seed{past}')


def artifact_path(sweep: SweepSpec, name: str, past: str) -> str:
    """``{past_root}/artifacts/{name}-s{past}``, with its builder's suffix (``.npy`` for scores)."""
    from recipes.study.builders import BUILDERS

    assert sweep.artifacts is not None
    suffix = BUILDERS[sweep.artifacts[name].builder].suffix
    return storage.join(past_root(sweep), ARTIFACTS_FOLDER, f'{name}-s{past}{suffix}')


def _fill(sweep: SweepSpec, overrides: Sequence[str], past: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``overrides`` with ``{past}``, ``{past_runs.NAME}`` and ``{artifacts.NAME}`` filled for the past value
    ``past``, and the names of the steps (:attr:`Run.name`, :attr:`Build.name`) those placeholders wait on."""
    needs: list[str] = []

    def place(match: re.Match) -> str:
        kind, name = match.group(1), match.group(2)
        assert past is not None
        if kind == 'past_runs':
            needs.append(f'past-{name}-s{past}')
            return past_run_folder(sweep, name, past)
        needs.append(f'artifact-{name}-s{past}')
        return artifact_path(sweep, name, past)

    filled = tuple(PLACEHOLDER.sub(place, o).replace(PAST, past) if past is not None else o for o in overrides)
    return filled, tuple(dict.fromkeys(needs))


def _run(sweep: SweepSpec, recipe: str, budget: float, seed: int, tuned: Sequence[str], point: str = '') -> Run:
    """One run: the sweep's and the recipe's overrides (``{past}`` and the past runs' and artifacts' placeholders
    filled for ``seed``), ``tuned`` (a grid point's, or the tuned settings), then the keys the sweep sets."""
    folder = tuning_folder(sweep.results, recipe, budget, point, seed) if point else run_folder(sweep.results, recipe, budget, seed)
    run = Run(recipe, budget, seed, folder, sweep.recipes[recipe].yaml, (), point)
    given = (*sweep.overrides, *sweep.recipes[recipe].overrides)
    given, needs = _fill(sweep, given, _past_of(sweep, seed) if sweep.past is not None else None)
    run = replace(run, needs=needs)
    fixed = (
        f'seed={seed}', f'scale_schedule_ratio={budget_label(budget)}', f'run_name={run.name}',
        f'save_folder={folder}', 'autoresume=true', f'threads={sweep.threads_per_run}',
    )
    return replace(run, overrides=(*given, *tuned, *fixed))


def plan(sweep: SweepSpec, tuned: dict[tuple[str, float], tuple[str, ...]] | None = None) -> list[Run]:
    """Every evaluation run of the sweep, seed by seed (then budget, then recipe), so a sweep stopped early has a
    frontier and comparable recipes for its first seeds. ``tuned``: the settings each recipe trains with at each
    budget, from tuning (:class:`recipes.study.tuning.Tuned`), after the overrides the sweep was given."""
    runs = []
    for seed in sweep.seeds:
        for budget in sweep.budgets:
            for name in sweep.recipes:
                if budget in sweep.budgets_of(name):
                    runs.append(_run(sweep, name, budget, seed, (tuned or {}).get((name, budget), ())))
    return runs


def tuned_pairs(sweep: SweepSpec) -> list[tuple[str, float]]:
    """``(recipe, budget)`` of each tuned recipe (the baseline, and those that declare ``tune``) at each of its
    budgets; none without the sweep's ``tune``."""
    if sweep.tune is None:
        return []
    return [(name, budget) for name in sweep.recipes if sweep.tuned_by(name) == name for budget in sweep.budgets_of(name)]


def tuning_plan(sweep: SweepSpec, pairs: Sequence[tuple[str, float]]) -> list[Run]:
    """The tuning runs of ``pairs`` (``(recipe, budget)``, from :func:`tuned_pairs`): each point of the recipe's grid
    on each tuning seed, seed by seed (then budget, recipe, point), in ``{results}/tuning/...``."""
    assert sweep.tune is not None and sweep.tune.seeds is not None
    runs = []
    for seed in sweep.tune.seeds:
        for budget in sweep.budgets:
            for name in sweep.recipes:
                if (name, budget) not in pairs:
                    continue
                for label, point in grid_points(sweep.grid_of(name)).items():
                    runs.append(_run(sweep, name, budget, seed, point, label))
    return runs


def past_run_plan(sweep: SweepSpec) -> list[Run]:
    """Every past run: per value of ``past`` (in its order), each family of ``past_runs``: its YAML with its own
    overrides, then ``seed`` (the value), ``run_name``, ``save_folder`` and ``autoresume``."""
    runs = []
    for value in sweep.past or () if sweep.past_runs else ():
        past = value if isinstance(value, str) else json.dumps(value)
        for family, spec in (sweep.past_runs or {}).items():
            run = Run(family, 1.0, value, past_run_folder(sweep, family, past), spec.yaml, (), kind='past')
            fixed = (f'seed={past}', f'run_name={run.name}', f'save_folder={run.folder}', 'autoresume=true',
                     f'threads={sweep.threads_per_run}')
            runs.append(replace(run, overrides=(*spec.overrides, *fixed)))
    return runs


@dataclass(frozen=True)
class Build:
    """One artifact of one past run: its builder's command (:func:`recipes.study.builders.builder_argv`) and the
    marker the sweep writes once it has finished (``{out}.artifact.json``: the builder, the past run and its
    fingerprint, the arguments)."""

    artifact: str  # its name under artifacts:
    builder: str
    family: str
    past: str  # the past value, as text
    run: str  # the past run's folder
    out: str
    args: tuple[tuple[str, Any], ...]

    @property
    def name(self) -> str:
        return f'artifact-{self.artifact}-s{self.past}'

    @property
    def title(self) -> str:
        return f'artifact {self.artifact} ({self.builder}) of past run {self.family} seed {self.past}'

    @property
    def folder(self) -> str:
        return self.out

    @property
    def marker(self) -> str:
        return self.out + '.artifact.json'

    @property
    def needs(self) -> tuple[str, ...]:
        return (f'past-{self.family}-s{self.past}',)

    def argv(self) -> list[str]:
        from recipes.study.builders import builder_argv

        return builder_argv(self.builder, self.run, self.out, dict(self.args), self.past)

    def record(self, run_fingerprint: str | None) -> dict[str, Any]:
        """What its marker records: the same source and arguments make the same artifact."""
        return {'builder': self.builder, 'run': self.run, 'run_fingerprint': run_fingerprint,
                'args': {k: str(v).replace(PAST, self.past) for k, v in self.args}, 'out': self.out}


def artifact_plan(sweep: SweepSpec) -> list[Build]:
    """Every artifact: per value of ``past``, each entry of ``artifacts`` made of that value's past run."""
    builds = []
    for value in sweep.past or () if sweep.artifacts else ():
        past = value if isinstance(value, str) else json.dumps(value)
        for name, spec in (sweep.artifacts or {}).items():
            builds.append(Build(name, spec.builder, spec.run, past, past_run_folder(sweep, spec.run, past),
                                artifact_path(sweep, name, past), tuple((spec.args or {}).items())))
    return builds
