"""How the entry points in ``launch/`` report mistakes: one line and exit status 2, no traceback.

``--debug`` on the command line or ``PASTRUN_DEBUG=1`` in the environment shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from recipes.core.errors import UsageError

__all__ = ['debug_requested', 'run_cli']


def debug_requested(argv: list[str]) -> bool:
    return '--debug' in argv or os.environ.get('PASTRUN_DEBUG', '') not in ('', '0')


def run_cli(main: Callable[[list[str]], int | None], argv: list[str] | None = None) -> None:
    """Call ``main(argv)`` (without ``--debug``) and exit with its status, or 2 with one line on a UsageError."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    try:
        code = main([a for a in argv if a != '--debug'])
    except UsageError as e:
        if debug:
            raise
        print(f'error: {e}', file=sys.stderr, flush=True)
        sys.exit(2)
    sys.exit(code or 0)
