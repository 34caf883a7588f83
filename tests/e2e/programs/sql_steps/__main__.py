"""The project's own SQL steps under the real engine: SqlApply and RoleRetirement as components/access.py
declares them (the same classes, names, scripts and checks, for the prod plan), against a server the
test runs. They are Python dynamic providers, so they need no provider plugin binary; the program's
other resources (docker, postgresql, random, tls, command) need plugins this machine cannot build.

Config (namespace e2e): port, password (secret), retiring (a login whose RoleRetirement is declared
while it is true), extraSql (appended to every step: the policy pack's test).
"""

import pulumi

from components.resources.sql_apply import RoleRetirement, SqlApply
from postgres_platform.model import access
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import SUPERUSER, owner_role
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render import sql

config = pulumi.Config("e2e")
plan = access.plan(load_stack_values(read_stack_values(stack_file("prod"))))
connection = {
    "host": "127.0.0.1",
    "port": config.require_int("port"),
    "user": SUPERUSER,
    "password": config.require_secret("password"),
    "sslmode": "disable",
    "sslrootcert": None,
}
extra = config.get("extraSql") or ""
for db in plan.databases:
    SqlApply(
        f"access-{db.name}-reapply",
        connection=connection,
        database=db.name,
        purpose="auth function search_path, migration-table revokes, privileges beyond the plan",
        sql=sql.reapply_script(plan, db.name) + extra,
        check=sql.reapply_check(plan, db.name),
    )
retiring = config.get("retiring")
if retiring:
    RoleRetirement(
        f"access-{retiring}-retirement",
        connection=connection,
        role=retiring,
        statements={"fleet_platform": sql.retire_role(retiring, owner_role("fleet_platform"))},
    )
pulumi.export("databases", [db.name for db in plan.databases])
