"""The access plan: owner roles, grants per level, default privileges, revokes."""

from __future__ import annotations

from components import access
from components.access import Grant
from components.config import parse
from tests.conftest import valid_config


def plan() -> access.AccessPlan:
    return access.plan(parse(valid_config()))


def grants_of(p: access.AccessPlan, role: str, object_type: str) -> dict[str | None, tuple[str, ...]]:
    return {(g.schema if object_type != "database" else g.database): g.privileges for g in p.grants
            if g.role == role and g.object_type == object_type}  # fmt: skip


def test_each_database_has_a_nologin_owner_without_slots() -> None:
    p = plan()
    assert {(db.name, db.owner) for db in p.databases} == {
        ("tracksolid_db", "tracksolid_db_owner"),
        ("fleet_platform", "fleet_platform_owner"),
    }
    assert all(not o.login and o.connection_limit == -1 for o in p.owners)


def test_logins_are_the_apps_and_the_auth_role_with_their_limits() -> None:
    assert {(r.name, r.connection_limit) for r in plan().logins} == {
        ("webhook_app", 10), ("worker_app", 5), ("gateway_app", 15), ("pgbouncer_auth", 4),
    }  # fmt: skip


def test_read_level() -> None:
    p = plan()
    assert grants_of(p, "worker_app", "database") == {"tracksolid_db": ("CONNECT",)}
    assert grants_of(p, "worker_app", "schema") == {"tracksolid": ("USAGE",), "reporting": ("USAGE",)}
    assert grants_of(p, "worker_app", "table") == {"tracksolid": ("SELECT",), "reporting": ("SELECT",)}
    assert grants_of(p, "worker_app", "sequence") == {"tracksolid": ("SELECT",), "reporting": ("SELECT",)}


def test_write_level() -> None:
    p = plan()
    assert grants_of(p, "webhook_app", "table")["tracksolid"] == ("SELECT", "INSERT", "UPDATE", "DELETE")
    assert grants_of(p, "webhook_app", "sequence")["tracksolid"] == ("SELECT", "USAGE", "UPDATE")
    assert not [m for m in p.memberships if m.member == "webhook_app"]


def test_migrate_level_is_member_of_the_owner() -> None:
    p = plan()
    assert [(m.member, m.group) for m in p.memberships] == [("gateway_app", "fleet_platform_owner")]
    assert grants_of(p, "gateway_app", "table") == {"public": ("SELECT", "INSERT", "UPDATE", "DELETE")}


def test_no_app_is_granted_anything_in_another_database() -> None:
    p = plan()
    for grant in p.grants:
        if grant.role in ("webhook_app", "worker_app"):
            assert grant.database == "tracksolid_db"
        if grant.role == "gateway_app":
            assert grant.database == "fleet_platform"


def test_public_loses_connect_and_create_on_public() -> None:
    p = plan()
    for db in ("tracksolid_db", "fleet_platform"):
        assert Grant("public", db, "database", ()) in p.grants
        assert Grant("public", db, "schema", ("USAGE",), schema="public") in p.grants


def test_auth_role_may_only_connect_and_execute_the_lookup() -> None:
    p = plan()
    auth = [g for g in p.grants if g.role == "pgbouncer_auth"]
    assert {(g.object_type, g.schema, g.privileges) for g in auth} == {
        ("database", None, ("CONNECT",)),
        ("schema", "pgbouncer", ("USAGE",)),
        ("function", "pgbouncer", ("EXECUTE",)),
    }
    assert Grant("public", "tracksolid_db", "function", (), schema="pgbouncer") in p.grants


def test_default_privileges_from_owner_and_each_migrate_role() -> None:
    p = plan()
    fleet = {(d.owner, d.role, d.object_type) for d in p.default_privileges if d.database == "fleet_platform"}
    # gateway_app (migrate) creates tables too: its objects are granted to nobody else here, but
    # the owner's are granted to gateway_app; a migrate role needs none on its own objects.
    assert fleet == {
        ("fleet_platform_owner", "gateway_app", "table"),
        ("fleet_platform_owner", "gateway_app", "sequence"),
    }
    tracksolid = {(d.owner, d.role, d.schema, d.object_type, d.privileges) for d in p.default_privileges
                  if d.database == "tracksolid_db" and d.role == "worker_app"}  # fmt: skip
    assert ("tracksolid_db_owner", "worker_app", "reporting", "table", ("SELECT",)) in tracksolid


def test_default_privileges_from_migrate_role_reach_other_apps() -> None:
    config = valid_config()
    config["apps"]["cron_app"] = {"database": "fleet_platform", "access": "write", "connectionLimit": 5}
    p = access.plan(parse(config))
    assert {(d.owner, d.object_type, d.privileges) for d in p.default_privileges if d.role == "cron_app"} == {
        ("fleet_platform_owner", "table", ("SELECT", "INSERT", "UPDATE", "DELETE")),
        ("fleet_platform_owner", "sequence", ("SELECT", "USAGE", "UPDATE")),
        ("gateway_app", "table", ("SELECT", "INSERT", "UPDATE", "DELETE")),
        ("gateway_app", "sequence", ("SELECT", "USAGE", "UPDATE")),
    }


def test_migration_tables_are_revoked_from_non_migrate_apps_only() -> None:
    config = valid_config()
    config["apps"]["cron_app"] = {"database": "fleet_platform", "access": "write", "connectionLimit": 5}
    config["databases"]["tracksolid_db"]["migrationTables"] = ["tracksolid.schema_migrations"]
    p = access.plan(parse(config))
    assert {(r.database, r.table, r.roles) for r in p.migration_revokes} == {
        ("tracksolid_db", "tracksolid.schema_migrations", ("webhook_app", "worker_app")),
        ("fleet_platform", "public.alembic_version", ("cron_app",)),
        ("fleet_platform", "public.schema_migrations", ("cron_app",)),
    }


def test_app_schema_subset_limits_its_grants() -> None:
    config = valid_config()
    config["apps"]["worker_app"]["schemas"] = ["reporting"]
    p = access.plan(parse(config))
    assert set(grants_of(p, "worker_app", "table")) == {"reporting"}
    assert {d.schema for d in p.default_privileges if d.role == "worker_app"} == {"reporting"}


def test_grant_keys_are_unique() -> None:
    p = plan()
    assert len({g.key for g in p.grants}) == len(p.grants)
    assert len({d.key for d in p.default_privileges}) == len(p.default_privileges)
