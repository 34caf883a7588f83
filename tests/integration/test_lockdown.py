"""The lockdown at the end of a cutover, on an adopted server in a container of the shipped image.

The legacy server of test_adoption (its databases, schemas, rows and external roles), adopted with the
plan of Pulumi.legacy.yaml and `existing.lockdown: true`, applied as `pulumi up` would (the plan as SQL).
While a role nobody declared is connected through PUBLIC's CONNECT, the lockdown is refused, naming it,
and nothing changes; once it is gone, the lockdown applies: an app of one database cannot connect to
the other while every declared role and group still can. Then the pg_hba.conf check through
pg_hba_file_rules.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.resources.sql_apply import run_bounded
from postgres_platform.harness.servers import LOOPBACK, Servers
from postgres_platform.model import access
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import POSTGRES_CONFIG_DIR, PRIMARY, SUPERUSER
from postgres_platform.ops.grants import check_grants
from postgres_platform.ops.lockdown import hba_lines, lockdown_problems
from postgres_platform.render import sql
from tests.integration.test_adoption import EXTERNAL, FLEET, LEGACY, TRACKSOLID

EXTERNAL_PASSWORD = "x"  # test_adoption's EXTERNAL gives each external role this password
DATABASES = tuple(LEGACY.databases)


def locked(config: PlatformConfig, **existing: object) -> PlatformConfig:
    assert config.existing is not None
    return config.model_copy(update={"existing": config.existing.model_copy(update={"lockdown": True, **existing})})


@pytest.fixture(scope="module")
def server() -> Iterator[Servers]:
    """Adopted as the cutover goes: the plan first, the apps moved; then the stack sets the lockdown."""
    with Servers(LEGACY) as started:
        started.psql(EXTERNAL + "CREATE DATABASE tracksolid_db; CREATE DATABASE fleet_platform;")
        started.psql(TRACKSOLID, database="tracksolid_db")
        started.psql(FLEET, database="fleet_platform")
        started.psql("CREATE ROLE rogue LOGIN PASSWORD 'rogue-pw';")  # a client nobody declared
        started.apply_plan()
        started.config = locked(LEGACY)
        yield started


def connects(dsn: str) -> str | None:
    """None when a login gets in, else the server's error."""
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.OperationalError as exc:
        return str(exc)


def public_connect(servers: Servers) -> dict[str, bool]:
    """Whether PUBLIC holds CONNECT on each adopted database."""
    out = servers.psql(
        "\\pset tuples_only on\n\\pset format unaligned\n"
        "SELECT d.datname || '=' || EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
        "WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') FROM pg_database d "
        f"WHERE d.datname IN ({', '.join(repr(d) for d in DATABASES)}) ORDER BY 1;"
    )
    return {name: value == "true" for name, value in (line.split("=") for line in out.split())}


def problems_when(servers: Servers, settled: bool) -> list[dict[str, str]]:
    """lockdown_problems once it has (settled) or has not any, for up to 5 s: a closed session's backend
    lingers a moment in pg_stat_activity."""
    deadline = time.monotonic() + 5
    while True:
        found = lockdown_problems(servers.config, servers.superuser_dsn())
        if (found == []) == settled or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_lockdown_is_refused_while_an_undeclared_role_connects_then_only_declared_roles_connect(
    server: Servers,
) -> None:
    rogue = server.dsn("rogue", "fleet_platform", pooled=False, password="rogue-pw")
    with psycopg.connect(rogue, autocommit=True) as session:
        session.execute("SELECT 1")
        # Before `pulumi up`: live_budget's check names it.
        (problem,) = problems_when(server, settled=False)
        assert problem["problem"].startswith("lockdown refused: role rogue (1 session(s) on fleet_platform)")
        # At `pulumi up`: the re-apply step (as its provider runs it) stops, naming it; so does the plan script,
        # and their transactions take nothing.
        plan = access.plan(server.config)
        admin = {
            "host": LOOPBACK,
            "port": server.pg_port,
            "user": SUPERUSER,
            "password": server.superuser_password,
            "sslmode": "disable",
        }
        first = plan.databases[0].name
        with pytest.raises(
            psycopg.errors.RaiseException, match=r"lockdown refused: role rogue \(1 session\(s\) on fleet"
        ):
            run_bounded(admin, first, sql.reapply_script(plan, first))
        with pytest.raises(RuntimeError, match=r"lockdown refused: role rogue \(1 session\(s\) on fleet_platform\)"):
            server.apply_plan()
        assert public_connect(server) == dict.fromkeys(DATABASES, True)
        session.execute("SELECT 1")  # still connected
    assert connects(rogue) is None  # and it may still connect: nothing was revoked

    assert problems_when(server, settled=True) == []
    # Declared roles connected meanwhile (an external role through PUBLIC until its grant, an app) do not
    # stop it, and their sessions live on.
    grafana = server.dsn("grafana_ro", "fleet_platform", pooled=False, password=EXTERNAL_PASSWORD)
    with (
        psycopg.connect(grafana, autocommit=True) as external,
        psycopg.connect(server.dsn("webhook_app", "tracksolid_db", pooled=False), autocommit=True) as writer,
    ):
        server.apply_plan()
        server.apply_plan()  # idempotent
        external.execute("SELECT 1")
        writer.execute("SELECT 1")
    assert public_connect(server) == dict.fromkeys(DATABASES, False)
    assert "permission denied for database" in (connects(rogue) or "")

    config = server.config
    # An app of one database cannot connect to the other; each connects to its own.
    for app, spec in config.apps.items():
        assert connects(server.dsn(app, spec.database, pooled=False)) is None, app
        for other in DATABASES:
            if other != spec.database:
                assert "permission denied for database" in (connects(server.dsn(app, other, pooled=False)) or ""), app
    # Every declared external role still connects to every adopted database, and every group holds CONNECT.
    for role in config.external_roles:
        for database in DATABASES:
            assert connects(server.dsn(role, database, pooled=False, password=EXTERNAL_PASSWORD)) is None, role
    plan = access.plan(config)
    checks = " UNION ALL ".join(
        f"SELECT '{g.name}', has_database_privilege('{g.name}', '{db.name}', 'CONNECT')"
        for db in plan.databases
        for g in db.groups
    )
    held = server.psql(f"\\pset tuples_only on\n\\pset format unaligned\n{checks};").split()
    assert held and all(line.endswith("|t") for line in held), held
    # The grant check agrees: nothing missing, nothing beyond the plan (PUBLIC's CONNECT included).
    assert check_grants(config, server.superuser_dsn()) == []
    # A PUBLIC CONNECT given back by hand is beyond the plan: the check names it, the next up revokes it.
    server.psql("GRANT CONNECT ON DATABASE fleet_platform TO PUBLIC;")
    problems = [f["problem"] for f in check_grants(config, server.superuser_dsn())]
    assert problems == [
        "PUBLIC holds CONNECT on database fleet_platform, beyond the plan (every role holds what PUBLIC holds)"
    ]
    server.apply_plan()
    assert public_connect(server) == dict.fromkeys(DATABASES, False)


ADMIN_CIDRS = ["127.0.0.1/32"]  # where the harness's clients come from
# An adopted server's pg_hba.conf as it may be: the admin from anywhere (the image's last line).
LEGACY_HBA = "local all all trust\nhost all all all scram-sha-256\n"


@pytest.fixture(scope="module")
def tls_server() -> Iterator[Servers]:
    """The adopted server with TLS and the pg_hba.conf the program writes on a host (hostssl lines)."""
    with Servers(locked(LEGACY, admin_cidrs=ADMIN_CIDRS), tls=True) as started:
        yield started


def hba_path(servers: Servers) -> Path:
    """The server's pg_hba.conf on this machine (in the harness's config directory, bound read-only)."""
    (in_container,) = servers.psql("\\pset tuples_only on\n\\pset format unaligned\nSHOW hba_file;").split()
    assert in_container.startswith(POSTGRES_CONFIG_DIR), in_container
    return servers.root / PRIMARY / Path(in_container).relative_to(POSTGRES_CONFIG_DIR)


def test_pg_hba_file_rules_show_the_admin_lines_missing_until_they_are_added(tls_server: Servers) -> None:
    config, dsn = tls_server.config, tls_server.superuser_dsn()
    path = hba_path(tls_server)
    original = path.read_text()
    try:
        # Where the program writes pg_hba.conf, the superuser comes from the admin addresses only.
        assert lockdown_problems(config, dsn) == []
        # pg_hba_file_rules reads the file: no reload, so the rules loaded still admit the test's clients.
        path.write_text(LEGACY_HBA)
        problems = [p["problem"] for p in lockdown_problems(config, dsn)]
        assert problems == [
            "pg_hba.conf lacks `hostssl all postgres 127.0.0.1/32 scram-sha-256`",
            "pg_hba.conf lacks `host all postgres 0.0.0.0/0 reject`",
            "pg_hba.conf lacks `host all postgres ::/0 reject`",
            "pg_hba.conf line 2 (`host all all all scram-sha-256`) admits postgres from outside existing.adminCidrs",
        ]
        # The printed lines first: nothing missing.
        path.write_text(hba_lines(config) + LEGACY_HBA)
        assert lockdown_problems(config, dsn) == []
        # Below a line that admits everyone from anywhere, they do not restrict the admin: named.
        path.write_text("host all all all scram-sha-256\n" + hba_lines(config) + LEGACY_HBA)
        (problem,) = lockdown_problems(config, dsn)
        assert problem["problem"] == (
            "pg_hba.conf line 1 (`host all all all scram-sha-256`) admits postgres from outside existing.adminCidrs"
        )
    finally:
        path.write_text(original)
