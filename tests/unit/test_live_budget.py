"""The live budget's pure parts: each drift a {problem, fix}, the text and piped --watch output, the
terminal's --watch view (rendered as a terminal 100 columns wide would show it)."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from rich.console import Console

from postgres_platform.cli import live_budget as cli
from postgres_platform.model import budget
from postgres_platform.model.load import parse
from postgres_platform.ops import live_budget
from postgres_platform.ops.live_budget import Role, Snapshot, SuperuserSession
from tests.helpers import valid_config

CONFIG = parse(valid_config())  # max_connections 100; webhook_app 10, worker_app 5, gateway_app 15, grafana_ro 5
# Every role the budget declares, with its limit (webhook_app holding 2), and the superuser.
AS_DECLARED = (
    *(
        Role(e.role, False, e.limit, 2 if e.role == "webhook_app" else 0)
        for e in budget.entries(CONFIG)
        if e.role != budget.PGBACKREST  # the backup process, no role of its own
    ),
    Role("postgres", True, -1, 0),
)


def snapshot(*roles: Role, max_connections: int = 100, sessions: tuple[SuperuserSession, ...] = ()) -> Snapshot:
    return Snapshot(max_connections, 3, 0, roles, sessions)


def replaced(name: str, **changes: Any) -> tuple[Role, ...]:
    return tuple(Role(**{**r.__dict__, **changes}) if r.name == name else r for r in AS_DECLARED)


def problems(live: Snapshot) -> dict[str, str]:
    found = live_budget.assess(CONFIG, live)["problems"]
    assert all(set(p) == {"problem", "fix"} and p["fix"] for p in found), found
    return {p["problem"]: p["fix"] for p in found}


def test_a_server_as_declared_has_no_problem() -> None:
    report = live_budget.assess(CONFIG, snapshot(*AS_DECLARED))
    assert report["problems"] == [] and (report["usable"], report["connected"]) == (97, 2)


def test_a_role_at_its_limit_says_which_key_raises_it_and_how_to_find_the_holders() -> None:
    found = problems(snapshot(*replaced("worker_app", connections=5)))
    fix = found["role worker_app is at its limit: 5 of 5"]
    assert fix.startswith("raise apps.worker_app.connectionLimit in the stack") and "--watch" in fix


def test_an_undeclared_role_is_to_be_declared_with_room_for_what_it_holds_or_moved() -> None:
    found = problems(snapshot(*AS_DECLARED, Role("rogue", False, -1, 3)))
    fix = found["role rogue is not declared but holds 3 connection(s)"]
    assert "externalRoles (rogue: connectionLimit: 3 or more)" in fix and "move its clients" in fix
    assert len(found) == 1  # no limit on the server: not at one


def test_a_changed_limit_names_pulumi_up_and_the_stack_key() -> None:
    found = problems(snapshot(*replaced("webhook_app", limit=8)))
    fix = found["role webhook_app has CONNECTION LIMIT 8 on the server, 10 declared"]
    assert "`pulumi up`" in fix and "apps.webhook_app.connectionLimit to 8" in fix


def test_missing_roles_max_connections_and_too_many_connections() -> None:
    roles = (*(r for r in AS_DECLARED if r.name != "grafana_ro"), Role("batch", False, -1, 96))
    found = problems(snapshot(*roles, max_connections=100))
    assert "`pulumi up` creates it" in found["role grafana_ro is declared (limit 5) but missing on the server"]
    assert "--watch" in found["98 client connections, more than the 97 usable slots"]
    found = problems(snapshot(*AS_DECLARED, max_connections=200))
    assert "postgres.maxConnections: 200" in found["max_connections is 200 on the server, 100 in the config"]


def test_a_pool_with_clients_waiting_is_a_problem_naming_its_limit() -> None:
    pools = [
        {"database": "worker_app", "user": "worker_app", "active": 5, "waiting": 2, "maxWaitSeconds": 1.25},
        {"database": "webhook_app", "user": "webhook_app", "active": 1, "waiting": 0, "maxWaitSeconds": 0.0},
    ]
    (waiting,) = live_budget.waiting_problems(pools)
    assert waiting["problem"] == (
        "2 client(s) of worker_app wait in PgBouncer's worker_app pool (the oldest 1.2 s): its pool is full"
    )
    assert "apps.worker_app.connectionLimit" in waiting["fix"] and "pg_stat_activity" in waiting["fix"]


def report_with_problems() -> dict[str, Any]:
    sessions = (SuperuserSession("tracksolid_db", "psql", None, 2),)
    roles = (*replaced("worker_app", connections=5), Role("postgres_exporter", False, -1, 1))
    report = live_budget.assess(CONFIG, snapshot(*roles, sessions=sessions))
    report["pgbouncerPools"] = [
        {"database": "worker_app", "user": "worker_app", "active": 5, "waiting": 3, "maxWaitSeconds": 2.0}
    ]
    report["problems"] += live_budget.waiting_problems(report["pgbouncerPools"])  # as the command adds them
    return report


def test_the_text_prints_each_problem_then_its_fix() -> None:
    report = report_with_problems()
    lines = cli.render(report).splitlines()
    at = lines.index("problem: role worker_app is at its limit: 5 of 5")
    assert lines[at + 1].startswith("  fix: raise apps.worker_app.connectionLimit")
    assert "superuser: 2 in tracksolid_db from psql at local socket" in lines
    assert lines[-1].startswith("  fix: ") and len([line for line in lines if line.startswith("problem: ")]) == 3
    assert cli.render(live_budget.assess(CONFIG, snapshot(*AS_DECLARED))).endswith("\nno problems")


def test_piped_watch_output_is_stamped_and_down_says_since_when() -> None:
    watch = cli.Watch(as_json=False)
    up = watch.up(live_budget.assess(CONFIG, snapshot(*AS_DECLARED))).splitlines()
    assert re.fullmatch(r"--- \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", up[0])
    assert "webhook_app            ####................ 2/10" in up
    first = watch.down(psycopg.OperationalError("connection refused\nsecond address"))
    again = watch.down(psycopg.OperationalError("connection refused"))
    since = first.split("server down since ")[1].split(": ")[0]
    assert again.endswith("connection refused (check the DSN's host, port, user, password, sslmode) (retrying)")
    assert f"server down since {since}: cannot connect or query the server: connection refused" in again


def rendered(renderable: Any) -> str:
    console = Console(record=True, width=100)
    console.print(renderable)
    return console.export_text()


def test_the_terminal_view_draws_each_role_against_its_limit_with_the_problems() -> None:
    text = rendered(cli.view("2026-12-03 09:00:00 UTC", report_with_problems()))
    lines = text.splitlines()
    assert lines[0].strip() == "live budget at 2026-12-03 09:00:00 UTC"
    rows = {line.split()[1]: line for line in lines if line.startswith("│")}
    assert rows["worker_app"].count("━") == cli.BAR and "5/5" in rows["worker_app"]  # at its limit: full
    assert rows["webhook_app"].count("━") == cli.BAR * 2 // 10 and "2/10" in rows["webhook_app"]
    assert rows["gateway_app"].count("━") == 0 and "0/15" in rows["gateway_app"]
    assert "no limit" in rows["postgres"] and "superuser" in rows["postgres"]
    assert "undeclared" in rows["postgres_exporter"]
    assert "superuser: 2 in tracksolid_db from psql at local socket" in lines
    assert "pgbouncer worker_app/worker_app: 5 active, 3 waiting (the oldest 2.0 s)" in lines
    assert "problem: role worker_app is at its limit: 5 of 5" in lines
    fixes = [line for line in lines if line.startswith("  fix: ")]
    assert len(fixes) == 3  # at its limit, undeclared, the pool
    assert "no problems" not in text


def test_the_terminal_view_of_a_server_as_declared_and_of_one_down() -> None:
    text = rendered(cli.view("2026-12-03 09:00:00 UTC", live_budget.assess(CONFIG, snapshot(*AS_DECLARED))))
    assert "no problems" in text and "97 usable" in text
    down = cli.down_line("2026-12-03 08:59:00 UTC", "cannot connect or query the server: refused")
    lines = rendered(cli.view("2026-12-03 09:00:05 UTC", None, down)).splitlines()
    assert [line.strip() for line in lines] == [
        "live budget at 2026-12-03 09:00:05 UTC",
        "server down since 2026-12-03 08:59:00 UTC: cannot connect or query the server: refused (retrying)",
    ]
