"""The field types of the stack config: each refuses a bad value with the message its error line carries.

The validators' names show in some error paths (pydantic names the branches of a union after them), so
they keep their names.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from postgres_platform.model.images import BUILDS, is_pinned, pgbouncer_problem

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Ours and Postgres' (postgres, public, none and the role keywords), and the keywords of pg_hba.conf and
# PgBouncer's HBA, where an app named `all` would be admitted to every pool.
RESERVED_NAMES = frozenset(
    {
        "postgres",
        "pgbouncer",
        "public",
        "none",
        "current_user",
        "current_role",
        "session_user",
        "user",
        "all",
        "sameuser",
        "samerole",
        "samegroup",
        "replication",
    }
)
# Schemas may be `public` (apps use it), but not Postgres' own or the one holding the auth function.
RESERVED_SCHEMAS = frozenset({"pgbouncer", "information_schema"})
# Postgres' own and TimescaleDB's schemas: the extension owns what is in them, no app is granted them.
EXTENSION_SCHEMA_PREFIXES = ("pg_", "_timescaledb", "timescaledb_")
MAX_BACKENDS = 262143  # Postgres' ceiling for max_connections and so for any connection count
INT4_MAX = 2147483647  # timeouts are int4 milliseconds in Postgres


class ConfigModel(BaseModel):
    """The base of every model of the stack config: frozen, strict, unknown keys refused; each field's
    attribute docstring is its description (the configuration reference is generated from them)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, strict=True, use_attribute_docstrings=True
    )


def int_between(minimum: int, maximum: int) -> Any:
    def check(value: Any) -> int:
        # bool is an int in Python; `true` as a connection limit is a typo, not 1.
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PydanticCustomError("int_at_least", f"must be an integer >= {minimum}")
        if value > maximum:
            raise PydanticCustomError("int_at_most", f"must be an integer <= {maximum}")
        return value

    return BeforeValidator(check)


Connections = Annotated[int, int_between(1, MAX_BACKENDS)]
Slots = Annotated[int, int_between(0, MAX_BACKENDS)]
PoolSize = Annotated[int, int_between(1, 10_000)]
Milliseconds = Annotated[int, int_between(0, INT4_MAX)]
Port = Annotated[int, int_between(1, 65535)]
NonNegativeInt = Annotated[int, int_between(0, 1_000_000)]


def _identifier(value: str) -> str:
    if not IDENTIFIER.fullmatch(value):  # not match: `$` would let a trailing newline through
        raise PydanticCustomError("identifier", "must match ^[a-z_][a-z0-9_]{0,62}$")
    return value


def _not_reserved(value: str) -> str:
    if value in RESERVED_NAMES or value.startswith("pg_"):
        raise PydanticCustomError("reserved", f"is a reserved name ({', '.join(sorted(RESERVED_NAMES))}, pg_*)")
    return value


def _not_template(value: str) -> str:
    if value in ("template0", "template1"):
        raise PydanticCustomError(
            "reserved",
            "is a template database: every new database is copied from template1 (an app's owner "
            "and lookup function would reach them all), template0 takes no connections",
        )
    return value


def _schema_name(value: str) -> str:
    if value in RESERVED_SCHEMAS or value.startswith(EXTENSION_SCHEMA_PREFIXES):
        raise PydanticCustomError(
            "reserved",
            "is a reserved schema (pgbouncer, information_schema, pg_*, an extension's: _timescaledb_*, timescaledb_*)",
        )
    return value


def _pinned_image(value: str) -> str:
    """`name:tag` (tag not latest) or `name@sha256:...`; a bare name floats: a re-pull can bring another version."""
    if not is_pinned(value):
        raise PydanticCustomError("pinned_image", "must pin a tag other than latest, or an @sha256 digest")
    return value


def _built_postgres(value: str) -> str:
    """The Postgres image is one this program builds (images/): its entrypoint, uid and pgBackRest are
    what the components rely on."""
    build = BUILDS.get(value)
    if build is None or build.context != "postgres":
        ours = ", ".join(b.reference for b in BUILDS.values() if b.context == "postgres")
        raise PydanticCustomError("postgres_image", f"must be an image this program builds from images/: {ours}")
    return value


def _patched_pgbouncer(value: str) -> str:
    problem = pgbouncer_problem(value)
    if problem is not None:
        raise PydanticCustomError("pgbouncer_version", problem)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise PydanticCustomError("cidr", "must be a CIDR such as 10.0.0.0/16") from exc
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
RoleName = Annotated[str, AfterValidator(_identifier), AfterValidator(_not_reserved)]
DatabaseName = Annotated[RoleName, AfterValidator(_not_template)]
SchemaName = Annotated[str, AfterValidator(_identifier), AfterValidator(_schema_name)]
Image = Annotated[str, AfterValidator(_pinned_image)]
PostgresImage = Annotated[Image, AfterValidator(_built_postgres)]
PgBouncerImage = Annotated[Image, AfterValidator(_patched_pgbouncer)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Text = Annotated[str, AfterValidator(_not_blank)]
SettingValue = str | int | float | bool
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
AccessLevel = Literal["read", "write", "migrate"]
GroupLevel = Literal["read", "write"]


def level_of(access: AccessLevel) -> GroupLevel:
    """The group level an app's access draws its grants from (migrate writes; its DDL is the owner's)."""
    return "read" if access == "read" else "write"
