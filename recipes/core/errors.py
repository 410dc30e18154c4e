"""The one exception type for mistakes a user can fix.

Everything that checks user input (config values, paths, URIs, artifacts) raises :class:`UsageError` with a message
that names the bad value and the fix. The entry points in ``launch/`` print that message as one line and exit 2;
``--debug`` or ``PASTRUN_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

__all__ = ['PLACES', 'UsageError', 'did_you_mean', 'place']


class UsageError(Exception):
    """A bad value, path or artifact, reported as one readable line."""


def did_you_mean(value: str, options: Iterable[str], spell: Callable[[str], str] = repr) -> str:
    """`` (did you mean 'x'?)`` for the option nearest to ``value`` (``spell`` writes it), or ``''`` if none is near."""
    match = difflib.get_close_matches(str(value), list(options), n=1)
    return f' (did you mean {spell(match[0])}?)' if match else ''


# Where the user finds what a message tells them to run or read, by name: an entry point's script (score:
# launch/score.py) or a recipe (digits_recipe). The entry points and recipes are above this layer and the algorithms,
# so the package that holds them (recipes/__init__.py, which runs before any module below it) fills this; the
# messages below read it through place().
PLACES: dict[str, str] = {}


def place(name: str) -> str:
    """The path of ``name`` in :data:`PLACES` (``launch/score.py``), or ``name`` itself where none is known."""
    return PLACES.get(name, name)
