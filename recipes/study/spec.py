"""A sweep's specification: its YAML keys, each declared once with its rule, and the runs they plan.

A sweep YAML names the results folder (local or ``s3://``), the seeds, the recipe the others are compared with,
and each recipe as a training YAML plus ``key=value`` overrides::

    results: runs/sweep-digits
    ranks: 1
    parallel: 2
    seeds: [1, 2, 3]
    budgets: [0.25, 0.5, 1, 2]
    baseline: baseline
    reference: warm_start
    overrides: [data.label_noise=0.4]
    recipes:
      baseline: {yaml: yamls/digits/baseline.yaml}
      kd: {yaml: yamls/digits/kd.yaml, overrides: [algorithms.past_run_distillation.alpha=0.5], budgets: [0.5, 1]}
      warm_start: {yaml: yamls/digits/baseline.yaml, overrides: [algorithms.warm_start.run=runs/digits-baseline]}

Each key is a field of :class:`SweepSpec` (an entry of ``recipes:``, of :class:`RecipeSpec`) whose type carries its
rule from :mod:`recipes.core.rules`: ``ranks: Annotated[int, Number(1, integer=True, ...)] = 1``. One reader,
:func:`read_schema`, applies them: an unknown key is refused with the closest known one, a key without a default
needs a value, a key left out or given as null takes its default, and each value passes its field's rule (and
arrives as the value the rule returns). Then the rules that tie keys together (:data:`CROSS_KEY_CHECKS`) run on the
whole sweep. A new key is one annotated field, plus a function marked :func:`cross_key` if it constrains others.

A budget is a ratio of each recipe's own ``max_duration``, applied as Composer's ``scale_schedule_ratio`` (the
duration and the scheduler's milestones scale, the warmup does not). The baseline trains at every budget (it is
the frontier the report places the others on); another recipe may narrow the list with its own ``budgets``.
Run ``(recipe, budget, seed)`` lives in ``{results}/{recipe}/b{budget}/seed{seed}`` and is ``launch/train.py YAML``
with the sweep's overrides, then the recipe's, then the command line's, then ``seed``, ``scale_schedule_ratio``,
``run_name``, ``save_folder`` and ``autoresume=true`` (set by the sweep alone; later overrides win), so starting
the sweep again skips the runs whose ``metrics.json`` says finished and continues a run that died from its newest
checkpoint (:mod:`recipes.study.runner`). The effective sweep is written to ``{results}/sweep.yaml``
(:meth:`SweepSpec.to_yaml`): the report reads the recipes, seeds and baseline from there (:func:`read_manifest`).

``reference`` (optional) names a second recipe every other one is compared with at the same budget: the reuse
baseline a method must beat (``warm_start``), beside the fresh baseline's frontier.

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
import os
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, TypeVar

import yaml

from recipes.core import storage
from recipes.core.errors import UsageError, did_you_mean
from recipes.core.rules import (
    Budgets,
    Folder,
    Location,
    NamedEntries,
    Number,
    OneOf,
    OverrideList,
    RayAddress,
    RunName,
    SweepSeeds,
    YamlMapping,
    rule_of,
)

__all__ = [
    'CROSS_KEY_CHECKS',
    'SET_BY_SWEEP',
    'SWEEP_FILE',
    'Recipe',
    'RecipeSpec',
    'RaySpec',
    'Run',
    'Sweep',
    'SweepSpec',
    'budget_label',
    'cross_key',
    'load_sweep',
    'parse_sweep',
    'plan',
    'read_manifest',
    'read_schema',
    'run_folder',
    'split_overrides',
]

SWEEP_FILE = 'sweep.yaml'
SET_BY_SWEEP = ('seed', 'scale_schedule_ratio', 'run_name', 'save_folder', 'autoresume')


def budget_label(budget: float) -> str:
    """``0.25``, ``0.5``, ``1``, ``2``: the shortest form, as in folder names ``b0.25``."""
    return f'{budget:g}'


@dataclass(frozen=True)
class RecipeSpec:
    """One entry of ``recipes:``: a training YAML, the overrides of its runs and, optionally, its budgets."""

    yaml: Annotated[str, Location()]  # relative to the directory the sweep starts in; load_sweep checks it exists
    overrides: Annotated[tuple[str, ...], OverrideList()] = ()
    budgets: Annotated[tuple[float, ...] | None, Budgets()] = None  # None: every budget of the sweep


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

    results: Annotated[str, Folder(optional=False)]
    ranks: Annotated[int, Number(1, integer=True, message='must be a whole number >= 1 (processes per run)')] = 1
    parallel: Annotated[int, Number(1, integer=True, message='must be a whole number >= 1 (runs trained at once)')] = 1
    launcher: Annotated[str, OneOf('local', 'ray'), '`local`: runs as processes on this machine; `ray`: each run a task '
                        'on a Ray cluster (docs/cluster.md)'] = 'local'
    seeds: Annotated[tuple[int, ...], SweepSeeds()]
    budgets: Annotated[tuple[float, ...], Budgets()] = (1.0,)
    baseline: Annotated[str, RunName()]
    reference: Annotated[str | None, RunName()] = None  # a reuse baseline (warm_start) all others are compared with
    overrides: Annotated[tuple[str, ...], OverrideList()] = ()
    recipes: Annotated[dict[str, RecipeSpec], NamedEntries('recipe', '{yaml: PATH, overrides: [...]}')]
    ray: RaySpec = field(default_factory=RaySpec)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'results', self.results.rstrip('/') or self.results)

    def budgets_of(self, recipe: str) -> tuple[float, ...]:
        return self.recipes[recipe].budgets or self.budgets

    def gpus_per_run(self) -> float:
        """The GPUs a run asks of a Ray cluster: ``ray.gpus_per_run``, else one per rank."""
        return self.ranks if self.ray.gpus_per_run is None else self.ray.gpus_per_run

    def to_yaml(self) -> str:
        """The sweep as ``sweep.yaml`` holds it: every key but those that are null, which :func:`parse_sweep` reads
        back to the same sweep."""
        return yaml.safe_dump(_plain(self), sort_keys=False)


Sweep = SweepSpec  # the names the study's modules and tests have always used
Recipe = RecipeSpec


def _plain(value: Any) -> Any:
    """A spec's value as YAML writes it: a dataclass as a mapping of its fields that are not None, tuples as lists."""
    if dataclasses.is_dataclass(value):
        fields = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
        return {name: _plain(v) for name, v in fields if v is not None}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ----- reading a mapping into a spec ---------------------------------------------------------------------------------

T = TypeVar('T')


def _keys(schema: type) -> list[str]:
    return [f.name for f in dataclasses.fields(schema)]


def _typed(hint: Any, value: Any, key: str) -> Any:
    """``value`` (as its rule returned it) in the field's type: a tuple for ``tuple[...]``, and for a mapping of names
    to a dataclass, each entry read by :func:`read_schema`."""
    base = typing.get_args(hint)[0]  # Annotated[base, rule]
    if typing.get_origin(base) in (typing.Union, types.UnionType):  # X | None
        base = next(a for a in typing.get_args(base) if a is not type(None))
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin is tuple:
        return tuple(value)
    if origin is dict and dataclasses.is_dataclass(args[1]):
        return {name: read_schema(args[1], entry, f'{key}.{name}.') for name, entry in value.items()}
    return value


def read_schema(schema: type[T], content: dict[str, Any], where: str = '') -> T:
    """``content`` (a mapping read from YAML) as a ``schema`` dataclass whose fields carry their rules.

    Every key of ``content`` must be a field (else one line with the closest field); a field without a default needs
    a value; a key that is absent or null takes its field's default; every value passes its field's rule, and a field
    whose type is a dataclass (``ray:``) is read the same way by that dataclass. ``where`` prefixes the keys in
    messages (``recipes.kd.``).
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
        if value is not None and dataclasses.is_dataclass(hints[f.name]):
            values[f.name] = read_schema(hints[f.name], value, f'{key}.')
        elif value is not None:
            values[f.name] = _typed(hints[f.name], rule_of(hints[f.name]).check(key, value), key)
    return schema(**values)


# ----- rules that tie keys together ----------------------------------------------------------------------------------

CROSS_KEY_CHECKS: list[Callable[[SweepSpec], None]] = []


def cross_key(check: Callable[[SweepSpec], None]) -> Callable[[SweepSpec], None]:
    """Mark ``check`` as a rule over the whole sweep, run by :func:`parse_sweep` after every key has passed its own."""
    CROSS_KEY_CHECKS.append(check)
    return check


@cross_key
def _baseline_is_a_recipe(sweep: SweepSpec) -> None:
    if sweep.baseline not in sweep.recipes:
        raise UsageError(f'baseline {sweep.baseline!r} is not one of the recipes ({", ".join(sweep.recipes)})')


@cross_key
def _reference_is_another_recipe(sweep: SweepSpec) -> None:
    reference, baseline = sweep.reference, sweep.baseline
    if reference is not None and (reference not in sweep.recipes or reference == baseline):
        raise UsageError(
            f'reference {reference!r} must be one of the recipes other than the baseline '
            f'({", ".join(r for r in sweep.recipes if r != baseline) or "none"}), e.g. warm_start',
        )


@cross_key
def _recipe_budgets_narrow_the_sweeps(sweep: SweepSpec) -> None:
    for name, recipe in sweep.recipes.items():
        extra = sorted(set(recipe.budgets or sweep.budgets) - set(sweep.budgets))
        if extra:
            raise UsageError(
                f'recipes.{name}.budgets has {", ".join(map(budget_label, extra))}, not in budgets '
                f'{list(sweep.budgets)}: a recipe may only narrow the sweep\'s budgets',
            )


@cross_key
def _baseline_trains_at_every_budget(sweep: SweepSpec) -> None:
    own = sweep.recipes[sweep.baseline].budgets
    if own is not None and own != sweep.budgets:
        raise UsageError(
            f'recipes.{sweep.baseline}.budgets narrows the baseline: it trains at every budget (the frontier), '
            'so remove its budgets',
        )


@cross_key
def _parallel_runs_have_one_rank(sweep: SweepSpec) -> None:
    if sweep.parallel > 1 and sweep.ranks > 1:
        raise UsageError(
            f'parallel={sweep.parallel} with ranks={sweep.ranks}: runs of several ranks already share the machine, '
            'so train them one at a time (parallel: 1), or use ranks: 1',
        )


@cross_key
def _parallel_is_for_the_local_launcher(sweep: SweepSpec) -> None:
    if sweep.launcher == 'ray' and sweep.parallel > 1:
        raise UsageError(
            f'parallel={sweep.parallel} is for launcher local: a Ray cluster runs as many runs at once as its resources '
            'allow (ray.gpus_per_run, ray.cpus_per_run each), so pass parallel=1',
        )


@cross_key
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


@cross_key
def _overrides_leave_the_sweeps_keys(sweep: SweepSpec) -> None:
    for name, recipe in sweep.recipes.items():
        _leave_the_sweeps_keys(f'recipes.{name}.overrides', recipe.overrides)
    _leave_the_sweeps_keys('overrides', sweep.overrides)


# ----- reading a sweep -----------------------------------------------------------------------------------------------


def parse_sweep(content: Any, source: str) -> SweepSpec:
    """Check a loaded sweep mapping key by key, then across keys; every mistake is one UsageError naming ``source``,
    the key and the fix."""
    if not isinstance(content, dict):
        raise UsageError(f'{source} must hold a mapping with the keys {", ".join(_keys(SweepSpec))}')
    try:
        sweep = read_schema(SweepSpec, content)
        for check in CROSS_KEY_CHECKS:
            check(sweep)
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


def load_sweep(path: str, extra_overrides: Sequence[str] = ()) -> SweepSpec:
    """Read and check a sweep YAML with the command line's ``key=value`` pairs: those naming a sweep key set it
    (:func:`split_overrides`), the others go last in every recipe's overrides.

    Each run's training config is loaded and checked too (YAML present, keys known, values typed), so a typo in
    the last recipe stops the sweep before the first run starts.
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

    from recipes.config import load_config  # Composer and torch: seconds, which reading a manifest does not need

    first = {run.recipe: run for run in reversed(plan(sweep))}  # each recipe's first run, in sweep order
    for run in (first[name] for name in sweep.recipes):
        if not os.path.isfile(run.yaml):
            raise UsageError(
                f'{path}: recipes.{run.recipe}.yaml={run.yaml} does not exist (paths are relative to {os.getcwd()})',
            )
        try:
            load_config(run.yaml, run.overrides)
        except UsageError as e:
            raise UsageError(f'{path}: recipe {run.recipe!r}: {e}') from None
    return sweep


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
    overrides: tuple[str, ...]  # the sweep's, the recipe's, the command line's, then the keys the sweep sets

    @property
    def name(self) -> str:
        return f'{self.recipe}-b{budget_label(self.budget)}-s{self.seed}'


def run_folder(results: str, recipe: str, budget: float, seed: int) -> str:
    return storage.join(results, recipe, f'b{budget_label(budget)}', f'seed{seed}')


def plan(sweep: SweepSpec) -> list[Run]:
    """Every run of the sweep, seed by seed (then budget, then recipe), so a sweep stopped early has a frontier
    and comparable recipes for its first seeds."""
    runs = []
    for seed in sweep.seeds:
        for budget in sweep.budgets:
            for name, recipe in sweep.recipes.items():
                if budget not in sweep.budgets_of(name):
                    continue
                folder = run_folder(sweep.results, name, budget, seed)
                run = Run(name, budget, seed, folder, recipe.yaml, ())
                fixed = (
                    f'seed={seed}', f'scale_schedule_ratio={budget_label(budget)}', f'run_name={run.name}',
                    f'save_folder={folder}', 'autoresume=true',
                )
                runs.append(replace(run, overrides=(*sweep.overrides, *recipe.overrides, *fixed)))
    return runs
