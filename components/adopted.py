"""AdoptedServer: a running Postgres the program did not build, reached as the admin the stack names.

Nothing here declares the server, its container or its settings: only the postgresql provider the
access plan is applied with, and the admin connection the SQL steps use. On a managed server the
admin is no superuser (CREATEROLE only): the provider is told so and then grants itself the owner
roles it needs for each statement (terraform-provider-postgresql's withRolesGranted).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_postgresql as postgresql

from components.resources.admin import AdminAddress, AdminConnection, admin_provider


@dataclass(frozen=True)
class AdoptedServerArgs:
    address: AdminAddress
    admin_user: str
    admin_password: pulumi.Output[str]  # secret stack config
    superuser: bool


class AdoptedServer(pulumi.ComponentResource):
    admin_connection: AdminConnection
    provider: postgresql.Provider

    def __init__(self, name: str, args: AdoptedServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:AdoptedServer", name, None, opts)
        self.admin_connection = AdminConnection(args.address, args.admin_user, args.admin_password)
        self.provider = admin_provider(f"{name}-provider", self.admin_connection, args.superuser, self)
        self.register_outputs({})
