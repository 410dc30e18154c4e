"""The builders a study file's ``artifacts:`` name: what reuse makes of a past run, each by its ``launch/`` script.

A builder is a function of :data:`recipes.registry.BUILDERS`, declared in its package like an algorithm's constructor:
its ``Annotated`` arguments carry their rules, its ``ties`` the rules that tie them together, and its ``launch/``
script (``launch/{its name}.py``) is generated from that declaration (:func:`recipes.cli.builder_main`). Its entry
here is read off the same declaration, so a study file's mistake is one line before anything runs, in the words the
script would use. The sweep gives ``--run`` (the past run's folder) and ``--out`` (the artifact's path,
:func:`~recipes.study.spec.artifact_path`); the file gives the rest under ``args:`` (``true`` for a flag such as
``strict``; ``{past}`` in a value stands for the past run's value, e.g. ``seed: '{past}'``). A new builder is its
function in its package and one line of :data:`recipes.registry.BUILDERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from recipes.core.declare import REQUIRED, Argument, declared
from recipes.core.errors import UsageError, did_you_mean
from recipes.core.rules import Flag
from recipes.core.ties import Values

__all__ = ['BUILDERS', 'Builder', 'builder_argv', 'builder_names', 'check_builder_args']

GIVEN_BY_THE_SWEEP = ('run', 'out', 'runs')  # the past run, the artifact's path, and no more past runs


@dataclass(frozen=True)
class Builder:
    """One registered builder, read off its declaration."""

    name: str
    function: Callable[..., Any]

    @property
    def script(self) -> str:
        """Relative to the repository root."""
        return f'launch/{self.function.__name__}.py'

    @property
    def suffix(self) -> str:
        """Of its output: ``.npy`` for a file (``function.suffix``), '' for a folder."""
        return str(getattr(self.function, 'suffix', ''))

    @property
    def what(self) -> str:
        return f'{(self.function.__doc__ or self.name).strip().splitlines()[0].rstrip(".")} ({self.script})'

    @property
    def args(self) -> dict[str, Argument]:
        """The arguments a study file gives (all but those the sweep gives)."""
        return {n: a for n, a in declared(self.function).items() if n not in GIVEN_BY_THE_SWEEP}

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(n for n, a in self.args.items() if a.default is REQUIRED)

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(n for n, a in self.args.items() if isinstance(a.rule, Flag))


class _Builders(Mapping[str, Builder]):
    """:data:`recipes.registry.BUILDERS` as :class:`Builder` entries, imported when first read (the registry imports
    Composer, which reading a sweep's manifest without artifacts does not need)."""

    def _table(self) -> dict[str, Callable[..., Any]]:
        from recipes.registry import BUILDERS as FUNCTIONS

        return FUNCTIONS

    def __getitem__(self, name: str) -> Builder:
        return Builder(name, self._table()[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


BUILDERS: Mapping[str, Builder] = _Builders()


def builder_names() -> list[str]:
    """The registered builders' names (a study file's ``builder:``)."""
    return list(BUILDERS)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_builder_args(key: str, builder: str, args: Mapping[str, Any], past: str | None = None) -> None:
    """Refuse, in one line naming ``key``, an argument ``builder`` does not take, a value out of its rule, a
    missing one it needs, values its ties refuse together, and ``--run``/``--out`` (the sweep gives those). ``past``
    stands in for ``{past}``."""
    spec = BUILDERS[builder]
    arguments = spec.args
    values: dict[str, Any] = {n: None if a.default is REQUIRED else a.default for n, a in arguments.items()}
    for name, value in args.items():
        if name in GIVEN_BY_THE_SWEEP:
            raise UsageError(f'{key}.{name}: the sweep gives {builder} its --run (the past run of the artifact\'s '
                             'family) and its --out (a path under the past runs\' folder): remove it')
        if name not in arguments:
            hint = did_you_mean(str(name), list(arguments), spell=repr) or ''
            raise UsageError(f'{key}.{name}: {builder} takes no argument {name!r}{hint} (it takes '
                             f'{", ".join(arguments)})')
        if value is None:
            raise UsageError(f'{key}.{name} needs a value')
        rule = arguments[name].rule
        if rule is None:
            continue
        text = _text(value).replace('{past}', past or '0')
        try:
            values[name] = rule.check(f'{key}.{name}', value if name in spec.flags else rule.from_text(text))
        except ValueError:
            raise UsageError(f'{key}.{name}={value!r} is not a number: {rule.describe()}') from None
    for name in spec.required:
        if name not in args:
            raise UsageError(f'{key}.{name} needs a value: {builder} needs {", ".join(spec.required)}')
    ties = getattr(spec.function, 'ties', None)
    if ties is not None:
        ties.check(Values(values, prefix=f'{key}.'))


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
