"""The one exception type for mistakes a user can fix.

Everything that checks user input (config values, paths, URIs, artifacts) raises :class:`UsageError` with a message
that names the bad value and the fix. The entry points in ``launch/`` print that message as one line and exit 2;
``--debug`` or ``PASTRUN_DEBUG=1`` shows the traceback instead.
"""

__all__ = ['UsageError']


class UsageError(Exception):
    """A bad value, path or artifact, reported as one readable line."""
