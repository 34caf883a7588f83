"""The set-based grant check against an oracle: on a real server with hundreds of tables and hand-made drift,
each app role's effective privileges on every table and sequence, asked one object and privilege at a time
(has_table_privilege, has_sequence_privilege), imply exactly the missing and excess grants
`check_grants` reports; and the check's queries per database do not grow with the tables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from postgres_platform.cli.bench_grants import counted_queries, generated_config, table_scripts
from postgres_platform.harness.servers import Servers
from postgres_platform.model import access
from postgres_platform.ops.grants import check_grants

CONFIG = generated_config(20)  # two databases, ten apps each: read, write and migrate
PLAN = access.plan(CONFIG)
ALL_PRIVILEGES = {
    "table": ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"),
    "sequence": ("SELECT", "USAGE", "UPDATE"),
}
PLANNED = {"table": access.TABLE_PRIVILEGES, "sequence": access.SEQUENCE_PRIVILEGES}
# Tables are spread round robin over the two databases: db_000 holds the even ones, db_001 the odd.
DRIFT = {
    "db_000": """
        REVOKE SELECT ON public.t00000, public.t00002, public.t00004 FROM db_000_read;
        GRANT INSERT ON public.t00006 TO app_0000;
        REVOKE USAGE ON SEQUENCE public.t00008_id_seq FROM db_000_write;
    """,
    "db_001": """
        GRANT TRUNCATE ON public.t00001 TO db_001_read;
        ALTER DEFAULT PRIVILEGES FOR ROLE db_001_owner IN SCHEMA public REVOKE SELECT ON TABLES FROM db_001_read;
        SET ROLE db_001_owner; CREATE TABLE public.after_drift (id bigserial PRIMARY KEY); RESET ROLE;
    """,
}
# (database, role, kind, object, privilege)
Grant = tuple[str, str, str, str, str]
# (database, creator, schema, object type, role)
Default = tuple[str, str, str, str, str]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with Servers(CONFIG) as started:
        create_tables(started, 10)
        yield started


def create_tables(servers: Servers, tables: int) -> None:
    for database, script in table_scripts(CONFIG, tables).items():
        servers.psql(script, database=database)


def held(session: psycopg.Connection[Any], role: str, kind: str, relation: int, privilege: str) -> bool:
    function = "has_sequence_privilege" if kind == "sequence" else "has_table_privilege"
    row = session.execute(f"SELECT pg_catalog.{function}(%s, %s::oid, %s)", (role, relation, privilege)).fetchone()
    return bool(row and row[0])


def relations(session: psycopg.Connection[Any], schemas: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """(oid, schema.name, table or sequence) of every relation the groups' schemas hold."""
    rows = session.execute(
        "SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), "
        "CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY (%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')",
        (list(schemas),),
    ).fetchall()
    return [(int(oid), str(name), str(kind)) for oid, name, kind in rows]


def oracle_grants(servers: Servers, db: access.Database) -> tuple[set[Grant], set[Grant]]:
    """(missing, excess) from each group's and app login's effective privileges, one at a time: a group
    lacks what its level grants, and holds beyond it the rest; a login holds beyond the plan what none of
    the roles it is a member of holds (its only planned privileges are theirs)."""
    levels = {g.name: g.level for g in db.groups}
    logins = [r for r in PLAN.logins if r.database == db.name]
    missing: set[Grant] = set()
    excess: set[Grant] = set()
    with psycopg.connect(servers.superuser_dsn(db.name), autocommit=True) as session:
        for oid, name, kind in relations(session, db.schemas):
            for privilege in ALL_PRIVILEGES[kind]:
                has = {r: held(session, r, kind, oid, privilege) for r in [*levels, *(r.name for r in logins)]}
                for group, level in levels.items():
                    if privilege in PLANNED[kind][level] and not has[group]:
                        missing.add((db.name, group, kind, name, privilege))
                    if privilege not in PLANNED[kind][level] and has[group]:
                        excess.add((db.name, group, kind, name, privilege))
                for login in logins:
                    through = any(has.get(m) or held(session, m, kind, oid, privilege) for m in login.member_of)
                    if has[login.name] and not through:
                        excess.add((db.name, login.name, kind, name, privilege))
    return missing, excess


def oracle_defaults(servers: Servers, db: access.Database) -> set[Default]:
    """The plan's default privileges a new table and sequence do not get: each creator creates a probe in
    each schema (rolled back), and each group's privileges on it are asked one at a time."""
    planned = [d for d in PLAN.default_privileges if d.database == db.name]
    lacking: set[Default] = set()
    with psycopg.connect(servers.superuser_dsn(db.name)) as session:
        for creator in sorted({d.owner for d in planned}):
            session.execute(f'SET ROLE "{creator}"')
            for schema in db.schemas:
                session.execute(f'CREATE TABLE "{schema}".oracle_probe (id bigserial)')
            session.execute("RESET ROLE")
            for d in planned:
                if d.owner != creator:
                    continue
                probe = f'"{d.schema}".oracle_probe' + ("_id_seq" if d.object_type == "sequence" else "")
                oid = session.execute("SELECT %s::regclass::oid", (probe,)).fetchone()
                if not all(held(session, d.role, d.object_type, int(oid[0]) if oid else 0, p) for p in d.privileges):
                    lacking.add((db.name, d.owner, d.schema, d.object_type, d.role))
        session.rollback()
    return lacking


LACKS = re.compile(r"(?P<db>\w+): (?P<role>\S+) lacks (?P<privileges>.+) on (?P<kind>table|sequence) (?P<name>\S+)")
REVOKE = re.compile(r"REVOKE (?P<privileges>.+) ON (?P<kind>TABLE|SEQUENCE) (?P<names>.+) FROM (?P<role>\S+) CASCADE;")
NO_DEFAULT = re.compile(
    r"(?P<db>\w+): no default .+ on new (?P<kind>table|sequence)s of (?P<creator>\S+) in (?P<schema>\S+) for (?P<role>\S+)"
)


def reported(failures: list[dict[str, str]]) -> tuple[set[Grant], set[Grant], set[Default]]:
    """The check's failures as (missing, excess, default) grants; any other failure fails the test."""
    missing: set[Grant] = set()
    excess: set[Grant] = set()
    defaults: set[Default] = set()
    for failure in failures:
        problem, fix = failure["problem"], failure["fix"]
        if lacks := LACKS.fullmatch(problem):
            for privilege in lacks["privileges"].split(", "):
                missing.add((lacks["db"], lacks["role"], lacks["kind"], lacks["name"], privilege))
        elif (revoke := REVOKE.fullmatch(fix)) and "beyond the plan" in problem:
            database = problem.split(":", 1)[0]
            for name in revoke["names"].split(", "):
                for privilege in revoke["privileges"].split(", "):
                    excess.add((database, revoke["role"], revoke["kind"].lower(), name, privilege))
        elif default := NO_DEFAULT.fullmatch(problem):
            defaults.add((default["db"], default["creator"], default["schema"], default["kind"], default["role"]))
        else:
            raise AssertionError(f"not a table, sequence or default privilege failure: {failure}")
    return missing, excess, defaults


def test_the_check_reports_exactly_the_missing_and_excess_grants_the_oracle_implies(servers: Servers) -> None:
    create_tables(servers, 300)
    assert check_grants(CONFIG, servers.superuser_dsn()) == []
    for database, script in DRIFT.items():
        servers.psql(script, database=database)
    try:
        missing, excess, defaults = set(), set(), set()
        for db in PLAN.databases:
            lacking, beyond = oracle_grants(servers, db)
            missing |= lacking
            excess |= beyond
            defaults |= oracle_defaults(servers, db)
        # The oracle sees the drift as made: each kind of it, and nothing else.
        assert {(g[1], g[3], g[4]) for g in missing} == {
            *(("db_000_read", f"public.t0000{i}", "SELECT") for i in (0, 2, 4)),
            ("db_000_write", "public.t00008_id_seq", "USAGE"),
            ("db_001_read", "public.after_drift", "SELECT"),
        }
        assert {(g[1], g[3], g[4]) for g in excess} == {
            ("app_0000", "public.t00006", "INSERT"),
            ("db_001_read", "public.t00001", "TRUNCATE"),
        }
        assert defaults == {("db_001", "db_001_owner", "public", "table", "db_001_read")}
        assert reported(check_grants(CONFIG, servers.superuser_dsn())) == (missing, excess, defaults)
    finally:
        servers.apply_plan()
    assert check_grants(CONFIG, servers.superuser_dsn()) == []


def test_the_queries_per_database_do_not_grow_with_the_tables(servers: Servers) -> None:
    def queries(tables: int) -> dict[str, int]:
        create_tables(servers, tables)
        with counted_queries() as counts:
            assert check_grants(CONFIG, servers.superuser_dsn()) == []
        return dict(counts)

    few, many = queries(10), queries(300)
    assert few == many and set(few) == {"postgres", *CONFIG.databases} and max(few.values()) <= 10
