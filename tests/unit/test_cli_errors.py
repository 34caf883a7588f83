"""cli/errors.command: what a user can fix is one line and exit 2; a bug keeps its traceback."""

from __future__ import annotations

import json

import psycopg
import pytest

from postgres_platform.cli.errors import COULD_NOT_RUN, INTERRUPTED, CannotRun, command
from postgres_platform.model.config import ConfigError


def raising(exc: BaseException):  # type: ignore[no-untyped-def]
    @command
    def main(argv: list[str] | None = None) -> int:
        raise exc

    return main


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (CannotRun("x.yaml: no such stack file"), "x.yaml: no such stack file"),
        (ConfigError(["apps.a: bad", "apps.b: worse"]), "apps.a: bad; apps.b: worse"),
        (FileNotFoundError(2, "No such file or directory", "a.dsn"), "a.dsn: No such file or directory"),
    ],
)
def test_a_problem_to_fix_is_one_line_and_exit_2(
    exc: BaseException, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert raising(exc)(["--json"]) == COULD_NOT_RUN
    captured = capsys.readouterr()
    assert captured.err == f"error: {line}\n"
    assert json.loads(captured.out) == {"error": line}
    assert raising(exc)([]) == COULD_NOT_RUN
    assert capsys.readouterr().out == ""  # no JSON without --json


def test_a_connection_error_names_its_first_line_and_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    message = 'connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running?'
    assert raising(psycopg.OperationalError(message))([]) == COULD_NOT_RUN
    (line,) = capsys.readouterr().err.splitlines()
    assert "port 1 failed: Connection refused" in line and "check the DSN" in line


def test_ctrl_c_is_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    assert raising(KeyboardInterrupt())([]) == INTERRUPTED
    assert capsys.readouterr().err == ""


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(ZeroDivisionError):
        raising(ZeroDivisionError())([])
    with pytest.raises(OSError):
        raising(OSError("no filename: a bug, not a file to fix"))([])
