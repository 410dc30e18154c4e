"""Rules that tie keys together: the one form, and the one checker.

A rule of one key lives in that key's type (:mod:`recipes.core.rules`). A rule that needs several keys at once
(``optimizer.nesterov`` needs ``optimizer.momentum``; a budget must leave ``max_duration`` above zero) is a function
declared beside the schema whose keys it reads, registered in that schema's :class:`Ties` with the keys it ties::

    RUN_TIES = Ties('the run config')

    @RUN_TIES.tie('optimizer.nesterov', 'optimizer.momentum')
    def _nesterov_needs_momentum(cfg):
        \"\"\"optimizer.nesterov=true needs a momentum.\"\"\"
        if cfg.optimizer.nesterov and cfg.optimizer.momentum == 0:
            raise UsageError('optimizer.nesterov=true needs optimizer.momentum > 0: ...')

:meth:`Ties.check` runs them in declaration order; the first failure is the one-line :class:`UsageError` its
function raised. A tie that depends on the machine doing the checking (a GPU for ``precision=amp_bf16``) says
``machine=True``: a process that checks runs other machines will train (a sweep on a Ray cluster's head) leaves it
to the run itself. The docs' table of ties is read off the same declarations (each function's docstring).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ['Tie', 'Ties', 'Values']


@dataclass(frozen=True)
class Tie:
    """One rule over several keys: ``check(values)`` raises a one-line UsageError naming them and the fix."""

    keys: tuple[str, ...]
    check: Callable[[Any], None]
    machine: bool = False  # depends on the machine that checks (its GPU), not only on the values

    @property
    def doc(self) -> str:
        """What it requires, in one line: the first paragraph of its function's docstring."""
        return ' '.join((self.check.__doc__ or '').strip().split('\n\n')[0].split())


class Ties:
    """The ties of one schema (the run config, the sweep file, a builder's arguments), in declaration order."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._ties: list[Tie] = []

    def tie(self, *keys: str, machine: bool = False) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
        """Declare the decorated function a tie of ``keys``."""
        if not keys:
            raise TypeError('a tie names the keys it ties')

        def declare(check: Callable[[Any], None]) -> Callable[[Any], None]:
            self._ties.append(Tie(tuple(keys), check, machine))
            return check
        return declare

    def __iter__(self) -> Iterator[Tie]:
        return iter(self._ties)

    def __len__(self) -> int:
        return len(self._ties)

    def check(self, values: Any, machine: bool = True) -> None:
        """Run every tie on ``values`` (without ``machine``: only those that read no more than the values)."""
        for tie in self._ties:
            if machine or not tie.machine:
                tie.check(values)


class Values(dict):
    """Named values a tie reads (a builder's arguments, an algorithm's), each spelled in a message as the user wrote
    its key: ``--eps`` on a command line, ``callbacks.eval_robustness.eps`` in a recipe (``prefix``)."""

    def __init__(self, values: Any, prefix: str = '--') -> None:
        super().__init__(values)
        self.prefix = prefix

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def key(self, name: str) -> str:
        """How the user spelled the key ``name``."""
        return f'{self.prefix}{name}'
