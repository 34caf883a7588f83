"""The whole program: stack config in, components declared, stack outputs out."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi.runtime.config as runtime_config
import pulumi_docker as docker
import pulumi_hcloud as hcloud

from components import access, dsn
from components.config import ConfigError, HetznerConfig, PlatformConfig, load_stack_values
from components.hetzner import DATA_MOUNT, DatabaseHost, PrivateNetwork, firewall_rules
from components.local_host import PGDATA, LocalHost
from components.names import AUTH_ROLE
from components.pg_hba import HbaSources, render_pg_hba
from components.pgbouncer import PGBOUNCER_PORT, PgBouncer
from components.postgres import POSTGRES_PORT, Placement, PostgresServer, Publish, ServerTls
from components.replica import StreamingReplica
from components.roles import DatabaseAccess
from components.tls import StackCertificates, ca_file_for_provider


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
    pgbouncer_admin_password: pulumi.Output[str]
    direct: dsn.Endpoint  # where apps reach Postgres
    pooled: dsn.Endpoint  # where apps reach PgBouncer
    admin: pulumi.Output[dsn.Endpoint]  # where the operator reaches Postgres (a Hetzner public IP is an output)
    replica: dsn.Endpoint | None = None  # read-only DSNs for read apps
    ca_cert_pem: pulumi.Output[str] | None = None


def deploy(config: PlatformConfig) -> Deployed:
    plan = access.plan(config)
    if config.hetzner is None:
        return _deploy_local(config, plan)
    return _deploy_hetzner(config, config.hetzner, plan)


def _deploy_local(config: PlatformConfig, plan: access.AccessPlan) -> Deployed:
    host = LocalHost("local")
    placement = Placement(network_name=host.network_name)
    postgres = PostgresServer(
        "postgres",
        config,
        placement=placement,
        data=host.data,
        publish=Publish(host.address, config.local.postgres_port),
        admin_host=host.address,
        admin_port=config.local.postgres_port,
    )
    roles = DatabaseAccess("access", plan, provider=postgres.provider, admin_connection=postgres.admin_connection)
    bouncer = PgBouncer(
        "pgbouncer",
        config,
        placement=placement,
        listen_addr="0.0.0.0",  # inside the container; published on loopback only
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
        admin=pulumi.Output.from_input(direct),
    )


def client_ca_path() -> str:
    """Where apps keep the stack CA (`pulumi stack output caCertPem`); DSNs name it in sslrootcert."""
    return f"/etc/postgres-platform/{pulumi.get_stack()}-ca.crt"


def _deploy_hetzner(config: PlatformConfig, hetzner: HetznerConfig, plan: access.AccessPlan) -> Deployed:
    network = PrivateNetwork("private", hetzner)
    firewall = hcloud.Firewall(
        "database-firewall",
        rules=firewall_rules(hetzner),
        labels={"managed-by": "postgres-platform", "env": pulumi.get_stack()},
    )
    group = hcloud.PlacementGroup("database-placement", type="spread")

    def host(role: str, private_ip: str) -> DatabaseHost:
        return DatabaseHost(
            role, hetzner, role=role, private_ip=private_ip, network=network, firewall=firewall, placement_group=group
        )

    primary_host = host("primary", hetzner.primary_ip())
    certificates = StackCertificates("tls")
    primary_tls = ServerTls(
        *certificates.server_certificate(
            "primary-tls", common_name=hetzner.primary_ip(), ip_addresses=[hetzner.primary_ip(), primary_host.public_ip]
        )
    )
    replica_ip = hetzner.replica_ip() if hetzner.replicas else None
    hba = render_pg_hba(config, HbaSources((hetzner.subnet,), tuple(hetzner.admin_cidrs), replica_ip))
    on_primary = Placement(docker_provider=primary_host.docker_provider)
    postgres = PostgresServer(
        "postgres",
        config,
        placement=on_primary,
        data=docker.ContainerVolumeArgs(host_path=f"{DATA_MOUNT}/data", container_path=PGDATA),
        tls=primary_tls,
        hba=hba,
        admin_host=primary_host.public_ip,
        admin_port=POSTGRES_PORT,
        sslrootcert=ca_file_for_provider(certificates.ca_cert_pem),
    )
    roles = DatabaseAccess("access", plan, provider=postgres.provider, admin_connection=postgres.admin_connection)
    bouncer = PgBouncer(
        "pgbouncer",
        config,
        placement=on_primary,
        listen_addr=hetzner.primary_ip(),  # the private network only, never the public interface
        postgres_host=hetzner.primary_ip(),
        auth_password=roles.passwords[AUTH_ROLE],
        tls=primary_tls,
        ca_cert_pem=certificates.ca_cert_pem,
        depends_on=[postgres],
    )
    ca = client_ca_path()  # the operator's copy too: one path for every DSN of the stack
    replica = None
    if replica_ip is not None:
        replica_host = host("replica", replica_ip)
        replica_cert, replica_key = certificates.server_certificate(
            "replica-tls", common_name=replica_ip, ip_addresses=[replica_ip]
        )
        StreamingReplica(
            "replica",
            config,
            host=replica_host,
            primary_ip=hetzner.primary_ip(),
            primary_provider=postgres.provider,
            primary=postgres,
            ca_cert_pem=certificates.ca_cert_pem,
            tls=ServerTls(replica_cert, replica_key),
            hba=hba,
        )
        replica = dsn.Endpoint(replica_ip, POSTGRES_PORT, "verify-full", pooled=False, sslrootcert=ca)
    return Deployed(
        passwords=roles.passwords,
        superuser_password=postgres.superuser_password,
        pgbouncer_admin_password=bouncer.admin_password,
        direct=dsn.Endpoint(hetzner.primary_ip(), POSTGRES_PORT, "verify-full", pooled=False, sslrootcert=ca),
        pooled=dsn.Endpoint(hetzner.primary_ip(), PGBOUNCER_PORT, "verify-full", pooled=True, sslrootcert=ca),
        admin=primary_host.public_ip.apply(
            lambda ip: dsn.Endpoint(ip, POSTGRES_PORT, "verify-full", pooled=False, sslrootcert=ca)
        ),
        replica=replica,
        ca_cert_pem=certificates.ca_cert_pem,
    )
