"""A study: every recipe of a sweep YAML trained once per seed, one run after another, into one results folder.

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

A budget is a ratio of each recipe's own ``max_duration``, applied as Composer's ``scale_schedule_ratio`` (the
duration and the scheduler's milestones scale, the warmup does not). The baseline trains at every budget (it is
the frontier the report places the others on); another recipe may narrow the list with its own ``budgets``.
Run ``(recipe, budget, seed)`` lives in ``{results}/{recipe}/b{budget}/seed{seed}`` and is ``launch/train.py YAML``
with the sweep's overrides, then the recipe's, then the command line's, then ``seed``, ``scale_schedule_ratio``,
``run_name``, ``save_folder`` and ``autoresume=true`` (set by the sweep alone; later overrides win), so starting
the sweep again skips the runs
whose ``metrics.json`` says finished and continues a run that died from its newest checkpoint. The effective sweep
is written to ``{results}/sweep.yaml``: the report reads the recipes, seeds and baseline from there.

``reference`` (optional) names a second recipe every other one is compared with at the same budget: the reuse
baseline a method must beat (``warm_start``), beside the fresh baseline's frontier.

``parallel: N`` trains N runs at once (one process each, ``ranks: 1`` only), each with ``OMP_NUM_THREADS`` set to
its share of the CPU cores, and writes each run's output to ``{logs}/{run name}.log`` instead of the terminal.
Small models on a few CPU cores gain most: one run cannot keep two cores busy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from recipes.core import storage
from recipes.core.errors import UsageError, did_you_mean
from recipes.core.run_files import CONFIG_FILE, METRICS_FILE, read_history

__all__ = [
    'SWEEP_FILE',
    'Recipe',
    'Run',
    'RunState',
    'Sweep',
    'budget_label',
    'load_sweep',
    'logs_folder',
    'parse_sweep',
    'plan',
    'read_manifest',
    'run_folder',
    'run_state',
    'run_sweep',
]

SWEEP_FILE = 'sweep.yaml'
SWEEP_KEYS = ('results', 'ranks', 'parallel', 'seeds', 'budgets', 'baseline', 'reference', 'overrides', 'recipes')
RECIPE_KEYS = ('yaml', 'overrides', 'budgets')
SET_BY_SWEEP = ('seed', 'scale_schedule_ratio', 'run_name', 'save_folder', 'autoresume')
_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')


@dataclass(frozen=True)
class Recipe:
    yaml: str
    overrides: tuple[str, ...] = ()
    budgets: tuple[float, ...] | None = None  # None: every budget of the sweep


@dataclass(frozen=True)
class Sweep:
    results: str
    seeds: tuple[int, ...]
    baseline: str
    recipes: dict[str, Recipe]
    ranks: int = 1
    overrides: tuple[str, ...] = ()
    budgets: tuple[float, ...] = (1.0,)
    parallel: int = 1
    reference: str | None = None  # a reuse baseline (warm_start) every other recipe is also compared with

    def budgets_of(self, recipe: str) -> tuple[float, ...]:
        return self.recipes[recipe].budgets or self.budgets

    def to_yaml(self) -> str:
        recipes = {}
        for name, r in self.recipes.items():
            recipes[name] = {'yaml': r.yaml, 'overrides': list(r.overrides)}
            if r.budgets is not None:
                recipes[name]['budgets'] = list(r.budgets)
        body = {
            'results': self.results,
            'ranks': self.ranks,
            'parallel': self.parallel,
            'seeds': list(self.seeds),
            'budgets': list(self.budgets),
            'baseline': self.baseline,
            **({'reference': self.reference} if self.reference else {}),
            'overrides': list(self.overrides),
            'recipes': recipes,
        }
        return yaml.safe_dump(body, sort_keys=False)


class RunState(str, Enum):
    NEW = 'new'  # no metrics.json and no config.yaml yet
    DIED = 'died'  # started, not finished: autoresume continues it
    FINISHED = 'finished'


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


def budget_label(budget: float) -> str:
    """``0.25``, ``0.5``, ``1``, ``2``: the shortest form, as in folder names ``b0.25``."""
    return f'{budget:g}'


def run_folder(results: str, recipe: str, budget: float, seed: int) -> str:
    return storage.join(results, recipe, f'b{budget_label(budget)}', f'seed{seed}')


def _unknown(source: str, where: str, key: str, allowed: Sequence[str]) -> UsageError:
    hint = did_you_mean(key, allowed, spell=lambda m: f'{where}{m!r}') or f' (keys: {", ".join(allowed)})'
    return UsageError(f'{source}: unknown key {where}{key!r}{hint}')


def _overrides(source: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f'{source}: {key} must be a list of key=value strings, e.g. [data.label_noise=0.4]')
    return _checked_overrides(source, key, value)


def _budgets(source: str, key: str, value: Any) -> tuple[float, ...]:
    if (
        not isinstance(value, list) or not value
        or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 < b <= 100 for b in value)
    ):
        raise UsageError(
            f'{source}: {key}={value!r} must be a list of ratios of max_duration in (0, 100], e.g. [0.25, 0.5, 1, 2]',
        )
    if len({budget_label(b) for b in value}) != len(value):
        raise UsageError(f'{source}: {key}={value} repeats a budget')
    return tuple(sorted(float(b) for b in value))


def _checked_overrides(source: str, key: str, overrides: Sequence[str]) -> tuple[str, ...]:
    for override in overrides:
        name = override.split('=', 1)[0].strip()
        if '=' not in override or not name:
            raise UsageError(f'{source}: {key} entry {override!r} is not key=value (for example seed=3)')
        if name in SET_BY_SWEEP:
            raise UsageError(
                f'{source}: {key} sets {name!r}, which the sweep sets for every run ({", ".join(SET_BY_SWEEP)}): '
                'remove it (seeds go in seeds:, folders under results:)',
            )
    return tuple(overrides)


def parse_sweep(content: Any, source: str) -> Sweep:
    """Check a loaded sweep mapping key by key; every mistake is one UsageError naming the key and the fix."""
    if not isinstance(content, dict):
        raise UsageError(f'{source} must hold a mapping with the keys {", ".join(SWEEP_KEYS)}')
    for key in content:
        if key not in SWEEP_KEYS:
            raise _unknown(source, '', str(key), SWEEP_KEYS)
    for key in ('results', 'seeds', 'baseline', 'recipes'):
        if content.get(key) in (None, '', [], {}):
            raise UsageError(f'{source}: {key} needs a value (see the sweep YAML format in the README)')

    results = content['results']
    if not isinstance(results, str):
        raise UsageError(f'{source}: results must be a local folder or s3://bucket/prefix, not {results!r}')
    ranks = content.get('ranks', 1)
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise UsageError(f'{source}: ranks={ranks!r} must be a whole number >= 1 (processes per run)')
    parallel = content.get('parallel', 1)
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise UsageError(f'{source}: parallel={parallel!r} must be a whole number >= 1 (runs trained at once)')
    if parallel > 1 and ranks > 1:
        raise UsageError(
            f'{source}: parallel={parallel} with ranks={ranks}: runs of several ranks already share the machine, '
            'so train them one at a time (parallel: 1), or use ranks: 1',
        )
    seeds = content['seeds']
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UsageError(f'{source}: seeds must be a list of integers, e.g. [1, 2, 3], not {seeds!r}')
    if len(set(seeds)) != len(seeds):
        raise UsageError(f'{source}: seeds {seeds} repeat a seed: each seed is one independent run')

    recipes_in = content['recipes']
    if not isinstance(recipes_in, dict):
        raise UsageError(f'{source}: recipes must map a name to {{yaml: PATH, overrides: [...]}}')
    recipes: dict[str, Recipe] = {}
    for name, spec in recipes_in.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UsageError(f'{source}: recipe name {name!r} must be letters, digits, _ . or - (it names a folder)')
        if not isinstance(spec, dict):
            raise UsageError(f'{source}: recipes.{name} must be a mapping {{yaml: PATH, overrides: [...]}}')
        for key in spec:
            if key not in RECIPE_KEYS:
                raise _unknown(source, f'recipes.{name}.', str(key), RECIPE_KEYS)
        if not isinstance(spec.get('yaml'), str) or not spec['yaml']:
            raise UsageError(f'{source}: recipes.{name}.yaml needs the path of a training YAML')
        own = None if spec.get('budgets') is None else _budgets(source, f'recipes.{name}.budgets', spec['budgets'])
        recipes[name] = Recipe(spec['yaml'], _overrides(source, f'recipes.{name}.overrides', spec.get('overrides')), own)

    baseline = content['baseline']
    if baseline not in recipes:
        raise UsageError(f'{source}: baseline {baseline!r} is not one of the recipes ({", ".join(recipes)})')
    reference = content.get('reference')
    if reference is not None and (reference not in recipes or reference == baseline):
        raise UsageError(
            f'{source}: reference {reference!r} must be one of the recipes other than the baseline '
            f'({", ".join(r for r in recipes if r != baseline) or "none"}), e.g. warm_start',
        )
    budgets = (1.0,) if content.get('budgets') is None else _budgets(source, 'budgets', content['budgets'])
    for name, recipe in recipes.items():
        extra = sorted(set(recipe.budgets or budgets) - set(budgets))
        if extra:
            raise UsageError(
                f'{source}: recipes.{name}.budgets has {", ".join(map(budget_label, extra))}, not in budgets '
                f'{list(budgets)}: a recipe may only narrow the sweep\'s budgets',
            )
        if name == baseline and recipe.budgets is not None and recipe.budgets != budgets:
            raise UsageError(
                f'{source}: recipes.{name}.budgets narrows the baseline: it trains at every budget (the frontier), '
                'so remove its budgets',
            )
    return Sweep(
        results=results.rstrip('/') or results,
        seeds=tuple(seeds),
        baseline=baseline,
        recipes=recipes,
        ranks=ranks,
        overrides=_overrides(source, 'overrides', content.get('overrides')),
        budgets=budgets,
        parallel=parallel,
        reference=reference,
    )


def _parse_yaml(text: str | bytes, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f'{source} is not valid YAML: {str(e).splitlines()[0]}') from e


def load_sweep(path: str, extra_overrides: Sequence[str] = ()) -> Sweep:
    """Read and check a sweep YAML; ``extra_overrides`` (from the command line) go last in every recipe's overrides.

    Each run's training config is loaded and checked too (YAML present, keys known, values typed), so a typo in
    the last recipe stops the sweep before the first run starts.
    """
    if not os.path.isfile(path):
        raise UsageError(f'sweep {path} does not exist: pass a sweep YAML such as yamls/sweeps/digits.yaml')
    with open(path) as f:
        sweep = parse_sweep(_parse_yaml(f.read(), path), path)
    extra = _checked_overrides('command line', 'override', extra_overrides)
    recipes = {name: replace(r, overrides=r.overrides + extra) for name, r in sweep.recipes.items()}  # command line wins
    sweep = replace(sweep, recipes=recipes)

    from recipes.config import load_config

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


def read_manifest(results: str) -> Sweep:
    """The ``sweep.yaml`` a sweep wrote into its results folder (local or s3://)."""
    uri = storage.join(results, SWEEP_FILE)
    if not storage.exists(uri):
        raise UsageError(f'no {SWEEP_FILE} in {results}: pass the results folder of launch/sweep.py')
    return parse_sweep(_parse_yaml(storage.read_bytes(uri), uri), uri)


def plan(sweep: Sweep) -> list[Run]:
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


def run_state(folder: str) -> RunState:
    if storage.exists(storage.join(folder, METRICS_FILE)):
        return RunState.FINISHED if read_history(folder).get('finished') else RunState.DIED
    return RunState.DIED if storage.exists(storage.join(folder, CONFIG_FILE)) else RunState.NEW


def command(run: Run, ranks: int, train_script: str) -> list[str]:
    """``python train.py YAML overrides...``, under ``composer -n ranks`` when ranks > 1."""
    if ranks == 1:
        return [sys.executable, train_script, run.yaml, *run.overrides]
    launcher = Path(sys.executable).with_name('composer')
    if not launcher.exists():
        raise UsageError(f'ranks={ranks} needs the composer launcher at {launcher}: install mosaicml in this environment')
    return [str(launcher), '-n', str(ranks), train_script, run.yaml, *run.overrides]


def logs_folder(results: str) -> Path:
    """Where ``parallel`` runs write their output: ``{results}/logs``, or ``./sweep-logs`` beside an s3:// results."""
    return Path('sweep-logs') if storage.is_s3(results) else Path(results) / 'logs'


def _start(argv: list[str], run: Run, parallel: int, logs: Path) -> subprocess.Popen:
    """One run: its output streams to the terminal when the sweep trains one at a time, else to its own log."""
    if parallel == 1:
        return subprocess.Popen(argv)
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // parallel)))
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f'{run.name}.log', 'ab') as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def _wait_for_one(active: dict[subprocess.Popen, tuple[Run, float]], parallel: int) -> tuple[Run, int]:
    """Block until a run of ``active`` exits; remove it and return it with its exit status."""
    while True:
        for child, (run, started) in list(active.items()):
            code = child.poll()
            if code is None:
                continue
            del active[child]
            if parallel > 1 and not code:
                print(f'--- {run.name} finished in {time.monotonic() - started:.0f} s; {len(active)} running', flush=True)
            return run, code
        time.sleep(0.2)


def run_sweep(sweep: Sweep, train_script: str, dry_run: bool = False) -> int:
    """Train every run that has not finished, ``sweep.parallel`` at a time; the exit status of the first failure, or 0.

    After a failure no further run starts and the runs in flight finish. An exception while runs train (Ctrl-C, or
    SIGTERM turned into SystemExit by ``launch/sweep.py``) terminates them before it propagates. ``dry_run`` prints
    each run's state and command and starts nothing.
    """
    from recipes.study.tracking import tracker_overrides  # names, groups and tags the runs in their trackers

    storage.check_reachable(sweep.results)
    runs = plan(sweep)
    if not dry_run:
        storage.write_bytes(storage.join(sweep.results, SWEEP_FILE), sweep.to_yaml().encode())
    logs = logs_folder(sweep.results)
    if sweep.parallel > 1 and not dry_run:
        print(f'sweep: {sweep.parallel} runs at a time, each writing its output to {logs}/RUN.log', flush=True)
    active: dict[subprocess.Popen, tuple[Run, float]] = {}
    skipped, code = 0, 0
    failed: Run | None = None
    try:
        for number, run in enumerate(runs, 1):
            while len(active) >= sweep.parallel and not failed:
                finished, status = _wait_for_one(active, sweep.parallel)
                if status:
                    failed, code = finished, status
            if failed:
                break
            state = run_state(run.folder)
            argv = command(replace(run, overrides=(*run.overrides, *tracker_overrides(sweep, run))), sweep.ranks, train_script)
            action = {RunState.NEW: 'start', RunState.DIED: 'resume (started, not finished)', RunState.FINISHED: 'skipped (finished)'}
            print(
                f'\n=== [{number}/{len(runs)}] {run.recipe} budget {budget_label(run.budget)} seed {run.seed}: '
                f'{action[state]}  {run.folder}', flush=True,
            )
            if state is RunState.FINISHED:
                skipped += 1
                continue
            print('$ ' + ' '.join(argv), flush=True)
            if not dry_run:
                active[_start(argv, run, sweep.parallel, logs)] = (run, time.monotonic())
        while active:
            finished, status = _wait_for_one(active, sweep.parallel)
            if status and not failed:
                failed, code = finished, status
    finally:
        for child in active:  # the sweep was stopped: stop its runs, so no second writer meets them on restart
            if child.poll() is None:
                child.terminate()
                child.wait()
    if failed:
        where = f' (its output: {logs / failed.name}.log)' if sweep.parallel > 1 else ''
        print(
            f'run {failed.name} failed with exit status {code}{where}: fix the cause and start the sweep again; '
            'finished runs are skipped and this one resumes',
            file=sys.stderr, flush=True,
        )
        return code
    verb = 'to train' if dry_run else 'trained'
    print(f'\nsweep: {len(runs)} runs, {skipped} already finished, {len(runs) - skipped} {verb}', flush=True)
    return 0
