"""End-to-end: the real Pulumi engine (scripts/engine.sh) runs the project's program, its dynamic
providers and its policy pack. What needs the provider plugins (docker, postgresql, random, tls,
command) is not here: the Go module proxy serves none of them (engine/providers.tsv, engine/README.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from postgres_platform.harness.servers import Servers
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import ROOT, read_stack_values, stack_file
from tests.e2e.cli import Engine
from tests.helpers import skip_without_real_servers

PROD = load_stack_values(read_stack_values(stack_file("prod")))
SQL_STEPS = Path(__file__).parent / "programs" / "sql_steps"


def test_the_engine_is_the_version_built(engine: Engine) -> None:
    shown = engine.run(engine.home, "version").stdout.strip()
    manifest = (engine.bin_dir / "MANIFEST").read_text()
    assert f"pulumi\t{shown}\t" in manifest


def test_a_bad_stack_config_stops_the_real_engine_before_any_resource(engine: Engine) -> None:
    """The program's own config check under the engine: one line naming key and value, no traceback,
    and nothing declared (the state holds no resource but the stack, if that)."""
    project = engine.project("bad", ROOT)
    config = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())["config"]
    config["postgres-platform:pgbouncer"]["image"] = "edoburu/pgbouncer:v1.23.1-p3"
    config["postgres-platform:apps"]["worker_app"]["connectionLimit"] = 0
    engine.new_stack(project, "bad", config)
    done = engine.run(project, "preview", check=False)
    text = done.stdout + done.stderr
    assert done.returncode != 0
    assert "invalid stack config:" in text, text
    assert "pgbouncer.image: PgBouncer 1.23.1 is older than 1.25.2" in text and '"edoburu/pgbouncer:v1.23.1-p3"' in text
    assert "apps.worker_app.connectionLimit: must be an integer >= 1, got 0" in text
    assert "Traceback" not in text, text
    engine.run(project, "up", "--yes", check=False)
    assert [r["type"] for r in engine.resources(project)] in ([], ["pulumi:pulumi:Stack"])


@pytest.fixture
def server() -> Iterator[Servers]:
    skip_without_real_servers()
    with Servers(PROD) as started:
        yield started


def _sql_steps_stack(engine: Engine, server: Servers, **config: str) -> Path:
    project = engine.project("sql-steps", SQL_STEPS)
    engine.new_stack(
        project,
        "e2e",
        {"e2e:port": str(server.pg_port), **{f"e2e:{k}": v for k, v in config.items()}},
        {"e2e:password": server.superuser_password},
    )
    return project


def _writes_to_migration_table(server: Servers) -> bool:
    with psycopg.connect(server.superuser_dsn("tracksolid_db")) as admin:
        row = admin.execute(
            "SELECT has_table_privilege('tracksolid_db_write', 'tracksolid.schema_migrations', 'INSERT')"
        ).fetchone()
    return bool(row and row[0])


def test_the_sql_steps_run_diff_and_retire_in_the_real_engine(engine: Engine, server: Servers) -> None:
    server.psql(
        "SET ROLE tracksolid_db_owner; CREATE TABLE tracksolid.schema_migrations (version text);"
        "RESET ROLE; GRANT INSERT ON tracksolid.schema_migrations TO tracksolid_db_write;",
        database="tracksolid_db",
    )
    server.psql(
        "CREATE ROLE leaving_app LOGIN; GRANT CREATE ON SCHEMA public TO leaving_app;"
        "SET ROLE leaving_app; CREATE TABLE public.left_behind (id int);",
        database="fleet_platform",
    )
    assert _writes_to_migration_table(server)
    project = _sql_steps_stack(engine, server, retiring="leaving_app")

    engine.run(project, "up", "--yes")
    assert not _writes_to_migration_table(server)  # SqlApply's create revoked it
    engine.run(project, "preview", "--expect-no-changes")  # its diff ran the check: in place

    # Drift: the grant comes back; the diff (the check query, in the engine) sees it, the up removes it.
    server.psql("GRANT INSERT ON tracksolid.schema_migrations TO tracksolid_db_write;", database="tracksolid_db")
    drifted = engine.run(project, "preview", "--expect-no-changes", check=False)
    assert drifted.returncode != 0 and "access-tracksolid_db-reapply" in drifted.stdout, drifted.stdout
    engine.run(project, "up", "--yes")
    assert not _writes_to_migration_table(server)

    # Secrets: the superuser password is in the state only encrypted.
    state = json.dumps(engine.state(project))
    assert server.superuser_password not in state and "ciphertext" in state

    # Removing the retirement (as removing an app does) runs its delete: what the login owned moves.
    engine.run(project, "config", "rm", "e2e:retiring")
    engine.run(project, "up", "--yes")
    with psycopg.connect(server.superuser_dsn("fleet_platform")) as admin:
        owner = admin.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'left_behind'").fetchone()
    assert owner == ("fleet_platform_owner",)
    engine.run(project, "destroy", "--yes")
    assert [r["type"] for r in engine.resources(project)] == []


def test_the_policy_pack_runs_through_the_engine_and_refuses_escalating_sql(engine: Engine, server: Servers) -> None:
    pack = engine.policy_pack()
    project = _sql_steps_stack(engine, server)
    clean = engine.run(project, "preview", "--policy-pack", str(pack), check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    engine.run(project, "config", "set", "e2e:extraSql", "; ALTER ROLE worker_app SUPERUSER")
    refused = engine.run(project, "preview", "--policy-pack", str(pack), check=False)
    text = refused.stdout + refused.stderr
    assert refused.returncode != 0, text
    assert "sql-steps" in text and "the SQL steps only harden and revoke" in text, text
