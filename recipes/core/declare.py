"""The declaration reader: what a schema's fields and a class's (or a builder function's) arguments declare.

A config key or sweep key is a dataclass field whose ``Annotated`` type holds its rule (:mod:`recipes.core.rules`)
and a phrase saying what it is for (:func:`schema_fields`); an algorithm's, callback's or builder's argument is a
constructor (or function) parameter declared the same way (:func:`declared`), or marked :class:`FromRun` when the run
being assembled supplies it. :func:`checked` applies those rules whenever a class is built, and spells its repr from
them (:func:`declared_repr`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recipes.core.artifacts import Artifact
from recipes.core.rules import Flag, Number, Rule

__all__ = [
    'REQUIRED', 'Argument', 'FromRun', 'SchemaField', 'checked', 'declared', 'declared_repr', 'rule_of', 'schema_fields',
    'schema_rules',
]


@dataclass(frozen=True)
class FromRun:
    """Marks a constructor argument the run being assembled supplies, never the YAML: ``field`` names it in
    :class:`recipes.registry.BuildContext` (``num_classes``, ``train_batch_size``, ``max_duration``, ``seed``,
    ``train_split_size``, ...)."""

    field: str


def rule_of(annotation: Any) -> Rule | FromRun | None:
    """The rule (or :class:`FromRun` marker) in an ``Annotated[...]`` type, or None."""
    for meta in getattr(annotation, '__metadata__', ()):
        if isinstance(meta, (Rule, FromRun)):
            return meta
    return None


@dataclass(frozen=True)
class SchemaField:
    """One key of a dataclass schema: its dotted name, default, rule and the phrase that says what it is for."""

    key: str
    default: Any
    rule: Rule
    doc: str


def schema_fields(schema: type, prefix: str = '') -> list[SchemaField]:
    """Every key of a dataclass schema whose fields carry their rule (and a description, a string) in their
    ``Annotated`` type; a field whose type is another dataclass is walked (``data.global_batch_size``)."""
    hints = typing.get_type_hints(schema, include_extras=True)
    found: list[SchemaField] = []
    for f in dataclasses.fields(schema):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            found += schema_fields(hint, f'{prefix}{f.name}.')
            continue
        rule = rule_of(hint)
        if not isinstance(rule, Rule):
            raise TypeError(f'{schema.__name__}.{f.name} declares no rule: give its type as Annotated[type, Rule(...)]')
        doc = next((m for m in getattr(hint, '__metadata__', ()) if isinstance(m, str)), '')
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else (
            REQUIRED if f.default is dataclasses.MISSING else f.default)
        found.append(SchemaField(f'{prefix}{f.name}', default, rule, doc))
    return found


def schema_rules(schema: type) -> dict[str, Rule]:
    """``{dotted.key: rule}`` of a dataclass schema (:func:`schema_fields`)."""
    return {f.key: f.rule for f in schema_fields(schema)}


REQUIRED = inspect.Parameter.empty  # the default of an argument that has none


@dataclass(frozen=True)
class Argument:
    """One constructor argument as declared: its default (:data:`REQUIRED` if none), its rule (None: any value),
    or the :class:`BuildContext` field the run supplies it from."""

    name: str
    default: Any
    rule: Rule | None = None
    from_run: str | None = None
    doc: str = ''  # what it is for: the string in its Annotated type


def _plain_rule(hint: Any, optional: bool) -> Rule | None:
    """A rule for a plain ``int``, ``float`` or ``bool`` annotation (Composer's own classes declare no rules)."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint, optional = args[0], True
    if hint is bool:
        return Flag()
    if hint in (int, float):
        return Number(integer=hint is int, optional=optional)
    return None


_DECLARED: dict[type, dict[str, Argument]] = {}


def declared(cls: type, rules: Mapping[str, Rule] | None = None) -> dict[str, Argument]:
    """The arguments of ``cls``'s constructor: each with the rule of its ``Annotated`` type, else ``rules[name]``,
    else one read off a plain ``int``/``float``/``bool`` annotation; ``*args`` and ``**kwargs`` are left out."""
    if rules is None and cls in _DECLARED:
        return _DECLARED[cls]
    try:  # a class's constructor, or a function's own arguments (an artifact builder's)
        hints = typing.get_type_hints(cls if inspect.isfunction(cls) else cls.__init__, include_extras=True)
    except (NameError, TypeError):  # a foreign class whose annotations name what its module does not import
        hints = {}
    found = {}
    for name, param in inspect.signature(cls).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        metadata = getattr(hints.get(name), '__metadata__', ())
        stray = [m for m in metadata if not isinstance(m, (Rule, FromRun, str))]
        if stray:  # Annotated[float, Alias, ...] where Annotated[Alias, ...] was meant: the alias's rule would be lost
            raise TypeError(f'{cls.__qualname__}.{name}: Annotated metadata {stray[0]!r} is neither a rule nor a description')
        marker = rule_of(hints.get(name))
        doc = next((m for m in metadata if isinstance(m, str)), '')
        if isinstance(marker, FromRun):
            found[name] = Argument(name, param.default, from_run=marker.field, doc=doc)
            continue
        rule = (rules or {}).get(name) or marker or _plain_rule(hints.get(name), param.default is None)
        found[name] = Argument(name, param.default, rule, doc=doc)
    if rules is None:
        _DECLARED[cls] = found
    return found


def declared_repr(obj: Any) -> str:
    """``Name(arg=value, ...)``: the arguments ``obj`` was built with (after their rules), in the order its
    constructor declares them, those the run supplies (:class:`FromRun`) left out. The same arguments spell the same
    string, with no object address: Composer keeps an algorithm's repr in every checkpoint, and a resumed run's must
    equal the uninterrupted run's."""
    values = getattr(obj, '_declared_values', {})
    return f'{type(obj).__name__}({", ".join(f"{k}={v!r}" for k, v in values.items())})'


def checked(cls: type) -> type:
    """Apply the rules of ``cls``'s ``Annotated`` constructor arguments whenever it is built, also in plain Python:
    a refused value is a one-line UsageError naming the argument, and a value a rule converts (``8/255``) arrives
    converted. Artifact arguments are left to the constructor, which reads them anyway. Unless the class writes its
    own, its repr is :func:`declared_repr`."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = inspect.signature(init).bind(self, *args, **kwargs)
        arguments = declared(cls)
        for name, argument in arguments.items():
            rule = argument.rule
            if name in bound.arguments and rule is not None and not isinstance(rule, Artifact):
                bound.arguments[name] = rule.check(name, bound.arguments[name])
        init(*bound.args, **bound.kwargs)
        bound.apply_defaults()  # after a subclass's constructor has called its base's: the subclass's arguments win
        self._declared_values = {n: bound.arguments[n] for n, a in arguments.items() if a.from_run is None}

    cls.__init__ = __init__  # type: ignore[method-assign]
    if '__repr__' not in vars(cls):
        cls.__repr__ = declared_repr  # type: ignore[method-assign]
    return cls
