"""The repository's latest backup of each type, recorded for the exporter (render/backup.record_script, as
the backup timers and `pulumi up` run it) on a server of the shipped image with a posix repository, read
back by the exporter's query as the monitoring role; before any record, the query gives no rows."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from postgres_platform.harness.docker import docker
from postgres_platform.harness.servers import Servers
from postgres_platform.model.names import MONITORING_ROLE
from postgres_platform.render import backup, monitoring
from postgres_platform.render.backup import RepoSecrets, command
from tests.integration.test_verify_restore import CONFIG, must


@pytest.fixture(scope="module")
def posix() -> Iterator[Servers]:
    with Servers(CONFIG, backup_secrets=RepoSecrets(cipher_pass="by-type-passphrase")) as started:
        must(started, command("stanza-create"))
        yield started


def record(servers: Servers) -> None:
    script = backup.record_script(servers.pg_port)
    done = docker("exec", "-u", "postgres", servers.postgres_container, "bash", "-c", script, check=False)
    assert done.returncode == 0, done.stderr or done.stdout


def by_type(servers: Servers) -> dict[str, float]:
    """The custom query as postgres_exporter runs it: as the monitoring role, in the postgres database."""
    query = monitoring.queries(servers.config)["pgplatform_backup_by_type"]["query"]
    with psycopg.connect(servers.dsn(MONITORING_ROLE, "postgres", pooled=False)) as conn:
        return {str(kind): float(seconds) for kind, seconds in conn.execute(query).fetchall()}


def test_each_types_latest_backup_reaches_the_exporter_query(posix: Servers) -> None:
    assert by_type(posix) == {}  # no table yet: no rows, no error
    began = time.time()
    must(posix, command("--type=full", "backup", backup=CONFIG.backup))
    record(posix)
    first = by_type(posix)
    assert set(first) == {"full"} and began - 2 <= first["full"] <= time.time() + 2
    time.sleep(1.1)  # pgBackRest's stop times are whole seconds
    must(posix, command("--type=diff", "backup", backup=CONFIG.backup))
    record(posix)
    second = by_type(posix)
    assert set(second) == {"full", "diff"} and second["full"] == first["full"] and second["diff"] > first["full"]
    with psycopg.connect(posix.superuser_dsn()) as conn:
        labels: dict[str, str] = dict(conn.execute(f"SELECT type, label FROM {backup.LAST_BACKUPS}").fetchall())
    assert labels["full"].endswith("F") and labels["diff"].endswith("D"), labels


def test_a_failing_info_leaves_the_table_as_it_was(posix: Servers) -> None:
    before = by_type(posix)
    assert before, "the test above recorded backups"
    script = backup.record_script(posix.pg_port).replace("--stanza=main", "--stanza=no_such_stanza", 1)
    done = docker("exec", "-u", "postgres", posix.postgres_container, "bash", "-c", script, check=False)
    assert done.returncode != 0
    assert by_type(posix) == before
