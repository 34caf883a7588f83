"""Every bad input: one line naming the key path and the bad value, and nothing else goes through."""

from __future__ import annotations

import json
from typing import Any

import pytest

from postgres_platform.model import budget
from postgres_platform.model.config import ConfigError, Login
from postgres_platform.model.load import load_stack_values, parse
from tests.helpers import valid_config

DELETE = object()
HETZNER = {
    "location": "fsn1",
    "serverType": "ccx13",
    "image": "docker-ce",
    "networkZone": "eu-central",
    "ipRange": "10.0.0.0/16",
    "subnet": "10.0.1.0/24",
    "adminCidrs": ["203.0.113.10/32"],
    "sshKeys": ["ops"],
}
S3_BACKUP = {
    "repo": "s3",
    "s3": {"endpoint": "fsn1.your-objectstorage.com", "bucket": "b", "region": "fsn1", "path": "/test"},
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """The valid config with one dotted path set to `value` (or removed, for DELETE)."""
    config = valid_config()
    *parents, last = path.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return config


def errors_of(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(config)
    return caught.value.lines


CASES = [
    # (case, path to change, new value, expected start of the error line)
    ("unknown target", "target", "aws", "target: must be 'local', 'hetzner' or 'existing', got \"aws\""),
    ("unknown database", "apps.worker_app.database", "nope", "apps.worker_app.database: unknown database"),
    ("unknown access level", "apps.worker_app.access", "admin", "apps.worker_app.access: must be 'read', 'write'"),
    ("schema not in db", "apps.worker_app.schemas", ["public"], "apps.worker_app.schemas[0]: not a schema of"),
    (
        "migration table in unknown schema",
        "databases.tracksolid_db.migrationTables",
        ["billing.alembic_version"],
        "databases.tracksolid_db.migrationTables[0]: schema billing is not one of",
    ),
    (
        "migration table without schema",
        "databases.tracksolid_db.migrationTables",
        ["alembic_version"],
        "databases.tracksolid_db.migrationTables[0]: must be schema.table",
    ),
    (
        "bad role identifier",
        "apps.Worker-App",
        {"database": "tracksolid_db", "access": "read", "connectionLimit": 1},
        'apps.Worker-App: must match ^[a-z_][a-z0-9_]{0,62}$, got "Worker-App"',
    ),
    (
        "role name too long",
        "apps." + "a" * 64,
        {"database": "tracksolid_db", "access": "read", "connectionLimit": 1},
        "apps." + "a" * 64 + ": must match",
    ),
    ("bad database identifier", "databases.9db", {"schemas": ["x"]}, "databases.9db: must match"),
    (
        "bad schema identifier",
        "databases.fleet_platform.schemas",
        ["Public"],
        "databases.fleet_platform.schemas[0]: must match",
    ),
    (
        "reserved role postgres",
        "apps.postgres",
        {"database": "tracksolid_db", "access": "read", "connectionLimit": 1},
        "apps.postgres: is a reserved name",
    ),
    (
        "reserved role pg_",
        "externalRoles.pg_monitor",
        {"connectionLimit": 1},
        "externalRoles.pg_monitor: is a reserved",
    ),
    ("reserved role pgbouncer", "externalRoles.pgbouncer", {"connectionLimit": 1}, "externalRoles.pgbouncer: is a res"),
    ("reserved database public", "databases.public", {"schemas": ["x"]}, "databases.public: is a reserved name"),
    (
        "reserved schema pg_",
        "databases.fleet_platform.schemas",
        ["pg_toast"],
        "databases.fleet_platform.schemas[0]: is a reserved schema",
    ),
    (
        "app clashes with external role",
        "externalRoles.worker_app",
        {"connectionLimit": 2},
        "externalRoles.worker_app: role name is also an app",
    ),
    (
        "app clashes with owner role",
        "apps.tracksolid_db_owner",
        {"database": "tracksolid_db", "access": "read", "connectionLimit": 1},
        "apps.tracksolid_db_owner: role name is taken by the owner role of database tracksolid_db",
    ),
    (
        "external clashes with auth role",
        "externalRoles.pgbouncer_auth",
        {"connectionLimit": 1},
        "externalRoles.pgbouncer_auth: role name is taken by the PgBouncer auth role",
    ),
    (
        "limit missing",
        "apps.worker_app.connectionLimit",
        DELETE,
        "apps.worker_app.connectionLimit: is required, got nothing",
    ),
    (
        "limit -1 (unlimited)",
        "apps.worker_app.connectionLimit",
        -1,
        "apps.worker_app.connectionLimit: must be an integer >= 1, got -1",
    ),
    ("limit zero", "apps.worker_app.connectionLimit", 0, "apps.worker_app.connectionLimit: must be an integer >= 1"),
    (
        "limit not an integer",
        "apps.worker_app.connectionLimit",
        "10",
        'apps.worker_app.connectionLimit: must be an integer >= 1, got "10"',
    ),
    ("limit a float", "apps.worker_app.connectionLimit", 2.5, "apps.worker_app.connectionLimit: must be an integer"),
    ("limit a bool", "apps.worker_app.connectionLimit", True, "apps.worker_app.connectionLimit: must be an integer"),
    (
        "external limit missing",
        "externalRoles.grafana_ro.connectionLimit",
        DELETE,
        "externalRoles.grafana_ro.connectionLimit: is required",
    ),
    (
        "external limit -1",
        "externalRoles.grafana_ro.connectionLimit",
        -1,
        "externalRoles.grafana_ro.connectionLimit: must be an integer >= 1, got -1",
    ),
    (
        "negative statement timeout",
        "apps.worker_app.statementTimeoutMs",
        -5,
        "apps.worker_app.statementTimeoutMs: must be an integer >= 0, got -5",
    ),
    (
        "negative idle timeout",
        "apps.worker_app.idleInTransactionTimeoutMs",
        -1,
        "apps.worker_app.idleInTransactionTimeoutMs: must be an integer >= 0",
    ),
    ("maxConnections zero", "postgres.maxConnections", 0, "postgres.maxConnections: must be an integer >= 1, got 0"),
    (
        "reserved >= max",
        "postgres.superuserReservedConnections",
        100,
        "postgres.superuserReservedConnections: must be less than postgres.maxConnections (100), got 100",
    ),
    ("default pool size zero", "pgbouncer.defaultPoolSize", 0, "pgbouncer.defaultPoolSize: must be an integer >= 1"),
    (
        "reserve pool size negative",
        "pgbouncer.reservePoolSize",
        -1,
        "pgbouncer.reservePoolSize: must be an integer >= 0",
    ),
    ("max client conn zero", "pgbouncer.maxClientConn", 0, "pgbouncer.maxClientConn: must be an integer >= 1"),
    (
        "image latest",
        "pgbouncer.image",
        "edoburu/pgbouncer:latest",
        'pgbouncer.image: must pin a tag other than latest, or an @sha256 digest, got "edoburu/pgbouncer:latest"',
    ),
    ("image untagged (floats)", "pgbouncer.image", "edoburu/pgbouncer", "pgbouncer.image: must pin a tag"),
    ("image registry port, no tag", "postgres.image", "registry.local:5000/postgres", "postgres.image: must pin a tag"),
    (
        "budget does not fit",
        "apps.gateway_app.connectionLimit",
        90,
        "postgres.maxConnections: connection budget of server primary does not fit: roles hold 116",
    ),
    (
        "typed setting twice",
        "postgres.settings",
        {"max_connections": 500},
        "postgres.settings.max_connections: set postgres.maxConnections instead, got 500",
    ),
    ("unknown key (typo)", "app", {}, "app: is not a known setting"),
    (
        "auth role below one slot per pool",
        "pgbouncer.authConnectionLimit",
        2,
        "pgbouncer.authConnectionLimit: must be at least 4: PgBouncer keeps one lookup connection per app pool and opens a new one while an old one closes, got 2",
    ),
    (
        "app named like a database",
        "apps.fleet_platform",
        {"database": "fleet_platform", "access": "read", "connectionLimit": 1},
        "apps.fleet_platform: an app may not be named like a database",
    ),
    # A template database is copied into every new one (template1) or refuses connections (template0).
    (
        "template1 as a database",
        "databases.template1",
        {"schemas": ["public"]},
        "databases.template1: is a template database: every new database is copied from template1",
    ),
    (
        "template0 as a database",
        "databases.template0",
        {"schemas": ["public"]},
        "databases.template0: is a template database",
    ),
    ("postgres as a database", "databases.postgres", {"schemas": ["public"]}, "databases.postgres: is a reserved name"),
    (
        "unknown app key",
        "apps.worker_app.connectionlimit",
        5,
        "apps.worker_app.connectionlimit: is not a known setting",
    ),
]


@pytest.mark.parametrize(("case", "path", "value", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line_naming_key_and_value(case: str, path: str, value: Any, expected: str) -> None:
    lines = errors_of(changed(path, value))
    matching = [line for line in lines if line.startswith(expected)]
    assert matching, f"{case}: no line starts with {expected!r}; got {lines}"
    assert all("\n" not in line and "Traceback" not in line for line in lines)


def test_budget_message_lists_total_and_usable() -> None:
    (line,) = errors_of(changed("apps.gateway_app.connectionLimit", 90))
    # 10 + 5 + 90 apps + 5 external + 4 auth + 2 monitoring = 116, + 5 headroom = 121 > 97 usable
    assert "roles hold 116 + adminHeadroom 5 = 121 > 97 usable" in line
    assert "maxConnections 100 - superuserReservedConnections 3" in line


def test_budget_that_fits_exactly_is_accepted() -> None:
    # 10 + 5 + 15 + 5 + 4 + 2 (monitoring) = 41 held; headroom 5; usable 97 -> free 51: grow gateway by exactly 51.
    config = changed("apps.gateway_app.connectionLimit", 15 + 51)
    assert parse(config).apps["gateway_app"].connection_limit == 66
    with pytest.raises(ConfigError):
        parse(changed("apps.gateway_app.connectionLimit", 15 + 52))


def test_all_problems_reported_together() -> None:
    config = changed("apps.worker_app.connectionLimit", -1)
    config["pgbouncer"]["image"] = "edoburu/pgbouncer"
    config["target"] = "k8s"
    assert len(errors_of(config)) == 3


def test_digest_and_tags_are_pinned_images() -> None:
    for image in (
        "edoburu/pgbouncer:v1.25.2-p0",
        "registry.local:5000/pgbouncer:1.26.1",
        "edoburu/pgbouncer:v1.25.2-p0@sha256:" + "a" * 64,
    ):
        parse(changed("pgbouncer.image", image))


def test_hetzner_target_requires_hetzner_section_and_sane_network() -> None:
    config = changed("target", "hetzner")
    assert errors_of(config) == [
        "backup: is required for every Hetzner stack (pgBackRest to S3: docs/operations/backups-and-restore.md), got null",
        "hetzner: is required when target is hetzner, got null",
    ]
    config["hetzner"] = HETZNER | {"subnet": "10.9.1.0/24", "adminCidrs": ["0.0.0.0/0"]}
    lines = errors_of(config)
    assert any(line.startswith("hetzner.subnet: must lie inside hetzner.ipRange") for line in lines)
    assert any(line.startswith("hetzner.adminCidrs: together open more than a /16 of IPv4") for line in lines)


def test_defaults_and_derived_values() -> None:
    config = parse(valid_config())
    assert config.postgres.admin_headroom == 5
    assert config.required_pgbouncer().pool_mode == "transaction"
    assert config.apps["worker_app"].pooled is True
    assert config.app_schemas("worker_app") == ("tracksolid", "reporting")
    assert config.databases["tracksolid_db"].migration_table_names() == (
        "tracksolid.alembic_version",
        "tracksolid.schema_migrations",
        "reporting.alembic_version",
        "reporting.schema_migrations",
    )


def test_config_is_frozen() -> None:
    config = parse(valid_config())
    with pytest.raises(Exception, match="frozen"):
        config.apps["worker_app"].connection_limit = 500  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("subnet", "10.9.1.0/24", 'hetzner.subnet: must lie inside hetzner.ipRange (10.0.0.0/16), got "10.9.1.0/24"'),
        ("subnet", "10.0.1.0/33", 'hetzner.subnet: must be a CIDR such as 10.0.0.0/16, got "10.0.1.0/33"'),
        ("ipRange", "10.0.0.1/16", 'hetzner.ipRange: must be a CIDR such as 10.0.0.0/16, got "10.0.0.1/16"'),
        (
            "adminCidrs",
            ["::/0"],
            'hetzner.adminCidrs: together open more than a /48 of IPv6 to SSH and 5432, got ["::/0"]',
        ),
        ("adminCidrs", ["0.0.0.0/0"], "hetzner.adminCidrs: together open more than a /16 of IPv4"),
        ("adminCidrs", ["office"], 'hetzner.adminCidrs[0]: must be a CIDR such as 10.0.0.0/16, got "office"'),
        ("adminCidrs", [], "hetzner.adminCidrs: "),
        ("replicas", 2, "hetzner.replicas: must be 0 or 1, got 2"),
        ("volumeSize", 5, "hetzner.volumeSize: must be an integer >= 10, got 5"),
    ],
)
def test_hetzner_network_errors(key: str, value: Any, expected: str) -> None:
    config = valid_config()
    config["target"] = "hetzner"
    config["hetzner"] = {**HETZNER, key: value}
    lines = errors_of(config)
    assert any(line.startswith(expected) for line in lines), lines


def test_empty_sections_read_plainly() -> None:
    config = valid_config()
    config["apps"] = {}
    config["databases"]["fleet_platform"]["schemas"] = []
    lines = errors_of(config)
    assert "apps: must have at least 1 item after validation, not 0, got {}" in lines
    assert "databases.fleet_platform.schemas: must have at least 1 item after validation, not 0, got []" in lines


def test_a_section_of_another_target_is_an_error() -> None:
    local_with_hetzner = valid_config() | {"hetzner": HETZNER}
    (line,) = errors_of(local_with_hetzner)
    assert line.startswith('hetzner: does not belong to target local: remove it, got {"location": "fsn1"')
    hetzner_with_local = valid_config() | {
        "target": "hetzner",
        "hetzner": HETZNER,
        "local": {"postgresPort": 5433},
        "backup": S3_BACKUP,
    }
    assert errors_of(hetzner_with_local) == [
        'local: does not belong to target hetzner: remove it, got {"postgresPort": 5433, "pgbouncerPort": 6432}'
    ]


def test_derived_role_names_must_fit_postgres_63_bytes() -> None:
    config = valid_config()
    long_db = "d" * 60  # its owner role `<db>_owner` would be 66 bytes: Postgres would truncate it silently
    config["databases"][long_db] = {"schemas": ["public"]}
    lines = errors_of(config)
    assert (
        f'databases.{long_db}: derived role name {long_db}_owner is longer than 63 bytes, got "{long_db}_owner"'
        in lines
    )
    assert any(line.startswith(f"databases.{long_db}: derived role name {long_db}_write") for line in lines)


def test_an_app_may_not_take_a_group_role_name() -> None:
    config = valid_config()
    config["apps"]["tracksolid_db_read"] = {"database": "fleet_platform", "access": "read", "connectionLimit": 1}
    assert (
        'apps.tracksolid_db_read: role name is taken by the read role of database tracksolid_db, got "tracksolid_db_read"'
        in errors_of(config)
    )


def test_long_schema_subsets_get_a_short_stable_group_name() -> None:
    config = valid_config()
    schemas = [f"schema_{i:02d}_with_a_long_name" for i in range(4)]
    config["databases"]["tracksolid_db"]["schemas"] = schemas
    config["apps"]["worker_app"]["schemas"] = schemas[:2]
    group = parse(config).app_group("worker_app")
    assert group.startswith("tracksolid_db_read_") and len(group) <= 63
    assert group == parse(config).app_group("worker_app")


@pytest.mark.parametrize(
    ("rotation", "active", "generations"),
    [(0, "a", (0, 0)), (1, "b", (0, 1)), (2, "a", (1, 1)), (3, "b", (1, 2)), (4, "a", (2, 2))],
)
def test_each_rotation_makes_the_other_login_active_with_a_new_password(
    rotation: int, active: str, generations: tuple[int, int]
) -> None:
    config = valid_config()
    config["apps"]["worker_app"]["rotation"] = rotation
    parsed = parse(config)
    a, b = parsed.logins("worker_app")
    assert (a.role, b.role) == ("worker_app_a", "worker_app_b")
    assert parsed.active_login("worker_app").role == f"worker_app_{active}"
    assert (a.generation, b.generation) == generations  # only the newly active one's password changes
    assert parsed.logins("webhook_app") == (Login("webhook_app", "webhook_app", 0, True),)


def test_alternating_logins_both_count_in_the_budget() -> None:
    config = valid_config()
    config["apps"]["gateway_app"]["rotation"] = 0
    entries = {e.role: e.limit for e in budget.entries(parse(config))}
    assert entries["gateway_app_a"] == entries["gateway_app_b"] == 15 and "gateway_app" not in entries
    config["postgres"]["maxConnections"] = 50  # 10 + 5 + 15 + 15 + 5 external + 4 auth + 5 headroom > 47
    assert errors_of(config)[0].startswith("postgres.maxConnections: connection budget of server primary does not fit")


def test_an_alternating_login_may_not_take_another_roles_name() -> None:
    config = valid_config()
    config["apps"]["worker"] = {"database": "tracksolid_db", "access": "read", "connectionLimit": 1, "rotation": 0}
    config["apps"]["worker_a"] = {"database": "tracksolid_db", "access": "read", "connectionLimit": 1}
    assert 'apps.worker.rotation: login role worker_a is another role\'s name, got "worker"' in errors_of(config)


def _app(**spec: Any) -> dict[str, Any]:
    return {"database": "tracksolid_db", "access": "read", "connectionLimit": 1, **spec}


HARDENING = [
    # Accepted, then broken at run time.
    ("app named all", "apps.all", _app(), "apps.all: is a reserved name ("),
    ("app named sameuser", "apps.sameuser", _app(), "apps.sameuser: is a reserved name"),
    ("app named replication", "apps.replication", _app(), "apps.replication: is a reserved name"),
    ("role named none", "externalRoles.none", {"connectionLimit": 1}, "externalRoles.none: is a reserved name"),
    ("database named all", "databases.all", {"schemas": ["public"]}, "databases.all: is a reserved name"),
    ("trailing newline", "apps.worker\n", _app(), 'apps.worker\n: must match ^[a-z_][a-z0-9_]{0,62}$, got "worker\\n"'),
    (
        "schema trailing newline",
        "databases.fleet_platform.schemas",
        ["public\n"],
        "databases.fleet_platform.schemas[0]: must match",
    ),
    (
        "63-byte database",
        "databases." + "d" * 60,
        {"schemas": ["public"]},
        "databases." + "d" * 60 + ": derived role name",
    ),
    ("empty app schemas", "apps.worker_app.schemas", [], "apps.worker_app.schemas: must have at least 1 item"),
    # Accepted without complaint.
    (
        "huge max_connections",
        "postgres.maxConnections",
        10**30,
        "postgres.maxConnections: must be an integer <= 262143",
    ),
    ("huge headroom", "postgres.adminHeadroom", 10**9, "postgres.adminHeadroom: must be an integer <= 262143"),
    (
        "huge limit",
        "apps.worker_app.connectionLimit",
        10**7,
        "apps.worker_app.connectionLimit: must be an integer <= 262143",
    ),
    (
        "huge timeout",
        "apps.worker_app.statementTimeoutMs",
        2**31,
        "apps.worker_app.statementTimeoutMs: must be an integer <= 2147483647",
    ),
    ("huge client count", "pgbouncer.maxClientConn", 10**12, "pgbouncer.maxClientConn: must be an integer <= 1000000"),
    ("huge pool", "pgbouncer.defaultPoolSize", 10**6, "pgbouncer.defaultPoolSize: must be an integer <= 10000"),
    ("port 70000", "local.postgresPort", 70000, "local.postgresPort: must be an integer <= 65535"),
    ("port 0", "local.pgbouncerPort", 0, "local.pgbouncerPort: must be an integer >= 1"),
    (
        "same ports",
        "local",
        {"postgresPort": 5433, "pgbouncerPort": 5433},
        "local.pgbouncerPort: must differ from local.postgresPort, got 5433",
    ),
]


@pytest.mark.parametrize(("case", "path", "value", "expected"), HARDENING, ids=[c[0] for c in HARDENING])
def test_hostile_input_gets_one_line_naming_key_and_value(case: str, path: str, value: Any, expected: str) -> None:
    config = valid_config()
    *parents, last = (
        path.split(".", 2) if path.startswith(("apps.", "databases.", "externalRoles.")) else path.split(".")
    )
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    lines = errors_of(config)
    assert any(line.startswith(expected) for line in lines), lines


HETZNER_HOSTILE = [
    (
        "public ipRange",
        "ipRange",
        "8.0.0.0/8",
        'hetzner.ipRange: must be a private IPv4 range (10/8, 172.16/12, 192.168/16), got "8.0.0.0/8"',
    ),
    ("public subnet", "subnet", "8.0.1.0/24", "hetzner.subnet: must be a private IPv4 range"),
    (
        "a /29 subnet",
        "subnet",
        "10.0.1.0/29",
        'hetzner.subnet: must hold the hosts at .10 and .11: a /28 or larger, got "10.0.1.0/29"',
    ),
    ("a /30 subnet", "subnet", "10.0.1.0/30", "hetzner.subnet: must hold the hosts at .10 and .11"),
    ("empty location", "location", "", 'hetzner.location: must not be empty, got ""'),
    ("blank server type", "serverType", "  ", "hetzner.serverType: must not be empty"),
    ("no ssh keys", "sshKeys", [], "hetzner.sshKeys: must have at least 1 item"),
    ("empty ssh key", "sshKeys", [""], 'hetzner.sshKeys[0]: must not be empty, got ""'),
    (
        "all of IPv4 in halves",
        "adminCidrs",
        ["0.0.0.0/1", "128.0.0.0/1"],
        "hetzner.adminCidrs: together open more than a /16 of IPv4",
    ),
    ("a /15", "adminCidrs", ["198.18.0.0/15"], "hetzner.adminCidrs: together open more than a /16 of IPv4"),
    ("two /16s", "adminCidrs", ["198.18.0.0/16", "203.0.0.0/16"], "hetzner.adminCidrs: together open more than a /16"),
    ("IPv6 /32", "adminCidrs", ["2001:db8::/32"], "hetzner.adminCidrs: together open more than a /48 of IPv6"),
    ("huge volume", "volumeSize", 50000, "hetzner.volumeSize: must be an integer <= 10240"),
]


@pytest.mark.parametrize(("case", "key", "value", "expected"), HETZNER_HOSTILE, ids=[c[0] for c in HETZNER_HOSTILE])
def test_hostile_hetzner_input(case: str, key: str, value: Any, expected: str) -> None:
    config = valid_config()
    config["target"] = "hetzner"
    config["hetzner"] = {**HETZNER, key: value}
    lines = errors_of(config)
    assert any(line.startswith(expected) for line in lines), lines


def test_valid_edges_are_accepted() -> None:
    config = valid_config()
    config["pgbouncer"]["reservePoolSize"] = 0  # PgBouncer's own default
    config["local"] = {"postgresPort": 65535, "pgbouncerPort": 1}
    config["apps"]["worker_app"]["statementTimeoutMs"] = 2147483647
    assert parse(config).required_pgbouncer().reserve_pool_size == 0
    hetzner = valid_config() | {"target": "hetzner", "backup": S3_BACKUP}
    hetzner["hetzner"] = {
        **HETZNER,
        "subnet": "10.0.1.0/28",
        "adminCidrs": ["198.51.100.0/24", "203.0.113.0/24", "2001:db8::/48"],
    }
    assert parse(hetzner).hetzner is not None


BACKUP_CASES = [
    ("posix on a host", {"target": "hetzner", "backup": {"repo": "posix"}}, 'backup.repo: must be s3 on Hetzner (a posix repo dies with its host), got "posix"'),
    ("s3 without a bucket", {"backup": {"repo": "s3"}}, "backup.s3: is required when backup.repo is s3, got null"),
    ("unknown repo", {"backup": {"repo": "gcs"}}, "backup.repo: must be 's3' or 'posix'"),
    ("no retention", {"backup": {"repo": "posix", "retentionFull": 0}}, "backup.retentionFull: must be an integer >= 1, got 0"),
    # The official image has no pgBackRest and another entrypoint: only the images this program builds.
    ("an image not ours", {"backup": {"repo": "posix"}, "postgres": {"image": "postgres:17.6-trixie"}},
     'postgres.image: must be an image this program builds from images/: postgres-platform/postgres:17.12-deb13u1-patroni4.0.7, got "postgres:17.6-trixie"'),
    ("a digest only", {"backup": {"repo": "posix"}, "postgres": {"image": "postgres@sha256:" + "a" * 64}}, "postgres.image: must be an image this program builds"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "changes", "expected"), BACKUP_CASES, ids=[c[0] for c in BACKUP_CASES])
def test_backup_config(case: str, changes: dict[str, Any], expected: str) -> None:
    config = valid_config()
    for key, value in changes.items():
        config[key] = value if key != "postgres" else {**config["postgres"], **value}
    if config["target"] == "hetzner":
        config["hetzner"] = HETZNER
    lines = errors_of(config)
    assert any(line.startswith(expected) for line in lines), lines


def test_s3_keys_are_secret_config_never_plain_yaml() -> None:
    values = {f"postgres-platform:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in valid_config().items()}
    values["postgres-platform:backup"] = json.dumps(S3_BACKUP)
    load_stack_values(values)  # offline: the keys may live in the operator's copy of the stack
    with pytest.raises(ConfigError) as missing:
        load_stack_values(values, secret_keys=[])  # where Pulumi runs: they must be there
    assert missing.value.lines[0].startswith(
        "backupS3Key: is required for an s3 backup repo (pulumi config set --secret"
    )
    values["postgres-platform:backupS3Key"] = "AKIAPLAIN"
    values["postgres-platform:backupS3KeySecret"] = json.dumps({"secure": "v1:abc"})
    with pytest.raises(ConfigError) as plain:
        load_stack_values(values)
    assert plain.value.lines == [
        "backupS3Key: must be set with `pulumi config set --secret`, not in plain YAML, got a plain value"
    ]
    config = load_stack_values(values, secret_keys=["postgres-platform:backupS3Key"])
    assert "AKIAPLAIN" not in config.model_dump_json()  # secrets never reach the models


SETTING_CASES = [
    # Each would stop the server from starting (or be ignored): refused before anything is declared.
    ("wrk_mem", "4MB", 'postgres.settings.wrk_mem: is not a PostgreSQL setting (did you mean work_mem?), got "4MB"'),
    ("work_mem", "lots", 'postgres.settings.work_mem: must be a number (with a unit such as kB), got "lots"'),
    ("work_mem", "4 parsecs", "postgres.settings.work_mem: has no unit 'parsecs' (its unit is kB)"),
    ("work_mem", "1kB", "postgres.settings.work_mem: must be between 64 and 2147483647 kB"),
    ("shared_buffers", 1, "postgres.settings.shared_buffers: must be between 16 and 1073741823 8kB, got 1"),
    ("log_line_prefix", "x\ny = 'z", "postgres.settings.log_line_prefix: must be one line"),
    ("wal_level", "maximal", "postgres.settings.wal_level: must be one of minimal, replica, logical"),
    ("fsync", "maybe", 'postgres.settings.fsync: must be on or off, got "maybe"'),
    ("statement_timeout", True, "postgres.settings.statement_timeout: must be a number, not a boolean"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "value", "expected"), SETTING_CASES, ids=[f"{c[0]}={c[1]!r}" for c in SETTING_CASES])
def test_a_setting_the_shipped_server_would_refuse_is_one_line(name: str, value: Any, expected: str) -> None:
    lines = errors_of(changed(f"postgres.settings.{name}", value))
    assert [line for line in lines if line.startswith(expected)], lines


ACCEPTED_SETTINGS = [
    ("work_mem", "16MB"),
    ("work_mem", 4096),
    ("shared_buffers", "1GB"),
    ("fsync", True),
    ("wal_level", "Logical"),
    ("statement_timeout", "30s"),
    ("random_page_cost", 1.1),
    ("log_line_prefix", "%m [%p] '%u' "),
]


@pytest.mark.parametrize(("name", "value"), ACCEPTED_SETTINGS)
def test_settings_as_postgres_reads_them_are_accepted(name: str, value: Any) -> None:
    assert parse(changed(f"postgres.settings.{name}", value)).postgres.settings[name] == value


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "fsync",
            "off",
            'postgres.settings.fsync: must stay on on a Hetzner stack: a crash can corrupt the database, got "off"',
        ),
        ("full_page_writes", False, "postgres.settings.full_page_writes: must stay on on a Hetzner stack"),
        ("password_encryption", "md5", "postgres.settings.password_encryption: must be scram-sha-256"),
    ],
)
def test_a_hetzner_stack_keeps_durability_and_scram(name: str, value: Any, expected: str) -> None:
    config = valid_config()
    config.update(target="hetzner", hetzner=HETZNER, backup=S3_BACKUP)
    config["postgres"]["settings"] = {name: value}
    assert [line for line in errors_of(config) if line.startswith(expected)], errors_of(config)
    config["target"], config["local"] = "local", None  # a developer's scratch server may trade them
    del config["hetzner"]
    assert parse(config).postgres.settings == {name: value}


def test_a_union_field_gets_one_line_named_by_its_key_alone() -> None:
    """adminUser is a role name or `postgres`: pydantic fails each branch, under the branch's own name."""
    config = valid_config()
    del config["postgres"], config["pgbouncer"]
    config["target"] = "existing"
    config["existing"] = {"host": "db.internal", "adminUser": "Bad"}
    assert [line for line in errors_of(config) if "adminUser" in line] == [
        'existing.adminUser: must match ^[a-z_][a-z0-9_]{0,62}$, got "Bad"'
    ]
