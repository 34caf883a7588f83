"""The access plan: owner and group roles, what each app gets through its group, default privileges, revokes."""

from __future__ import annotations

from postgres_platform.model import access, budget
from postgres_platform.model.access import Grant
from postgres_platform.model.load import load_stack_values, parse
from postgres_platform.model.names import MONITORING_ROLE
from postgres_platform.model.stackfile import read_stack_values, stack_file
from tests.helpers import valid_config


def plan() -> access.AccessPlan:
    return access.plan(parse(valid_config()))


def login(p: access.AccessPlan, app: str) -> access.Role:
    return next(r for r in p.logins if r.name == app)


def grants_of(p: access.AccessPlan, app: str, object_type: str) -> dict[str | None, tuple[str, ...]]:
    """What an app holds of one object type, through the groups it is a member of (its only source)."""
    groups = set(login(p, app).member_of)
    return {
        (g.schema if object_type != "database" else g.database): g.privileges
        for g in p.grants
        if g.role in groups and g.object_type == object_type
    }


def test_each_database_has_a_nologin_owner_and_groups_without_slots() -> None:
    p = plan()
    assert {(db.name, db.owner) for db in p.databases} == {
        ("tracksolid_db", "tracksolid_db_owner"),
        ("fleet_platform", "fleet_platform_owner"),
    }
    assert {g.name for g in p.groups} == {
        "tracksolid_db_read",
        "tracksolid_db_write",
        "fleet_platform_read",
        "fleet_platform_write",
    }
    assert all(not r.login and r.connection_limit == -1 and not r.member_of for r in (*p.owners, *p.groups))


def test_logins_are_the_apps_and_the_auth_role_with_their_limits() -> None:
    assert {(r.name, r.connection_limit) for r in plan().logins} == {
        ("webhook_app", 10),
        ("worker_app", 5),
        ("gateway_app", 15),
        ("pgbouncer_auth", 4),
        ("pgplatform_monitor", 2),
    }


def test_the_monitoring_role_is_a_pg_monitor_member_with_the_budgets_limit() -> None:
    (server,) = budget.compute(parse(valid_config()))
    (entry,) = [e for e in server.entries if e.role == MONITORING_ROLE]
    role = login(plan(), MONITORING_ROLE)
    assert (role.member_of, role.connection_limit, entry.kind) == (("pg_monitor",), entry.limit, "system")


def test_apps_hold_no_grant_of_their_own_only_a_membership() -> None:
    p = plan()
    apps = {"webhook_app", "worker_app", "gateway_app"}
    assert not [g for g in p.grants if g.role in apps]
    assert not [d for d in p.default_privileges if d.role in apps or d.owner in apps]
    assert login(p, "worker_app").member_of == ("tracksolid_db_read",)
    assert login(p, "webhook_app").member_of == ("tracksolid_db_write",)
    assert login(p, "pgbouncer_auth").member_of == ()


def test_read_level() -> None:
    p = plan()
    assert grants_of(p, "worker_app", "database") == {"tracksolid_db": ("CONNECT",)}
    assert grants_of(p, "worker_app", "schema") == {"tracksolid": ("USAGE",), "reporting": ("USAGE",)}
    assert grants_of(p, "worker_app", "table") == {"tracksolid": ("SELECT",), "reporting": ("SELECT",)}
    assert grants_of(p, "worker_app", "sequence") == {"tracksolid": ("SELECT",), "reporting": ("SELECT",)}
    assert login(p, "worker_app").assume_role is None


def test_write_level() -> None:
    p = plan()
    assert grants_of(p, "webhook_app", "database") == {"tracksolid_db": ("CONNECT", "TEMPORARY")}
    assert grants_of(p, "webhook_app", "table")["tracksolid"] == ("SELECT", "INSERT", "UPDATE", "DELETE")
    assert grants_of(p, "webhook_app", "sequence")["tracksolid"] == ("SELECT", "USAGE", "UPDATE")
    assert "tracksolid_db_owner" not in login(p, "webhook_app").member_of


def test_migrate_level_writes_and_creates_as_the_owner() -> None:
    gateway = login(plan(), "gateway_app")
    assert gateway.member_of == ("fleet_platform_write", "fleet_platform_owner")
    assert gateway.assume_role == "fleet_platform_owner"  # what its migrations create, the owner owns
    assert grants_of(plan(), "gateway_app", "table") == {"public": ("SELECT", "INSERT", "UPDATE", "DELETE")}


def test_no_group_holds_anything_in_another_database() -> None:
    p = plan()
    for grant in p.grants:
        if grant.role.endswith(("_read", "_write")):
            assert grant.role.startswith(grant.database + "_"), grant


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


def test_default_privileges_from_the_owner_to_each_group_per_schema() -> None:
    p = plan()
    assert {d.owner for d in p.default_privileges} == {"tracksolid_db_owner", "fleet_platform_owner"}
    fleet = {
        (d.role, d.schema, d.object_type, d.privileges) for d in p.default_privileges if d.database == "fleet_platform"
    }
    assert fleet == {
        ("fleet_platform_read", "public", "table", ("SELECT",)),
        ("fleet_platform_read", "public", "sequence", ("SELECT",)),
        ("fleet_platform_write", "public", "table", ("SELECT", "INSERT", "UPDATE", "DELETE")),
        ("fleet_platform_write", "public", "sequence", ("SELECT", "USAGE", "UPDATE")),
    }
    tracksolid = {(d.role, d.schema) for d in p.default_privileges if d.database == "tracksolid_db"}
    assert tracksolid == {
        (g, s) for g in ("tracksolid_db_read", "tracksolid_db_write") for s in ("tracksolid", "reporting")
    }


def test_migration_tables_are_revoked_from_write_groups_only() -> None:
    config = valid_config()
    config["apps"]["cron_app"] = {"database": "fleet_platform", "access": "write", "connectionLimit": 5}
    config["databases"]["tracksolid_db"]["migrationTables"] = ["tracksolid.schema_migrations"]
    p = access.plan(parse(config))
    assert {(r.database, r.table, r.roles) for r in p.migration_revokes} == {
        ("tracksolid_db", "tracksolid.schema_migrations", ("tracksolid_db_write",)),
        ("fleet_platform", "public.alembic_version", ("fleet_platform_write",)),
        ("fleet_platform", "public.schema_migrations", ("fleet_platform_write",)),
    }


def test_app_schema_subset_gets_a_group_of_exactly_that_subset() -> None:
    config = valid_config()
    config["apps"]["worker_app"]["schemas"] = ["reporting"]
    config["apps"]["webhook_app"]["schemas"] = ["reporting", "tracksolid"]  # all of them: the database's group
    config["databases"]["tracksolid_db"]["migrationTables"] = ["reporting.schema_migrations"]
    p = access.plan(parse(config))
    assert login(p, "worker_app").member_of == ("tracksolid_db_read_reporting",)
    assert login(p, "webhook_app").member_of == ("tracksolid_db_write",)
    assert set(grants_of(p, "worker_app", "table")) == {"reporting"}
    assert set(grants_of(p, "worker_app", "schema")) == {"reporting"}
    assert grants_of(p, "worker_app", "database") == {"tracksolid_db": ("CONNECT",)}
    assert {d.schema for d in p.default_privileges if d.role == "tracksolid_db_read_reporting"} == {"reporting"}


def test_a_write_subset_group_loses_migration_tables_in_its_schemas_only() -> None:
    config = valid_config()
    config["apps"]["webhook_app"]["schemas"] = ["reporting"]
    config["databases"]["tracksolid_db"]["migrationTables"] = ["tracksolid.schema_migrations"]
    p = access.plan(parse(config))
    assert [(r.table, r.roles) for r in p.migration_revokes if r.database == "tracksolid_db"] == [
        ("tracksolid.schema_migrations", ("tracksolid_db_write",))
    ]


def test_grant_keys_are_unique() -> None:
    p = plan()
    assert len({g.key for g in p.grants}) == len(p.grants)
    assert len({d.key for d in p.default_privileges}) == len(p.default_privileges)


def test_adding_an_app_of_a_known_level_adds_only_its_login_role() -> None:
    before = plan()
    config = valid_config()
    config["apps"]["cron_app"] = {"database": "fleet_platform", "access": "write", "connectionLimit": 5}
    after = access.plan(parse(config))
    assert after.grants == before.grants
    assert after.default_privileges == before.default_privileges
    assert after.groups == before.groups
    assert {r.name for r in after.logins} - {r.name for r in before.logins} == {"cron_app"}


def test_alternating_logins_are_two_members_of_the_same_groups() -> None:
    config = valid_config()
    config["apps"]["gateway_app"]["rotation"] = 3
    p = access.plan(parse(config))
    a, b = login(p, "gateway_app_a"), login(p, "gateway_app_b")
    assert a.member_of == b.member_of == ("fleet_platform_write", "fleet_platform_owner")
    assert a.assume_role == b.assume_role == "fleet_platform_owner"
    assert a.connection_limit == b.connection_limit == 15
    assert "gateway_app" not in {r.name for r in p.logins}
    assert a.database == b.database == "fleet_platform"  # where each is retired when removed


def test_a_managed_server_gets_no_monitoring_role_and_keeps_its_slots() -> None:
    """A CREATEROLE admin may not grant pg_monitor: no role, no budget entry, no password."""
    legacy = load_stack_values(read_stack_values(stack_file("legacy")))
    assert legacy.existing is not None
    managed = legacy.model_copy(update={"existing": legacy.existing.model_copy(update={"admin_superuser": False})})
    assert MONITORING_ROLE in {r.name for r in access.plan(legacy).logins}
    assert MONITORING_ROLE not in {r.name for r in access.plan(managed).logins}
    (before,), (after,) = budget.compute(legacy), budget.compute(managed)
    assert before.total - after.total == budget.MONITORING_CONNECTIONS
