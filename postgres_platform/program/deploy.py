"""The whole program: stack config in, components declared once for any target, what outputs need out."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi.runtime.config as runtime_config

from components.access import DatabaseAccess, DatabaseAccessArgs
from components.adopted import AdoptedServer, AdoptedServerArgs
from components.backups import Backups, BackupsArgs
from components.patroni import PatroniCluster
from components.pgbouncer import PgBouncer, PgBouncerArgs
from components.postgres import PostgresContainerArgs, PostgresServer, PostgresServerArgs, server_files
from postgres_platform.model import access
from postgres_platform.model.config import ConfigError, PlatformConfig
from postgres_platform.model.load import ADMIN_PASSWORD_KEY, load_stack_values
from postgres_platform.model.names import AUTH_ROLE, MONITORING_ROLE, NAMESPACE, PGBOUNCER_PORT, PRIMARY, container_name
from postgres_platform.program.monitoring import deploy_monitoring, exporter_hosts
from postgres_platform.program.targets import TARGETS, Site
from postgres_platform.render import pgbouncer, restore_check
from postgres_platform.render.backup import archive_settings
from postgres_platform.render.containers import DATA, postgres_container
from postgres_platform.render.dsn import Endpoint
from postgres_platform.render.postgres import render_config_file, server_arguments


class StackConfigError(pulumi.RunError):
    """Ends `pulumi up/preview` with the config problems only: no traceback, nothing declared."""


def load_config() -> PlatformConfig:
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    try:
        return load_stack_values(values, secret_keys=[k for k in values if runtime_config.is_config_secret(k)])
    except ConfigError as exc:
        raise StackConfigError("invalid stack config:\n" + str(exc)) from None


@dataclass(frozen=True)
class Deployed:
    passwords: dict[str, pulumi.Output[str]]  # login role -> password
    admin_user: str  # the superuser, or an adopted server's admin
    admin_password: pulumi.Output[str]
    direct: Endpoint  # where apps reach Postgres
    admin: pulumi.Output[Endpoint]  # where the operator reaches Postgres
    pooled: Endpoint | None = None  # where apps reach PgBouncer (where there is one)
    pgbouncer_admin_password: pulumi.Output[str] | None = None
    replica: Endpoint | None = None  # read-only DSNs for read apps
    ca_cert_pem: pulumi.Output[str] | None = None
    scrape_targets: dict[str, list[str]] | None = None  # job -> exporters, where the stack runs them


def backups_of(config: PlatformConfig, site: Site) -> Backups | None:
    if config.backup is None:
        return None
    secrets = pulumi.Config(NAMESPACE)
    s3 = config.backup.repo == "s3"
    return Backups(
        "backups",
        BackupsArgs(
            backup=config.backup,
            placement=site.placement,
            shell=site.shell,
            container=container_name(pulumi.get_stack(), PRIMARY),
            s3_key=secrets.require_secret("backupS3Key") if s3 else None,
            s3_key_secret=secrets.require_secret("backupS3KeySecret") if s3 else None,
            timers=site.shell.ssh is not None,
            verify=restore_check.job_of(pulumi.get_stack(), config, site.shell.root),
            leader_only=site.cluster is not None,  # hetzner.failover: the units follow Patroni's leader
            depends_on=site.ready,
        ),
    )


def built_server(config: PlatformConfig, site: Site) -> tuple[PostgresServer | PatroniCluster, Backups | None]:
    """The primary the program runs (local, Hetzner): its container, superuser and backups."""
    assert site.data is not None  # every target but existing has PGDATA
    backups = backups_of(config, site)
    settings = {**site.server_settings, **(archive_settings(config.backup) if config.backup else {})}
    server_args = PostgresServerArgs(
        container=PostgresContainerArgs(
            spec=postgres_container(
                pulumi.get_stack(), config, PRIMARY, server_arguments(config, settings), initdb_password=True
            ),
            config_file=render_config_file(config, settings),
            image_base=config.image_base,
            placement=site.placement,
            shell=site.shell,
            sources={DATA: site.data, **(backups.sources if backups else {})},
            publish=site.postgres_publish,
            files=server_files(site.hba, site.tls),
            depends_on=[*site.ready, *([backups.written] if backups else [])],
        ),
        admin=site.admin,
    )
    # A target that runs the server its own way (hetzner.failover: Patroni) gets the same arguments and settings.
    postgres: PostgresServer | PatroniCluster
    if site.cluster is not None:
        postgres = site.cluster(server_args, settings, backups)
    else:
        postgres = PostgresServer("postgres", server_args)
    if backups is not None:
        backups.activate(postgres)
    return postgres, backups


def adopted_server(config: PlatformConfig, site: Site) -> AdoptedServer:
    """A running server (target existing): only the provider, as the admin the stack names."""
    assert config.existing is not None
    return AdoptedServer(
        "postgres",
        AdoptedServerArgs(
            address=site.admin,
            admin_user=config.existing.admin_user,
            admin_password=pulumi.Config(NAMESPACE).require_secret(ADMIN_PASSWORD_KEY),
            superuser=config.existing.admin_superuser,
        ),
    )


def deploy(config: PlatformConfig) -> Deployed:
    target = TARGETS[config.target](config)
    site = target.prepare()
    backups = None
    if config.adopted:
        server: PostgresServer | PatroniCluster | AdoptedServer = adopted_server(config, site)
    else:
        server, backups = built_server(config, site)
    generations = {login.role: login.generation for app in config.apps for login in config.logins(app)}
    roles = DatabaseAccess(
        "access", DatabaseAccessArgs(access.plan(config), server.provider, server.admin_connection, generations)
    )
    deployed_pgbouncer = None
    if config.pgbouncer is not None:
        files = pgbouncer.Endpoints(
            listen_addr=site.pgbouncer_listen,
            listen_port=PGBOUNCER_PORT,
            server_host=site.pgbouncer_server_host,
            server_port=site.pgbouncer_server_port,
            auth_file=pgbouncer.AUTH_FILE,
            hba_file=pgbouncer.HBA_FILE,
            tls=pgbouncer.CONTAINER_TLS if site.tls is not None else None,
        )
        pgbouncer_args = PgBouncerArgs(
            config=config,
            ini=pgbouncer.render_ini(config, files),
            hba=pgbouncer.render_hba(config),
            auth_password=roles.passwords[AUTH_ROLE],
            monitor_password=roles.passwords.get(MONITORING_ROLE),  # none on a managed server
            placement=site.placement,
            shell=site.shell,
            publish=site.pgbouncer_publish,
            tls=site.tls,
            ca_cert_pem=site.ca_cert_pem,
            depends_on=[server, *site.ready],
        )
        deployed_pgbouncer = PgBouncer("pgbouncer", pgbouncer_args)
    replica = None if isinstance(server, AdoptedServer) else target.add_replicas(server, backups)
    if deployed_pgbouncer is not None:
        target.add_poolers(pgbouncer_args, files)  # a PgBouncer on other hosts, where the target has them
    if not isinstance(server, AdoptedServer):
        target.add_rolling(server, deployed_pgbouncer)
    scrape_targets = None
    if config.exporters_run():  # the exporters (and Prometheus, Alertmanager) beside the servers
        ready = [roles, *([deployed_pgbouncer] if deployed_pgbouncer is not None else [])]
        hosts = exporter_hosts(site, target, ready)
        scrape_targets = deploy_monitoring(config, hosts, roles.passwords[MONITORING_ROLE], site.ca_cert_pem)
    return Deployed(
        passwords=roles.passwords,
        admin_user=server.admin_connection.user,
        admin_password=server.admin_connection.password,
        direct=site.direct,
        admin=site.admin_endpoint,
        pooled=site.pooled if deployed_pgbouncer is not None else None,
        pgbouncer_admin_password=deployed_pgbouncer.admin_password if deployed_pgbouncer is not None else None,
        replica=replica,
        ca_cert_pem=site.ca_cert_pem,
        scrape_targets=scrape_targets,
    )
