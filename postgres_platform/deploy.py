"""The whole program: stack config in, components declared once for any target, what outputs need out."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi.runtime.config as runtime_config

from components.access import DatabaseAccess, DatabaseAccessArgs
from components.backups import Backups, BackupsArgs
from components.pgbouncer import PgBouncer, PgBouncerArgs
from components.postgres import PostgresContainerArgs, PostgresServer, PostgresServerArgs, server_files
from postgres_platform.model import access
from postgres_platform.model.config import ConfigError, PlatformConfig
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import AUTH_ROLE, NAMESPACE, PGBOUNCER_PORT, POSTGRES_PORT, container_name
from postgres_platform.render import pgbouncer
from postgres_platform.render.backup import archive_settings
from postgres_platform.render.dsn import Endpoint
from postgres_platform.render.postgres import render_config_file, server_arguments
from postgres_platform.targets import TARGETS, Site


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
    superuser_password: pulumi.Output[str]
    pgbouncer_admin_password: pulumi.Output[str]
    direct: Endpoint  # where apps reach Postgres
    pooled: Endpoint  # where apps reach PgBouncer
    admin: pulumi.Output[Endpoint]  # where the operator reaches Postgres
    replica: Endpoint | None = None  # read-only DSNs for read apps
    ca_cert_pem: pulumi.Output[str] | None = None


def backups_of(config: PlatformConfig, site: Site) -> Backups | None:
    if config.backup is None:
        return None
    secrets = pulumi.Config(NAMESPACE)
    s3 = config.backup.repo == "s3"
    return Backups(
        "backups",
        BackupsArgs(
            backup=config.backup,
            base_image=config.server_image(),
            placement=site.placement,
            shell=site.shell,
            container=container_name(pulumi.get_stack(), "postgres"),
            s3_key=secrets.require_secret("backupS3Key") if s3 else None,
            s3_key_secret=secrets.require_secret("backupS3KeySecret") if s3 else None,
            timers=site.shell.ssh is not None,
            depends_on=site.ready,
        ),
    )


def deploy(config: PlatformConfig) -> Deployed:
    target = TARGETS[config.target](config)
    site = target.prepare()
    backups = backups_of(config, site)
    settings = {**site.server_settings, **(archive_settings(config.backup) if config.backup else {})}
    postgres = PostgresServer(
        "postgres",
        PostgresServerArgs(
            container=PostgresContainerArgs(
                image=backups.image if backups else config.server_image(),
                command=server_arguments(config, settings),
                config_file=render_config_file(config, settings),
                label="postgres",
                placement=site.placement,
                shell=site.shell,
                data=site.data,
                publish=site.postgres_publish,
                files=server_files(site.hba, site.tls),
                depends_on=[*site.ready, *([backups.written] if backups else [])],
                mounts=backups.mounts if backups else (),
                built_image=backups.built if backups else None,
            ),
            admin=site.admin,
        ),
    )
    if backups is not None:
        backups.activate(postgres)
    generations = {login.role: login.generation for app in config.apps for login in config.logins(app)}
    roles = DatabaseAccess(
        "access", DatabaseAccessArgs(access.plan(config), postgres.provider, postgres.admin_connection, generations)
    )
    files = pgbouncer.Endpoints(
        listen_addr=site.pooler_listen,
        listen_port=PGBOUNCER_PORT,
        server_host=site.pooler_server_host,
        server_port=POSTGRES_PORT,
        auth_file=pgbouncer.AUTH_FILE,
        hba_file=pgbouncer.HBA_FILE,
        tls=pgbouncer.CONTAINER_TLS if site.tls is not None else None,
    )
    bouncer = PgBouncer(
        "pgbouncer",
        PgBouncerArgs(
            image=config.bouncer().image,
            ini=pgbouncer.render_ini(config, files),
            hba=pgbouncer.render_hba(config),
            auth_password=roles.passwords[AUTH_ROLE],
            placement=site.placement,
            shell=site.shell,
            publish=site.pooler_publish,
            tls=site.tls,
            ca_cert_pem=site.ca_cert_pem,
            depends_on=[postgres, *site.ready],
        ),
    )
    return Deployed(
        passwords=roles.passwords,
        superuser_password=postgres.superuser_password,
        pgbouncer_admin_password=bouncer.admin_password,
        direct=site.direct,
        pooled=site.pooled,
        admin=site.admin_endpoint,
        replica=target.add_replicas(postgres, backups),
        ca_cert_pem=site.ca_cert_pem,
    )
