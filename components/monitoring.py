"""Monitoring: postgres_exporter and pgbouncer_exporter beside each server the program runs, and optionally
Prometheus (the stack's alert rules) and Alertmanager (the stack's receiver), from render.monitoring_containers'
specs (the ones scripts/monitor_drill.py runs).

Where they listen: on the local stack's bridge network (0.0.0.0 inside the container, published on
127.0.0.1 only); on a Hetzner host's network, on its private IP only (the firewall opens none of their
ports; the host-network-listeners policy checks the address). Every secret (the monitoring role's
password, the receiver's URL or SMTP password) reaches its container as a file of its config directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config_files import ConfigFiles, ConfigFilesArgs, HostShell
from components.resources.containers import Placement, Publish, container_image, container_settings
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import COMPONENT_LABEL, LOOPBACK
from postgres_platform.render import monitoring
from postgres_platform.render import monitoring_containers as mc
from postgres_platform.render.containers import CONFIG, ContainerSpec, MountSource
from postgres_platform.render.files import File

EVERY_ADDRESS = "0.0.0.0"  # inside a bridge network's container only: its ports are published on loopback


@dataclass(frozen=True)
class ExporterHost:
    """A host whose server the exporters watch: `server` is its budget name (job postgres-<server>)."""

    server: str  # "primary" | "replica"
    placement: Placement
    shell: HostShell
    private_ip: str | None  # the host's private IP (a host network); None: the local bridge network
    postgres: mc.Upstream  # where the exporter reaches Postgres
    pgbouncer: mc.Upstream | None  # and PgBouncer's console, where the host has one
    depends_on: Sequence[pulumi.Resource] = ()

    @property
    def bridge(self) -> bool:
        return self.private_ip is None

    def listen(self, port: int) -> mc.Address:
        return mc.Address(self.private_ip or EVERY_ADDRESS, port)

    def reached(self, alias: str, port: int) -> str:
        """Where another container of the stack reaches this port (by alias on the bridge)."""
        return f"{alias if self.bridge else self.private_ip}:{port}"

    def published(self, port: int) -> str:
        """Where a Prometheus outside the stack reaches it (the scrapeConfig output)."""
        return f"{LOOPBACK if self.bridge else self.private_ip}:{port}"


@dataclass(frozen=True)
class MonitoringArgs:
    config: PlatformConfig
    hosts: Sequence[ExporterHost]  # the primary's first: Prometheus and Alertmanager run there
    monitor_password: pulumi.Input[str]  # the monitoring role's (secret), from components/access.py
    ca_cert_pem: pulumi.Input[str] | None = None  # the stack CA, where the exporters verify the server
    receiver_secret: pulumi.Input[str] | None = None  # the webhook URL or SMTP password (stack secret)


def scrape_targets(config: PlatformConfig, hosts: Sequence[ExporterHost], *, inside: bool) -> dict[str, list[str]]:
    """Job -> targets: as the stack's own Prometheus reaches them (`inside`) or as the outputs name them."""
    m = config.monitoring
    targets: dict[str, list[str]] = {}
    for host in hosts:
        port = m.postgres_exporter_port
        address = host.reached(mc.POSTGRES_EXPORTER, port) if inside else host.published(port)
        targets.setdefault(monitoring.job(host.server), []).append(address)
    for host in hosts:
        if host.pgbouncer is not None:
            port = m.pgbouncer_exporter_port
            address = host.reached(mc.PGBOUNCER_EXPORTER, port) if inside else host.published(port)
            targets.setdefault("pgbouncer", []).append(address)
    hetzner = config.hetzner
    if hetzner is not None and hetzner.failover.enabled:  # Patroni's /metrics on each database host's REST API
        port = hetzner.failover.rest_api_port
        targets[monitoring.PATRONI_JOB] = [f"{ip}:{port}" for ip in hetzner.database_ips()]
    return targets


class Monitoring(pulumi.ComponentResource):
    """The exporters on every host of `hosts`; Prometheus and Alertmanager on the first, when enabled."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:Monitoring", name, None, opts)
        self._args = args
        stack = pulumi.get_stack()
        m = args.config.monitoring
        for host in args.hosts:
            prefix = f"{name}-{host.server}"
            # The container names are per stack and host (each host has its own Docker).
            spec = mc.postgres_exporter_container(stack, host.listen(m.postgres_exporter_port), host.postgres)
            ca = args.ca_cert_pem if host.postgres.tls else None
            files = mc.postgres_exporter_files(args.config, args.monitor_password, ca)
            self._container(f"{prefix}-postgres-exporter", host, spec, files, m.postgres_exporter_port)
            if host.pgbouncer is not None:
                spec = mc.pgbouncer_exporter_container(stack, host.listen(m.pgbouncer_exporter_port), host.pgbouncer)
                ca = args.ca_cert_pem if host.pgbouncer.tls else None
                bouncer_files = mc.pgbouncer_exporter_files(args.monitor_password, ca)
                self._container(f"{prefix}-pgbouncer-exporter", host, spec, bouncer_files, m.pgbouncer_exporter_port)
        primary = args.hosts[0]
        alertmanagers = []
        if m.alertmanager is not None:
            spec = mc.alertmanager_container(stack, primary.listen(m.alertmanager.port))
            am_files: list[File[pulumi.Input[str]]] = [*mc.alertmanager_files(m.alertmanager)]
            if args.receiver_secret is not None:
                am_files.append(mc.receiver_secret_file(m.alertmanager, args.receiver_secret))
            self._container(f"{name}-alertmanager", primary, spec, am_files, m.alertmanager.port, data=True)
            alertmanagers.append(primary.reached(mc.ALERTMANAGER, m.alertmanager.port))
        if m.prometheus:
            prometheus = mc.prometheus_config(scrape_targets(args.config, args.hosts, inside=True), alertmanagers)
            spec = mc.prometheus_container(stack, primary.listen(m.prometheus_port), m.retention)
            prom_files: list[File[pulumi.Input[str]]] = [*mc.prometheus_files(args.config, stack, prometheus)]
            if args.ca_cert_pem is not None:
                prom_files.append(File(mc.STACK_CA, "0644", args.ca_cert_pem))
            self._container(f"{name}-prometheus", primary, spec, prom_files, m.prometheus_port, data=True)
        self.register_outputs({})

    def _container(
        self,
        name: str,
        host: ExporterHost,
        spec: ContainerSpec,
        files: Sequence[File[pulumi.Input[str]]],
        port: int,
        *,
        data: bool = False,
    ) -> docker.Container:
        owner = mc.PROMETHEUS_UID if spec.label == mc.PROMETHEUS else mc.NOBODY_UID
        config = ConfigFiles(
            f"{name}-config",
            ConfigFilesArgs(host.shell, spec.label, owner, files, mc.reload_if_running(spec)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(host.depends_on)),
        )
        sources: dict[str, MountSource[pulumi.Input[str]]] = {CONFIG: MountSource(config.path)}
        if data:
            volume = docker.Volume(
                f"{name}-data",
                name=f"{spec.name}-data",
                labels=[docker.VolumeLabelArgs(label=COMPONENT_LABEL, value=f"{spec.label}-data")],
                opts=host.placement.options(self, list(host.depends_on)),  # samples and silences: not protected
            )
            sources[mc.DATA] = MountSource(volume.name, "volume")
        image = container_image(
            f"{name}-image", spec.image, self._args.config.image_base, host.placement.options(self, []), host.depends_on
        )
        publish = Publish(LOOPBACK, port) if host.bridge else None
        return docker.Container(
            f"{name}-container",
            **container_settings(spec, sources),
            **host.placement.network(spec.label, publish, port),
            opts=host.placement.options(self, [image, config.written, *host.depends_on]).merge(
                pulumi.ResourceOptions(delete_before_replace=True)
            ),
        )
