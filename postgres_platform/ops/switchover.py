"""A planned switchover with no failed transaction: pause the poolers, switch over, wait for the endpoint, resume.

In-flight clients wait instead of failing: PgBouncer's PAUSE returns once every server connection is
released (transactions finish, new ones queue), Patroni switches the leader, the endpoint (the load
balancer or HAProxy asking Patroni's /primary) routes to the new primary, RECONNECT drops the pooled
server connections to the old one, and RESUME lets the queued clients through. The poolers are
resumed whatever happens after the pause.

`choose()` is pure; Patroni's side is ops/patroni.py.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from postgres_platform.ops.patroni import LEADER_ROLES, READY_STATES, Member, Patroni, PatroniError


class SwitchoverError(Exception):
    """Why a switchover cannot start or did not finish (one line)."""


def choose(found: list[Member], to: str | None) -> tuple[Member, Member]:
    """(the leader, the member to switch to): `to` by name or host, else the synchronous standby, else the
    replica least behind. A candidate must be a replica that streams."""
    leaders = [m for m in found if m.role in LEADER_ROLES]
    if len(leaders) != 1:
        raise SwitchoverError(f"the cluster has {len(leaders)} leaders ({', '.join(m.name for m in leaders)}): not one")
    leader = leaders[0]
    replicas = [m for m in found if m.role not in LEADER_ROLES]
    if to is not None:
        named = [m for m in found if to in (m.name, m.host)]
        if not named:
            raise SwitchoverError(f"--to: no member named {to}; members: {', '.join(m.name for m in found)}")
        if named[0] is leader:
            raise SwitchoverError(f"--to: {to} is the leader already")
        replicas = named
    ready = [m for m in replicas if m.state in READY_STATES]
    if not ready:
        states = ", ".join(f"{m.name} {m.state}" for m in replicas) or "no replica"
        raise SwitchoverError(f"no replica is ready to take over ({states})")
    ready.sort(key=lambda m: (m.role != "sync_standby", m.lag if m.lag is not None else 1 << 62, m.name))
    return leader, ready[0]


def _console(dsn: str) -> psycopg.Connection[Any]:
    # The console speaks the simple query protocol only: no prepared statements.
    return psycopg.connect(dsn, autocommit=True, prepare_threshold=None)


def _pause_all(consoles: list[psycopg.Connection[Any]], timeout: float) -> None:
    """PAUSE on every console at once; each returns when its pooler's server connections are released."""
    failures: list[BaseException] = []

    def pause(console: psycopg.Connection[Any]) -> None:
        try:
            console.execute("PAUSE")
        except psycopg.Error as exc:
            failures.append(exc)

    threads = [threading.Thread(target=pause, args=(c,), daemon=True) for c in consoles]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise SwitchoverError(
            f"PgBouncer's PAUSE did not finish in {timeout:g} s: a client holds its server connection"
            " (a long transaction, or a session-mode pool): find it with live, then run this again"
        )
    if failures:
        raise SwitchoverError(f"PgBouncer's PAUSE failed: {failures[0]}")


def _resume(poolers: list[str]) -> None:
    """RECONNECT (no pooled connection to the old primary is reused) and RESUME, on a fresh console each:
    one with a pending PAUSE is busy."""
    for dsn in poolers:
        with _console(dsn) as console:
            for statement in ("RECONNECT", "RESUME"):
                with contextlib.suppress(psycopg.Error):  # RESUME when not paused: nothing to undo
                    console.execute(statement)


@contextmanager
def paused(poolers: list[str], timeout: float) -> Iterator[float]:
    """PAUSE on every PgBouncer console for the block (RESUME after it, whatever happens); yields the
    seconds the pause took. A PAUSE that does not return within `timeout` (a transaction that never
    ends) is resumed and the switchover refused."""
    consoles = [_console(dsn) for dsn in poolers]
    started = time.monotonic()
    try:
        _pause_all(consoles, timeout)
        yield time.monotonic() - started
    finally:
        _resume(poolers)
        for console in consoles:
            console.close()


class _NotYet(Exception):
    pass


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Ask `check` every 0.2 s until it holds (a connection or API error counts as not yet)."""
    retrying = Retrying(
        stop=stop_after_delay(seconds),
        wait=wait_fixed(0.2),
        retry=retry_if_exception_type((_NotYet, psycopg.Error, PatroniError)),
    )
    try:
        for attempt in retrying:
            with attempt:
                if not check():
                    raise _NotYet
    except RetryError as exc:
        raise SwitchoverError(what) from exc


def primary_behind(endpoint_dsn: str) -> tuple[str, int] | None:
    """The address and port of the server the endpoint routes a new connection to, if it is a primary."""
    with psycopg.connect(endpoint_dsn, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT pg_catalog.pg_is_in_recovery(), host(inet_server_addr()), inet_server_port()"
        ).fetchone()
    return None if row is None or row[0] else (str(row[1]), int(row[2] or 0))


def routes_to(endpoint_dsn: str, member: Member, tries: int = 3) -> bool:
    """`tries` new connections in a row land on `member` as a primary: a proxy that still has the demoted
    member in rotation (until its health check fails enough times) would send one of them there."""
    return all(primary_behind(endpoint_dsn) == (member.host, member.port) for _ in range(tries))


def switchover(
    patroni: Patroni, poolers: list[str], endpoint_dsn: str, *, to: str | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    """Switch the leader to `to` (or the best replica) with the poolers paused; what happened, in seconds."""
    leader, candidate = choose(patroni.cluster(), to)
    started = time.monotonic()
    with paused(poolers, timeout) as pause_seconds:
        patroni.switchover(leader.name, candidate.name, timeout)

        def switched() -> bool:
            now = {m.name: m for m in patroni.cluster()}
            new = now.get(candidate.name)
            return new is not None and new.role in LEADER_ROLES and new.state == "running"

        _until(switched, timeout, f"{candidate.name} did not become the leader in {timeout:g} s")
        _until(
            lambda: routes_to(endpoint_dsn, candidate),
            timeout,
            f"the endpoint did not route to {candidate.name} in {timeout:g} s",
        )
        paused_for = time.monotonic() - started
    return {
        "from": leader.name,
        "to": candidate.name,
        "seconds": round(time.monotonic() - started, 2),
        "pauseSeconds": round(pause_seconds, 2),
        "pausedSeconds": round(paused_for, 2),
    }
