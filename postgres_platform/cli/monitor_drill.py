"""Monitoring drill: the stack's generated alert rules evaluated by a real Prometheus on real exporters,
their alerts delivered by a real Alertmanager to a webhook this command runs.

    python scripts/monitor_drill.py [--stack local] [--json]

Starts PostgreSQL and PgBouncer with the stack's rendered config (the harness, archiving to a posix
pgBackRest repository, one full backup taken so the backup-age rule is quiet), postgres_exporter with
the custom queries of render/monitoring.py and pgbouncer_exporter, both logged in as the monitoring
role, Prometheus with the rules and Alertmanager posting to an http.server on loopback: every container
on the host network, every port on 127.0.0.1. The rules are the stack's but for two things, in the
drill's copy only: every `for:` is 0s and the intervals are 1s, so a phase takes seconds, not minutes.

Phases: idle (only the Watchdog fires); storm (one app's CONNECTION LIMIT held, half pooled and half
direct: its 90% alert fires labelled with the role, no other app's); archive (pgBackRest's archive-push
pointed at a repository that does not exist, a WAL switch: the archiving alert fires); down (the
postgres exporter stopped: its absence alert fires). --json prints only {"phases": [{"phase",
"firing": [{"alert", "role"}], "seconds"}], "role"}. Exit 1 when a phase misses its alert or fires one
it should not; everything started is stopped and removed at the end, whatever failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import yaml

from postgres_platform.cli import errors
from postgres_platform.harness.docker import docker, remove
from postgres_platform.harness.ports import free_port
from postgres_platform.harness.servers import Servers
from postgres_platform.model import budget
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.images import (
    ALERTMANAGER_028,
    PGBOUNCER_EXPORTER_010,
    POSTGRES_EXPORTER_017,
    PROMETHEUS_253,
)
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import LOOPBACK, MONITORING_ROLE, PGBOUNCER_CONSOLE_DB
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render import monitoring, pgbouncer
from postgres_platform.render.backup import RepoSecrets, command

INTERVAL = "1s"  # scrape, evaluation, Alertmanager's grouping: the drill's, never a stack's
PHASE_SECONDS = 90  # the longest a phase waits for its alert (bounded loops, whatever the machine)
QUIET_SECONDS = 6  # after the expected alerts arrived: long enough for an unwanted one to arrive too
BROKEN_REPO = "/nonexistent/monitor-drill-repo"  # where archive-push is pointed in the archive phase


@dataclass(frozen=True)
class Firing:
    alert: str
    role: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"alert": self.alert, "role": self.role}


@dataclass(frozen=True)
class Phase:
    """What a phase must see fire (`expected`) and what may fire beside it (`allowed`)."""

    name: str
    expected: frozenset[Firing]
    allowed: frozenset[str] = frozenset()  # alert names, any role

    def problems(self, firing: set[Firing]) -> list[str]:
        missing = [f"{f.alert}{{role={f.role}}}" for f in sorted(self.expected - firing, key=str)]
        extra = [
            f"{f.alert}{{role={f.role}}}"
            for f in sorted(firing - self.expected, key=str)
            if f.alert not in self.allowed
        ]
        return [
            f"{self.name}: {what} {', '.join(names)}"
            for what, names in (("missed", missing), ("fired", extra))
            if names
        ]


WATCHDOG = Firing("Watchdog", None)


def phases(app: str) -> list[Phase]:
    """The expected firing set per phase; `app` is the stormed role. An alert raised in a phase may still
    be firing in the next (the archive rule's rate window spans minutes): allowed there, never expected."""
    return [
        Phase("idle", frozenset({WATCHDOG})),
        Phase(
            "storm",
            frozenset({WATCHDOG, Firing("PostgresRoleConnections90", app), Firing("PostgresRoleConnections75", app)}),
        ),
        Phase("archive", frozenset({WATCHDOG, Firing("PostgresWalArchivingFailing", None)})),
        Phase(
            "down",
            frozenset({WATCHDOG, Firing("ExporterDown", None)}),
            allowed=frozenset({"PostgresWalArchivingFailing"}),
        ),
    ]


def drill_rules(config: PlatformConfig, stack: str) -> dict[str, Any]:
    """The stack's rules with every `for:` at 0s (the drill's copy only: a stack's rules keep theirs)."""
    rules = monitoring.rules(config, stack)
    for group in rules["groups"]:
        group["interval"] = INTERVAL
        for rule in group["rules"]:
            rule["for"] = "0s"
    return rules


def prometheus_config(postgres_exporter: int, pgbouncer_exporter: int, alertmanager: int) -> dict[str, Any]:
    """Scrape jobs named as the rules expect them (monitoring.job), every second."""
    targets = {monitoring.job("primary"): postgres_exporter, "pgbouncer": pgbouncer_exporter}
    return {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL, "scrape_timeout": INTERVAL},
        "rule_files": ["/etc/drill/rules.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{LOOPBACK}:{alertmanager}"]}]}]},
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [f"{LOOPBACK}:{port}"]}]}
            for name, port in targets.items()
        ],
    }


def alertmanager_config(webhook: int) -> dict[str, Any]:
    """Every alert its own group (grouped by all labels), sent at once, resolved ones too."""
    return {
        "route": {
            "receiver": "drill",
            "group_by": ["..."],
            "group_wait": INTERVAL,
            "group_interval": INTERVAL,
            "repeat_interval": "1h",
        },
        "receivers": [
            {"name": "drill", "webhook_configs": [{"url": f"http://{LOOPBACK}:{webhook}/", "send_resolved": True}]}
        ],
    }


@dataclass
class Receiver:
    """The webhook Alertmanager posts to: the latest status of each alert (by fingerprint)."""

    state: dict[str, tuple[Firing, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, payload: dict[str, Any]) -> None:
        with self.lock:
            for alert in payload.get("alerts", []):
                labels = alert.get("labels", {})
                found = Firing(str(labels.get("alertname")), labels.get("role") or None)
                self.state[str(alert.get("fingerprint"))] = (found, str(alert.get("status")))

    def firing(self) -> set[Firing]:
        with self.lock:
            return {found for found, status in self.state.values() if status == "firing"}


@contextlib.contextmanager
def webhook(receiver: Receiver) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.take(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


class Started:
    """Containers this drill started, by id, all removed at the end."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.ids: dict[str, str] = {}

    def run(self, name: str, image: str, options: list[str], arguments: list[str]) -> None:
        full = f"{self.prefix}-{name}"
        try:
            done = docker("run", "-d", "--name", full, "--network", "host", *options, image, *arguments)
        except RuntimeError:
            remove(full)
            raise
        self.ids[name] = done.stdout.strip()

    def stop(self, name: str) -> None:
        remove(self.ids.pop(name))

    def remove_all(self) -> None:
        remove(*self.ids.values())
        self.ids.clear()


def _write(directory: Path, name: str, text: str, mode: int = 0o644) -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(mode)
    return path


def start_monitoring(servers: Servers, stack: str, started: Started, receiver_port: int, work: Path) -> int:
    """The exporters, Prometheus and Alertmanager; returns Prometheus' port."""
    config = servers.config
    password = servers.passwords[MONITORING_ROLE]
    ports = {name: free_port() for name in ("postgres", "pgbouncer", "prometheus", "alertmanager", "cluster")}
    work.chmod(0o755)
    # The exporters read their logins from env files (never a command line), readable by their user only
    # through the container: the files are the drill's own and removed with it.
    _write(work, "queries.yml", monitoring.queries_yaml(config))
    pg_env = _write(
        work,
        "postgres.env",
        f"DATA_SOURCE_URI={LOOPBACK}:{servers.pg_port}/postgres?sslmode=disable\n"
        f"DATA_SOURCE_USER={MONITORING_ROLE}\nDATA_SOURCE_PASS={password}\n",
        0o600,
    )
    console = f"postgres://{MONITORING_ROLE}:{password}@{LOOPBACK}:{servers.pgbouncer_port}/{PGBOUNCER_CONSOLE_DB}"
    bouncer_env = _write(
        work, "pgbouncer.env", f"PGBOUNCER_EXPORTER_CONNECTION_STRING={console}?sslmode=disable\n", 0o600
    )
    _write(work, "rules.yml", yaml.safe_dump(drill_rules(config, stack), sort_keys=False, width=1000))
    _write(
        work,
        "prometheus.yml",
        yaml.safe_dump(prometheus_config(ports["postgres"], ports["pgbouncer"], ports["alertmanager"])),
    )
    _write(work, "alertmanager.yml", yaml.safe_dump(alertmanager_config(receiver_port)))
    mount = ["-v", f"{work}:/etc/drill:ro"]
    listen = {name: f"--web.listen-address={LOOPBACK}:{port}" for name, port in ports.items()}
    queries = "--extend.query-path=/etc/drill/queries.yml"
    started.run("postgres-exporter", POSTGRES_EXPORTER_017.reference, ["--env-file", str(pg_env), *mount],
                [listen["postgres"], queries])  # fmt: skip
    started.run("pgbouncer-exporter", PGBOUNCER_EXPORTER_010.reference, ["--env-file", str(bouncer_env)],
                [listen["pgbouncer"]])  # fmt: skip
    started.run("alertmanager", ALERTMANAGER_028.reference, mount, [
        "--config.file=/etc/drill/alertmanager.yml", "--storage.path=/var/lib/alertmanager",
        listen["alertmanager"], f"--cluster.listen-address={LOOPBACK}:{ports['cluster']}",
    ])  # fmt: skip
    started.run("prometheus", PROMETHEUS_253.reference, ["--entrypoint", "prometheus", *mount], [
        "--config.file=/etc/drill/prometheus.yml", "--storage.tsdb.path=/tmp/prometheus",
        listen["prometheus"], f"--rules.alert.resend-delay={INTERVAL}",
    ])  # fmt: skip
    return ports["prometheus"]


def wait_for(receiver: Receiver, phase: Phase, deadline: float) -> set[Firing]:
    """Until the expected alerts fire (bounded), then QUIET_SECONDS more for any unwanted one."""
    while time.monotonic() < deadline and not phase.expected <= receiver.firing():
        time.sleep(0.5)
    quiet = min(deadline, time.monotonic() + QUIET_SECONDS)
    while time.monotonic() < quiet:
        time.sleep(0.5)
    return receiver.firing()


def settle(receiver: Receiver, keep: Callable[[Firing], bool], seconds: float) -> None:
    """Until only the alerts `keep` accepts still fire (a phase's own resolved), bounded."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(keep(f) for f in receiver.firing()):
        time.sleep(0.5)


def stormed_app(config: PlatformConfig) -> budget.Entry:
    """The app the storm holds at its limit: the one with the smallest CONNECTION LIMIT (fewest sockets)."""
    (server, *_) = budget.compute(config)
    return min((e for e in server.entries if e.kind == "app"), key=lambda e: (e.limit, e.role))


def storm(servers: Servers, app: budget.Entry) -> list[psycopg.Connection[Any]]:
    """The app's CONNECTION LIMIT held, pooled and direct: half through its pool (each client in an open
    transaction, so transaction pooling pins a server connection to it), the rest direct."""
    pool = next((p for p in pgbouncer.pools(servers.config) if app.role in p.users), None)
    pooled = min(pool.pool_size, app.limit // 2) if pool is not None else 0
    held: list[psycopg.Connection[Any]] = []
    try:
        for _ in range(pooled):
            assert pool is not None
            conn = psycopg.connect(servers.dsn(app.role, pool.name, pooled=True), prepare_threshold=None)
            conn.execute("SELECT 1")  # BEGIN: the server connection stays this client's
            held.append(conn)
        direct = servers.dsn(app.role, app.database or "postgres", pooled=False)
        held += [psycopg.connect(direct, autocommit=True) for _ in range(app.limit - pooled)]
    except BaseException:
        close_all(held)
        raise
    return held


def archive_broken(servers: Servers) -> None:
    """archive-push to a repository path that does not exist, then a WAL switch with something in it."""
    with psycopg.connect(servers.superuser_dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('archive_command')").fetchone()
        current = str(row[0]) if row else ""
        broken = current.replace("pgbackrest ", f"pgbackrest --repo1-path={BROKEN_REPO} ", 1)
        conn.execute(psycopg.sql.SQL("ALTER SYSTEM SET archive_command = {}").format(psycopg.sql.Literal(broken)))
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("CREATE TEMP TABLE drill AS SELECT g FROM generate_series(1, 1000) g")
        conn.execute("SELECT pg_switch_wal()")


def close_all(held: list[psycopg.Connection[Any]]) -> None:
    for conn in held:
        conn.close()
    held.clear()


def run(config: PlatformConfig, stack: str) -> dict[str, Any]:
    app = stormed_app(config)
    plan = phases(app.role)
    receiver = Receiver()
    results: list[dict[str, Any]] = []
    problems: list[str] = []
    repo_secrets = RepoSecrets(cipher_pass=secrets.token_hex(32))
    started = Started(f"monitor-drill-{secrets.token_hex(4)}")
    with contextlib.ExitStack() as stack_of, tempfile.TemporaryDirectory(prefix="pgplat-monitor-") as tmp:
        stack_of.callback(started.remove_all)
        servers = stack_of.enter_context(Servers(config, backup_secrets=repo_secrets))
        if config.backup is not None:  # a backup, so the backup-age rule has one to be quiet about
            for argv in (command("stanza-create"), command("--type=full", "backup", backup=config.backup)):
                done = servers.pgbackrest(argv)
                if done.returncode != 0:
                    raise RuntimeError(f"pgbackrest {argv[-1]} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        port = stack_of.enter_context(webhook(receiver))
        start_monitoring(servers, stack, started, port, Path(tmp))
        held: list[psycopg.Connection[Any]] = []
        stack_of.callback(close_all, held)
        for phase in plan:
            began = time.monotonic()
            if phase.name == "storm":
                held += storm(servers, app)
            elif phase.name == "archive":
                close_all(held)
                settle(receiver, lambda f: f == WATCHDOG, PHASE_SECONDS)
                began = time.monotonic()
                archive_broken(servers)
            elif phase.name == "down":
                started.stop("postgres-exporter")
            # The first phase also waits for the whole chain to come up (first scrape, first notification).
            firing = wait_for(receiver, phase, began + PHASE_SECONDS * (2 if phase.name == "idle" else 1))
            problems += phase.problems(firing)
            results.append(
                {
                    "phase": phase.name,
                    "firing": [f.as_dict() for f in sorted(firing, key=lambda f: (f.alert, f.role or ""))],
                    "seconds": round(time.monotonic() - began, 1),
                }
            )
    return {"phases": results, "role": app.role, "problems": problems}


@errors.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--stack", default="local", help="the stack whose config and rules the drill runs (default local)"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    result = run(load_stack_values(read_stack_values(stack_file(args.stack))), args.stack)
    problems = result.pop("problems")
    if args.json:
        print(json.dumps(result))
    else:
        for phase in result["phases"]:
            shown = ", ".join(f["alert"] + (f"{{role={f['role']}}}" if f["role"] else "") for f in phase["firing"])
            print(f"{phase['phase']:8} {phase['seconds']:6.1f} s  {shown or '(nothing)'}")
        for line in problems:
            print(f"monitor_drill: {line}")
    return 1 if problems else 0
