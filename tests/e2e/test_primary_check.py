"""After a failover the provider's host (db-1) is a replica: the PrimaryCheck stops preview and up there,
under the real engine, against the members of a real Patroni cluster (the failover drill's: etcd and two
members of the shipped image in containers on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.resources.sql_apply import FAILED_OVER
from postgres_platform.cli import failover_drill
from postgres_platform.cli.failover_drill import Drill
from postgres_platform.model.names import LOOPBACK
from tests.e2e.cli import Engine
from tests.helpers import skip_without_real_servers

PROGRAM = Path(__file__).parent / "programs" / "primary_check"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Drill]:
    skip_without_real_servers()
    with failover_drill.started() as d:
        failover_drill.start_cluster(d)
        yield d


def in_recovery(d: Drill, member: str) -> bool:
    with psycopg.connect(d.superuser_dsn(d.members[member].pg_port, "postgres")) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def test_a_replica_behind_the_admin_connection_stops_preview_and_up(engine: Engine, cluster: Drill) -> None:
    leader, replica = sorted(cluster.members, key=lambda m: in_recovery(cluster, m))
    assert not in_recovery(cluster, leader) and in_recovery(cluster, replica)
    project = engine.project("primary-check", PROGRAM)
    port = {m: str(cluster.members[m].pg_port) for m in (leader, replica)}
    engine.new_stack(project, "e2e", {"e2e:port": port[leader]}, {"e2e:password": cluster.passwords["superuser"]})
    engine.run(project, "up", "--yes")
    engine.run(project, "preview", "--expect-no-changes")  # its diff asked the primary: nothing to do

    engine.run(project, "config", "set", "e2e:port", port[replica])  # as db-1 is after a failover
    expected = FAILED_OVER.format(host=LOOPBACK, port=port[replica])
    for command in (("preview",), ("up", "--yes")):
        done = engine.run(project, *command, check=False)
        text = done.stdout + done.stderr
        assert done.returncode != 0 and expected in text and "Traceback" not in text, text  # the engine's one line
    engine.run(project, "config", "set", "e2e:port", port[leader])
    engine.run(project, "preview", "--expect-no-changes")
    engine.run(project, "destroy", "--yes")
