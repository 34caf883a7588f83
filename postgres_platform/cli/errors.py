"""How every command ends: exit 0 when all is well, 1 when it ran and found problems, 2 when it could
not run (one line on stderr naming what to check; under --json also {"error": ...} on stdout), and
quietly on Ctrl-C (130) or a reader that closed the pipe (141, as a shell reports SIGPIPE).

    @command
    def main(argv: list[str] | None = None) -> int: ...
"""

from __future__ import annotations

import functools
import json
import os
import ssl
import sys
from typing import Protocol

import psycopg

from postgres_platform.model.config import ConfigError

FOUND_PROBLEMS = 1
COULD_NOT_RUN = 2
INTERRUPTED = 130
PIPE_CLOSED = 141


class Main(Protocol):
    def __call__(self, argv: list[str] | None = None) -> int: ...


class CannotRun(Exception):
    """A problem the user fixes before the command can run; its message is the one line they see."""


def one_line(exc: BaseException) -> str | None:
    """The line that names what to check, for the errors a user fixes; None for a bug (a traceback is right)."""
    if isinstance(exc, CannotRun):
        return str(exc)
    if isinstance(exc, ConfigError):
        return "; ".join(str(exc).splitlines())
    if isinstance(exc, psycopg.OperationalError):
        # libpq's message is several lines (one per address tried): the first names host, port and cause.
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        return f"cannot connect or query the server: {first} (check the DSN's host, port, user, password, sslmode)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc} (check the CA file and the server's certificate)"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return None


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so that the interpreter's final flush is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def command(main: Main) -> Main:
    """Wrap a command's main with the exits above."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        wants_json = "--json" in (sys.argv[1:] if argv is None else argv)
        try:
            return main(argv)
        except KeyboardInterrupt:
            return INTERRUPTED
        except BrokenPipeError:
            _quiet_stdout()
            return PIPE_CLOSED
        except Exception as exc:
            line = one_line(exc)
            if line is None:
                raise
            print(f"error: {line}", file=sys.stderr)
            if wants_json:
                try:
                    print(json.dumps({"error": line}), flush=True)
                except BrokenPipeError:
                    _quiet_stdout()
            return COULD_NOT_RUN

    return wrapper
