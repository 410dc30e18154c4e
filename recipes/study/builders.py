"""The builders a study file's ``artifacts:`` name: what reuse makes of a past run, each by its ``launch/`` script.

Each builder is the command a user would type (``launch/score.py``, ``launch/build_adv_bank.py``,
``launch/cache_teacher.py``), with the same arguments, declared here with the rule each argument's value must pass
(the rules the scripts' own ``argparse`` types carry), so that a study file's mistake is one line before anything
runs. The sweep gives ``--run`` (the past run's folder) and ``--out`` (the artifact's path, :func:`artifact_path`);
the file gives the rest under ``args:`` (``true`` for a flag such as ``strict``; ``{past}`` in a value stands for
the past run's value, e.g. ``seed: '{past}'``). A new builder registers the same way: an entry of :data:`BUILDERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recipes.core.errors import UsageError, did_you_mean
from recipes.core.rules import SEED, CheckpointList, Flag, Number, OneOf, PixelValue, Rule

__all__ = ['BUILDERS', 'Builder', 'builder_argv', 'check_builder_args']


def _score_methods() -> Rule:
    from algorithms.curriculum.scoring import COMPUTED, RECORDED

    return OneOf(*COMPUTED, *RECORDED)


@dataclass(frozen=True)
class Builder:
    """One builder: its script, the suffix of its output (``.npy`` for a file; '' for a folder), the file that its
    output is whole with, its arguments' rules (a function returning one, where the rule needs an import), and the
    arguments it needs."""

    script: str  # relative to the repository root
    suffix: str
    what: str
    args: Mapping[str, Rule | Callable[[], Rule]]
    required: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()  # exactly one of these must be given
    flags: tuple[str, ...] = field(default=('strict',))

    def rule(self, name: str) -> Rule:
        rule = self.args[name]
        return rule if isinstance(rule, Rule) else rule()


_BATCH = Number(1, 1_000_000, integer=True)
_WORKERS = Number(0, 256, integer=True)

BUILDERS: dict[str, Builder] = {
    'score': Builder(
        'launch/score.py', '.npy', 'per-example scores (launch/score.py)',
        {'method': _score_methods, 'checkpoints': CheckpointList(policy='earliest'), 'batch_size': _BATCH,
         'num_workers': _WORKERS, 'strict': Flag()},
        required=('method', 'checkpoints')),
    'adv_bank': Builder(
        'launch/build_adv_bank.py', '', 'an adversarial bank (launch/build_adv_bank.py)',
        {'checkpoints': CheckpointList(policy='earliest_and_best'), 'eps': PixelValue(), 'step_size': PixelValue(),
         'steps': Number(1, 10_000, integer=True), 'fraction': Number(0, 1, low_open=True), 'seed': SEED,
         'batch_size': _BATCH, 'num_workers': _WORKERS, 'strict': Flag()},
        required=('checkpoints',)),
    'teacher_cache': Builder(
        'launch/cache_teacher.py', '', "a cache of the teacher's outputs (launch/cache_teacher.py)",
        {'checkpoint': CheckpointList(single=True), 'checkpoints': CheckpointList(), 'top_k': _BATCH,
         'views': Number(1, 162, integer=True), 'seed': SEED, 'batch_size': _BATCH, 'strict': Flag()},
        required=('top_k',), one_of=('checkpoint', 'checkpoints')),
}


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_builder_args(key: str, builder: str, args: Mapping[str, Any], past: str | None = None) -> None:
    """Refuse, in one line naming ``key``, an argument ``builder`` does not take, a value out of its rule, a
    missing one it needs, and ``--run``/``--out`` (the sweep gives those). ``past`` stands in for ``{past}``."""
    spec = BUILDERS[builder]
    for name, value in args.items():
        if name in ('run', 'out', 'runs'):
            raise UsageError(f'{key}.{name}: the sweep gives {builder} its --run (the past run of the artifact\'s '
                             'family) and its --out (a path under the past runs\' folder): remove it')
        if name not in spec.args:
            hint = did_you_mean(str(name), list(spec.args), spell=repr) or ''
            raise UsageError(f'{key}.{name}: {builder} takes no argument {name!r}{hint} (it takes '
                             f'{", ".join(spec.args)})')
        if value is None:
            raise UsageError(f'{key}.{name} needs a value')
        text = _text(value).replace('{past}', past or '0')
        rule = spec.rule(name)
        try:
            rule.check(f'{key}.{name}', value if name in spec.flags else rule.from_text(text))
        except ValueError:
            raise UsageError(f'{key}.{name}={value!r} is not a number: {rule.describe()}') from None
    for name in spec.required:
        if name not in args:
            raise UsageError(f'{key}.{name} needs a value: {builder} needs {", ".join(spec.required)}')
    if spec.one_of and sum(name in args for name in spec.one_of) != 1:
        raise UsageError(f'{key}: {builder} needs exactly one of {" or ".join(spec.one_of)}')


def builder_argv(builder: str, run: str, out: str, args: Mapping[str, Any], past: str) -> list[str]:
    """The script and its arguments: ``launch/score.py --run RUN --out OUT --method el2n ...``; ``{past}`` in a
    value is ``past``, a flag given ``true`` is its bare ``--flag``, one given ``false`` is left out."""
    spec = BUILDERS[builder]
    argv = [spec.script, '--run', run]
    for name, value in args.items():
        if name in spec.flags:
            argv += [f'--{name}'] if value else []
        else:
            argv += [f'--{name}', _text(value).replace('{past}', past)]
    return [*argv, '--out', out]
