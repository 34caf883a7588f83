"""DatabaseAccess: databases, owner and app roles, grants and default privileges, from the access plan."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_postgresql as postgresql
import pulumi_random as random

from components import sql
from components.access import AccessPlan, Role, auth_function_body
from components.names import AUTH_FUNCTION, AUTH_SCHEMA, SUPERUSER
from components.sql_apply import SqlApply


class DatabaseAccess(pulumi.ComponentResource):
    """One login role per app (and the PgBouncer auth role) with a hard CONNECTION LIMIT."""

    passwords: dict[str, pulumi.Output[str]]  # login role -> secret password

    def __init__(
        self,
        name: str,
        plan: AccessPlan,
        *,
        provider: postgresql.Provider,
        admin_connection: pulumi.Input[dict[str, Any]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("postgres-platform:index:DatabaseAccess", name, None, opts)
        # Every child talks to this server through the given provider.
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        roles: dict[str, postgresql.Role] = {}
        for owner in plan.owners:
            roles[owner.name] = self._role(owner, None, child)
        self.passwords = {}
        for login in plan.logins:
            password = random.RandomPassword(
                f"{login.name}-password",
                length=32,
                special=False,  # safe unescaped in URIs, JDBC URLs and pgpass lines
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.passwords[login.name] = pulumi.Output.secret(password.result)
            roles[login.name] = self._role(login, self.passwords[login.name], child)

        def role_name(role: str) -> pulumi.Input[str]:
            # Referencing the Role resource's output orders the grant after the role exists.
            return roles[role].name if role in roles else role

        # Per database: what grants need to exist first, and everything the re-apply step must follow.
        structure: dict[str, list[pulumi.Resource]] = {}
        privileges: dict[str, list[pulumi.Resource]] = {db.name: [] for db in plan.databases}
        for db in plan.databases:
            database = postgresql.Database(db.name, name=db.name, owner=roles[db.owner].name, opts=child)
            created: list[pulumi.Resource] = [database]
            for schema in db.schemas:
                created.append(
                    postgresql.Schema(
                        f"{db.name}-{schema}",
                        name=schema,
                        database=database.name,
                        owner=roles[db.owner].name,
                        opts=child,
                    )
                )
            auth_schema = postgresql.Schema(
                f"{db.name}-{AUTH_SCHEMA}", name=AUTH_SCHEMA, database=database.name, owner=SUPERUSER, opts=child
            )
            function = postgresql.Function(
                f"{db.name}-{AUTH_FUNCTION}",
                name=AUTH_FUNCTION,
                schema=auth_schema.name,
                database=database.name,
                args=[postgresql.FunctionArgArgs(name="p_usename", type="text")],
                returns="TABLE(usename text, passwd text)",
                language="sql",
                volatility="STABLE",
                security_definer=True,
                body=auth_function_body(),
                opts=child,
            )
            structure[db.name] = [*created, auth_schema, function]

        for grant in plan.grants:
            privileges[grant.database].append(
                postgresql.Grant(
                    f"grant-{grant.key}",
                    role=role_name(grant.role),
                    database=grant.database,
                    object_type=grant.object_type,
                    schema=grant.schema,
                    objects=list(grant.objects) or None,
                    privileges=list(grant.privileges),
                    opts=child.merge(pulumi.ResourceOptions(depends_on=structure[grant.database])),
                )
            )
        for default in plan.default_privileges:
            privileges[default.database].append(
                postgresql.DefaultPrivileges(
                    f"default-{default.key}",
                    role=role_name(default.role),
                    database=default.database,
                    owner=role_name(default.owner),
                    schema=default.schema,
                    object_type=default.object_type,
                    privileges=list(default.privileges),
                    opts=child.merge(pulumi.ResourceOptions(depends_on=structure[default.database])),
                )
            )
        for membership in plan.memberships:
            postgresql.GrantRole(
                f"member-{membership.member}-of-{membership.group}",
                role=role_name(membership.member),
                grant_role=role_name(membership.group),
                opts=child,
            )
        for db in plan.databases:
            revokes = [r for r in plan.migration_revokes if r.database == db.name]
            statements = [sql.harden_auth_function(), sql.revoke_migration_writes(revokes)]
            SqlApply(
                f"{db.name}-reapply",
                connection=admin_connection,
                database=db.name,
                purpose="auth function search_path, migration-table revokes",
                sql="\n".join(s for s in statements if s),
                # After every grant: a table-wide GRANT would otherwise re-add what this revokes.
                opts=pulumi.ResourceOptions(parent=self, depends_on=structure[db.name] + privileges[db.name]),
            )
        self.register_outputs({"roles": sorted(roles)})

    def _role(self, role: Role, password: pulumi.Input[str] | None, opts: pulumi.ResourceOptions) -> postgresql.Role:
        return postgresql.Role(
            role.name,
            name=role.name,
            login=role.login,
            password=password,
            connection_limit=role.connection_limit,
            superuser=False,
            create_database=False,
            create_role=False,
            replication=False,
            bypass_row_level_security=False,
            inherit=True,
            statement_timeout=role.statement_timeout_ms,
            idle_in_transaction_session_timeout=role.idle_in_transaction_timeout_ms,
            opts=opts,
        )
