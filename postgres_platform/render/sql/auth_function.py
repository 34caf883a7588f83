"""PgBouncer's lookup function (auth_query): its one definition, and the SQL that creates and pins it."""

from __future__ import annotations

from dataclasses import dataclass

from postgres_platform.model.access import auth_function_body
from postgres_platform.model.names import AUTH_FUNCTION, AUTH_SCHEMA, SUPERUSER
from postgres_platform.render.sql.quoting import ident, literal


@dataclass(frozen=True)
class AuthFunction:
    """What the program declares (components.access, a pulumi_postgresql Function), the plan script
    creates (auth_function_statements) and the grant check compares the server's function with."""

    schema: str
    name: str
    argument_name: str
    argument_type: str
    result: str  # as pg_get_function_result shows it
    language: str
    volatility: str  # as CREATE FUNCTION takes it
    security_definer: bool  # it reads pg_authid as its owner, the superuser
    search_path: str  # pinned (CVE-2025-12819 class): CREATE OR REPLACE resets it, so it is set after
    body: str

    @property
    def signature(self) -> str:
        return f"{ident(self.schema)}.{ident(self.name)}({self.argument_type})"

    @property
    def arguments(self) -> str:
        """As pg_get_function_arguments shows them."""
        return f"{self.argument_name} {self.argument_type}"

    @property
    def setting(self) -> str:
        """The pinned search_path as pg_proc.proconfig holds it."""
        return f"search_path={self.search_path}"

    @property
    def provolatile(self) -> str:
        """The volatility as pg_proc.provolatile holds it: the keyword's first letter."""
        return self.volatility[0].lower()


AUTH_FUNCTION_DEFINITION = AuthFunction(
    schema=AUTH_SCHEMA,
    name=AUTH_FUNCTION,
    argument_name="p_usename",
    argument_type="text",
    result="TABLE(usename text, passwd text)",
    language="sql",
    volatility="STABLE",
    security_definer=True,
    search_path="pg_catalog, pg_temp",
    body=auth_function_body(),
)


def harden_auth_function() -> str:
    """Pin the lookup function's search_path (the program's Function cannot declare it)."""
    function = AUTH_FUNCTION_DEFINITION
    return f"ALTER FUNCTION {function.signature} SET search_path = {function.search_path};"


def auth_function_hardened() -> str:
    """SQL: true when the lookup function exists with its search_path pinned."""
    function = AUTH_FUNCTION_DEFINITION
    return (
        f"coalesce((SELECT {literal(function.setting)} = ANY(proconfig) FROM pg_catalog.pg_proc "
        f"WHERE oid = pg_catalog.to_regprocedure({literal(function.signature)})), false)"
    )


def auth_function_statements() -> list[str]:
    """The lookup function as defined, owned by the superuser. A function of that signature that CREATE
    OR REPLACE cannot replace (another result, argument name or kind) is dropped first."""
    function = AUTH_FUNCTION_DEFINITION
    signature = function.signature
    incompatible = (
        f"SELECT 1 FROM pg_catalog.pg_proc WHERE oid = pg_catalog.to_regprocedure({literal(signature)}) "
        f"AND (prokind <> 'f' OR pg_catalog.pg_get_function_result(oid) <> {literal(function.result)} "
        f"OR pg_catalog.pg_get_function_arguments(oid) <> {literal(function.arguments)})"
    )
    definer = " SECURITY DEFINER" if function.security_definer else ""
    return [
        f"CREATE SCHEMA IF NOT EXISTS {ident(function.schema)} AUTHORIZATION {ident(SUPERUSER)};",
        f"ALTER SCHEMA {ident(function.schema)} OWNER TO {ident(SUPERUSER)};",
        f"DO $replaceable$ BEGIN IF EXISTS ({incompatible}) THEN DROP ROUTINE {signature}; END IF; END $replaceable$;",
        f"CREATE OR REPLACE FUNCTION {ident(function.schema)}.{ident(function.name)}({function.arguments})\n"
        f"RETURNS {function.result}\nLANGUAGE {function.language} {function.volatility}{definer}\n"
        f"AS $function${function.body}$function$;",
        f"ALTER FUNCTION {signature} OWNER TO {ident(SUPERUSER)};",
        harden_auth_function(),
    ]
