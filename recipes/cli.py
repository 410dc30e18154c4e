"""How the entry points in ``launch/`` report mistakes: one line and exit status 2, no traceback.

A :class:`UsageError` (raised by every check of user input) is printed as ``error: ...``. The one boundary also
catches what escapes from a library because of the user's environment or a value it could not check in advance:
a missing or unreadable file, a full disk, S3 credentials or endpoint, a GPU out of memory. Any other exception
is a bug and keeps its traceback. ``--debug`` on the command line or ``PASTRUN_DEBUG=1`` in the environment shows
the traceback of every error.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import typing
from collections.abc import Callable
from typing import Any, NoReturn

from recipes.core.artifacts import Artifact, NoBank
from recipes.core.data.rules import MDSRoot
from recipes.core.declare import REQUIRED, declared
from recipes.core.errors import UsageError
from recipes.core.rules import ExistingFile, Flag, Folder, LocalFile, Number, Rule
from recipes.core.ties import Values

__all__ = ['ArgumentParser', 'arg_type', 'builder_main', 'builder_parser', 'debug_requested', 'run_cli', 'user_error']

# OSError numbers a user fixes in their environment, and what to do.
_OS_FIXES = {
    errno.ENOENT: 'check the path',
    errno.EACCES: 'check its permissions',
    errno.EPERM: 'check its permissions',
    errno.EISDIR: 'name a file, not a folder',
    errno.ENOTDIR: 'a part of the path is a file, not a folder',
    errno.ENOSPC: 'free disk space or write elsewhere',
    errno.EDQUOT: 'free disk quota or write elsewhere',
    errno.EROFS: 'write to a writable location',
    errno.ENAMETOOLONG: 'shorten the path',
}
# botocore errors (by class name, so the boundary imports nothing heavy) a user fixes in their setup.
_S3_FIXES = {
    'NoCredentialsError': 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an instance role)',
    'PartialCredentialsError': 'set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    'EndpointConnectionError': 'check S3_ENDPOINT_URL and the network',
    'ConnectTimeoutError': 'check S3_ENDPOINT_URL and the network',
    'InvalidEndpointURLError': 'S3_ENDPOINT_URL must be a URL such as http://host:port',
    'ClientError': 'check the bucket, the key and the credentials',
}


def debug_requested(argv: list[str]) -> bool:
    return '--debug' in argv or os.environ.get('PASTRUN_DEBUG', '') not in ('', '0')


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def user_error(e: BaseException) -> str | None:
    """The one-line message for an exception the user caused and can fix, or None for a bug."""
    if isinstance(e, UsageError):
        return _first_line(e)
    if isinstance(e, OSError) and e.errno in _OS_FIXES:
        where = f'{e.filename}: ' if e.filename else ''
        return f'{where}{e.strerror or _first_line(e)}: {_OS_FIXES[e.errno]}'
    names = {cls.__name__ for cls in type(e).__mro__ if cls.__module__.startswith('botocore')}
    for name, fix in _S3_FIXES.items():
        if name in names:
            endpoint = os.environ.get('S3_ENDPOINT_URL') or 'the default AWS endpoint'
            return f'S3 at {endpoint}: {_first_line(e)} ({name}): {fix}'
    if type(e).__name__ == 'OutOfMemoryError' and type(e).__module__.startswith('torch'):
        return 'the GPU ran out of memory: lower data.global_batch_size or set device_train_microbatch_size'
    return None


def run_cli(main: Callable[[list[str]], int | None], argv: list[str] | None = None) -> None:
    """Call ``main(argv)`` (without ``--debug``) and exit with its status, or 2 with one line on a user's error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    try:
        code = main([a for a in argv if a != '--debug'])
    except Exception as e:  # noqa: BLE001 - sorted below: the user's errors become one line, bugs re-raise
        message = user_error(e)
        if debug or message is None:
            raise
        print(f'error: {message}', file=sys.stderr, flush=True)
        sys.exit(2)
    sys.exit(code or 0)


# Rules whose check reads files or S3: their arguments are checked once every other argument has parsed, so a bad
# number is named without touching storage (and before an unreachable endpoint makes the user wait).
_READS_STORAGE = (Artifact, ExistingFile, Folder, LocalFile, MDSRoot, NoBank)


class _RuleType:
    """The ``type=`` :class:`ArgumentParser` gives an argument declared with ``type=arg_type(rule)``.

    The text is read by :meth:`Rule.from_text` (a ValueError is argparse's ``invalid int value: 'many'``) and checked
    by the rule under the argument's name (``flag``); a refusal is the rule's own one-line UsageError, raised as it
    is. A rule that reads storage (``later``) only reads the text while parsing: :meth:`check` runs afterwards.
    """

    def __init__(self, rule: Rule, name: str) -> None:
        self.rule = rule
        self.flag = 'value'  # the option string (or the positional's name), set by ArgumentParser.add_argument
        self.later = isinstance(rule, _READS_STORAGE)
        self.__name__ = name  # argparse names the type in ``invalid int value``

    def __call__(self, text: str) -> Any:
        value = self.rule.from_text(text)
        return value if self.later else self.rule.check(self.flag, value)

    def check(self, value: Any) -> Any:
        return self.rule.check(self.flag, value)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its mistakes (unknown option, missing argument, bad int) as a UsageError: one line, exit 2.

    An argument declared with ``type=arg_type(rule)`` (:func:`recipes.cli.arg_type`) is checked by its rule
    and arrives as the value the rule returns; a refusal is the rule's one-line message, naming the argument as
    declared (``--batch_size``, or the positional's name). Rules that read files or S3 (a past run, a bank, a file
    that must exist) are applied after every other argument has parsed.
    """

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        declared = kwargs.get('type')
        rule = getattr(declared, 'rule', None)
        if isinstance(rule, Rule):
            kwargs['type'] = _RuleType(rule, getattr(declared, '__name__', 'value'))
        action = super().add_argument(*args, **kwargs)
        if isinstance(action.type, _RuleType):  # the declared function names it too, as arg_type expects
            action.type.flag = declared.flag = max(action.option_strings, key=len) if action.option_strings else action.dest
        return action

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            value = getattr(namespace, action.dest, None)
            if not (isinstance(action.type, _RuleType) and action.type.later) or value is None or (
                    value is action.default and not isinstance(value, str)):
                continue  # checked while parsing, or a default such as None or [] that is no text to check
            check = action.type.check
            setattr(namespace, action.dest, [check(v) for v in value] if isinstance(value, list) else check(value))
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        raise UsageError(f'{self.prog}: {message} (see {self.prog} --help)')


# ----- an artifact builder's command line, generated from its declaration


def _many(builder: Callable[..., Any], name: str) -> bool:
    """Whether argument ``name`` of ``builder`` takes several values (a list: ``--runs A B``)."""
    hint = typing.get_type_hints(builder, include_extras=True).get(name)
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return typing.get_origin(hint) in (list, tuple)


def builder_parser(builder: Callable[..., Any], description: str | None = None) -> ArgumentParser:
    """The command line of an artifact builder, read off its declaration: an option ``--NAME`` per argument, with
    the argument's rule as its ``type`` (:func:`~recipes.cli.arg_type`), its description as its help, its
    default (none: required); a :class:`~recipes.core.rules.Flag` is a bare ``--NAME``; a list takes several values."""
    parser = ArgumentParser(description=description or builder.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, argument in declared(builder).items():
        flag, help_text = f'--{name}', argument.doc or None
        if isinstance(argument.rule, Flag):
            parser.add_argument(flag, action='store_true', help=help_text)
            continue
        assert argument.rule is not None, f'{builder.__qualname__}.{name} declares no rule'
        options: dict[str, Any] = {'type': arg_type(argument.rule), 'help': help_text}
        if _many(builder, name):
            options['nargs'] = '*'
        if argument.default is REQUIRED:
            options['required'] = True
        else:
            options['default'] = argument.default
        parser.add_argument(flag, **options)
    return parser


def builder_main(builder: Callable[..., str | None], description: str | None = None) -> Callable[[list[str]], int]:
    """The ``main`` of a ``launch/`` builder script (its ``--help`` says ``description``): parse the arguments by
    :func:`builder_parser`, run the builder's ties (``builder.ties``, :class:`~recipes.core.ties.Ties`) on them, then
    the builder; print the line it returns."""

    def main(argv: list[str]) -> int:
        args = vars(builder_parser(builder, description).parse_args(argv))
        ties = getattr(builder, 'ties', None)
        if ties is not None:
            ties.check(Values(args))
        message = builder(**args)
        if message:
            print(message, flush=True)
        return 0

    return main


# ----- a rule as an argparse type


def arg_type(rule: Rule) -> Callable[[str], Any]:
    """An ``argparse`` ``type=`` from ``rule``: the string is read by :meth:`Rule.from_text` and checked.

    A string that does not parse is argparse's own ``invalid int value: 'many'``; a value the rule refuses is its
    one-line message. The function carries its rule (``.rule``), so tests and docs read what each argument accepts.
    """

    def convert(text: str) -> Any:
        value = rule.from_text(text)
        try:
            return rule.check(convert.flag, value)  # type: ignore[attr-defined]
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.rule = rule  # type: ignore[attr-defined]
    convert.flag = 'value'  # type: ignore[attr-defined]  # set by recipes.cli.ArgumentParser.add_argument
    convert.__name__ = 'int' if isinstance(rule, Number) and rule.integer else 'float' if isinstance(rule, Number) else 'value'
    return convert
