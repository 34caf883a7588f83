"""The live budget: a running server's slots against the stack's declared budget.

    python scripts/live_budget.py prod --dsn "$ADMIN_DSN" [--json] [--watch SECONDS]
    python scripts/live_budget.py prod --dsn-file admin.dsn ...   # the password out of the process list

Who is connected now (client backends), per role: kind (app, external, system, superuser, undeclared),
the declared limit, the server's CONNECTION LIMIT, its connections; the superuser's sessions by
database, application and client address (what is still to be moved off it); and every drift: a
declared role missing or with another limit, an undeclared role holding slots, max_connections not
as configured, more connections than usable, a role at its limit, each with its fix. Exit 1 when
there is any. --watch SECONDS refreshes it: on a terminal a live table (each role's connections against
its limit as a bar), piped one stamped report per refresh (--json: one object a line).

    python scripts/live_budget.py prod --dsn "$ADMIN_DSN" --check-grants [--json]

Instead, a diagnosis against the plan: every declared role's attributes and
memberships; what the plan grants and the server lacks (each group's level on every table and sequence
of its schemas, database, schema and function privileges, default privileges, the migration-table
revokes); everything the plan's roles (owner, group and login roles) and PUBLIC hold beyond it, read
from the catalogs' ACLs (tables, views, sequences, columns, schemas, databases, functions, default
privileges, memberships); the PgBouncer lookup function (present, as rendered, owned by a superuser,
SECURITY DEFINER, search_path pinned). A few queries per database, however many tables. Each failure
with its fix (the SQL that removes what is beyond the plan; re-applying the plan removes it too);
exit 1 when any. --json: {"problems": [{"problem": str, "fix": str}], "failures": <the same list>}
(`failures`, the 0.3.0 name, for one more release).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from postgres_platform.cli.connection import add_connection_arguments, chosen_dsn
from postgres_platform.cli.errors import COULD_NOT_RUN, CannotRun, command, one_line
from postgres_platform.cli.stacks import add_stack_arguments, load_chosen
from postgres_platform.model.config import PlatformConfig
from postgres_platform.ops import grants, live_budget
from postgres_platform.ops.lockdown import lockdown_problems
from postgres_platform.ops.patroni import LEADER_ROLES, PATRONI_CA_HELP, Patroni, PatroniError, member_problems


def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['connected']} connected of {report['usable']} usable (max_connections {report['maxConnections']})"
    ]
    lines.append(f"{'role':22s} {'kind':10s} {'declared':>8s} {'server':>6s} {'now':>4s}")
    for r in report["roles"]:
        declared = "-" if r["declared"] is None else str(r["declared"])
        lines.append(f"{r['role']:22s} {r['kind']:10s} {declared:>8s} {r['serverLimit']:>6d} {r['connections']:>4d}")
    lines += [text for text, _style in detail_lines(report)]
    lines += problem_lines(report["problems"]) or ["no problems"]
    return "\n".join(lines)


def detail_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(line, Rich style) under the roles: the superuser's sessions, PgBouncer's pools, Patroni's members."""
    lines = [
        (
            f"superuser: {s['count']} in {s['database']} from {s['applicationName'] or '?'} "
            f"at {s['clientAddr'] or 'local socket'}",
            "",
        )
        for s in report["superuserSessions"]
    ]
    lines += [
        (
            f"pgbouncer {p['database']}/{p['user']}: {p['active']} active, {p['waiting']} waiting"
            + (f" (the oldest {p['maxWaitSeconds']:.1f} s)" if p["waiting"] else ""),
            "yellow" if p["waiting"] else "",
        )
        for p in report.get("pgbouncerPools", [])
    ]
    lines += [
        (
            f"member {m['name']} ({m['host']}:{m['port']}): {m['role']}, {m['state']}, timeline {m['timeline'] or '?'}"
            + ("" if m["role"] in LEADER_ROLES else f", lag {'unknown' if m['lag'] is None else m['lag']} bytes"),
            "" if m["state"] in ("running", "streaming") else "red",
        )
        for m in report.get("members", [])
    ]
    return lines


def problem_lines(problems: list[dict[str, str]]) -> list[str]:
    return [line for p in problems for line in (f"problem: {p['problem']}", f"  fix: {p['fix']}")]


BAR = 20  # characters of a role's bar at its limit


def bar(connections: int, limit: int) -> str:
    """`#####...............` : connections against a limit (no limit: none drawn)."""
    if limit <= 0:
        return ""
    filled = min(BAR, round(BAR * connections / limit))
    return "#" * filled + "." * (BAR - filled)


class Watch:
    """--watch: each refresh stamped with its time; while the server is down, since when (and it retries)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.down_since: str | None = None

    def up(self, report: dict[str, Any]) -> str:
        self.down_since = None
        now = _now()
        if self.as_json:
            return json.dumps({"time": now, **report})
        bars = [
            f"{r['role']:22s} {bar(r['connections'], r['serverLimit'])} {r['connections']}/{r['serverLimit']}"
            for r in report["roles"]
            if r["serverLimit"] > 0
        ]
        return "\n".join([f"--- {now}", render(report), *bars])

    def down(self, exc: psycopg.OperationalError) -> str:
        now = _now()
        self.down_since = self.down_since or now
        line = one_line(exc) or str(exc)
        if self.as_json:
            return json.dumps({"time": now, "downSince": self.down_since, "error": line})
        return f"--- {now}: {down_line(self.down_since, line)}"


def down_line(since: str, error: str) -> str:
    return f"server down since {since}: {error} (retrying)"


def view(now: str, report: dict[str, Any] | None, down: str | None = None) -> RenderableType:
    """One refresh of the terminal's --watch: a table of the roles (connections against their limit as a
    bar) titled with the time, under it the slots, the superuser's sessions, PgBouncer's pools and the
    problems; while the server is down, the time and that line."""
    title = f"live budget at {now}"
    if down is not None or report is None:
        return Group(Text(title, style="bold"), Text(down or "connecting", style="bold red"))
    table = Table(title=title, title_justify="left", title_style="bold")
    columns: tuple[tuple[str, JustifyMethod], ...] = (("role", "left"), ("kind", "left"), ("now/limit", "right"))
    for name, justify in (*columns, ("", "left")):
        table.add_column(name, justify=justify)
    for r in report["roles"]:
        limit = r["serverLimit"]
        drawn = (
            ProgressBar(total=limit, completed=min(r["connections"], limit), width=BAR, finished_style="red")
            if limit > 0
            else Text("no limit" if limit < 0 else "", style="dim")
        )
        table.add_row(r["role"], r["kind"], f"{r['connections']}/{limit if limit >= 0 else '-'}", drawn)
    notes = [
        Text(
            f"{report['connected']} connected of {report['usable']} usable (max_connections {report['maxConnections']})"
        )
    ]
    notes += [Text(text, style=style) for text, style in detail_lines(report)]
    problems = problem_lines(report["problems"])
    notes += [Text(line, style="red" if line.startswith("problem") else "") for line in problems] or [
        Text("no problems", style="green")
    ]
    return Group(table, *notes)


def watch_live(take: Callable[[], dict[str, Any]], seconds: float) -> int:
    """--watch on a terminal: the view above redrawn in place until Ctrl-C (leaving Live restores the
    cursor; @command makes the KeyboardInterrupt exit 130)."""
    down_since: str | None = None
    with Live(view(_now(), None), console=Console(), auto_refresh=False) as live:  # drawn at each update
        while True:
            now = _now()
            try:
                report = take()
            except psycopg.OperationalError as exc:
                down_since = down_since or now
                live.update(view(now, None, down_line(down_since, one_line(exc) or str(exc))), refresh=True)
            else:
                down_since = None
                live.update(view(now, report), refresh=True)
            time.sleep(seconds)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def check_grants(config: PlatformConfig, dsn: str, as_json: bool) -> int:
    failures = grants.check_grants(config, dsn) + lockdown_problems(config, dsn)
    if as_json:
        print(json.dumps({"problems": failures, "failures": failures}))  # failures: the 0.3.0 name
    else:
        print("\n".join(problem_lines(failures)) or "grants as planned")
    return 1 if failures else 0


def watch_piped(take: Callable[[], dict[str, Any]], seconds: float, as_json: bool) -> int:
    """--watch into a pipe or file: one stamped report per refresh (--json: one object a line)."""
    watch = Watch(as_json)
    while True:
        try:
            report = take()
        except psycopg.OperationalError as exc:
            print(watch.down(exc), flush=True)
        else:
            print(watch.up(report), flush=True)
        time.sleep(seconds)


def members_report(
    config: PlatformConfig, url: str, ca_file: Path | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Patroni's members (GET /cluster) and the problems with them; Patroni not answering is one too."""
    failover = config.hetzner.failover if config.hetzner is not None else None
    try:
        patroni = Patroni(url, ca_file=ca_file)
    except PatroniError as exc:  # a CA file it cannot use: nothing to ask with
        raise CannotRun(str(exc)) from exc
    try:
        found = patroni.cluster()
    except PatroniError as exc:
        return [], [{"problem": str(exc), "fix": "is Patroni running there? ask another member's --patroni-url"}]
    problems = member_problems(found, failover.maximum_lag_on_failover if failover else None)
    return [dataclasses.asdict(m) for m in found], problems


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    add_connection_arguments(parser, "a superuser (or pg_monitor) connection to the server")
    add_connection_arguments(
        parser,
        "also PgBouncer's admin console (dbname=pgbouncer, a stats or admin user): waiting clients",
        name="pgbouncer-dsn",
        required=False,
    )
    parser.add_argument(
        "--patroni-url",
        help="also a member's Patroni REST API (http(s)://host:8008): each member's role, lag, timeline",
    )
    parser.add_argument("--patroni-ca", type=Path, help=PATRONI_CA_HELP)
    parser.add_argument("--json", action="store_true", help="print only the JSON report")
    parser.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until interrupted")
    parser.add_argument(
        "--check-grants", action="store_true", help="instead: roles, grants, default privileges against the plan"
    )
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen = load_chosen(args)
    dsn = chosen_dsn(args)
    given = args.pgbouncer_dsn is not None or args.pgbouncer_dsn_file is not None
    pgbouncer = chosen_dsn(args, "pgbouncer-dsn") if given else None
    if chosen is None or dsn is None or (given and pgbouncer is None):
        return COULD_NOT_RUN
    config = chosen.config
    if args.check_grants:
        return check_grants(config, dsn, args.json)

    def take() -> dict[str, Any]:
        report = live_budget.assess(config, live_budget.snapshot(dsn))
        report["problems"] += lockdown_problems(config, dsn)
        if pgbouncer is not None:
            report["pgbouncerPools"] = live_budget.pgbouncer_pools(pgbouncer)
            report["problems"] += live_budget.waiting_problems(report["pgbouncerPools"])
        if args.patroni_url:
            report["members"], problems = members_report(config, args.patroni_url, args.patroni_ca)
            report["problems"] += problems
        return report

    if args.watch is None:
        report = take()
        print(json.dumps(report) if args.json else render(report), flush=True)
        return 1 if report["problems"] else 0
    if sys.stdout.isatty() and not args.json:
        return watch_live(take, args.watch)
    return watch_piped(take, args.watch, args.json)
