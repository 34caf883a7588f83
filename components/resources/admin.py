"""The admin connection to a server (built or adopted) and the postgresql provider made from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_postgresql as postgresql

# The provider's own pool runs as the admin: keep it inside adminHeadroom + reserved slots.
PROVIDER_MAX_CONNECTIONS = 4


@dataclass(frozen=True)
class AdminAddress:
    """Where the machine running Pulumi reaches the primary as the superuser, and how it verifies it."""

    host: pulumi.Input[str]
    port: int
    sslmode: str
    sslrootcert: pulumi.Input[str] | None = None  # a file path (the provider and libpq take paths)


@dataclass(frozen=True)
class AdminConnection:
    """The superuser connection, typed: what the provider and the SQL re-apply step connect with."""

    address: AdminAddress
    user: str
    password: pulumi.Output[str]  # secret

    def as_secret_input(self) -> pulumi.Output[dict[str, Any]]:
        a = self.address
        return pulumi.Output.secret(
            {
                "host": a.host,
                "port": a.port,
                "user": self.user,
                "password": self.password,
                "sslmode": a.sslmode,
                "sslrootcert": a.sslrootcert,
            }
        )


def admin_provider(
    name: str,
    admin: AdminConnection,
    superuser: bool,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> postgresql.Provider:
    """The postgresql provider the access plan is applied with, as `admin`. Not a superuser (a managed
    server's CREATEROLE admin): the provider grants itself the owner roles each statement needs."""
    a = admin.address
    return postgresql.Provider(
        name,
        host=a.host,
        port=a.port,
        username=admin.user,
        password=admin.password,
        sslmode=a.sslmode,
        sslrootcert=a.sslrootcert,
        superuser=superuser,
        max_connections=PROVIDER_MAX_CONNECTIONS,
        connect_timeout=30,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
