"""The stack's monitoring: the exporters beside every server the program runs (and Prometheus and
Alertmanager where the stack asks for them), placed as the target places Postgres and PgBouncer; the
`alertRules` and `scrapeConfig` outputs for any Prometheus."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.config_files import HostShell
from components.monitoring import ExporterHost, Monitoring, MonitoringArgs, scrape_targets
from components.resources.containers import Placement
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.config.monitoring import SMTP_PASSWORD_KEY, WEBHOOK_URL_KEY
from postgres_platform.model.names import NAMESPACE, PGBOUNCER, PGBOUNCER_PORT, POSTGRES_PORT, PRIMARY
from postgres_platform.program.targets import Site, Target, client_ca_path
from postgres_platform.render import monitoring
from postgres_platform.render import monitoring_containers as mc


def primary_host(site: Site, depends_on: Sequence[pulumi.Resource]) -> ExporterHost:
    """The primary's host: on the local bridge the servers by their aliases, on a host network by the
    addresses the site gives PgBouncer (the host's private IP)."""
    tls = site.tls is not None
    if site.placement.network_name is not None:
        postgres, pgbouncer, private_ip = (
            mc.Address(PRIMARY, POSTGRES_PORT),
            mc.Address(PGBOUNCER, PGBOUNCER_PORT),
            None,
        )
    else:
        private_ip = site.pgbouncer_listen
        postgres = mc.Address(site.pgbouncer_server_host, site.pgbouncer_server_port)
        pgbouncer = mc.Address(private_ip, PGBOUNCER_PORT)
    return ExporterHost(
        server="primary",
        placement=site.placement,
        shell=site.shell,
        private_ip=private_ip,
        postgres=mc.Upstream(postgres, tls),
        pgbouncer=mc.Upstream(pgbouncer, tls),
        depends_on=[*site.ready, *depends_on],
    )


def replica_host(
    placement: Placement, shell: HostShell, private_ip: str, depends_on: Sequence[pulumi.Resource]
) -> ExporterHost:
    """A standby's host (Hetzner): postgres_exporter on its private IP, on its own Postgres over TLS."""
    return ExporterHost(
        server="replica",
        placement=placement,
        shell=shell,
        private_ip=private_ip,
        postgres=mc.Upstream(mc.Address(private_ip, POSTGRES_PORT), tls=True),
        pgbouncer=None,
        depends_on=depends_on,
    )


def exporter_hosts(site: Site, target: Target, depends_on: Sequence[pulumi.Resource]) -> list[ExporterHost]:
    """The primary's host, and a standby's where the target declared one (Target.monitored_replica)."""
    hosts = [primary_host(site, depends_on)]
    replica = target.monitored_replica
    if replica is not None:
        placement = Placement(docker_provider=replica.docker_provider)
        hosts.append(replica_host(placement, replica.shell, replica.private_ip, [replica]))
    return hosts


def receiver_secret(config: PlatformConfig) -> pulumi.Output[str] | None:
    """The receiver's secret from the stack's secret config: the webhook URL, or the SMTP password."""
    am = config.monitoring.alertmanager
    secrets = pulumi.Config(NAMESPACE)
    if am is None:
        return None
    if am.receiver == "webhook":
        return secrets.require_secret(WEBHOOK_URL_KEY)
    if am.email is not None and am.email.username is not None:
        return secrets.require_secret(SMTP_PASSWORD_KEY)
    return None


def deploy_monitoring(
    config: PlatformConfig,
    hosts: Sequence[ExporterHost],
    monitor_password: pulumi.Input[str],
    ca_cert_pem: pulumi.Input[str] | None,
) -> dict[str, list[str]]:
    """Declare the monitoring containers; the scrape targets as a Prometheus outside the stack reaches them."""
    Monitoring(
        "monitoring",
        MonitoringArgs(
            config=config,
            hosts=hosts,
            monitor_password=monitor_password,
            ca_cert_pem=ca_cert_pem,
            receiver_secret=receiver_secret(config),
        ),
    )
    return scrape_targets(config, hosts, inside=False)


def monitoring_outputs(config: PlatformConfig, targets: dict[str, list[str]] | None) -> dict[str, str]:
    """`alertRules` (the rules file) and `scrapeConfig` (scrape_configs naming the jobs as the rules do; with
    no exporters of the stack's, e.g. target existing, the jobs without targets: add where yours run)."""
    jobs = targets if targets is not None else {job: [] for job in monitoring.jobs(config)}
    return {
        "alertRules": monitoring.rules_yaml(config, pulumi.get_stack()),
        # Patroni's REST API is checked against the stack CA, where apps keep it (caCertPem)
        "scrapeConfig": mc.scrape_config_yaml(jobs, client_ca_path() if config.hetzner is not None else None),
    }
