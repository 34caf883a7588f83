"""Targets: where the containers run, where data lives, how the servers are reached.

A target declares its hosts and hands deploy() a `Site`; deploy() declares Postgres, access and
PgBouncer the same way for every target. To add one: a config section for it, a class with `prepare()`
and `add_replicas()`, and an entry in TARGETS. ExistingTarget is the server that runs already: deploy()
declares no Postgres there, only access and (optionally) PgBouncer.
"""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_hcloud as hcloud

from components.backups import Backups
from components.config_files import HostShell
from components.failover import (
    Forward,
    PrimaryLoadBalancer,
    PrimaryLoadBalancerArgs,
    WitnessHost,
    WitnessHostArgs,
    cluster_firewall_rules,
)
from components.hetzner import DatabaseHost, DatabaseHostArgs, PrivateNetwork, PrivateNetworkArgs, firewall_rules
from components.local_host import LocalHost
from components.patroni import EtcdMemberArgs, PatroniCluster, PatroniClusterArgs, PatroniHost
from components.pgbouncer import PgBouncer, PgBouncerArgs
from components.postgres import PostgresContainerArgs, PostgresServer, PostgresServerArgs, server_files
from components.replica import StreamingReplica, StreamingReplicaArgs
from components.resources.admin import AdminAddress
from components.resources.containers import Placement, Publish
from components.tls import ServerTls, StackCertificates
from postgres_platform.model.config import ExistingConfig, HetznerConfig, PlatformConfig, SettingValue
from postgres_platform.model.images import ETCD_35
from postgres_platform.model.names import (
    LOOPBACK,
    PGBOUNCER_PORT,
    PGDATA,
    POSTGRES_PORT,
    PRIMARY,
    REPLICA,
    container_name,
)
from postgres_platform.render import pgbouncer
from postgres_platform.render.backup import STANZA
from postgres_platform.render.containers import BACKUP_CONFIG, BACKUP_REPO, DATA, MountSource, postgres_container
from postgres_platform.render.dsn import Endpoint
from postgres_platform.render.hetzner import (
    DATA_DIR,
    ETCD_DATA_DIR,
    HEALTH_INTERVAL,
    HEALTH_TIMEOUT,
    PRIMARY_CHECK,
    READ_PORT,
    REPLICA_CHECK,
)
from postgres_platform.render.patroni import (
    DB_1,
    DB_2,
    REST_USER,
    console_conninfo,
    durability,
    dynamic_config,
    dynamic_parameters,
    etcd_args,
    etcd_container,
    member_pg_hba,
    patroni_container,
    patroni_yaml,
)
from postgres_platform.render.patroni import ETCD_DATA_DIR as ETCD_DATA_DIR_IN_CONTAINER
from postgres_platform.render.pg_hba import HbaSources, render_pg_hba
from postgres_platform.render.postgres import (
    CERT_FILE,
    KEY_FILE,
    render_config_file,
    server_arguments,
    server_settings,
    tls_and_hba_settings,
)
from postgres_platform.render.replica import standby_settings


@dataclass(frozen=True)
class Site:
    """What a target supplies: placement, data, server files and settings, and every address."""

    placement: Placement
    shell: HostShell  # where config directories are written and reloads run
    data: MountSource[pulumi.Input[str]] | None  # PGDATA (None: an adopted server, not ours to run)
    admin: AdminAddress  # the admin's way in, for the provider and the SQL steps
    direct: Endpoint  # apps to Postgres
    pooled: Endpoint  # apps to PgBouncer (where there is one)
    admin_endpoint: pulumi.Output[Endpoint]  # the operator's adminDsn (a Hetzner public IP is an output)
    pgbouncer_listen: str  # PgBouncer's listen_addr
    pgbouncer_server_host: str  # where PgBouncer finds Postgres
    pgbouncer_server_port: int = POSTGRES_PORT
    postgres_publish: Publish | None = None
    pgbouncer_publish: Publish | None = None
    server_settings: dict[str, SettingValue] = field(default_factory=dict)  # beyond the config's
    host: pulumi.Resource | None = None  # what config files wait for (a server that is ready)
    hba: str | None = None  # our pg_hba.conf, where the server is reachable beyond this machine
    tls: ServerTls | None = None  # the primary's certificate (Postgres and PgBouncer)
    ca_cert_pem: pulumi.Output[str] | None = None
    # A target whose server is not one Postgres container (hetzner.failover: Patroni): deploy() hands it the
    # primary's container arguments, the settings and the backups instead of declaring a PostgresServer.
    cluster: Callable[[PostgresServerArgs, dict[str, SettingValue], Backups | None], PatroniCluster] | None = None

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What anything placed on the host waits for (a server that finished booting), if anything."""
        return [self.host] if self.host is not None else []


class Target(ABC):
    monitored_replica: DatabaseHost | None = None  # a standby's host, for its exporter (set by add_replicas)

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config

    @abstractmethod
    def prepare(self) -> Site:
        """Declare the hosts (network, servers, volumes, certificates) and say where things run."""

    def add_replicas(self, primary: PostgresServer | PatroniCluster, backups: Backups | None) -> Endpoint | None:
        """Declare standbys of the primary; their read-only endpoint, if any."""
        return None

    def add_poolers(self, primary: PgBouncerArgs, endpoints: pgbouncer.Endpoints) -> None:
        """Declare a PgBouncer on each other host that may become the primary (after add_replicas)."""
        return None

    def add_rolling(self, server: PostgresServer | PatroniCluster, pgbouncer: PgBouncer | None) -> None:
        """Declare what orders the servers' restarts (a restart-only setting) and container replacements,
        where something must (after add_poolers: the poolers are paused around each)."""
        return None


class LocalTarget(Target):
    """The local Docker engine: a bridge network, ports published on loopback, an unprotected volume."""

    def prepare(self) -> Site:
        ports = self.config.local_ports()
        host = LocalHost("local")
        direct = Endpoint(LOOPBACK, ports.postgres_port, "disable", pooled=False)
        return Site(
            placement=Placement(network_name=host.network_name),
            # Config directories in the developer's home: Docker Desktop shares it with its VM.
            shell=HostShell(root=str(Path.home() / ".postgres-platform" / pulumi.get_stack())),
            data=host.data,
            admin=AdminAddress(LOOPBACK, ports.postgres_port, "disable"),
            direct=direct,
            pooled=Endpoint(LOOPBACK, ports.pgbouncer_port, "disable", pooled=True),
            admin_endpoint=pulumi.Output.from_input(direct),
            pgbouncer_listen="0.0.0.0",  # inside its container; published on loopback only
            pgbouncer_server_host="postgres",  # the Postgres container's alias on the bridge network
            postgres_publish=Publish(LOOPBACK, ports.postgres_port),
            pgbouncer_publish=Publish(LOOPBACK, ports.pgbouncer_port),
        )


def data_mount() -> MountSource[pulumi.Input[str]]:
    """PGDATA on a host: a bind of the data directory on the mounted volume. A bind mount (unlike a
    `volumes` host path) fails when its source is missing, so a server whose volume did not mount
    does not start on an empty directory of the root disk."""
    return MountSource(DATA_DIR, "bind")


def wal_keep_megabytes(volume_gb: int) -> int:
    """max_slot_wal_keep_size: a quarter of the data volume, so a replica that is down invalidates its
    slot (and needs a new base backup) before the primary's WAL can fill the disk."""
    return volume_gb * 1024 // 4


def client_ca_path() -> str:
    """Where apps keep the stack CA (`pulumi stack output caCertPem`); DSNs name it in sslrootcert."""
    return f"/etc/postgres-platform/{pulumi.get_stack()}-ca.crt"


def ca_file_for_provider(ca_cert_pem: pulumi.Input[str]) -> pulumi.Output[str]:
    """The CA as a file for the postgresql provider's sslrootcert (it takes a path, not PEM).

    A fixed path per stack (a new path each run would change the provider's config on every up), in a
    directory only this user can enter, written without following a planted symlink.
    """

    def write(pem: str) -> str:
        directory = Path.home() / ".postgres-platform"
        directory.mkdir(mode=0o700, exist_ok=True)
        path = directory / f"{pulumi.get_stack()}-ca.crt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(pem)
        return str(path)

    return pulumi.Output.from_input(ca_cert_pem).apply(write)


class HetznerTarget(Target):
    """Servers in a private network behind a firewall, Docker over SSH, TLS from a stack CA.

    With hetzner.failover: the replica's host is declared with the primary's, witnesses beside them, and a
    private load balancer in front of both that the DSNs name (components/failover.py).
    """

    def __init__(self, config: PlatformConfig) -> None:
        super().__init__(config)
        assert config.hetzner is not None  # config checks: target hetzner requires the section
        self.hetzner: HetznerConfig = config.hetzner
        self.failover = self.hetzner.failover.enabled  # config checks: only with a replica
        self.witnesses: list[WitnessHost] = []
        self.load_balancer: PrimaryLoadBalancer | None = None
        self._replica_host: DatabaseHost | None = None
        self._replica_pgbouncer: PgBouncer | None = None
        self._replica_tls: ServerTls | None = None
        self._primary_host: DatabaseHost | None = None
        self._primary_tls: ServerTls | None = None

    def _certificate_ips(self, private_ip: str) -> list[str]:
        """A host's private IP, and the load balancer's where apps reach the host through it (verify-full
        checks the address the DSN names)."""
        return [private_ip, self.hetzner.load_balancer_ip()] if self.failover else [private_ip]

    def _witness(self, index: int, private_ip: str) -> WitnessHost:
        h = self.hetzner
        return WitnessHost(
            f"witness-{index}",
            WitnessHostArgs(
                private_ip=private_ip,
                location=h.location,
                server_type=h.failover.witness_server_type,
                image=h.image,
                ssh_keys=tuple(h.ssh_keys),
                protect_server=h.protect_servers,
                network=self._network,
                firewall=self._firewall,
                placement_group=self._group,
            ),
        )

    def _load_balancer(self, hosts: list[DatabaseHost]) -> PrimaryLoadBalancer:
        """PgBouncer and Postgres of whichever host is the primary; the replica's Postgres on READ_PORT."""
        h = self.hetzner
        forwards = [
            Forward(PGBOUNCER_PORT, PGBOUNCER_PORT, PRIMARY_CHECK),
            Forward(POSTGRES_PORT, POSTGRES_PORT, PRIMARY_CHECK),
        ]
        if h.replicas:
            forwards.append(Forward(READ_PORT, POSTGRES_PORT, REPLICA_CHECK))
        return PrimaryLoadBalancer(
            "primary-endpoint",
            PrimaryLoadBalancerArgs(
                load_balancer_type=h.failover.load_balancer_type,
                location=h.location,
                private_ip=h.load_balancer_ip(),
                network=self._network,
                servers=[host.server for host in hosts],
                forwards=forwards,
                rest_api_port=h.failover.rest_api_port,
                protect=h.protect_servers,
            ),
        )

    def _host(self, role: str, private_ip: str) -> DatabaseHost:
        h = self.hetzner
        return DatabaseHost(
            role,
            DatabaseHostArgs(
                role=role,
                private_ip=private_ip,
                location=h.location,
                server_type=h.server_type,
                image=h.image,
                ssh_keys=tuple(h.ssh_keys),
                volume_size=h.volume_size,
                protect_server=h.protect_servers,
                network=self._network,
                firewall=self._firewall,
                placement_group=self._group,
            ),
        )

    def prepare(self) -> Site:
        h = self.hetzner
        self._network = PrivateNetwork("private", PrivateNetworkArgs(h.ip_range, h.subnet, h.network_zone))
        rules = firewall_rules(h.admin_cidrs)
        if self.failover:
            rules += cluster_firewall_rules(h.subnet, h.failover.ports())
        self._firewall = hcloud.Firewall(
            "database-firewall",
            rules=rules,
            labels={"managed-by": "postgres-platform", "env": pulumi.get_stack()},
        )
        self._group = hcloud.PlacementGroup("database-placement", type="spread")
        primary_ip = h.primary_ip()
        primary = self._host("primary", primary_ip)
        if self.failover:
            # Declared with the primary: the load balancer targets both hosts from the start.
            self._replica_host = self._host("replica", h.replica_ip())
            self.witnesses = [self._witness(i + 1, ip) for i, ip in enumerate(h.witness_ips())]
            self.load_balancer = self._load_balancer([primary, self._replica_host])
        self._certificates = StackCertificates("tls")
        tls = ServerTls(
            *self._certificates.server_certificate(
                "primary-tls",
                common_name=primary_ip,
                ip_addresses=[*self._certificate_ips(primary_ip), primary.public_ip],
            )
        )
        self._primary_host, self._primary_tls = primary, tls
        if self.failover:  # both members' certificates before the cluster is declared (Postgres and REST API)
            replica_ip = h.replica_ip()
            self._replica_tls = ServerTls(
                *self._certificates.server_certificate(
                    "replica-tls", common_name=replica_ip, ip_addresses=[*self._certificate_ips(replica_ip)]
                )
            )
        # The exporters connect from their host's private IP to its Postgres (monitoring).
        monitors = (primary_ip, *((h.replica_ip(),) if h.replicas else ())) if self.config.exporters_run() else ()
        self._hba = render_pg_hba(
            self.config,
            HbaSources((h.subnet,), tuple(h.admin_cidrs), h.replica_ip() if h.replicas else None, monitors),
        )
        ca = client_ca_path()  # the operator's copy too: one path for every DSN of the stack

        def endpoint(host: str, port: int, pooled: bool) -> Endpoint:
            return Endpoint(host, port, "verify-full", pooled=pooled, sslrootcert=ca)

        settings = tls_and_hba_settings()
        if h.replicas:
            settings["max_slot_wal_keep_size"] = f"{wal_keep_megabytes(h.volume_size)}MB"
        # Apps reach whichever host is the primary through the load balancer; PgBouncer still listens on
        # its own host's private IP and serves its own Postgres (docs/decisions/0007).
        apps_host = h.load_balancer_ip() if self.failover else primary_ip
        return Site(
            placement=Placement(docker_provider=primary.docker_provider),
            shell=primary.shell,
            data=data_mount(),
            admin=AdminAddress(
                primary.public_ip, POSTGRES_PORT, "verify-full", ca_file_for_provider(self._certificates.ca_cert_pem)
            ),
            direct=endpoint(apps_host, POSTGRES_PORT, pooled=False),
            pooled=endpoint(apps_host, PGBOUNCER_PORT, pooled=True),
            admin_endpoint=primary.public_ip.apply(lambda ip: endpoint(ip, POSTGRES_PORT, pooled=False)),
            pgbouncer_listen=primary_ip,  # the private network only, never the public interface
            pgbouncer_server_host=primary_ip,
            server_settings=settings,
            host=primary,
            hba=self._hba,
            tls=tls,
            ca_cert_pem=self._certificates.ca_cert_pem,
            cluster=self._cluster if self.failover else None,
        )

    def _cluster(
        self, primary: PostgresServerArgs, settings: dict[str, SettingValue], backups: Backups | None
    ) -> PatroniCluster:
        """hetzner.failover: etcd on every database host and witness, a Patroni member on each database host
        (the primary's bootstraps, the replica's is cloned by Patroni: pgBackRest, else pg_basebackup), and
        the program's settings as Patroni's dynamic configuration (components/patroni.py)."""
        h, f, stack = self.hetzner, self.hetzner.failover, pulumi.get_stack()
        primary_host, replica_host = self._primary_host, self._replica_host
        assert primary_host is not None and replica_host is not None and self._primary_tls and self._replica_tls
        etcd_hosts = [(primary_host, DB_1), (replica_host, DB_2)] + [
            (w, f"witness-{i + 1}") for i, w in enumerate(self.witnesses)
        ]
        addresses = {
            name: (f"{host.private_ip}:{f.etcd_client_port}", f"{host.private_ip}:{f.etcd_peer_port}")
            for host, name in etcd_hosts
        }
        etcd = [
            (
                f"{name}-etcd",
                EtcdMemberArgs(
                    spec=etcd_container(
                        name=container_name(stack, "etcd"),
                        image=ETCD_35.reference,
                        label="etcd",
                        flags=etcd_args(
                            name=name, members=addresses, data_dir=ETCD_DATA_DIR_IN_CONTAINER, token=f"{stack}-etcd"
                        ),
                        peers=[client for other, (client, _) in addresses.items() if other != name],
                    ),
                    image_base=self.config.image_base,
                    placement=Placement(docker_provider=host.docker_provider),
                    shell=host.shell,
                    data_dir=ETCD_DATA_DIR,
                    depends_on=[host],
                ),
            )
            for host, name in etcd_hosts
        ]
        parameters = dynamic_parameters(server_settings(self.config, settings))
        failover_settings = durability(f)
        backup = self.config.backup
        sources_of = {PRIMARY: dict(primary.container.sources), REPLICA: {DATA: data_mount()}}
        depends_on: dict[str, list[pulumi.Resource]] = {
            PRIMARY: list(primary.container.depends_on),
            REPLICA: [replica_host],
        }
        if backups is not None:
            # The replica's host restores from the repository, archives after a promotion and backs up while
            # it leads: its own copy of pgBackRest's config and the backup units (config checks: s3 only).
            replica_container = container_name(stack, REPLICA)
            files = backups.on_host("replica-backups", replica_host.shell, [replica_host], replica_container)
            sources_of[REPLICA][BACKUP_CONFIG] = MountSource(files.path)
            depends_on[REPLICA].append(files.written)
        # The exporters connect from each host's private IP to its own Postgres (monitoring), as without Patroni.
        monitors = tuple(h.database_ips()) if self.config.exporters_run() else ()
        members = []
        for label, role, host, peer, tls, name in (
            (PRIMARY, "primary", primary_host, replica_host, self._primary_tls, DB_1),
            (REPLICA, "replica", replica_host, primary_host, self._replica_tls, DB_2),
        ):
            ip = host.private_ip
            hba = render_pg_hba(self.config, HbaSources((h.subnet,), tuple(h.admin_cidrs), peer.private_ip, monitors))
            config = patroni_yaml(
                scope=f"postgres-platform-{stack}",
                name=name,
                connect_address=f"{ip}:{POSTGRES_PORT}",
                rest_address=f"{ip}:{f.rest_api_port}",
                etcd_hosts=[client for client, _ in addresses.values()],
                data_dir=PGDATA,
                bin_dir="",  # the image's PATH names its server's bin directory
                parameters=parameters,
                pg_hba=member_pg_hba(hba, peer.private_ip),
                create_replica_methods=["pgbackrest", "basebackup"] if backup is not None else ["basebackup"],
                pgbackrest_stanza=STANZA if backup is not None else None,
                rest_username=REST_USER,
                watchdog_mode=f.watchdog,
                rest_certfile=CERT_FILE,
                rest_keyfile=KEY_FILE,
                bootstraps=name == DB_1,
                **failover_settings,
            )
            members.append(
                PatroniHost(
                    name=f"{role}-patroni",  # by the host it runs on: its role in Patroni changes
                    spec=patroni_container(
                        name=container_name(stack, label),
                        image=self.config.server_image(),
                        label=label,
                        backup_config=BACKUP_CONFIG in sources_of[label],
                        posix_repo=BACKUP_REPO in sources_of[label],
                    ),
                    patroni_yml=config,
                    tls=tls,
                    placement=Placement(docker_provider=host.docker_provider),
                    shell=host.shell,
                    sources=sources_of[label],
                    rest_url=f"https://{ip}:{f.rest_api_port}",
                    depends_on=depends_on[label],
                )
            )
        return PatroniCluster(
            "postgres",
            PatroniClusterArgs(
                etcd=etcd,
                members=members,
                dynamic_config=dynamic_config(parameters=parameters, **failover_settings),
                ca_cert_pem=self._certificates.ca_cert_pem,
                image_base=self.config.image_base,
                admin=primary.admin,
            ),
        )

    def add_replicas(self, primary: PostgresServer | PatroniCluster, backups: Backups | None) -> Endpoint | None:
        if not self.hetzner.replicas:
            return None
        if self.failover:  # Patroni's replica (PatroniCluster), whichever host is the replica now, through the LB
            self.monitored_replica = self._replica_host
            return Endpoint(
                self.hetzner.load_balancer_ip(), READ_PORT, "verify-full", pooled=False, sslrootcert=client_ca_path()
            )
        replica_ip = self.hetzner.replica_ip()
        host = self._replica_host or self._host("replica", replica_ip)
        cert, key = self._certificates.server_certificate(
            "replica-tls", common_name=replica_ip, ip_addresses=[*self._certificate_ips(replica_ip)]
        )
        self._replica_tls = ServerTls(cert, key)
        self._replica_host = host
        settings = {**tls_and_hba_settings(), **standby_settings(self.hetzner.primary_ip())}
        placement = Placement(docker_provider=host.docker_provider)
        container = PostgresContainerArgs(
            spec=postgres_container(
                pulumi.get_stack(),
                self.config,
                REPLICA,
                server_arguments(self.config, settings),
                initdb_password=False,
            ),
            config_file=render_config_file(self.config, settings),
            image_base=self.config.image_base,
            placement=placement,
            shell=host.shell,
            sources={DATA: data_mount()},
            files=server_files(self._hba, self._replica_tls),
            depends_on=[host],
        )
        backup_dir = None
        if backups is not None:
            # The standby restores from the repository (and fetches WAL with pgBackRest): its config.
            files = backups.on_host("replica-backups", host.shell, [host])
            backup_dir = files.path
            container = dataclasses.replace(
                container,
                sources={**container.sources, BACKUP_CONFIG: MountSource(files.path)},
                depends_on=[host, files.written],
            )
        self.monitored_replica = host
        StreamingReplica(
            "replica",
            StreamingReplicaArgs(
                container=container,
                host=host,
                primary_ip=self.hetzner.primary_ip(),
                primary_provider=primary.provider,
                primary=primary,
                ca_cert_pem=self._certificates.ca_cert_pem,
                backup_config_dir=backup_dir,
                after=backups.ready if backups is not None else (),
            ),
        )
        return Endpoint(replica_ip, POSTGRES_PORT, "verify-full", pooled=False, sslrootcert=client_ca_path())

    def add_poolers(self, primary: PgBouncerArgs, endpoints: pgbouncer.Endpoints) -> None:
        """With failover, a PgBouncer on the replica's host too, in front of that host's own Postgres: the
        load balancer sends the pooled DSNs to whichever host is the primary (docs/decisions/0007)."""
        host, tls = self._replica_host, self._replica_tls
        if not self.failover or host is None or tls is None:
            return
        ip = host.private_ip
        local = dataclasses.replace(endpoints, listen_addr=ip, server_host=ip)
        self._replica_pgbouncer = PgBouncer(
            "replica-pgbouncer",
            dataclasses.replace(
                primary,
                ini=pgbouncer.render_ini(self.config, local),
                placement=Placement(docker_provider=host.docker_provider),
                shell=host.shell,
                tls=tls,
                depends_on=[*primary.depends_on, host],
            ),
        )

    def add_rolling(self, server: PostgresServer | PatroniCluster, pgbouncer: PgBouncer | None) -> None:
        """hetzner.failover: the members' replacements and restarts (PatroniCluster.roll), pausing each
        host's PgBouncer (its console on the host's private IP, checked against the stack CA)."""
        if not isinstance(server, PatroniCluster):
            return
        hosts = {DB_1: (self._primary_host, pgbouncer), DB_2: (self._replica_host, self._replica_pgbouncer)}
        poolers = {
            member: (console_conninfo(host.private_ip), pooler.admin_password)
            for member, (host, pooler) in hosts.items()
            if host is not None and pooler is not None
        }
        # The load balancer sees a restarted member healthy within one check (interval and timeout).
        grace = HEALTH_INTERVAL + HEALTH_TIMEOUT
        server.roll(poolers, grace, [pooler for _, pooler in hosts.values() if pooler is not None])


class ExistingTarget(Target):
    """A running server the program did not build (docs/operations/adopting-a-running-server.md): nothing is
    declared for it here; PgBouncer, if the stack has one, runs on the Docker host it names."""

    def __init__(self, config: PlatformConfig) -> None:
        super().__init__(config)
        assert config.existing is not None  # config checks: target existing requires the section
        self.existing: ExistingConfig = config.existing

    def prepare(self) -> Site:
        e = self.existing
        direct = Endpoint(e.host, e.port, e.sslmode, pooled=False)
        pgbouncer_host = e.pgbouncer_host
        placement, shell, pgbouncer_address = (
            Placement(),
            HostShell(root=str(Path.home() / ".postgres-platform")),
            e.host,
        )
        if pgbouncer_host is not None:
            pgbouncer_address = pgbouncer_host.address
            ssh = pgbouncer_host.ssh()
            shell = HostShell(
                root=pgbouncer_host.config_root,
                ssh=None if ssh is None else command.remote.ConnectionArgs(host=ssh[1], user=ssh[0]),
            )
            if ssh is not None:
                provider = docker.Provider(
                    "pgbouncer-docker",
                    host=f"ssh://{ssh[0]}@{ssh[1]}",
                    ssh_opts=["-o", "StrictHostKeyChecking=accept-new", "-o", "ServerAliveInterval=30"],
                )
                placement = Placement(docker_provider=provider)
        return Site(
            placement=placement,  # the host's network: PgBouncer listens on `address` only
            shell=shell,
            data=None,
            admin=AdminAddress(e.host, e.port, e.sslmode, e.ca_file),
            direct=direct,
            # No TLS between apps and this PgBouncer: it has no certificate of the stack
            # (docs/operations/adopting-a-running-server.md).
            pooled=Endpoint(pgbouncer_address, PGBOUNCER_PORT, "disable", pooled=True),
            admin_endpoint=pulumi.Output.from_input(direct),
            pgbouncer_listen=pgbouncer_address,
            pgbouncer_server_host=e.host,
            pgbouncer_server_port=e.port,
        )


TARGETS: dict[str, type[Target]] = {"local": LocalTarget, "hetzner": HetznerTarget, "existing": ExistingTarget}
