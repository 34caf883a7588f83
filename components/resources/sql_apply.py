"""Dynamic resources for the SQL pulumi-postgresql cannot declare (psycopg, run where Pulumi runs).

- SqlApply: SET search_path on the auth lookup function and the migration-table revokes, in one
  database. Its diff runs a read-only check on the server and reports a change only when something is
  missing (a migration table created since the last up, a replaced function), so a preview of an
  unchanged stack is clean.
- PrimaryCheck: the admin connection reaches a primary, checked at every preview and up before the
  provider's first statement (hetzner.failover: the provider names db-1, which a failover makes a replica).
- RoleRetirement: nothing while an app exists; when it is removed, before its role is dropped, what
  it owns in every database goes to that database's owner role (the provider's own REASSIGN runs
  in one database only, and to the superuser).

The engine serializes these providers with dill, by reference: it imports this module, which the
project's `pip install -e .` makes importable wherever the program runs.
"""

from __future__ import annotations

import time
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from postgres_platform.render.sql.locks import LOCK_TIMEOUT

# A step that gives up on a lock (LOCK_TIMEOUT) tries ATTEMPTS times, then says who holds it.
ATTEMPTS = 3
# Sessions of this database in a transaction that hold a lock another session waits for, or failing
# that the oldest open transactions: who to ask (pid, user, application, the first words of the query).
BLOCKERS = """
SELECT a.pid, a.usename, a.application_name, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 60),
       date_trunc('second', now() - a.xact_start)
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL
ORDER BY a.pid = ANY (SELECT unnest(pg_blocking_pids(w.pid)) FROM pg_stat_activity w) DESC, a.xact_start
LIMIT 3
"""


def _connect(conn: dict[str, Any], database: str) -> Any:
    import psycopg  # imported where the provider runs, not where the program is planned

    return psycopg.connect(
        options=f"-c lock_timeout={LOCK_TIMEOUT}",
        host=conn["host"],
        port=int(conn["port"]),
        user=conn["user"],
        password=conn["password"],
        dbname=database,
        sslmode=conn["sslmode"],
        sslrootcert=conn.get("sslrootcert") or None,  # verify-full needs the stack CA, not ~/.postgresql
        connect_timeout=15,
        autocommit=True,
    )


def _same_except_connection(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """Everything but how we connect (a rotated superuser password is no reason to re-run)."""
    keys = (set(olds) | set(news)) - {"connection", "__provider"}
    return all(olds.get(k) == news.get(k) for k in keys)


def run_bounded(conn: dict[str, Any], database: str, statements: str) -> None:
    """Run `statements` (idempotent) with lock_timeout, retrying; past the last try, one line naming
    what holds the lock."""
    import psycopg

    for attempt in range(1, ATTEMPTS + 1):
        with _connect(conn, database) as session:
            try:
                session.execute(statements)
                return
            except psycopg.errors.LockNotAvailable:
                if attempt < ATTEMPTS:
                    time.sleep(attempt)
                    continue
                held = "; ".join(
                    f"pid {pid} ({user}, {app or 'no application_name'}: {query!r}, open {age})"
                    for pid, user, app, query, age in session.execute(BLOCKERS).fetchall()
                )
                raise RuntimeError(
                    f"SQL step in {database}: no lock within lock_timeout {LOCK_TIMEOUT}, {ATTEMPTS} tries; "
                    f"held by {held or 'a session that has ended since'}"
                ) from None


class SqlApplyProvider(ResourceProvider):
    def _run(self, props: dict[str, Any]) -> None:
        run_bounded(props["connection"], props["database"], props["sql"])

    def in_place(self, props: dict[str, Any]) -> bool:
        """The check query: True when what `sql` establishes is all there."""
        with _connect(props["connection"], props["database"]) as session:
            row = session.execute(props["check"]).fetchone()
        return bool(row and row[0])

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._run(props)
        return CreateResult(id_=f"{props['database']}:{props['purpose']}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if not _same_except_connection(olds, news):
            return DiffResult(changes=True, replaces=[], delete_before_replace=False)
        try:
            missing = not self.in_place(news)
        except Exception:  # unreachable now (a preview away from the admin network): say so by a change
            missing = True
        return DiffResult(changes=missing, replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._run(news)
        return UpdateResult(outs=news)


class SqlApply(Resource, module="postgres-platform", name="SqlApply"):
    """Runs `sql` in `database` when `check` says it is not in place (and on create)."""

    def __init__(
        self,
        name: str,
        *,
        connection: pulumi.Input[dict[str, Any]],
        database: str,
        purpose: str,
        sql: str,
        check: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "connection": pulumi.Output.secret(connection),
            "database": database,
            "purpose": purpose,
            "sql": sql,
            "check": check,
        }
        # The provider echoes its inputs as outputs: keep the connection (password) secret in state too.
        # Its own type token (policy sql-steps); stacks deployed before knew it as the generic one.
        own = pulumi.ResourceOptions(
            additional_secret_outputs=["connection"], aliases=[pulumi.Alias(type_="pulumi-python:dynamic:Resource")]
        )
        super().__init__(SqlApplyProvider(), name, props, pulumi.ResourceOptions.merge(opts, own))


FAILED_OVER = (
    "the admin connection ({host}:{port}) reaches a replica: Patroni failed over and the roles, grants and"
    " SQL steps would fail on it; switch back first (pgplat switchover --to db-1, see"
    " docs/operations/failover.md#the-admin-connection), then run this again"
)


def reaches_a_primary(conn: dict[str, Any]) -> bool:
    with _connect(conn, "postgres") as session:
        row = session.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row) and row[0] is False


class PrimaryCheckProvider(ResourceProvider):
    def _replica(self, conn: dict[str, Any]) -> str | None:
        """FAILED_OVER's line when the connection reaches a server in recovery; None for a primary, and
        for one it cannot ask now (a preview away from the admin network, or a password not yet made)."""
        try:
            primary = reaches_a_primary(conn)
        except Exception:
            return None
        return None if primary else FAILED_OVER.format(host=conn["host"], port=int(conn["port"]))

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Every preview and up: a replica is a check failure (one line, the engine's), before any diff."""
        found = self._replica(news["connection"]) if isinstance(news.get("connection"), dict) else None
        return CheckResult(news, [CheckFailure("connection", found)] if found else [])

    def _verify(self, props: dict[str, Any]) -> None:
        conn = props["connection"]
        if not reaches_a_primary(conn):  # an error connecting raises too: nothing runs after it
            raise RuntimeError(FAILED_OVER.format(host=conn["host"], port=int(conn["port"])))

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._verify(props)
        return CreateResult(id_="primary-check", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=not _same_except_connection(olds, news), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._verify(news)
        return UpdateResult(outs=news)


class PrimaryCheck(Resource, module="postgres-platform", name="PrimaryCheck"):
    """Fails a preview or an up whose admin connection reaches a server in recovery (a replica)."""

    def __init__(
        self, name: str, *, connection: pulumi.Input[dict[str, Any]], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {"connection": pulumi.Output.secret(connection)}
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=["connection"])
        super().__init__(PrimaryCheckProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_outputs))


class RoleRetirementProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["role"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=not _same_except_connection(olds, news), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        for database, statements in props["statements"].items():
            run_bounded(props["connection"], database, statements)


class RoleRetirement(Resource, module="postgres-platform", name="RoleRetirement"):
    """When removed (with its app): `statements` per database (render.sql.retire_role), before the role goes.

    Declare it depending on the Role: the engine deletes dependents first.
    """

    def __init__(
        self,
        name: str,
        *,
        connection: pulumi.Input[dict[str, Any]],
        role: pulumi.Input[str],
        statements: dict[str, str],  # database -> SQL
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"connection": pulumi.Output.secret(connection), "role": role, "statements": statements}
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=["connection"])
        super().__init__(RoleRetirementProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_outputs))
