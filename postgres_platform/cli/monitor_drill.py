"""Monitoring drill: the stack's generated alert rules evaluated by a real Prometheus on real exporters,
their alerts delivered by a real Alertmanager to a webhook this command runs.

    python scripts/monitor_drill.py [--stack local] [--json]

Starts PostgreSQL and PgBouncer with the stack's rendered config (the harness, archiving to a posix
pgBackRest repository, one full backup taken and verified by the host's restore job, so the backup-age
and restore rules are quiet), postgres_exporter with
the custom queries of render/monitoring.py and pgbouncer_exporter, both logged in as the monitoring
role, Prometheus with the rules and Alertmanager posting to an http.server on loopback (its URL read
from `url_file`): the containers the stacks declare (render/monitoring_containers.py), their config
directories written by the program's install script, on the host network, every port on 127.0.0.1.
The rules are the stack's but for two things, in the drill's copy only: every `for:` is 0s and the
intervals are 1s, so a phase takes seconds, not minutes.

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
import dataclasses
import json
import os
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import yaml

from postgres_platform.cli import errors
from postgres_platform.harness.docker import docker, remove
from postgres_platform.harness.ports import free_ports
from postgres_platform.harness.servers import Servers
from postgres_platform.model import budget
from postgres_platform.model.config import AlertmanagerConfig, PlatformConfig
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import LOOPBACK, MONITORING_ROLE
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.ops import restore_check
from postgres_platform.render import monitoring, pgbouncer
from postgres_platform.render import monitoring_containers as mc
from postgres_platform.render.backup import RepoSecrets, command
from postgres_platform.render.containers import CONFIG, ContainerSpec, MountSource
from postgres_platform.render.files import File, install_input, install_script

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


def prometheus_config(targets: dict[str, list[str]], alertmanager: str) -> dict[str, Any]:
    """The stacks' Prometheus config (monitoring_containers), every second: scrape jobs named as the rules
    expect them (monitoring.job)."""
    return mc.prometheus_config(targets, [alertmanager], interval=INTERVAL, timeout=INTERVAL)


def alertmanager_config() -> dict[str, Any]:
    """The stacks' webhook receiver (its URL read from url_file), but every alert its own group (grouped
    by all labels), sent at once, resolved ones too."""
    config = mc.alertmanager_config(AlertmanagerConfig(receiver="webhook"))
    config["route"] |= {
        "group_by": ["..."],
        "group_wait": INTERVAL,
        "group_interval": INTERVAL,
        "repeat_interval": "1h",
    }
    return config


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

    def run(self, spec: ContainerSpec, sources: dict[str, MountSource[str]], extra: Sequence[str] = ()) -> None:
        """The spec under this drill's name (its label the key): `docker run` on the host network."""
        named = dataclasses.replace(spec, name=f"{self.prefix}-{spec.label}")
        try:
            done = docker(*named.docker_run(sources, extra_args=extra)[1:])
        except RuntimeError:
            remove(named.name)
            raise
        self.ids[spec.label] = done.stdout.strip()

    def stop(self, label: str) -> None:
        remove(self.ids.pop(label))

    def remove_all(self) -> None:
        remove(*self.ids.values())
        self.ids.clear()


def install(directory: Path, owner: str, files: Sequence[File[str]]) -> MountSource[str]:
    """A config directory written by the program's own install script (render.files), as on a host."""
    script = install_script(str(directory), owner, "true")
    subprocess.run(["sh", "-c", script], input=install_input(list(files)), text=True, check=True, timeout=60)
    return MountSource(str(directory))


def data_dir(directory: Path, owner: str) -> MountSource[str]:
    """A storage directory for Prometheus or Alertmanager (a volume on a stack), owned by its user."""
    directory.mkdir(mode=0o700)
    if os.getuid() == 0:
        os.chown(directory, int(owner), int(owner))
    else:
        directory.chmod(0o777)  # no chown without root: the container's user must still write there
    return MountSource(str(directory))


def start_monitoring(servers: Servers, stack: str, started: Started, receiver_port: int, work: Path) -> int:
    """The exporters, Prometheus and Alertmanager from the stacks' specs and files (monitoring_containers),
    on loopback; returns Prometheus' port."""
    config = servers.config
    password = servers.passwords[MONITORING_ROLE]
    ports = dict(zip(mc.MONITORING_LABELS, free_ports(len(mc.MONITORING_LABELS)), strict=True))
    listen = {label: mc.Address(LOOPBACK, port) for label, port in ports.items()}
    work.chmod(0o755)  # the containers' users traverse it to their directories

    def config_dir(label: str, owner: str, files: Sequence[File[str]]) -> dict[str, MountSource[str]]:
        return {CONFIG: install(work / label, owner, files)}

    postgres = mc.Upstream(mc.Address(LOOPBACK, servers.pg_port), tls=False)
    started.run(
        mc.postgres_exporter_container(stack, listen[mc.POSTGRES_EXPORTER], postgres),
        config_dir(mc.POSTGRES_EXPORTER, mc.NOBODY_UID, mc.postgres_exporter_files(config, password, None)),
    )
    pgbouncer_ = mc.Upstream(mc.Address(LOOPBACK, servers.pgbouncer_port), tls=False)
    started.run(
        mc.pgbouncer_exporter_container(stack, listen[mc.PGBOUNCER_EXPORTER], pgbouncer_),
        config_dir(mc.PGBOUNCER_EXPORTER, mc.NOBODY_UID, mc.pgbouncer_exporter_files(password, None)),
    )
    alertmanager = AlertmanagerConfig(receiver="webhook")
    am_files = [
        File(mc.ALERTMANAGER_CONFIG, "0644", yaml.safe_dump(alertmanager_config(), sort_keys=False)),
        mc.receiver_secret_file(alertmanager, f"http://{LOOPBACK}:{receiver_port}/"),
    ]
    started.run(
        mc.alertmanager_container(stack, listen[mc.ALERTMANAGER]),
        {
            **config_dir(mc.ALERTMANAGER, mc.NOBODY_UID, am_files),
            mc.DATA: data_dir(work / "alertmanager-data", mc.NOBODY_UID),
        },
    )
    targets = {
        monitoring.job("primary"): [str(listen[mc.POSTGRES_EXPORTER])],
        "pgbouncer": [str(listen[mc.PGBOUNCER_EXPORTER])],
    }
    prometheus = prometheus_config(targets, str(listen[mc.ALERTMANAGER]))
    prom_files = [
        File(mc.PROMETHEUS_CONFIG, "0644", yaml.safe_dump(prometheus, sort_keys=False)),
        File(mc.RULES, "0644", yaml.safe_dump(drill_rules(config, stack), sort_keys=False, width=1000)),
    ]
    started.run(
        mc.prometheus_container(
            stack, listen[mc.PROMETHEUS], config.monitoring.retention, extra=[f"--rules.alert.resend-delay={INTERVAL}"]
        ),
        {
            **config_dir(mc.PROMETHEUS, mc.PROMETHEUS_UID, prom_files),
            mc.DATA: data_dir(work / "prometheus-data", mc.PROMETHEUS_UID),
        },
    )
    for label, container in started.ids.items():  # the secrets are in files only, as on a stack
        if password in docker("inspect", container).stdout:
            raise RuntimeError(f"the monitoring password shows in `docker inspect` of the {label} container")
    return ports[mc.PROMETHEUS]


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
            # ...and the host's verified-restore job run on it (render/restore_check), so its rules are quiet too.
            verified = restore_check.run_job(servers.verify_job())
            if verified.returncode != 0:
                raise RuntimeError(f"the verified restore failed: {verified.stdout.strip()[-300:]}")
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
                started.stop(mc.POSTGRES_EXPORTER)
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
