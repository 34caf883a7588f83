"""Pure renderers: pgbouncer.ini, the auth file, SCRAM verifiers, DSNs, the SQL re-apply step."""

from __future__ import annotations

import base64
import configparser
import hashlib
import hmac

import pytest

from postgres_platform.model import access
from postgres_platform.model.config import ConfigError
from postgres_platform.model.load import parse
from postgres_platform.render import dsn, sql
from postgres_platform.render.pgbouncer import (
    Endpoints,
    pools,
    render_auth_file,
    render_hba,
    render_ini,
)
from postgres_platform.render.postgres import render_config_file, server_arguments
from postgres_platform.render.scram import scram_verifier, stable_verifier
from tests.helpers import valid_config

ENDPOINTS = Endpoints("0.0.0.0", 6432, "postgres", 5432, "/etc/pgbouncer/userlist.txt", "/etc/pgbouncer/hba.conf")


def ini() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(render_ini(parse(valid_config()), ENDPOINTS))
    return parser


def test_pgbouncer_pools_per_transaction_with_auth_query() -> None:
    settings = ini()["pgbouncer"]
    assert settings["pool_mode"] == "transaction"
    assert settings["auth_type"] == "hba"
    assert settings["auth_hba_file"] == "/etc/pgbouncer/hba.conf"
    assert settings["auth_user"] == "pgbouncer_auth"
    assert settings["auth_query"] == "SELECT usename, passwd FROM pgbouncer.get_auth($1)"
    assert settings["server_reset_query"] == "DISCARD ALL"
    assert settings["admin_users"] == "pgbouncer_admin"
    assert settings["stats_users"] == "pgbouncer_admin, pgplatform_monitor"  # the exporter reads SHOW POOLS
    assert (settings["default_pool_size"], settings["reserve_pool_size"]) == ("10", "2")


def test_each_app_has_a_pool_capped_at_its_connection_limit() -> None:
    # defaultPoolSize 10, reservePoolSize 2: pool + reserve never exceed the role's limit.
    assert dict(ini()["databases"]) == {
        "webhook_app": "host=postgres port=5432 dbname=tracksolid_db pool_size=10 reserve_pool=0 max_db_connections=10",
        "worker_app": "host=postgres port=5432 dbname=tracksolid_db pool_size=5 reserve_pool=0 max_db_connections=5",
        "gateway_app": "host=postgres port=5432 dbname=fleet_platform pool_size=10 reserve_pool=2 max_db_connections=12",
    }
    # Apps are not listed under [users]: their pool databases cap them (before 1.23 a listed user could not log in).
    # The auth role (from the auth file) is, one below its limit of 3 pools + 1.
    assert dict(ini()["users"]) == {"pgbouncer_auth": "max_user_connections=3"}


def test_the_pool_leaves_a_migrate_app_its_direct_slots() -> None:
    config = valid_config()
    config["pgbouncer"].update(defaultPoolSize=15, reservePoolSize=5)  # would take all 15 of gateway_app's
    by_app = {p.app: p for p in pools(parse(config))}
    assert by_app["gateway_app"].max_server_connections == 14  # one kept for its migrations' direct DSN
    assert by_app["webhook_app"].max_server_connections == 10  # a write app connects through the pool
    config["apps"]["gateway_app"]["directConnections"] = 3
    config["apps"]["webhook_app"]["directConnections"] = 2
    by_app = {p.app: p for p in pools(parse(config))}
    assert (by_app["gateway_app"].max_server_connections, by_app["webhook_app"].max_server_connections) == (12, 8)
    config["apps"]["gateway_app"]["directConnections"] = 15
    with pytest.raises(ConfigError, match=r"apps\.gateway_app\.directConnections: must leave the pool at least one"):
        parse(config)


def test_unpooled_app_gets_no_pool() -> None:
    config = valid_config()
    config["apps"]["worker_app"]["pooled"] = False
    assert [p.app for p in pools(parse(config))] == ["webhook_app", "gateway_app"]


def test_hba_admits_each_app_to_its_own_pool_only() -> None:
    lines = render_hba(parse(valid_config())).splitlines()
    assert "host webhook_app webhook_app 0.0.0.0/0 scram-sha-256" in lines
    assert "host pgbouncer pgbouncer_admin ::/0 scram-sha-256" in lines
    assert all(line.split()[1] == line.split()[2] for line in lines if line.split()[1] != "pgbouncer")
    assert len(lines) == 2 * 5  # three pools, the admin's and the monitoring role's console


def test_scram_verifier_matches_rfc_7677_construction() -> None:
    salt = b"0123456789abcdef"
    verifier = scram_verifier("pencil", salt, iterations=4096)
    head, keys = verifier.split("$", 1)[1].split("$")
    iterations, salt_b64 = head.split(":")
    stored, server = (base64.b64decode(k) for k in keys.split(":"))
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    assert iterations == "4096" and base64.b64decode(salt_b64) == salt
    assert stored == hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    assert server == hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    assert verifier != scram_verifier("pencil2", salt)


def test_auth_file_holds_auth_password_and_admin_verifier_only() -> None:
    text = render_auth_file("auth-secret", "admin-secret")
    lines = text.splitlines()
    assert lines[0] == '"pgbouncer_auth" "auth-secret"'
    assert lines[1].startswith('"pgbouncer_admin" "SCRAM-SHA-256$4096:')
    assert "admin-secret" not in text


def test_settings_read_at_start_go_on_the_command_line_the_rest_in_the_reloadable_file() -> None:
    config = valid_config()
    config["postgres"]["settings"] = {"shared_buffers": "256MB", "log_connections": True, "work_mem": "8MB"}
    args = server_arguments(parse(config))
    assert args[:7] == [
        "postgres",
        "-c",
        "config_file=/etc/postgresql/postgresql.conf",
        "-c",
        "max_connections=100",
        "-c",
        "superuser_reserved_connections=3",
    ]
    assert "shared_buffers=256MB" in args and "listen_addresses=*" in args
    assert not [a for a in args if a.startswith(("log_connections", "work_mem", "password_encryption"))]
    text = render_config_file(parse(config))
    assert "log_connections = 'on'" in text and "work_mem = '8MB'" in text
    assert "password_encryption = 'scram-sha-256'" in text
    assert "shared_buffers" not in text and "max_connections" not in text


def test_a_stable_verifier_changes_with_the_password_only() -> None:
    assert stable_verifier("app", "secret") == stable_verifier("app", "secret")
    assert stable_verifier("app", "secret") != stable_verifier("app", "other")
    assert stable_verifier("app", "secret") != stable_verifier("app2", "secret")  # another salt
    assert stable_verifier("app", "secret").startswith("SCRAM-SHA-256$4096:")


def test_dsn_forms() -> None:
    pooled = dsn.Endpoint("10.0.1.10", 6432, "require", pooled=True)
    direct = dsn.Endpoint("10.0.1.10", 5432, "require", pooled=False)
    assert (
        dsn.uri("app", "p@ss:w/rd", "db", direct)
        == "postgresql://app:p%40ss%3Aw%2Frd@10.0.1.10:5432/db?sslmode=require"
    )
    assert dsn.jdbc("app", "pw", "db", pooled).endswith("?user=app&password=pw&sslmode=require")
    assert "prepareThreshold" not in dsn.jdbc("app", "pw", "db", direct)
    assert dsn.pgpass("app", "a:b\\c", "db", direct) == "10.0.1.10:5432:db:app:a\\:b\\\\c"
    assert dsn.uri("app", "pw", "db", dsn.Endpoint("::1", 5432, "disable", False)).startswith(
        "postgresql://app:pw@[::1]:5432/"
    )


def test_reapply_sql_revokes_only_existing_migration_tables() -> None:
    config = valid_config()
    config["databases"]["tracksolid_db"]["migrationTables"] = ["tracksolid.schema_migrations"]
    revokes = [r for r in access.plan(parse(config)).migration_revokes if r.database == "tracksolid_db"]
    text = sql.revoke_migration_writes(revokes)
    assert "pg_catalog.to_regclass('tracksolid.schema_migrations') IS NOT NULL" in text
    assert (
        'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE "tracksolid"."schema_migrations" FROM "tracksolid_db_write";'
        in text
    )
    assert sql.revoke_migration_writes([]) == ""
    assert (
        sql.harden_auth_function()
        == 'ALTER FUNCTION "pgbouncer"."get_auth"(text) SET search_path = pg_catalog, pg_temp;'
    )


def test_lookup_function_refuses_privileged_and_expired_roles() -> None:
    body = access.auth_function_body()
    for clause in ("a.rolcanlogin", "NOT a.rolsuper", "NOT a.rolreplication", "NOT a.rolbypassrls", "rolvaliduntil"):
        assert clause in body
    assert "pg_catalog.pg_authid" in body
