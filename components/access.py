"""DatabaseAccess: databases, schemas, owner, group and login roles, grants and default privileges.

Everything comes from the access plan (model.access), the same plan render_sql prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_postgresql as postgresql

from components.resources.admin import AdminConnection
from components.resources.passwords import generated_password
from components.resources.sql_apply import RoleRetirement, SqlApply
from postgres_platform.model.access import AccessPlan, Database, Role, auth_function_body
from postgres_platform.model.names import AUTH_FUNCTION, AUTH_SCHEMA, SUPERUSER
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
ADOPTED_DATABASE = ["owner", "template", "encoding", "lcCollate", "lcCtype", "tablespaceName", "connectionLimit",
                    "allowConnections", "isTemplate", "alterObjectOwnership"]  # fmt: skip


def _was(old_name: str) -> pulumi.ResourceOptions:
    """Stacks deployed before children were prefixed knew this resource by its bare name: same resource."""
    return pulumi.ResourceOptions(aliases=[pulumi.Alias(name=old_name)])


class DatabaseAccess(pulumi.ComponentResource):
    """Per database: its owner, groups and structure; per app: a login role with a hard CONNECTION LIMIT."""

    passwords: dict[str, pulumi.Output[str]]  # login role -> secret password

    def __init__(self, name: str, args: DatabaseAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:DatabaseAccess", name, None, opts)
        self._name = name
        self._on_server = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self._adopted, self._pooler = args.plan.adopted, args.plan.pooler
        self.passwords = {
            login.name: generated_password(
                f"{name}-{login.name}-password",
                self,
                was=f"{login.name}-password",
                generation=args.generations.get(login.name, 0),
            )
            for login in args.plan.logins
        }
        self._roles: dict[str, postgresql.Role] = {}
        self._databases: dict[str, postgresql.Database] = {}
        for role in args.plan.roles:  # owners and groups first: a login role lists them in `roles`
            self._roles[role.name] = self._role(role)
        admin = args.admin.as_secret_input()  # one Output for every SQL step
        self._structure_of: dict[str, list[pulumi.Resource]] = {}
        for db in args.plan.databases:
            structure = self._structure_of[db.name] = self._structure(db)
            privileges = self._privileges(args.plan, db.name, structure)
            SqlApply(
                f"{name}-{db.name}-reapply",
                connection=admin,
                database=db.name,
                purpose="auth function search_path, migration-table revokes, privileges beyond the plan",
                sql=sql.reapply_script(args.plan, db.name),
                check=sql.reapply_check(args.plan, db.name),
                # After every grant: a table-wide GRANT would otherwise re-add what this revokes.
                opts=pulumi.ResourceOptions(parent=self, depends_on=structure + privileges).merge(
                    _was(f"{db.name}-reapply")
                ),
            )
        for move in args.plan.ownership:
            SqlApply(
                f"{name}-{move.database}-ownership",
                connection=admin,
                database=move.database,
                purpose="app schemas owned by the owner role",
                sql=sql.ownership_script(move, args.plan.admin_superuser),
                check=sql.ownership_check(move),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self._roles[move.owner], *self._structure_of[move.database]]
                ),
            )
        owners = {db.name: db.owner for db in args.plan.databases}
        for login in args.plan.logins:
            if login.database is None:
                continue  # not an app's
            # Its own database only: PUBLIC has no CONNECT on app databases, and no CREATE in `public`
            # (PostgreSQL 15), so an app can own objects nowhere else.
            RoleRetirement(
                f"{name}-{login.name}-retirement",
                connection=admin,
                role=self._roles[login.name].name,
                statements={
                    login.database: sql.retire_role(login.name, owners[login.database], args.plan.admin_superuser)
                },
                # Depending on the role, it is deleted first: the reassignment runs before the DROP ROLE.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self._roles[login.name], self._databases[login.database]]
                ),
            )
        self.register_outputs({"roles": sorted(self._roles)})

    def _ref(self, role: str) -> pulumi.Input[str]:
        """A declared role by its resource output (orders the user after it); PUBLIC and others by name."""
        return self._roles[role].name if role in self._roles else role

    def _role(self, role: Role) -> postgresql.Role:
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
            opts=self._on_server.merge(_was(role.name)).merge(
                pulumi.ResourceOptions(depends_on=[self._roles[group] for group in role.member_of])
            ),
        )

    def _structure(self, db: Database) -> list[pulumi.Resource]:
        """The database, its schemas and the PgBouncer lookup function: what its grants need first."""
        owner = self._ref(db.owner)
        protected = pulumi.ResourceOptions(protect=True)
        if self._adopted:
            # A running server's database and schemas: imported (the first preview shows `= import`), kept
            # when they leave the config, their owners left as they are (the ownership step moves the
            # schemas of a database with a migrate app). Pulumi IDs: `<db>` and `<db>.<schema>`.
            database = postgresql.Database(
                f"{self._name}-{db.name}",
                name=db.name,
                opts=self._on_server.merge(protected).merge(
                    pulumi.ResourceOptions(import_=db.name, retain_on_delete=True, ignore_changes=ADOPTED_DATABASE)
                ),
            )
        else:
            # Protected: removing or renaming a database in the config must never become DROP DATABASE (the
            # provider terminates its sessions and drops it; a replica replays that). README: renaming.
            database = postgresql.Database(
                f"{self._name}-{db.name}",
                name=db.name,
                owner=owner,
                opts=self._on_server.merge(_was(db.name)).merge(protected),
            )
        self._databases[db.name] = database
        created: list[pulumi.Resource] = [database]
        for schema in db.schemas:
            if self._adopted:  # its owner stays as it is (or the ownership step moves it)
                adopt = pulumi.ResourceOptions(
                    import_=f"{db.name}.{schema}", retain_on_delete=True, ignore_changes=["owner"]
                )
                options, schema_owner = self._on_server.merge(adopt), None
            else:
                options, schema_owner = self._on_server.merge(_was(f"{db.name}-{schema}")), owner
            created.append(
                postgresql.Schema(
                    f"{self._name}-{db.name}-{schema}",
                    name=schema,
                    database=database.name,
                    owner=schema_owner,
                    opts=options.merge(protected),
                )
            )
        if not self._pooler:
            return created
        # The lookup function's schema belongs to the superuser.
        created.append(
            postgresql.Schema(
                f"{self._name}-{db.name}-{AUTH_SCHEMA}",
                name=AUTH_SCHEMA,
                database=database.name,
                owner=SUPERUSER,
                opts=self._on_server.merge(_was(f"{db.name}-{AUTH_SCHEMA}")).merge(protected),
            )
        )
        function = postgresql.Function(
            f"{self._name}-{db.name}-{AUTH_FUNCTION}",
            name=AUTH_FUNCTION,
            schema=AUTH_SCHEMA,
            database=database.name,
            args=[postgresql.FunctionArgArgs(name="p_usename", type="text")],
            returns="TABLE(usename text, passwd text)",
            language="sql",
            volatility="STABLE",
            security_definer=True,
            body=auth_function_body(),
            opts=self._on_server.merge(_was(f"{db.name}-{AUTH_FUNCTION}")),
        )
        return [*created, function]

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
