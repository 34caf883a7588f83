"""The whole program: stack config in, components declared, stack outputs out."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi.runtime.config as runtime_config

from components import access, dsn
from components.config import ConfigError, PlatformConfig, load_stack_values
from components.local_host import LocalHost
from components.names import AUTH_ROLE
from components.pgbouncer import PGBOUNCER_PORT, PgBouncer
from components.postgres import POSTGRES_PORT, PostgresServer, Publish
from components.roles import DatabaseAccess
from components.unprovisioned import UnprovisionedPrimary


class StackConfigError(pulumi.RunError):
    """Ends `pulumi up/preview` with the config problems only: no traceback, nothing declared."""


def load_config() -> PlatformConfig:
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    try:
        return load_stack_values(values)
    except ConfigError as exc:
        raise StackConfigError("invalid stack config:\n" + str(exc)) from None


@dataclass(frozen=True)
class Deployed:
    passwords: dict[str, pulumi.Output[str]]  # login role -> password
    superuser_password: pulumi.Output[str]
    pgbouncer_admin_password: pulumi.Output[str] | None
    direct: dsn.Endpoint  # where apps reach Postgres
    pooled: dsn.Endpoint  # where apps reach PgBouncer
    admin: dsn.Endpoint  # where the operator reaches Postgres


def deploy(config: PlatformConfig) -> Deployed:
    plan = access.plan(config)
    if config.target == "local":
        return _deploy_local(config, plan)
    if not pulumi.runtime.is_dry_run():
        raise StackConfigError(
            "target: hetzner hosts are not provisioned by this version yet; `pulumi preview` and "
            "scripts/preflight.py show the plan, `pulumi up` waits for the Hetzner components"
        )
    assert config.hetzner is not None  # config validation requires it for this target
    address = config.hetzner.primary_ip()
    primary = UnprovisionedPrimary("primary", address=address)
    roles = DatabaseAccess("access", plan, provider=primary.provider, admin_connection=primary.admin_connection)
    return Deployed(
        passwords=roles.passwords,
        superuser_password=primary.superuser_password,
        pgbouncer_admin_password=None,
        direct=dsn.Endpoint(address, POSTGRES_PORT, "require", pooled=False),
        pooled=dsn.Endpoint(address, PGBOUNCER_PORT, "require", pooled=True),
        admin=dsn.Endpoint(address, POSTGRES_PORT, "require", pooled=False),
    )


def _deploy_local(config: PlatformConfig, plan: access.AccessPlan) -> Deployed:
    host = LocalHost("local")
    postgres = PostgresServer(
        "postgres",
        config,
        network_name=host.network_name,
        publish=Publish(host.address, config.local.postgres_port),
        protect_data=False,  # a developer's scratch database
    )
    roles = DatabaseAccess("access", plan, provider=postgres.provider, admin_connection=postgres.admin_connection)
    bouncer = PgBouncer(
        "pgbouncer",
        config,
        network_name=host.network_name,
        postgres_host=postgres.container_name,
        auth_password=roles.passwords[AUTH_ROLE],
        publish=Publish(host.address, config.local.pgbouncer_port),
    )
    direct = dsn.Endpoint(host.address, config.local.postgres_port, "disable", pooled=False)
    return Deployed(
        passwords=roles.passwords,
        superuser_password=postgres.superuser_password,
        pgbouncer_admin_password=bouncer.admin_password,
        direct=direct,
        pooled=dsn.Endpoint(host.address, config.local.pgbouncer_port, "disable", pooled=True),
        admin=direct,
    )
