"""DatabaseAccess: databases, schemas, owner, group and login roles, grants and default privileges.

Everything comes from the access plan (model.access), the same plan render_sql prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_postgresql as postgresql

from components.resources.admin import AdminConnection
from components.resources.passwords import generated_password
from components.resources.sql_apply import RoleRetirement, SqlApply
from postgres_platform.model.access import AccessPlan, Database, OwnershipMove, Role
from postgres_platform.model.names import SUPERUSER
from postgres_platform.render import sql
from postgres_platform.render.scram import stable_verifier


@dataclass(frozen=True)
class DatabaseAccessArgs:
    plan: AccessPlan
    provider: postgresql.Provider  # the superuser's, on the primary
    admin: AdminConnection  # for the SQL the provider cannot declare
    generations: Mapping[str, int] = field(default_factory=dict)  # login role -> password generation


# What an adopted database keeps as it is: the provider would ALTER it to match (an import with other
# inputs is imported, then updated), and none of it is the program's to decide on a running server.
ADOPTED_DATABASE = [
    "owner",
    "template",
    "encoding",
    "lcCollate",
    "lcCtype",
    "tablespaceName",
    "connectionLimit",
    "allowConnections",
    "isTemplate",
    "alterObjectOwnership",
]
# Removing or renaming a database or schema in the config must never become DROP DATABASE (the provider
# terminates its sessions and drops it; a replica replays that). docs/operations/changing-a-live-stack.md: renaming.
PROTECTED = pulumi.ResourceOptions(protect=True)
Admin = pulumi.Output[dict[str, Any]]  # the admin connection, one secret Output for every SQL step


def _was(old_name: str) -> pulumi.ResourceOptions:
    """Stacks deployed before children were prefixed knew this resource by its bare name: same resource."""
    return pulumi.ResourceOptions(aliases=[pulumi.Alias(name=old_name)])


def _imported(pulumi_id: str, kept: list[str]) -> pulumi.ResourceOptions:
    """A running server's object: imported, retained when it leaves the config, its `kept` inputs never changed."""
    return pulumi.ResourceOptions(import_=pulumi_id, retain_on_delete=True, ignore_changes=kept)


class DatabaseAccess(pulumi.ComponentResource):
    """Per database: its owner, groups and structure; per app: a login role with a hard CONNECTION LIMIT.

    A created server's databases and schemas are the program's (_created_structure); an adopted server's
    are imported and kept as they are (_adopted_structure): the one choice between the two, made once.
    """

    passwords: dict[str, pulumi.Output[str]]  # login role -> secret password

    def __init__(self, name: str, args: DatabaseAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:DatabaseAccess", name, None, opts)
        plan = args.plan
        self._name = name
        self._on_server = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.passwords = {
            login.name: generated_password(
                f"{name}-{login.name}-password",
                self,
                was=f"{login.name}-password",
                generation=args.generations.get(login.name, 0),
            )
            for login in plan.logins
        }
        self._roles = self._declared_roles(plan)  # first: everything below refers to them
        declare_structure = self._adopted_structure if plan.adopted else self._created_structure
        admin = args.admin.as_secret_input()  # one Output for every SQL step
        databases: dict[str, postgresql.Database] = {}
        structures: dict[str, list[pulumi.Resource]] = {}  # what a database's grants and steps wait for
        granted: dict[str, list[pulumi.Resource]] = {}
        for db in plan.databases:
            database, schemas = declare_structure(db)
            structure = [database, *schemas, *(self._auth_function(db.name, database) if plan.has_pgbouncer else [])]
            granted[db.name] = structure + self._privileges(plan, db.name, structure)
            databases[db.name], structures[db.name] = database, structure
        for db in plan.databases:
            # The step holding the database privileges revokes them on every database (PUBLIC's CONNECT
            # under the lockdown): it waits for every database's grants, so no declared role is cut off.
            cluster = sql.holds_cluster(plan, db.name)
            after = [r for name, resources in granted.items() if cluster or name == db.name for r in resources]
            self._reapply(plan, db.name, admin, after=after)
        for move in plan.ownership:
            self._move_ownership(plan, move, admin, after=structures[move.database])
        by_name = {db.name: db for db in plan.databases}
        for login in plan.logins:
            if login.database is not None:  # an app's
                self._retirement(plan, login, by_name[login.database], admin, databases[login.database])
        self.register_outputs({"roles": sorted(self._roles)})

    def _ref(self, role: str) -> pulumi.Input[str]:
        """A declared role by its resource output (orders the user after it); PUBLIC and others by name."""
        return self._roles[role].name if role in self._roles else role

    def _declared_roles(self, plan: AccessPlan) -> dict[str, postgresql.Role]:
        roles: dict[str, postgresql.Role] = {}
        for role in plan.roles:  # owners and groups first: a login role lists them in `roles`
            # A built-in group (pg_monitor) is no resource here: nothing to order the role after.
            roles[role.name] = self._role(role, [roles[group] for group in role.member_of if group in roles])
        return roles

    def _role(self, role: Role, groups: list[postgresql.Role]) -> postgresql.Role:
        password = self.passwords.get(role.name)
        return postgresql.Role(
            f"{self._name}-{role.name}",
            name=role.name,
            login=role.login,
            # The SCRAM verifier, not the password: stored as is, so no plaintext reaches the server's log;
            # a stable salt, so it only changes with the password (PgBouncer's cached keys stay valid).
            password=None if password is None else password.apply(lambda pw: stable_verifier(role.name, pw)),
            connection_limit=role.connection_limit,
            superuser=False,
            create_database=False,
            create_role=False,
            replication=False,
            bypass_row_level_security=False,
            inherit=True,
            # Memberships only here: the provider revokes any membership not listed on every update.
            # Literal names (ordered by depends_on below): the role-memberships policy reads them at preview.
            roles=list(role.member_of),
            assume_role=role.assume_role,
            statement_timeout=role.statement_timeout_ms,
            idle_in_transaction_session_timeout=role.idle_in_transaction_timeout_ms,
            opts=self._on_server.merge(_was(role.name)).merge(pulumi.ResourceOptions(depends_on=groups)),
        )

    def _created_structure(self, db: Database) -> tuple[postgresql.Database, list[postgresql.Schema]]:
        """The database and its schemas, owned by the database's owner role."""
        owner = self._ref(db.owner)
        database = postgresql.Database(
            f"{self._name}-{db.name}",
            name=db.name,
            owner=owner,
            opts=self._on_server.merge(_was(db.name)).merge(PROTECTED),
        )
        schemas = [
            postgresql.Schema(
                f"{self._name}-{db.name}-{schema}",
                name=schema,
                database=database.name,
                owner=owner,
                opts=self._on_server.merge(_was(f"{db.name}-{schema}")).merge(PROTECTED),
            )
            for schema in db.schemas
        ]
        return database, schemas

    def _adopted_structure(self, db: Database) -> tuple[postgresql.Database, list[postgresql.Schema]]:
        """A running server's database and schemas: imported (the first preview shows `= import`), kept
        when they leave the config, their owners left as they are (the ownership step moves the schemas
        of a database with a migrate app). Pulumi IDs: `<db>` and `<db>.<schema>`."""
        database = postgresql.Database(
            f"{self._name}-{db.name}",
            name=db.name,
            opts=self._on_server.merge(PROTECTED).merge(_imported(db.name, ADOPTED_DATABASE)),
        )
        schemas = [
            postgresql.Schema(
                f"{self._name}-{db.name}-{schema}",
                name=schema,
                database=database.name,
                owner=None,
                opts=self._on_server.merge(_imported(f"{db.name}.{schema}", ["owner"])).merge(PROTECTED),
            )
            for schema in db.schemas
        ]
        return database, schemas

    def _auth_function(self, db: str, database: postgresql.Database) -> list[pulumi.Resource]:
        """PgBouncer's lookup function as sql.AUTH_FUNCTION_DEFINITION defines it, in a schema of the superuser's."""
        function = sql.AUTH_FUNCTION_DEFINITION
        schema = postgresql.Schema(
            f"{self._name}-{db}-{function.schema}",
            name=function.schema,
            database=database.name,
            owner=SUPERUSER,
            opts=self._on_server.merge(_was(f"{db}-{function.schema}")).merge(PROTECTED),
        )
        declared = postgresql.Function(
            f"{self._name}-{db}-{function.name}",
            name=function.name,
            schema=function.schema,
            database=database.name,
            args=[postgresql.FunctionArgArgs(name=function.argument_name, type=function.argument_type)],
            returns=function.result,
            language=function.language,
            volatility=function.volatility,
            security_definer=function.security_definer,
            body=function.body,
            opts=self._on_server.merge(_was(f"{db}-{function.name}")),
        )
        return [schema, declared]

    def _privileges(self, plan: AccessPlan, database: str, structure: list[pulumi.Resource]) -> list[pulumi.Resource]:
        after = self._on_server.merge(pulumi.ResourceOptions(depends_on=structure))
        declared: list[pulumi.Resource] = []
        for grant in plan.grants:
            if grant.database == database:
                declared.append(
                    postgresql.Grant(
                        f"{self._name}-grant-{grant.key}",
                        role=self._ref(grant.role),
                        database=grant.database,
                        object_type=grant.object_type,
                        schema=grant.schema,
                        objects=list(grant.objects) or None,
                        privileges=list(grant.privileges),
                        opts=after,
                    )
                )
        for default in plan.default_privileges:
            if default.database == database:
                declared.append(
                    postgresql.DefaultPrivileges(
                        f"{self._name}-default-{default.key}",
                        role=self._ref(default.role),
                        database=default.database,
                        owner=self._ref(default.owner),
                        schema=default.schema,
                        object_type=default.object_type,
                        privileges=list(default.privileges),
                        opts=after,
                    )
                )
        return declared

    def _reapply(self, plan: AccessPlan, database: str, admin: Admin, after: list[pulumi.Resource]) -> None:
        SqlApply(
            f"{self._name}-{database}-reapply",
            connection=admin,
            database=database,
            purpose="auth function search_path, migration-table revokes, privileges beyond the plan",
            sql=sql.reapply_script(plan, database),
            check=sql.reapply_check(plan, database),
            # After every grant: a table-wide GRANT would otherwise re-add what this revokes.
            opts=pulumi.ResourceOptions(parent=self, depends_on=after).merge(_was(f"{database}-reapply")),
        )

    def _move_ownership(
        self, plan: AccessPlan, move: OwnershipMove, admin: Admin, after: list[pulumi.Resource]
    ) -> None:
        SqlApply(
            f"{self._name}-{move.database}-ownership",
            connection=admin,
            database=move.database,
            purpose="app schemas owned by the owner role",
            sql=sql.ownership_script(move, plan.admin_superuser),
            check=sql.ownership_check(move),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._roles[move.owner], *after]),
        )

    def _retirement(self, plan: AccessPlan, app: Role, db: Database, admin: Admin, database: pulumi.Resource) -> None:
        """What the app owns goes to its database's owner before its role is dropped. Its own database
        only: PUBLIC has no CONNECT on app databases, and no CREATE in `public` (PostgreSQL 15), so an app
        can own objects nowhere else."""
        RoleRetirement(
            f"{self._name}-{app.name}-retirement",
            connection=admin,
            role=self._roles[app.name].name,
            statements={db.name: sql.retire_role(app.name, db.owner, plan.admin_superuser)},
            # Depending on the role, it is deleted first: the reassignment runs before the DROP ROLE.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._roles[app.name], database]),
        )
