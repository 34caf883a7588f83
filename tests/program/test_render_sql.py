"""render_sql and the Pulumi program come from one plan: every declared resource has its SQL, and back."""

from __future__ import annotations

import subprocess
import sys

from postgres_platform.model import access
from postgres_platform.model.stackfile import ROOT
from postgres_platform.offline.program import ProgramRun
from postgres_platform.render import sql
from tests.helpers import run_of


def sections(script: str) -> dict[str, set[str]]:
    """Statements per database section ('' = before the first \\connect)."""
    result: dict[str, set[str]] = {"": set()}
    current = ""
    for line in script.splitlines():
        if line.startswith("\\connect "):
            current = line.split('"')[1]
            result[current] = set()
        else:
            result[current].add(line)
    return result


def prod() -> tuple[ProgramRun, dict[str, set[str]]]:
    run = run_of("prod")
    script = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_sql.py"), "prod"], capture_output=True, text=True, check=True
    ).stdout
    return run, sections(script)


def test_every_role_resource_has_its_sql() -> None:
    run, by_db = prod()
    # The replication role belongs to the replica component, not to the access plan render_sql prints.
    roles = [r for r in run.of_type("postgresql:index/role:Role") if r.inputs["name"] != "replicator"]

    def millis(value: float | None) -> int | None:
        return None if value is None else int(value)  # mocks hand numbers back as floats

    for role in roles:
        inputs = role.inputs
        statements = sql.role_statements(
            access.Role(
                inputs["name"],
                login=inputs["login"],
                connection_limit=int(inputs["connectionLimit"]),
                statement_timeout_ms=millis(inputs.get("statementTimeout")),
                idle_in_transaction_timeout_ms=millis(inputs.get("idleInTransactionSessionTimeout")),
                member_of=tuple(inputs.get("roles") or ()),
                assume_role=inputs.get("assumeRole"),
            )
        )
        statements += sql.membership_statements(
            access.Role(
                inputs["name"], login=inputs["login"], connection_limit=0, member_of=tuple(inputs.get("roles") or ())
            )
        )
        assert set(statements) <= by_db[""], inputs["name"]
    created = [line for line in by_db[""] if line.startswith("SELECT 'CREATE ROLE")]
    assert len(created) == len(roles)


def test_every_grant_and_default_privilege_resource_has_its_sql_in_its_database() -> None:
    run, by_db = prod()
    grants = run.of_type("postgresql:index/grant:Grant")
    for resource in grants:
        i = resource.inputs
        grant = access.Grant(
            i["role"],
            i["database"],
            i["objectType"],
            tuple(i["privileges"]),
            i.get("schema"),
            tuple(i.get("objects") or ()),
        )
        assert set(sql.grant_statements(grant)) <= by_db[grant.database], grant
    defaults = run.of_type("postgresql:index/defaultPrivileges:DefaultPrivileges")
    for resource in defaults:
        i = resource.inputs
        default = access.DefaultPrivilege(
            i["role"], i["database"], i["owner"], i["schema"], i["objectType"], tuple(i["privileges"])
        )
        assert set(sql.default_privilege_statements(default)) <= by_db[default.database], default
    # ...and the script grants nothing the program does not declare.
    revokes = sum(1 for lines in by_db.values() for line in lines if line.startswith("REVOKE ALL ON "))
    assert revokes == len(grants)
    default_grants = sum(
        1 for lines in by_db.values() for line in lines if "DEFAULT PRIVILEGES" in line and " GRANT " in line
    )
    assert default_grants == len(defaults)


def test_databases_schemas_memberships_and_lookup_function_agree() -> None:
    run, by_db = prod()
    for database in run.of_type("postgresql:index/database:Database"):
        name, owner = database.inputs["name"], database.inputs["owner"]
        assert f'ALTER DATABASE "{name}" OWNER TO "{owner}";' in by_db[""]
    for schema in run.of_type("postgresql:index/schema:Schema"):
        i = schema.inputs
        assert f'ALTER SCHEMA "{i["name"]}" OWNER TO "{i["owner"]}";' in by_db[i["database"]]
    grants_of_roles = {line for line in by_db[""] if line.startswith("GRANT ")}
    declared = {
        f'GRANT "{group}" TO "{role.inputs["name"]}";'
        for role in run.of_type("postgresql:index/role:Role")
        for group in role.inputs.get("roles") or ()
    }
    assert grants_of_roles == declared and declared
    for function in run.of_type("postgresql:index/function:Function"):
        assert sql.harden_auth_function() in by_db[function.inputs["database"]]
        assert function.inputs["body"] in "\n".join(sql.auth_function_statements())
    for reapply in run.of_type("pulumi-python:dynamic/postgres-platform:SqlApply"):
        for line in reapply.inputs["sql"].splitlines():
            assert line in by_db[reapply.inputs["database"]]


def test_the_declared_lookup_function_is_the_one_the_script_creates() -> None:
    """Both come from sql.AUTH_FUNCTION_DEFINITION: the script's CREATE, rebuilt from each declared Function."""
    declared = run_of("prod").of_type("postgresql:index/function:Function")
    assert declared
    for function in declared:
        i = function.inputs
        (argument,) = i["args"]  # exactly one
        definer = " SECURITY DEFINER" if i["securityDefiner"] else ""
        create = (
            f'CREATE OR REPLACE FUNCTION "{i["schema"]}"."{i["name"]}"({argument["name"]} {argument["type"]})\n'
            f"RETURNS {i['returns']}\nLANGUAGE {i['language']} {i['volatility']}{definer}\n"
            f"AS $function${i['body']}$function$;"
        )
        assert create in sql.auth_function_statements()


def test_passwords_are_psql_variables_never_in_the_script() -> None:
    _, by_db = prod()
    text = "\n".join(line for lines in by_db.values() for line in lines)
    assert "ALTER ROLE \"webhook_app\" WITH PASSWORD :'webhook_app_password';" in text
    assert "PASSWORD '" not in text
