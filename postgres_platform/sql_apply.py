"""SqlApply: idempotent SQL run against one database on every `pulumi up`.

For the two things pulumi-postgresql cannot declare: SET search_path on the auth lookup function, and
revoking writes on migration tables that migrations created since the last up. A dynamic provider
(psycopg, in-process) rather than a shell-out, so no psql binary is needed where Pulumi runs.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult


class _SqlApplyProvider(ResourceProvider):
    def _run(self, props: dict[str, Any]) -> None:
        import psycopg  # imported where the provider runs, not where the program is planned

        conn = props["connection"]
        with psycopg.connect(
            host=conn["host"],
            port=int(conn["port"]),
            user=conn["user"],
            password=conn["password"],
            dbname=props["database"],
            sslmode=conn["sslmode"],
            sslrootcert=conn.get("sslrootcert") or None,  # verify-full needs the stack CA, not ~/.postgresql
            connect_timeout=15,
            autocommit=True,
        ) as session:
            session.execute(props["sql"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._run(props)
        return CreateResult(id_=f"{props['database']}:{props['purpose']}", outs=props)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        # Always re-apply: what this guards (tables created by migrations, a replaced function)
        # changes outside Pulumi between ups.
        return DiffResult(changes=True, replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._run(news)
        return UpdateResult(outs=news)


class SqlApply(Resource):
    """Runs `sql` in `database` through `connection` (components.postgres.AdminConnection.as_secret_input)."""

    def __init__(
        self,
        name: str,
        *,
        connection: pulumi.Input[dict[str, Any]],
        database: str,
        purpose: str,
        sql: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"connection": pulumi.Output.secret(connection), "database": database, "purpose": purpose, "sql": sql}
        # The provider echoes its inputs as outputs: keep the connection (password) secret in state too.
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=["connection"])
        super().__init__(_SqlApplyProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_outputs))
