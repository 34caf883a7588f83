"""Discovery's statement-log window: who wrote, read from the server's own log instead of caught by a sample.

With a superuser admin, `window()` turns on `log_statement = 'mod'` (every write and DDL statement is
logged) with a `log_line_prefix` naming the role, database and application, for the sample window
only; the log is read back through the server (`pg_read_file`); the settings are put back as they
were on the way out, on an error and on Ctrl-C too. Needs the server's log in a file it can read:
`logging_collector = on` (the file is `pg_current_logfile()`), or `log_file` naming the file its
stderr goes to (a Debian cluster's /var/log/postgresql/...). A server that logs only to the console
(a container's stdout) cannot be read back: `LogUnreadable` says what to turn on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from postgres_platform.ops.statements import Kind, statement_kind

# Our part of each line's prefix: the application name last, so that one with spaces or `|` still parses.
MARK = "pgplat-discover"
PREFIX = f"{MARK}|%u|%d|%a|> "
# `LOG:  statement: INSERT ...` (simple protocol) or `LOG:  execute <unnamed>: INSERT ...` (extended).
_LINE = re.compile(
    rf"{MARK}\|(?P<role>[^|]*)\|(?P<database>[^|]*)\|(?P<application>.*?)\|> "
    r"(?:LOG|LOCATION|[A-Z]+):\s+(?:statement|execute [^:]*): (?P<query>.*)"
)
SETTINGS = ("log_statement", "log_line_prefix", "log_destination")
CHUNK = 16 * 1024 * 1024  # bytes read from the log per pg_read_file call
SETTLE_SECONDS = 5.0  # how long the reloaded settings may take to reach our own session


class LogUnreadable(Exception):
    """The statement log cannot be read back through the server (one line: what to turn on)."""


@dataclass(frozen=True)
class Written:
    """What one (role, database, application_name) did according to the log."""

    role: str
    database: str
    application_name: str
    kind: Kind


@dataclass
class Window:
    """The log file and where the window started in it; what the log said once read."""

    path: str
    offset: int
    written: list[Written]


def writes_in(text: str, own_application: str) -> list[Written]:
    """The logged writes and DDL of a stretch of log (our own sessions' left out)."""
    found = []
    for line in text.splitlines():
        match = _LINE.search(line)
        if match and match["application"] != own_application:
            kind = statement_kind(match["query"])
            found.append(
                Written(match["role"], match["database"], match["application"], "ddl" if kind == "ddl" else "write")
            )
    return found


def restore_sql(saved: dict[str, str | None]) -> list[str]:
    """The statements that put the settings back as ALTER SYSTEM had them (None: not set there)."""
    statements = [
        f"ALTER SYSTEM RESET {name}" if value is None else f"ALTER SYSTEM SET {name} = {_literal(value)}"
        for name, value in saved.items()
    ]
    return [*statements, "SELECT pg_catalog.pg_reload_conf()"]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _saved(conn: psycopg.Connection[Any]) -> dict[str, str | None]:
    """What postgresql.auto.conf sets for our settings now (None where it sets nothing)."""
    rows = conn.execute(
        "SELECT name, setting FROM pg_catalog.pg_file_settings WHERE name = ANY (%s) "
        "AND sourcefile LIKE '%%postgresql.auto.conf' AND applied",
        (list(SETTINGS),),
    ).fetchall()
    found = {str(name): str(setting) for name, setting in rows}
    return {name: found.get(name) for name in SETTINGS}


def _log_file(conn: psycopg.Connection[Any], given: str | None) -> str:
    if given:
        return given
    collector, current = conn.execute(
        "SELECT current_setting('logging_collector') = 'on', pg_catalog.pg_current_logfile('stderr')"
    ).fetchone() or (False, None)
    if not collector:
        raise LogUnreadable(
            "--log-writes reads the server's log through the server: turn on logging_collector (a restart) or name "
            "the file its stderr goes to with --log-file; a server logging only to the console cannot be read back"
        )
    if current is None:
        raise LogUnreadable("logging_collector is on but pg_current_logfile('stderr') names no file yet: retry")
    return str(current)


def _size(conn: psycopg.Connection[Any], path: str) -> int:
    try:
        row = conn.execute("SELECT size FROM pg_catalog.pg_stat_file(%s)", (path,)).fetchone()
    except psycopg.Error as exc:
        raise LogUnreadable(f"cannot read the log file {path} through the server: {exc.diag.message_primary}") from exc
    return int(row[0]) if row else 0


def _read(conn: psycopg.Connection[Any], path: str, start: int) -> str:
    end, parts = _size(conn, path), []
    for offset in range(start, end, CHUNK):
        (part,) = conn.execute(
            "SELECT pg_catalog.pg_read_binary_file(%s, %s, %s)", (path, offset, min(CHUNK, end - offset))
        ).fetchone() or (b"",)
        parts.append(bytes(part))
    return b"".join(parts).decode("utf-8", "replace")


def _set(conn: psycopg.Connection[Any], name: str, value: str) -> None:
    conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))


def _settled(conn: psycopg.Connection[Any]) -> None:
    """Wait until the reload reached our own session (so it reached the others' next statements too)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while conn.execute("SELECT current_setting('log_statement')").fetchone() != ("mod",):
        if time.monotonic() > deadline:
            raise LogUnreadable("log_statement did not change after pg_reload_conf(): is it set per role or database?")
        time.sleep(0.1)


@contextmanager
def window(conn: psycopg.Connection[Any], log_file: str | None, own_application: str) -> Iterator[Window]:
    """Statement logging on for the block; after it, `Window.written` holds what the log showed."""
    superuser = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user").fetchone()
    if not superuser or not superuser[0]:
        raise LogUnreadable("--log-writes changes the server's logging: it needs a superuser DSN")
    prefix, destination = conn.execute(
        "SELECT current_setting('log_line_prefix'), current_setting('log_destination')"
    ).fetchone() or ("", "stderr")
    if MARK in str(prefix):
        raise LogUnreadable(
            "an earlier --log-writes run left its log_line_prefix in place: put the settings back first (ALTER SYSTEM "
            "RESET log_statement, log_line_prefix; SELECT pg_reload_conf())"
        )
    saved = _saved(conn)
    try:
        _set(conn, "log_statement", "mod")
        _set(conn, "log_line_prefix", str(prefix) + PREFIX)
        if "stderr" not in str(destination).split(","):
            _set(conn, "log_destination", f"{destination},stderr")
        conn.execute("SELECT pg_catalog.pg_reload_conf()")
        _settled(conn)
        path = _log_file(conn, log_file)
        found = Window(path, _size(conn, path), [])
        yield found
        time.sleep(0.2)  # the last statements' lines reach the file
        text = _read(conn, path, found.offset)
        rotated = log_file is None and _log_file(conn, None)
        if rotated and rotated != path:  # the collector started a new file during the window
            text += "\n" + _read(conn, rotated, 0)
        found.written = writes_in(text, own_application)
    finally:
        for statement in restore_sql(saved):
            conn.execute(statement)
