"""A planned switchover of a Patroni cluster with no failed transaction (docs/operations/failover.md).

    python scripts/switchover.py --patroni-url http://10.0.1.10:8008 --patroni-auth-file patroni.auth \
        --pgbouncer-dsn-file consoles.dsn --endpoint-dsn-file admin.dsn [--to db-2] [--timeout 60] [--json]

Pauses every PgBouncer (PAUSE: in-flight transactions finish, new ones wait), asks Patroni to switch
the leader to `--to` (a member's name or host; by default the synchronous standby, else the replica
least behind), waits until the endpoint (`--endpoint-dsn`: an admin DSN through the load balancer or
HAProxy) reaches the new primary, then RECONNECT and RESUME on every PgBouncer. The poolers are resumed
whatever happens. `--patroni-auth-file` holds `user:password` of Patroni's REST API (never on the command
line); `--pgbouncer-dsn-file` one admin-console DSN per line (dbname=pgbouncer).
--json: {"from", "to", "seconds", "pauseSeconds", "pausedSeconds"}. Exit 2 when it could not run or
the switchover did not finish (one line saying why).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from postgres_platform.cli.connection import add_connection_arguments, chosen_dsn
from postgres_platform.cli.errors import COULD_NOT_RUN, CannotRun, command
from postgres_platform.ops import switchover
from postgres_platform.ops.patroni import PATRONI_CA_HELP, Patroni, PatroniError


def read_lines(path: Path, flag: str) -> list[str]:
    try:
        lines = [line.strip() for line in path.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CannotRun(f"{flag}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    return [line for line in lines if line and not line.startswith("#")]


def read_auth(path: Path) -> tuple[str, str]:
    lines = read_lines(path, "--patroni-auth-file")
    if len(lines) != 1 or ":" not in lines[0]:
        raise CannotRun(f"--patroni-auth-file: {path} must hold one line user:password")
    user, password = lines[0].split(":", 1)
    return user, password


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patroni-url", required=True, help="a member's Patroni REST API, http(s)://host:port")
    parser.add_argument("--patroni-auth-file", type=Path, help="a file holding user:password for the REST API")
    parser.add_argument("--patroni-ca", type=Path, help=PATRONI_CA_HELP)
    parser.add_argument(
        "--pgbouncer-dsn-file", type=Path, help="PgBouncer admin-console DSNs, one per line (none: no pooler paused)"
    )
    add_connection_arguments(
        parser, "an admin connection through the endpoint (load balancer / HAProxy)", "endpoint-dsn"
    )
    parser.add_argument("--to", help="the member to switch to (name or host); default: the best replica")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds each step may take (default 60)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    endpoint = chosen_dsn(args, "endpoint-dsn")
    if endpoint is None:
        return COULD_NOT_RUN
    auth = read_auth(args.patroni_auth_file) if args.patroni_auth_file else None
    poolers = read_lines(args.pgbouncer_dsn_file, "--pgbouncer-dsn-file") if args.pgbouncer_dsn_file else []
    try:
        patroni = Patroni(args.patroni_url, auth, ca_file=args.patroni_ca)
        done = switchover.switchover(patroni, poolers, endpoint, to=args.to, timeout=args.timeout)
    except (switchover.SwitchoverError, PatroniError) as exc:
        raise CannotRun(str(exc)) from exc
    if args.json:
        print(json.dumps(done))
    else:
        print(
            f"switched over from {done['from']} to {done['to']} in {done['seconds']} s; clients waited at most "
            f"{done['pausedSeconds']} s (the pause took {done['pauseSeconds']} s)"
        )
    return 0
