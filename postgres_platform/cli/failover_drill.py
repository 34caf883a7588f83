"""Failover drill: Patroni-managed PostgreSQL behind a health-checking proxy and PgBouncer, a primary
killed, a planned switchover, the old primary back as a replica.

    python scripts/failover_drill.py [--json]

Starts, on the host network with loopback ports only (as the harness's servers): three etcd members,
two PostgreSQL 17 members managed by Patroni (the shipped Postgres image, synchronous_mode on),
HAProxy sending connections only to the member whose Patroni answers 200 on /primary (where the
Hetzner load balancer stands), and PgBouncer (the shipped image, transaction pooling) pointed at it.
Writer clients insert through the pooled DSN and record each acknowledged commit.

1. failover: SIGKILL the primary's container (`docker kill`), time until writes succeed again;
2. rejoin: start the killed member again; it must come back as a streaming replica of the new
   primary (Patroni runs pg_rewind) on its timeline;
3. switchover: PgBouncer PAUSE, Patroni's POST /switchover to the old primary, wait until the proxy
   routes to it, RESUME: clients wait instead of failing.

After each phase every commit acknowledged in it is looked up on the primary of the moment.
--json prints only {"failover": {"seconds", "acknowledged", "acknowledgedLost", "failedTransactions"},
"switchover": {...the same}, "rejoined"}. Exit 1 when an acknowledged commit is lost or the killed
member did not rejoin. Everything it started is removed at the end, whatever failed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from postgres_platform.cli import errors
from postgres_platform.harness.docker import docker, logs, remove
from postgres_platform.harness.ports import free_ports, wait_for_port
from postgres_platform.model.config import FailoverConfig
from postgres_platform.model.images import ETCD_35, HAPROXY_30, PGBOUNCER_124, POSTGRES_17
from postgres_platform.model.names import LOOPBACK, PGDATA, SUPERUSER
from postgres_platform.ops.patroni import Patroni
from postgres_platform.ops.switchover import switchover as planned_switchover
from postgres_platform.render.containers import CONFIG, DATA, ContainerSpec, MountSource
from postgres_platform.render.patroni import (
    ETCD_DATA,
    ETCD_DATA_DIR,
    PATRONI_FILE,
    SECRETS_FILE,
    durability,
    etcd_args,
    etcd_container,
    haproxy_cfg,
    patroni_container,
    patroni_secrets,
    patroni_yaml,
)
from postgres_platform.render.patroni import REST_USER as REST_USER  # the stacks' REST API user
from postgres_platform.render.scram import scram_verifier

MEMBERS = ("pg0", "pg1")
ETCD_MEMBERS = ("etcd0", "etcd1", "etcd2")
WRITERS = 4  # client threads
PAUSE_BETWEEN = 0.02  # s between one writer's commits: a bounded load
RETRY_AFTER = 0.2  # s after a failed attempt
SETTLE = 3.0  # s of writes after a phase's end, before its commits are looked up
PGBOUNCER_UID, PATRONI_UID, HAPROXY_UID, ETCD_UID_NUMBER = 70, 999, 100, 997
# The stacks' own defaults (hetzner.failover): the drill measures the failover a stack gets.
FAILOVER = FailoverConfig(enabled=True)
PARAMETERS = {"max_connections": "100", "password_encryption": "scram-sha-256", "wal_keep_size": "256MB"}


@dataclass
class Member:
    name: str
    pg_port: int
    rest_port: int
    container: str = ""
    spec: ContainerSpec | None = None  # what it was started from, on `sources`: a test replaces it the same way
    sources: dict[str, MountSource[str]] = field(default_factory=dict)

    @property
    def rest(self) -> str:
        return f"http://{LOOPBACK}:{self.rest_port}"


@dataclass
class Phase:
    acknowledged: list[int] = field(default_factory=list)
    failed: int = 0
    lost: int = 0
    seconds: float = 0.0

    def result(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "acknowledged": len(self.acknowledged),
            "acknowledgedLost": self.lost,
            "failedTransactions": self.failed,
        }


class Writers:
    """WRITERS threads inserting through the pooled DSN, each commit recorded once acknowledged, under
    the phase of the moment; a failed attempt (connect or commit) counts as a failed transaction."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.phases = {"failover": Phase(), "switchover": Phase()}
        self.phase = "failover"
        self.last_ack = 0.0  # monotonic time of the latest acknowledged commit
        self.last_ack_on: dict[int, float] = {}  # the same, by the committing server's port
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(WRITERS)]

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def _write(self, writer: int) -> None:
        sequence = 0
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True, prepare_threshold=None, connect_timeout=3)
                sequence += 1
                commit_id = writer * 10**9 + sequence
                phase = self.phase
                # The server's port says which member committed it (each has its own on the host network).
                row = conn.execute(
                    "INSERT INTO acks (id, writer) VALUES (%s, %s) RETURNING inet_server_port()", (commit_id, writer)
                ).fetchone()
                with self._lock:
                    self.phases[phase].acknowledged.append(commit_id)
                    self.last_ack = time.monotonic()
                    if row is not None:
                        self.last_ack_on[int(row[0])] = self.last_ack
                time.sleep(PAUSE_BETWEEN)
            except psycopg.Error:
                with self._lock:
                    self.phases[self.phase].failed += 1
                if conn is not None:
                    conn.close()
                    conn = None
                time.sleep(RETRY_AFTER)
        if conn is not None:
            conn.close()

    def switch(self, phase: str) -> None:
        with self._lock:
            self.phase = phase


def _wait(what: str, seconds: float, check: Callable[[], bool], interval: float = 0.25) -> float:
    """Poll `check` until true; the seconds it took. A check that raises counts as not yet."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with contextlib.suppress(OSError, ValueError, psycopg.Error):
            if check():
                return time.monotonic() - started
        time.sleep(interval)
    raise errors.CannotRun(f"failover drill: {what} did not happen within {seconds:.0f} s")


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        body = err.read()
        return err.code, json.loads(body) if body.startswith(b"{") else None


def _healthy(url: str) -> bool:
    body = _get(url)[1]
    return isinstance(body, dict) and body.get("health") == "true"


class Drill:
    """The containers on the host network, their files in one temp dir; `close` removes both."""

    def __init__(self) -> None:
        self.prefix = f"pgplat-failover-{secrets.token_hex(3)}"
        self.root = Path(tempfile.mkdtemp(prefix="pgplat-failover-"))
        self.root.chmod(0o755)  # the containers' users traverse it to their own 0700 directories
        self.containers: list[str] = []
        self.passwords = {what: secrets.token_urlsafe(24) for what in ("superuser", "replication", "rewind", "rest")}
        self.writer_password = secrets.token_urlsafe(24)
        self.admin_password = secrets.token_urlsafe(24)
        ports = iter(free_ports(2 * len(ETCD_MEMBERS) + 2 * len(MEMBERS) + 2))  # distinct: all on one host network
        self.etcd = {name: (next(ports), next(ports)) for name in ETCD_MEMBERS}
        self.members = {name: Member(name, next(ports), next(ports)) for name in MEMBERS}
        self.haproxy_port, self.pgbouncer_port = next(ports), next(ports)

    def close(self) -> None:
        remove(*self.containers)
        shutil.rmtree(self.root, ignore_errors=True)

    def _dir(self, name: str, uid: int, files: dict[str, str]) -> Path:
        """A 0700 directory of `uid`'s with 0600 files: what a container mounts read-only."""
        path = self.root / name
        path.mkdir(mode=0o700)
        for file, text in files.items():
            (path / file).write_text(text)
            (path / file).chmod(0o600)
            os.chown(path / file, uid, uid)
        os.chown(path, uid, uid)
        return path

    def _run(self, name: str, args: list[str]) -> str:
        container = f"{self.prefix}-{name}"
        self.containers.append(container)
        docker("run", "-d", "--name", container, "--network", "host", *args)
        return container

    def _start(self, spec: ContainerSpec, sources: dict[str, MountSource[str]]) -> str:
        """A container of the spec the stacks declare (render.patroni), on the drill's mount sources."""
        self.containers.append(spec.name)
        docker(*spec.docker_run(sources)[1:])
        return spec.name

    def etcd_spec(self, name: str) -> ContainerSpec:
        """The etcd member `name`, as the stacks declare one (render.patroni.etcd_container)."""
        members = {member: (f"{LOOPBACK}:{c}", f"{LOOPBACK}:{p}") for member, (c, p) in self.etcd.items()}
        flags = etcd_args(name=name, members=members, data_dir=ETCD_DATA_DIR, token=self.prefix)
        peers = [client for member, (client, _) in members.items() if member != name]
        return etcd_container(
            name=f"{self.prefix}-{name}", image=ETCD_35.reference, label="etcd", flags=flags, peers=peers
        )

    def _start_etcd_member(self, name: str) -> None:
        data = self._dir(f"{name}-data", ETCD_UID_NUMBER, {})
        self._start(self.etcd_spec(name), {ETCD_DATA: MountSource(str(data))})

    def wait_etcd(self, names: Sequence[str]) -> None:
        for name in names:
            client, _ = self.etcd[name]
            _wait(f"etcd {name} healthy", 60, functools.partial(_healthy, f"http://{LOOPBACK}:{client}/health"))

    def start_etcd(self) -> None:
        for name in ETCD_MEMBERS:
            self._start_etcd_member(name)
        self.wait_etcd(ETCD_MEMBERS)

    def replace_etcd_member(self, name: str) -> None:
        """The etcd member `name` as after its host was replaced: container and data gone, a new one of the
        same spec on an empty directory (render.patroni.ETCD_ENTRYPOINT rejoins it)."""
        remove(f"{self.prefix}-{name}")
        shutil.rmtree(self.root / f"{name}-data")
        self._start_etcd_member(name)
        self.wait_etcd([name])

    def start_member(self, member: Member) -> None:
        pg_hba = [
            "local all all peer",
            f"host replication replicator {LOOPBACK}/32 scram-sha-256",
            f"host all all {LOOPBACK}/32 scram-sha-256",
        ]
        config = patroni_yaml(
            scope=self.prefix,
            name=member.name,
            connect_address=f"{LOOPBACK}:{member.pg_port}",
            rest_address=f"{LOOPBACK}:{member.rest_port}",
            etcd_hosts=[f"{LOOPBACK}:{c}" for c, _ in self.etcd.values()],
            data_dir=PGDATA,
            bin_dir="/usr/lib/postgresql/17/bin",
            parameters=PARAMETERS,
            pg_hba=pg_hba,
            create_replica_methods=["basebackup"],
            rest_username=REST_USER,
            watchdog_mode="off",  # a container has no /dev/watchdog
            bootstraps=member.name == "pg0",
            **durability(FAILOVER),
        )
        # The passwords in the member's 0700 directory, 0600: read by Patroni beside patroni.yml, never an
        # argv or the container's environment (render.patroni.patroni_container).
        files = {Path(PATRONI_FILE).name: config, Path(SECRETS_FILE).name: self.secrets()}
        spec = patroni_container(name=f"{self.prefix}-{member.name}", image=POSTGRES_17.reference, label=member.name)
        sources = {
            CONFIG: MountSource(str(self._dir(member.name, PATRONI_UID, files))),
            DATA: MountSource(str(self._dir(f"{member.name}-data", PATRONI_UID, {}))),
        }
        member.container, member.spec, member.sources = self._start(spec, sources), spec, sources

    def secrets(self) -> str:
        p = self.passwords
        return patroni_secrets(
            superuser=p["superuser"], replication=p["replication"], rewind=p["rewind"], restapi=p["rest"]
        )

    def start_proxy_and_pooler(self) -> None:
        cfg = haproxy_cfg(
            listen=f"{LOOPBACK}:{self.haproxy_port}",
            members={m.name: (f"{LOOPBACK}:{m.pg_port}", f"{LOOPBACK}:{m.rest_port}") for m in self.members.values()},
        )
        directory = self._dir("haproxy", HAPROXY_UID, {"haproxy.cfg": cfg})
        self._run(
            "haproxy", ["--mount", f"type=bind,source={directory},target=/etc/haproxy,readonly", HAPROXY_30.reference]
        )
        wait_for_port(self.haproxy_port, 30)
        ini = "\n".join(
            [
                "[databases]",
                f"drill = host={LOOPBACK} port={self.haproxy_port} dbname=drill",
                "[pgbouncer]",
                f"listen_addr = {LOOPBACK}",
                f"listen_port = {self.pgbouncer_port}",
                "unix_socket_dir =",
                "auth_type = scram-sha-256",
                "auth_file = /etc/pgbouncer/userlist.txt",
                "admin_users = drill_admin",
                "pool_mode = transaction",
                "max_client_conn = 100",
                "default_pool_size = 10",
                "query_wait_timeout = 60",
                "server_login_retry = 1",
                "server_connect_timeout = 3",
                "server_reset_query = DISCARD ALL",
                "ignore_startup_parameters = extra_float_digits",
            ]
        )
        users = f'"writer" "{self.writer_password}"\n"drill_admin" "{self.admin_password}"\n'
        directory = self._dir("pgbouncer", PGBOUNCER_UID, {"pgbouncer.ini": ini + "\n", "userlist.txt": users})
        mount = f"type=bind,source={directory},target=/etc/pgbouncer,readonly"
        self._run("pgbouncer", ["--mount", mount, PGBOUNCER_124.reference])
        wait_for_port(self.pgbouncer_port, 30)

    # -- Patroni's view ------------------------------------------------------------------------------

    def cluster(self) -> dict[str, dict[str, Any]]:
        """Members by name, as any answering member's GET /cluster shows them."""
        for member in self.members.values():
            with contextlib.suppress(OSError, ValueError):
                status, body = _get(f"{member.rest}/cluster")
                if status == 200 and body:
                    return {m["name"]: m for m in body.get("members", [])}
        return {}

    def leader(self) -> Member | None:
        for name, state in self.cluster().items():
            if state.get("role") == "leader" and state.get("state") == "running":
                return self.members[name]
        return None

    def is_primary(self, member: Member) -> bool:
        with contextlib.suppress(OSError, ValueError):
            return _get(f"{member.rest}/primary")[0] == 200
        return False

    def streaming_replica(self, member: Member, *, sync: bool) -> bool:
        members = self.cluster()
        state, leader = members.get(member.name, {}), self.leader()
        leader_state = members.get(leader.name, {}) if leader else {}
        roles = {"sync_standby"} if sync else {"sync_standby", "replica"}
        return (
            state.get("role") in roles
            and state.get("state") == "streaming"
            and state.get("timeline") == leader_state.get("timeline")
        )

    # -- DSNs ----------------------------------------------------------------------------------------

    def superuser_dsn(self, port: int, dbname: str = "drill") -> str:
        password = self.passwords["superuser"]
        return f"host={LOOPBACK} port={port} dbname={dbname} user={SUPERUSER} password={password} connect_timeout=3"

    def pooled_dsn(self) -> str:
        return (
            f"host={LOOPBACK} port={self.pgbouncer_port} dbname=drill user=writer "
            f"password={self.writer_password} connect_timeout=3"
        )

    def console_dsn(self) -> str:
        return (
            f"host={LOOPBACK} port={self.pgbouncer_port} dbname=pgbouncer user=drill_admin "
            f"password={self.admin_password} connect_timeout=3"
        )

    def prepare_database(self, primary: Member) -> None:
        with psycopg.connect(self.superuser_dsn(primary.pg_port, "postgres"), autocommit=True) as conn:
            # A SCRAM verifier, never the password, in the statement (a statement log would keep it).
            verifier = scram_verifier(self.writer_password, secrets.token_bytes(16))
            conn.execute(f"CREATE ROLE writer LOGIN PASSWORD '{verifier}'")
            conn.execute("CREATE DATABASE drill OWNER writer")
        with psycopg.connect(self.superuser_dsn(primary.pg_port), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE acks (id bigint PRIMARY KEY, writer int, at timestamptz DEFAULT clock_timestamp())"
            )
            conn.execute("ALTER TABLE acks OWNER TO writer")

    def lost(self, primary: Member, ids: list[int]) -> int:
        """How many of these acknowledged commits the primary does not have."""
        with psycopg.connect(self.superuser_dsn(primary.pg_port)) as conn:
            row = conn.execute("SELECT count(*) FROM acks WHERE id = ANY(%s)", (ids,)).fetchone()
        return len(ids) - int(row[0] if row else 0)

    def routed_to(self, member: Member) -> bool:
        """A connection through the proxy lands on this member, and it takes writes."""
        with psycopg.connect(self.superuser_dsn(self.haproxy_port)) as conn:
            row = conn.execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone()
        return row is not None and row[0] == member.pg_port and row[1] is False


def progress(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"failover drill: {message}", file=sys.stderr, flush=True)


def start_cluster(d: Drill, quiet: bool = True) -> None:
    """etcd, pg0 bootstrapped as the primary, pg1 its synchronous standby, HAProxy and PgBouncer."""
    progress("starting 3 etcd members", quiet)
    d.start_etcd()
    first, second = d.members["pg0"], d.members["pg1"]
    progress("starting Patroni members (synchronous_mode on)", quiet)
    d.start_member(first)
    _wait("pg0 bootstrapped as primary", 120, lambda: d.is_primary(first))
    d.start_member(second)
    _wait("pg1 streaming as the synchronous standby", 180, lambda: d.streaming_replica(second, sync=True))
    d.prepare_database(first)
    progress("starting HAProxy (checks /primary) and PgBouncer", quiet)
    d.start_proxy_and_pooler()
    _wait("the proxy routing to pg0", 30, lambda: d.routed_to(first))


def drill(d: Drill, quiet: bool = True) -> dict[str, Any]:
    start_cluster(d, quiet)
    first, second = d.members["pg0"], d.members["pg1"]

    with Writers(d.pooled_dsn()) as writers:
        _wait("writes through PgBouncer", 30, lambda: writers.last_ack > 0)
        time.sleep(SETTLE)
        old = d.leader()
        if old is None:
            raise errors.CannotRun("failover drill: no leader before the failover")
        new = second if old is first else first
        progress(f"killing the primary {old.name} (SIGKILL)", quiet)
        killed_at = time.monotonic()
        docker("kill", "--signal", "KILL", old.container)
        # Writes succeed again: the first commit the other member acknowledges after the kill.
        _wait("writes on the new primary", 120, lambda: writers.last_ack_on.get(new.pg_port, 0) > killed_at, 0.05)
        failover = writers.phases["failover"]
        failover.seconds = writers.last_ack_on[new.pg_port] - killed_at
        progress(f"writes succeed again after {failover.seconds:.1f} s, on {new.name}", quiet)

        progress(f"starting {old.name} again: it must rejoin as a replica", quiet)
        docker("start", old.container)
        rejoined = True
        try:
            _wait(f"{old.name} rejoining as the synchronous standby", 180, lambda: d.streaming_replica(old, sync=True))
        except errors.CannotRun:
            rejoined = False
        # Patroni rewinds only where the old primary's WAL went past the promotion point (usually so
        # after a kill under load); a rejoin without one is a rejoin too.
        rewound = "running pg_rewind from" in logs(old.container)
        time.sleep(SETTLE)
        writers.switch("switchover")
        failover.lost = d.lost(new, list(failover.acknowledged))

        switchover = writers.phases["switchover"]
        if rejoined:
            progress(f"switchover {new.name} -> {old.name} with PgBouncer paused", quiet)
            time.sleep(SETTLE)
            # What `pgplat switchover` runs (ops/switchover.py), against the drill's Patroni, PgBouncer and proxy.
            done = planned_switchover(
                Patroni(new.rest, (REST_USER, d.passwords["rest"])),
                [d.console_dsn()],
                d.superuser_dsn(d.haproxy_port),
                to=old.name,
            )
            switchover.seconds = done["pausedSeconds"]
            progress(f"clients waited {switchover.seconds:.1f} s", quiet)
            time.sleep(SETTLE)
    if rejoined:
        switchover.lost = d.lost(old, list(switchover.acknowledged))
    progress(f"{old.name} rejoined: {rejoined} (pg_rewind in its log: {rewound})", quiet)
    return {"failover": failover.result(), "switchover": switchover.result(), "rejoined": rejoined}


@contextlib.contextmanager
def started() -> Iterator[Drill]:
    """The drill's containers and files, removed at the end: on an error, Ctrl-C and SIGTERM too."""
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    d = Drill()
    try:
        yield d
    finally:
        d.close()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _terminated(signo: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the finally that removes the containers


def missing_images() -> list[str]:
    """What the drill needs and this machine lacks: a Docker engine and the four images it runs."""
    if shutil.which("docker") is None:
        return ["docker (the client)"]
    if docker("version", "--format", "{{.Server.Version}}", timeout=20, check=False).returncode != 0:
        return ["a running Docker engine (scripts/dockerd.sh start; DOCKER_HOST)"]
    images = (POSTGRES_17, PGBOUNCER_124, ETCD_35, HAPROXY_30)
    absent = [
        b.reference for b in images if docker("image", "inspect", b.reference, timeout=20, check=False).returncode
    ]
    return [f"the image {ref} (scripts/build_images.py)" for ref in absent]


@errors.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    missing = missing_images()
    if missing:
        raise errors.CannotRun(f"failover drill needs {missing[0]}")
    with started() as d:
        result = drill(d, quiet=args.json)
    if args.json:
        print(json.dumps(result))
    else:
        for phase in ("failover", "switchover"):
            r = result[phase]
            print(
                f"{phase}: {r['seconds']} s, {r['acknowledged']} commits acknowledged, {r['acknowledgedLost']} lost, "
                f"{r['failedTransactions']} failed transactions"
            )
        print(f"rejoined as a replica: {result['rejoined']}")
    return verdict(result)


def verdict(result: dict[str, Any]) -> int:
    """1 when an acknowledged commit is missing on the primary after it, or the killed member did not rejoin."""
    lost = result["failover"]["acknowledgedLost"] + result["switchover"]["acknowledgedLost"]
    return 0 if lost == 0 and result["rejoined"] else errors.FOUND_PROBLEMS
