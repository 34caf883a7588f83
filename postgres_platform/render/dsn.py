"""Connection strings an app can paste: libpq URI, JDBC URL and pgpass line (pure, no pulumi)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    sslmode: str  # disable on the local Docker stack; verify-full (against the stack CA) on Hetzner
    pooled: bool
    sslrootcert: str | None = None  # where apps keep the stack's CA certificate

    def tls_params(self) -> dict[str, str]:
        params = {"sslmode": self.sslmode}
        if self.sslrootcert:
            params["sslrootcert"] = self.sslrootcert
        return params


def uri(user: str, password: str, database: str, endpoint: Endpoint) -> str:
    query = urlencode(endpoint.tls_params())
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
        f"@{_host(endpoint.host)}:{endpoint.port}/{quote(database, safe='')}?{query}"
    )


def jdbc(user: str, password: str, database: str, endpoint: Endpoint) -> str:
    # Pooled too, pgJDBC keeps its server-side prepared statements: PgBouncer tracks them across
    # transaction pooling (max_prepared_statements in render.pgbouncer).
    params = {"user": user, "password": password, **endpoint.tls_params()}
    return f"jdbc:postgresql://{_host(endpoint.host)}:{endpoint.port}/{database}?{urlencode(params)}"


def pgpass(user: str, password: str, database: str, endpoint: Endpoint) -> str:
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    return ":".join(esc(v) for v in (endpoint.host, str(endpoint.port), database, user, password))


def all_forms(user: str, password: str, database: str, endpoint: Endpoint) -> dict[str, str]:
    return {
        "uri": uri(user, password, database, endpoint),
        "jdbc": jdbc(user, password, database, endpoint),
        "pgpass": pgpass(user, password, database, endpoint),
    }


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
