"""UnprovisionedPrimary: the Hetzner primary's address and superuser, for preview only.

The Hetzner hosts (network, firewall, servers, volumes, TLS) are not declared by this version. So that
`pulumi preview` and preflight still show every role, grant and DSN a hetzner stack will get, this
stands in for the server: the provider points at the primary's planned private IP, and
`components.program.deploy` refuses `pulumi up` for the target.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_postgresql as postgresql
import pulumi_random as random

from components.postgres import POSTGRES_PORT, superuser_access


class UnprovisionedPrimary(pulumi.ComponentResource):
    superuser_password: pulumi.Output[str]
    admin_connection: pulumi.Output[dict[str, Any]]
    provider: postgresql.Provider

    def __init__(self, name: str, *, address: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:UnprovisionedPrimary", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        password = random.RandomPassword(f"{name}-superuser-password", length=32, special=False, opts=child)
        self.superuser_password = pulumi.Output.secret(password.result)
        self.admin_connection, self.provider = superuser_access(
            f"{name}-provider",
            host=address,
            port=POSTGRES_PORT,
            password=self.superuser_password,
            sslmode="require",
            opts=child,
        )
        self.register_outputs({})
