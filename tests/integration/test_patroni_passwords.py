"""The backup units' leader gate (render/backup.leads_script) and password rotation under Patroni, against the drill's real cluster: each member's new secrets.yml and
passwords.sql, then the reload the Hetzner stacks run on a changed file (reload_if_running with
set_passwords_step). The superuser, replication, pg_rewind and REST API passwords all change with no
member restarted: the new ones log in, the old ones are refused, and the replica streams again with the
new replication password."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import psycopg

from postgres_platform.cli import errors, failover_drill
from postgres_platform.cli.failover_drill import PARAMETERS, PATRONI_UID, Drill, _wait
from postgres_platform.model.names import LOOPBACK
from postgres_platform.render.backup import leads_script
from postgres_platform.render.files import reload_if_running
from postgres_platform.render.patroni import PASSWORDS_SQL, SECRETS_FILE, passwords_sql, set_passwords_step
from tests.integration.test_patroni_config import patch, started_at

LOGINS = {"superuser": "postgres", "replication": "replicator", "rewind": "rewind_user"}


def logs_in(port: int, user: str, password: str) -> bool:
    dsn = f"host={LOOPBACK} port={port} dbname=postgres user={user} password={password} connect_timeout=3"
    try:
        with psycopg.connect(dsn) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError as err:
        assert "password authentication failed" in str(err), err
        return False


def write(d: Drill, member: str, name: str, text: str) -> None:
    path = d.root / member / name
    path.write_text(text)
    path.chmod(0o600)
    os.chown(path, PATRONI_UID, PATRONI_UID)


def test_every_password_rotates_by_a_reload_on_the_leader_and_the_replica() -> None:
    with failover_drill.started() as d:
        failover_drill.start_cluster(d)
        leader = d.leader()
        assert leader is not None
        replica = next(m for m in d.members.values() if m is not leader)
        old = dict(d.passwords)
        containers = {m.name: started_at(m.container) for m in d.members.values()}

        d.passwords = {what: secrets.token_urlsafe(24) for what in old}
        sql = passwords_sql(
            superuser=d.passwords["superuser"], replication=d.passwords["replication"], rewind=d.passwords["rewind"]
        )
        for member in d.members.values():  # the replica's first: its reload must not set anything
            write(d, member.name, Path(SECRETS_FILE).name, d.secrets())
            write(d, member.name, Path(PASSWORDS_SQL).name, sql)
        for member in (replica, leader):
            script = reload_if_running(member.container, set_passwords_step(member.container, member.pg_port))
            done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, done.stderr

        for what, user in LOGINS.items():
            assert logs_in(leader.pg_port, user, d.passwords[what]), what
            assert not logs_in(leader.pg_port, user, old[what]), what
        # Patroni reread its REST API password: the new one is taken, the old one refused.
        _wait(
            "the REST API takes the new password", 30, lambda: patch(d, PARAMETERS, d.passwords["rest"]).returncode == 0
        )
        assert "HTTP Error 401" in patch(d, PARAMETERS, old["rest"]).stderr

        # The replica's walreceiver logs in again with the new replication password.
        with psycopg.connect(d.superuser_dsn(leader.pg_port, "postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
        _wait(
            "the replica streams with the new password",
            60,
            lambda: d.streaming_replica(replica, sync=False) and replicated(d, leader, replica),
        )
        # The backup units' ExecCondition: 0 where Postgres leads, 1 on the replica (systemd skips the run).
        for member, code in ((leader, 0), (replica, 1)):
            gate = [
                "docker",
                "exec",
                "-i",
                "-u",
                "postgres",
                member.container,
                "sh",
                "-c",
                leads_script(member.pg_port),
            ]
            assert subprocess.run(gate, capture_output=True, timeout=30, check=False).returncode == code
        # Patroni could still log in over the socket: it manages both members, neither restarted.
        assert {m.name: started_at(m.container) for m in d.members.values()} == containers


def replicated(d: Drill, leader: failover_drill.Member, replica: failover_drill.Member) -> bool:
    """A row committed on the leader now is on the replica (a walreceiver that streams, not one stuck)."""
    marker = secrets.token_hex(4)
    with psycopg.connect(d.superuser_dsn(leader.pg_port, "postgres"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS rotation (marker text)")
        conn.execute("INSERT INTO rotation VALUES (%s)", (marker,))
    try:
        _wait("the row on the replica", 10, lambda: seen(d, replica, marker))
    except errors.CannotRun:
        return False
    return True


def seen(d: Drill, member: failover_drill.Member, marker: str) -> bool:
    with psycopg.connect(d.superuser_dsn(member.pg_port, "postgres")) as conn:
        row = conn.execute("SELECT count(*) FROM rotation WHERE marker = %s", (marker,)).fetchone()
    return bool(row and row[0])
