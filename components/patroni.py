"""Patroni on the Hetzner hosts (hetzner.failover): an etcd member per host, a Patroni-managed Postgres
member per database host, and the cluster's dynamic configuration applied through the REST API.

Each container is a render.patroni ContainerSpec, the one the failover drill starts with `docker run`,
on the host's network, listening on the host's private IP only (the firewall and the policies cover
the ports). Patroni's passwords reach the host in a 0600 secrets.yml of the member's config directory
(ConfigFiles: stdin over SSH, secret in the state), never in a container's env or command. A new
password is a reload: ALTER ROLE on the leader, then a SIGHUP (Patroni rereads its files).

Why the settings go through PATCH /config and not the file: after the first start Patroni ignores
`bootstrap.dcs`; the cluster-wide configuration lives in etcd. A command re-run whenever the rendered
dynamic configuration changes PATCHes it, and Patroni reloads Postgres (or flags pending_restart for a
setting read at start): a reloadable change never replaces a container.

Why a member's container waits for the other member to lead (MemberReplacements): a new image, command
or mount replaces the container, so it stops; replaced while it leads, Patroni fails over (clients fail
until the replica is promoted). Replaced as a replica, with the poolers paused around each switchover,
clients wait instead. Those commands need the PgBouncer consoles' passwords, which exist only once the
poolers are declared (after the cluster: they point at it), so the containers wait on futures that
`PatroniCluster.roll` resolves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_postgresql as postgresql

from components.config_files import ConfigFiles, ConfigFilesArgs, HostShell
from components.resources.admin import AdminAddress, AdminConnection, admin_provider
from components.resources.containers import Placement, container_image, container_settings
from components.resources.passwords import generated_password
from components.resources.sql_apply import PrimaryCheck
from components.tls import ServerTls
from postgres_platform.model.names import POSTGRES_UID, SUPERUSER
from postgres_platform.render.containers import CONFIG, ContainerSpec, MountSource
from postgres_platform.render.files import File, reload_if_running
from postgres_platform.render.patroni import (
    CA_FILE,
    DB_1,
    DB_2,
    ETCD_DATA,
    ETCD_UID,
    PASSWORDS_SQL,
    PATRONI_FILE,
    SECRETS_FILE,
    config_patch_command,
    config_patch_input,
    lead_command,
    passwords_sql,
    patroni_secrets,
    restart_command,
    restart_parameters,
    rolling_input,
    set_passwords_step,
)
from postgres_platform.render.postgres import CERT_FILE, KEY_FILE

MEMBER_WAIT_SECONDS = 600  # a first bootstrap, or a replica restored from the repository


def _remote(
    name: str, shell: HostShell, script: str, opts: pulumi.ResourceOptions, **kwargs: Any
) -> command.remote.Command:
    assert shell.ssh is not None  # the members run on hosts reached over SSH
    return command.remote.Command(name, connection=shell.ssh, create=script, opts=opts, **kwargs)


@dataclass(frozen=True)
class EtcdMemberArgs:
    spec: ContainerSpec  # render.patroni.etcd_container: flags on the host's private IP
    image_base: str
    placement: Placement  # the host's Docker, its network
    shell: HostShell  # where the data directory is made
    data_dir: str  # on the host (render.hetzner.ETCD_DATA_DIR): the root disk, not PGDATA's volume
    depends_on: Sequence[pulumi.Resource] = ()


class EtcdMember(pulumi.ComponentResource):
    """One etcd member: its data directory (the image's user's) and its container."""

    container: docker.Container

    def __init__(self, name: str, args: EtcdMemberArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:EtcdMember", name, None, opts)
        directory = shlex.quote(args.data_dir)
        # A bind mount of a missing directory fails; etcd runs unprivileged and refuses a directory others read.
        data = _remote(
            f"{name}-data-dir",
            args.shell,
            f"install -d -o {ETCD_UID} -g {ETCD_UID} -m 0700 {directory}",
            pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        image = container_image(
            f"{name}-image", args.spec.image, args.image_base, args.placement.options(self, []), args.depends_on
        )
        self.container = docker.Container(
            f"{name}-container",
            **container_settings(args.spec, {ETCD_DATA: MountSource(args.data_dir)}),
            network_mode="host",
            opts=args.placement.options(self, [image, data]).merge(pulumi.ResourceOptions(delete_before_replace=True)),
        )
        self.register_outputs({"containerName": self.container.name})


@dataclass(frozen=True)
class PatroniMemberArgs:
    spec: ContainerSpec  # render.patroni.patroni_container
    patroni_yml: str  # render.patroni.patroni_yaml: no password in it
    secrets: pulumi.Output[str]  # render.patroni.patroni_secrets: the passwords (secret), written 0600
    passwords_sql: pulumi.Output[str]  # render.patroni.passwords_sql: their verifiers (secret), 0600
    tls: ServerTls  # the host's certificate: Postgres' and the REST API's
    ca_cert_pem: pulumi.Input[str]  # the stack CA: what CONFIG_PATCH verifies the REST API against
    image_base: str
    placement: Placement
    shell: HostShell
    sources: Mapping[str, MountSource[pulumi.Input[str]]]  # every mount but CONFIG (this component's)
    wait: bool = True  # wait until the server accepts connections (the member that bootstraps)
    depends_on: Sequence[pulumi.Resource] = ()
    container_after: Sequence[pulumi.Input[pulumi.Resource]] = ()  # the container alone waits for these


class PatroniMember(pulumi.ComponentResource):
    """A Patroni-managed Postgres on one host: its config directory and its container.

    A changed file is a SIGHUP to Patroni (it rereads patroni.yml, secrets.yml and pg_hba; `bootstrap` is
    read at the first start only), after the passwords are set where the member leads; the container
    changes only with its image, command or mounts.
    """

    container: docker.Container

    def __init__(self, name: str, args: PatroniMemberArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PatroniMember", name, None, opts)
        spec = args.spec
        files: list[File[pulumi.Input[str]]] = [
            File(Path(PATRONI_FILE).name, "0644", args.patroni_yml),
            File(Path(SECRETS_FILE).name, "0600", args.secrets),
            File(Path(PASSWORDS_SQL).name, "0600", args.passwords_sql),
            File(Path(CERT_FILE).name, "0644", args.tls.cert_pem),
            File(Path(KEY_FILE).name, "0600", args.tls.key_pem),
            File(Path(CA_FILE).name, "0644", args.ca_cert_pem),
        ]
        config = ConfigFiles(
            f"{name}-config",
            ConfigFilesArgs(
                shell=args.shell,
                directory=spec.label,
                owner=POSTGRES_UID,
                files=files,
                reload=reload_if_running(spec.name, set_passwords_step(spec.name)),
                depends_on=args.depends_on,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        image = container_image(
            f"{name}-image", spec.image, args.image_base, args.placement.options(self, []), args.depends_on
        )
        self.container = docker.Container(
            f"{name}-container",
            **container_settings(spec, {**args.sources, CONFIG: MountSource(config.path)}),
            # Over the socket: Postgres listens on the private IP only, Patroni's own connections use it too.
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD-SHELL", "pg_isready -q -h /var/run/postgresql"],
                interval="5s",
                timeout="3s",
                retries=24,
                start_period="30s",
            ),
            wait=args.wait,
            wait_timeout=MEMBER_WAIT_SECONDS,
            network_mode="host",
            opts=args.placement.options(self, [image, config.written, *args.depends_on]).merge(
                pulumi.ResourceOptions(delete_before_replace=True, depends_on=list(args.container_after))
            ),
        )
        self.register_outputs({"containerName": self.container.name})


@dataclass(frozen=True)
class DynamicConfigArgs:
    shell: HostShell  # a database host: the command runs in its Patroni container
    container: str  # that container's name
    rest_url: str  # https://<the host's private IP>:<REST port>
    rest_password: pulumi.Output[str]
    config: Mapping[str, Any]  # render.patroni.dynamic_config
    depends_on: Sequence[pulumi.Input[pulumi.Resource]] = ()


class PatroniDynamicConfig(pulumi.ComponentResource):
    """PATCH /config once the cluster is up, and again whenever the rendered configuration changes (its
    stdin: pulumi-command runs `create` again on a changed input). Any member's REST API writes it to
    etcd, so the host whose Patroni answers need not be the primary."""

    patch: command.remote.Command

    def __init__(self, name: str, args: DynamicConfigArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PatroniDynamicConfig", name, None, opts)
        stdin: pulumi.Output[str] = pulumi.Output.secret(args.rest_password.apply(config_patch_input))
        # The configuration is in `create` (no secret in it): a changed setting shows in the preview's diff,
        # and a changed `create` runs it again (pulumi-command's update runs `create`).
        self.patch = _remote(
            f"{name}-patch",
            args.shell,
            config_patch_command(args.container, args.rest_url, args.config),
            pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            stdin=stdin,
        )
        self.register_outputs({})


def _rolling_stdin(
    rest_password: pulumi.Output[str], poolers: Mapping[str, tuple[str, pulumi.Output[str]]]
) -> pulumi.Output[str]:
    """render/patroni_rolling.py's stdin (secret): the REST API's credentials and the consoles' passwords."""
    members = sorted(poolers)
    every = pulumi.Output.all(rest_password, *(poolers[m][1] for m in members))
    return pulumi.Output.secret(every.apply(lambda v: rolling_input(v[0], dict(zip(members, v[1:], strict=True)))))


@dataclass(frozen=True)
class RestartsArgs:
    shell: HostShell  # db-1's host: the script runs in its Patroni container
    container: str
    rest_url: str
    rest_password: pulumi.Output[str]
    restart_settings: Mapping[str, str]  # the dynamic configuration's restart-only parameters: a change runs it
    poolers: Mapping[str, tuple[str, pulumi.Output[str]]]  # member -> its host's console conninfo, admin password
    grace: float  # seconds the load balancer takes to see a restarted member healthy
    depends_on: Sequence[pulumi.Resource] = ()


class PatroniRestarts(pulumi.ComponentResource):
    """After a PATCH that changed a restart-only setting (max_connections, shared_buffers, ...), which
    Patroni only flags pending_restart: restart those members in order, replicas first, then the leader
    in place, each with its host's PgBouncer paused (render/patroni_rolling.py). Its triggers are those
    settings, so a reloadable change runs nothing here, and a preview shows the restarts coming."""

    command: command.remote.Command

    def __init__(self, name: str, args: RestartsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PatroniRestarts", name, None, opts)
        consoles = {member: conninfo for member, (conninfo, _) in args.poolers.items()}
        self.command = _remote(
            f"{name}-command",
            args.shell,
            restart_command(args.container, args.rest_url, consoles, args.grace),
            pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            stdin=_rolling_stdin(args.rest_password, args.poolers),
            triggers=[json.dumps(dict(args.restart_settings), sort_keys=True)],
        )
        self.register_outputs({})


# MemberReplacements' steps: db-1 leads before db-2's container is replaced; db-2 leads before db-1's is;
# db-1 leads again afterwards (every `pulumi up` needs it to: docs/operations/failover.md).
LEAD_STEPS = ("before-replica", "before-primary", "after")


@dataclass(frozen=True)
class ReplacementsArgs:
    primary: PatroniHost  # db-1's
    replica: PatroniHost  # db-2's
    containers: tuple[docker.Container, docker.Container]  # their member containers
    rest_password: pulumi.Output[str]
    poolers: Mapping[str, tuple[str, pulumi.Output[str]]]  # member -> its host's console conninfo, admin password
    grace: float  # seconds the load balancer takes to see a new leader healthy


def spec_trigger(spec: ContainerSpec) -> str:
    """What replaces a member's container when it changes: its spec (image, command, env, mounts, ...)."""
    return json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str)


class MemberReplacements(pulumi.ComponentResource):
    """A member's container replaced (a new image: a minor upgrade; a new command or mount) only while the
    other member leads: three switchovers ordered around the two replacements (LEAD_STEPS), each
    render/patroni_rolling.py's `lead` with every PgBouncer paused, so clients wait instead of failing.

    Each step is triggered by the spec of the container it precedes or follows, so an up that replaces
    neither runs none, and a preview shows them coming (replacements). A step that finds its member
    leading, or no leader (a first create: the members do not run yet), does nothing; `update` (a new
    password on its stdin) runs nothing."""

    leads: dict[str, command.remote.Command]

    def __init__(self, name: str, args: ReplacementsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:MemberReplacements", name, None, opts)
        stdin = _rolling_stdin(args.rest_password, args.poolers)
        consoles = {member: conninfo for member, (conninfo, _) in args.poolers.items()}
        db_1, db_2 = args.primary, args.replica
        steps = {  # step -> (the host and container it runs from, the member to lead, its trigger, after)
            "before-replica": (db_1, DB_1, db_2, []),
            "before-primary": (db_2, DB_2, db_1, [args.containers[1]]),
            "after": (db_1, DB_1, db_1, [args.containers[0]]),
        }
        self.leads = {}
        for step, (host, to, replaced, after) in steps.items():
            self.leads[step] = _remote(
                f"{name}-{step}",
                host.shell,
                lead_command(host.spec.name, host.rest_url, consoles, args.grace, to),
                pulumi.ResourceOptions(parent=self, depends_on=after),
                stdin=stdin,
                update="true",  # a new password on stdin: nothing to switch
                triggers=[spec_trigger(replaced.spec)],
            )
        self.register_outputs({})


@dataclass(frozen=True)
class PatroniHost:
    """What a database host's member is, less its passwords (PatroniCluster makes those)."""

    name: str  # the component's
    spec: ContainerSpec
    patroni_yml: str
    tls: ServerTls
    placement: Placement
    shell: HostShell
    sources: Mapping[str, MountSource[pulumi.Input[str]]]
    rest_url: str  # https://<private IP>:<REST port>
    depends_on: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class PatroniClusterArgs:
    etcd: Sequence[tuple[str, EtcdMemberArgs]]  # every member (database hosts and witnesses): a quorum first
    members: Sequence[PatroniHost]  # the first bootstraps the cluster; the others clone it (create_replica_methods)
    dynamic_config: Mapping[str, Any]  # render.patroni.dynamic_config of the program's settings
    ca_cert_pem: pulumi.Input[str]
    image_base: str
    admin: AdminAddress  # the provider's way to the first member (see docs/operations/failover.md)


class PatroniCluster(pulumi.ComponentResource):
    """The server the program runs where Patroni manages it: what deploy() needs of a PostgresServer (the
    superuser's password, the admin connection, the provider), from etcd members, Patroni members and
    the dynamic configuration instead of one Postgres container.

    The passwords are generated here and reach Patroni in its secrets.yml only: the superuser's (Patroni
    sets it at bootstrap: initdb's pwfile), the replication and pg_rewind logins' (Patroni creates
    those roles at bootstrap) and the REST API's. A replaced one is set by ALTER ROLE on the leader and
    reread by every member on its SIGHUP (PatroniMember).
    """

    superuser_password: pulumi.Output[str]
    admin_connection: AdminConnection
    provider: postgresql.Provider
    members: list[PatroniMember]
    etcd: list[EtcdMember]
    dynamic_config: PatroniDynamicConfig

    def __init__(self, name: str, args: PatroniClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PatroniCluster", name, None, opts)
        self.superuser_password = generated_password(f"{name}-superuser-password", self)
        passwords = {
            what: generated_password(f"{name}-{what}-password", self) for what in ("replication", "rewind", "restapi")
        }
        every = pulumi.Output.all(self.superuser_password, *passwords.values())
        secrets: pulumi.Output[str] = pulumi.Output.secret(
            every.apply(lambda v: patroni_secrets(superuser=v[0], replication=v[1], rewind=v[2], restapi=v[3]))
        )
        verifiers: pulumi.Output[str] = pulumi.Output.secret(
            every.apply(lambda v: passwords_sql(superuser=v[0], replication=v[1], rewind=v[2]))
        )
        child = pulumi.ResourceOptions(parent=self)
        self.etcd = [EtcdMember(member, member_args, child) for member, member_args in args.etcd]
        quorum = [member.container for member in self.etcd]
        # Resolved by roll(): db-2's container waits for db-1 to lead, db-1's for db-2, and what needs db-1
        # leading (the PATCH, the provider's check) for db-1 again (MemberReplacements).
        loop = asyncio.get_event_loop()
        self._leads: dict[str, asyncio.Future[pulumi.Resource]] = {step: loop.create_future() for step in LEAD_STEPS}
        waits = {0: self._leads["before-primary"], 1: self._leads["before-replica"]}
        self.members = []
        for i, host in enumerate(args.members):
            member = PatroniMember(
                host.name,
                PatroniMemberArgs(
                    spec=host.spec,
                    patroni_yml=host.patroni_yml,
                    secrets=secrets,
                    passwords_sql=verifiers,
                    tls=host.tls,
                    ca_cert_pem=args.ca_cert_pem,
                    image_base=args.image_base,
                    placement=host.placement,
                    shell=host.shell,
                    sources=host.sources,
                    wait=i == 0,
                    depends_on=[*host.depends_on, *quorum],
                    container_after=[waits[i]],
                ),
                child,
            )
            self.members.append(member)
        first, leader = args.members[0], self.members[0]
        self.dynamic_config = PatroniDynamicConfig(
            f"{name}-dynamic-config",
            DynamicConfigArgs(
                shell=first.shell,
                container=first.spec.name,
                rest_url=first.rest_url,
                rest_password=passwords["restapi"],
                config=args.dynamic_config,
                depends_on=[leader.container, self._leads["after"]],
            ),
            child,
        )
        self.admin_connection = AdminConnection(args.admin, SUPERUSER, self.superuser_password)
        # The provider names db-1 (it takes one host): after a failover it would reach a replica.
        primary = PrimaryCheck(
            f"{name}-primary-check",
            connection=self.admin_connection.as_secret_input(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[leader.container, self._leads["after"]]),
        )
        self.provider = admin_provider(f"{name}-provider", self.admin_connection, True, self, [primary])
        self._name, self._hosts, self._rest_password = name, list(args.members), passwords["restapi"]
        self._restart_settings = restart_parameters(args.dynamic_config)
        self.register_outputs({"containerName": leader.container.name})

    def roll(
        self,
        poolers: Mapping[str, tuple[str, pulumi.Output[str]]],
        grace: float,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> None:
        """MemberReplacements and PatroniRestarts, from the hosts' Patroni containers, pausing `poolers`
        (member -> its host's console conninfo and admin password): declared once the poolers exist, and
        not as the cluster's children (the poolers wait for the cluster). Every stack with the cluster
        calls it: the members' containers wait for what it declares."""
        (first, second), rest_password = self._hosts, self._rest_password
        replacements = MemberReplacements(
            f"{self._name}-replacements",
            ReplacementsArgs(
                primary=first,
                replica=second,
                containers=(self.members[0].container, self.members[1].container),
                rest_password=rest_password,
                poolers=poolers,
                grace=grace,
            ),
        )
        for step, lead in replacements.leads.items():
            self._leads[step].set_result(lead)
        PatroniRestarts(
            f"{self._name}-restarts",
            RestartsArgs(
                shell=first.shell,
                container=first.spec.name,
                rest_url=first.rest_url,
                rest_password=rest_password,
                restart_settings=self._restart_settings,
                poolers=poolers,
                grace=grace,
                depends_on=[self.dynamic_config.patch, *depends_on],
            ),
        )
