"""The sections of the stack config that say where the server runs and where its backups go."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field

from postgres_platform.model.config.types import (
    Cidr,
    ConfigModel,
    Port,
    RoleName,
    SslMode,
    Text,
    int_between,
)
from postgres_platform.model.names import POSTGRES_PORT


class LocalConfig(ConfigModel):
    """`local`: the ports on this machine's loopback address where target local publishes Postgres and
    PgBouncer (only for target local; the defaults apply when the section is absent)."""

    postgres_port: Port = Field(5432, alias="postgresPort")
    """Port on 127.0.0.1 where Postgres is published and the direct DSNs point (default 5432)."""
    pgbouncer_port: Port = Field(6432, alias="pgbouncerPort")
    """Port on 127.0.0.1 where PgBouncer is published and the pooled DSNs point (default 6432); not
    postgresPort's."""


class FailoverConfig(ConfigModel):
    """`hetzner.failover`: Patroni manages Postgres on the hosts, etcd on them and on small witness servers
    keeps its state, and a private Hetzner Load Balancer sends the DSNs to whichever host Patroni's REST
    API calls the primary (docs/operations/hetzner.md#failover; absent or enabled false: no Patroni,
    the hosts as without it)."""

    enabled: bool = False
    """Whether Patroni promotes the replica by itself when the primary is lost (default false); needs
    hetzner.replicas 1."""
    synchronous_mode: bool = Field(True, alias="synchronousMode")
    """Patroni's synchronous_mode (default true): a commit is acknowledged once the replica has it, and
    only a replica that was synchronous is promoted, so failover loses no acknowledged commit."""
    synchronous_mode_strict: bool = Field(False, alias="synchronousModeStrict")
    """Patroni's synchronous_mode_strict (default false): with the replica gone, writes wait for it
    instead of going on unreplicated (that replica is then not promoted either way)."""
    maximum_lag_on_failover: Annotated[int, int_between(0, 1 << 40)] = Field(1048576, alias="maximumLagOnFailover")
    """Bytes of WAL a replica may lag and still be promoted (default 1048576, Patroni's own)."""
    ttl: Annotated[int, int_between(10, 3600)] = 20
    """Seconds the leader key lives without renewal before a replica may take over (default 20, so a
    failover ends within about 30 s: Patroni's own 30 takes about 40); at least loopWait + 2 x retryTimeout."""
    loop_wait: Annotated[int, int_between(1, 600)] = Field(5, alias="loopWait")
    """Seconds between Patroni's HA loop runs (default 5; Patroni's own is 10)."""
    retry_timeout: Annotated[int, int_between(1, 600)] = Field(7, alias="retryTimeout")
    """Seconds Patroni retries etcd and Postgres before demoting itself (default 7; Patroni's own is 10)."""
    failsafe_mode: bool = Field(True, alias="failsafeMode")
    """Patroni's failsafe_mode (default true): with etcd unreachable the primary keeps running only while
    it still reaches every other member, instead of demoting itself."""
    watchdog: Literal["off", "automatic", "required"] = "automatic"
    """Patroni's watchdog mode (default automatic: used where the host has one): a primary whose Patroni
    hangs is reset before a replica is promoted."""
    witnesses: Annotated[int, int_between(0, 3)] = 1
    """Witness servers running etcd only, at hosts .12 and up of the subnet (default 1): with the two
    database hosts an odd number of etcd members, so losing any one host keeps a quorum."""
    witness_server_type: Text = Field("cx22", alias="witnessServerType")
    """Hetzner server type of the witnesses (default cx22; etcd alone needs little)."""
    load_balancer_type: Text = Field("lb11", alias="loadBalancerType")
    """Hetzner Load Balancer type in front of the hosts (default lb11, the smallest)."""
    rest_api_port: Port = Field(8008, alias="restApiPort")
    """Port of Patroni's REST API on each database host's private IP, which the load balancer's health
    checks ask (default 8008)."""
    etcd_client_port: Port = Field(2379, alias="etcdClientPort")
    """etcd's client port on each member's private IP, where Patroni talks to it (default 2379)."""
    etcd_peer_port: Port = Field(2380, alias="etcdPeerPort")
    """etcd's peer port on each member's private IP, between the members (default 2380)."""

    @property
    def synchronous(self) -> bool:
        """synchronous_mode as Patroni gets it: only where Patroni runs."""
        return self.enabled and self.synchronous_mode

    def ports(self) -> dict[str, int]:
        """The cluster's own ports by their stack keys."""
        return {
            "hetzner.failover.restApiPort": self.rest_api_port,
            "hetzner.failover.etcdClientPort": self.etcd_client_port,
            "hetzner.failover.etcdPeerPort": self.etcd_peer_port,
        }


class HetznerConfig(ConfigModel):
    """`hetzner`: the Hetzner Cloud hosts of target hetzner (required there, refused elsewhere): a private
    network, a firewall open to the admin CIDRs only, the primary and an optional streaming replica."""

    location: Text
    """Hetzner location of the servers and their volumes, e.g. fsn1."""
    server_type: Text = Field(alias="serverType")
    """Hetzner server type of every host, e.g. ccx13; changing it rescales a host (powered off meanwhile)."""
    image: Text
    """Hetzner image the hosts boot, e.g. docker-ce (Docker preinstalled: the containers run on it)."""
    network_zone: Text = Field(alias="networkZone")
    """Hetzner network zone of the private subnet, e.g. eu-central (the one holding location)."""
    ip_range: Cidr = Field(alias="ipRange")
    """The private network, a private IPv4 CIDR (10/8, 172.16/12, 192.168/16), e.g. 10.0.0.0/16."""
    subnet: Cidr
    """The hosts' subnet inside ipRange, a /28 or larger: the primary is its host .10, the replica .11 (with
    failover: the load balancer .5, the witnesses .12 and up)."""
    admin_cidrs: Annotated[list[Cidr], Field(min_length=1)] = Field(alias="adminCidrs")
    """Where SSH and 5432 are open from (operators, the machine running `pulumi up`); together at most a
    /16 of IPv4 or a /48 of IPv6."""
    ssh_keys: Annotated[list[Text], Field(min_length=1)] = Field(alias="sshKeys")
    """Names of Hetzner SSH keys put on a new server (running servers ignore a change); Pulumi connects
    with the matching key from ssh-agent."""
    replicas: Literal[0, 1] = 0
    """Streaming replicas, 0 or 1 (default 0): a standby at host .11 of the subnet (read apps get a replica
    DSN)."""
    volume_size: Annotated[int, int_between(10, 10240)] = Field(50, alias="volumeSize")
    """Size of each host's data volume in GB, within Hetzner's 10 to 10240 (default 50); a larger size
    grows the volume and its filesystem online."""
    protect_servers: bool = Field(False, alias="protectServers")
    """Hetzner delete and rebuild protection on the servers (default false; true for prod). The data
    volumes are always protected."""

    failover: FailoverConfig = FailoverConfig()
    """Automatic failover with Patroni, etcd and a private load balancer (default: off)."""

    def primary_ip(self) -> str:
        """The primary's fixed private IP: host 10 of the subnet (Hetzner keeps .1 for its gateway)."""
        return str(ipaddress.ip_network(self.subnet)[10])

    def replica_ip(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[11])

    def witness_ips(self) -> list[str]:
        """The witnesses' fixed private IPs: hosts 12 and up of the subnet (none without failover)."""
        if not self.failover.enabled:
            return []
        return [str(ipaddress.ip_network(self.subnet)[12 + i]) for i in range(self.failover.witnesses)]

    def load_balancer_ip(self) -> str:
        """The load balancer's fixed private IP, host 5 of the subnet: the DSNs and the certificates name
        it, so it is known before anything exists."""
        return str(ipaddress.ip_network(self.subnet)[5])

    def database_ips(self) -> list[str]:
        return [self.primary_ip(), *([self.replica_ip()] if self.replicas else [])]

    def etcd_member_ips(self) -> list[str]:
        """Where etcd runs with failover: every database host and every witness."""
        return [*self.database_ips(), *self.witness_ips()] if self.failover.enabled else []


class PgBouncerHostConfig(ConfigModel):
    """`existing.pgbouncerHost`: where PgBouncer runs next to a server the program did not build, a
    Docker engine you name (in its host's network)."""

    docker_host: Text = Field(alias="dockerHost")
    """The Docker engine PgBouncer runs on: `ssh://user@host` (through the operator's ssh-agent) or
    `local`."""
    address: Text
    """The address PgBouncer listens on; the apps' pooled DSNs name it."""
    config_root: Text = Field("/etc/postgres-platform", alias="configRoot")
    """The directory on that host holding PgBouncer's config directory (default /etc/postgres-platform)."""

    def ssh(self) -> tuple[str, str] | None:
        """(user, host) of an `ssh://user@host` Docker host; None for the local engine."""
        if self.docker_host == "local":
            return None
        user, _, host = self.docker_host.removeprefix("ssh://").partition("@")
        return (user, host) if host else ("root", user)


class ExistingConfig(ConfigModel):
    """`existing`: a running server the program adopts (target existing, required there): it manages
    roles, grants and (optionally) a PgBouncer there, never the server, its settings, its databases'
    existence or their data."""

    host: Text
    """Where the server is reached: by the Pulumi provider, live_budget.py and the apps' DSNs."""
    port: Port = POSTGRES_PORT
    """The server's port (default 5432)."""
    sslmode: SslMode = "verify-full"
    """libpq sslmode towards the server, for the provider and the DSNs (default verify-full; require
    encrypts without verifying the certificate)."""
    ca_file: Text | None = Field(None, alias="caFile")
    """The server's CA certificate, a file on the machine running Pulumi, for the provider to verify the
    server; absent: none given (the client's default)."""
    admin_user: RoleName | Literal["postgres"] = Field("postgres", alias="adminUser")
    """The role the program connects as to manage roles and grants (default postgres); its password is the
    secret postgres-platform:existingAdminPassword."""
    admin_superuser: bool = Field(True, alias="adminSuperuser")
    """Whether adminUser is a superuser (default true); false on a managed server (Heroku, RDS:
    CREATEROLE without superuser), where some things cannot be done (docs/operations/adopting-a-running
    server)."""
    object_creators: list[RoleName | Literal["postgres"]] | None = Field(None, alias="objectCreators")
    """Roles that create tables in the app schemas today (a migration runner logged in as postgres): the
    groups get default privileges for their new tables too. Absent: [adminUser]."""
    keep_owners: list[str] = Field([], alias="keepOwners")
    """`database.schema.object` names that keep their current owner when the app schemas move to
    `<db>_owner` (e.g. a view another role refreshes). Default: none."""
    pgbouncer_host: PgBouncerHostConfig | None = Field(None, alias="pgbouncerHost")
    """Where PgBouncer runs, required with a pgbouncer section; absent: no PgBouncer, apps get direct
    DSNs only."""
    lockdown: bool = False
    """The end of the cutover (default false): true revokes PUBLIC's CONNECT on the adopted databases and
    grants CONNECT to each database's groups and to every external role, so an app of one database can no
    longer connect to another. `pulumi up` refuses it while a role nobody declared connects only through
    PUBLIC (live_budget.py names it). To undo it, GRANT CONNECT to PUBLIC by hand first, then set false."""
    admin_cidrs: Annotated[list[Cidr], Field(min_length=1)] | None = Field(None, alias="adminCidrs")
    """Where the admin (a superuser) may log in from, e.g. [203.0.113.10/32]; live_budget.py checks the
    server's pg_hba.conf admits it from these only (`python3 -m postgres_platform.ops.lockdown STACK`
    prints the lines to add). Absent: not checked (a managed server's pg_hba is the provider's)."""

    def creators(self) -> tuple[str, ...]:
        return tuple(self.object_creators if self.object_creators is not None else [self.admin_user])


class S3RepoConfig(ConfigModel):
    """`backup.s3`: an S3-compatible bucket for the repository (Hetzner Object Storage:
    `<location>.your-objectstorage.com`), path-style URIs. Its keys: `pulumi config set --secret
    postgres-platform:backupS3Key` and `postgres-platform:backupS3KeySecret`."""

    endpoint: Text
    """The S3 endpoint, `host` or `host:port`, e.g. fsn1.your-objectstorage.com."""
    bucket: Text
    """The bucket holding the repository."""
    region: Text
    """The bucket's region, e.g. fsn1."""
    path: Text
    """The repository's path in the bucket, one per stack, e.g. /prod."""
    ca_file: Text | None = Field(None, alias="caFile")
    """A CA file on the hosts for the endpoint's certificate (tests: a self-signed one); absent: the
    system's CAs."""


class BackupSchedule(ConfigModel):
    """`backup.schedule`: when the host's systemd timers run each backup type, as systemd OnCalendar
    expressions (the host's clock)."""

    full: Text = "Sun *-*-* 01:00:00"
    """When a full backup runs (default Sun *-*-* 01:00:00: Sundays at 01:00)."""
    diff: Text = "Mon..Sat *-*-* 01:00:00"
    """When a differential backup runs (default Mon..Sat *-*-* 01:00:00: the other days at 01:00)."""


class BackupVerify(ConfigModel):
    """`backup.verify`: a scheduled verified restore on the database host: the latest backup restored into
    a scratch container (never archiving into the repository), every declared database read whole and
    checked by pg_amcheck, the result recorded in the primary (docs/operations/backups-and-restore.md)."""

    schedule: Text = "Sun *-*-* 04:30:00"
    """When the verification runs, a systemd OnCalendar expression (default Sun *-*-* 04:30:00: after
    Sunday's full backup); Hetzner stacks' timer; run it by hand locally."""
    max_age_days: Annotated[int, int_between(1, 365)] = Field(8, alias="maxAgeDays")
    """Days without a successful verification before PostgresRestoreNotVerified fires (1 to 365,
    default 8: a weekly schedule plus a day)."""


class BackupConfig(ConfigModel):
    """`backup`: pgBackRest, run inside the Postgres container, archiving WAL and taking encrypted
    backups (required for every Hetzner stack, optional locally, refused for target existing)."""

    repo: Literal["s3", "posix"]
    """Where the repository lives: s3 (a bucket off the host; the only choice on Hetzner) or posix (a
    Docker volume beside PGDATA, for local stacks)."""
    s3: S3RepoConfig | None = None
    """The bucket, required when repo is s3."""
    retention_full: Annotated[int, int_between(1, 100)] = Field(2, alias="retentionFull")
    """Full backups kept, each with its differentials and WAL (1 to 100, default 2)."""
    retention_diff: Annotated[int, int_between(1, 1000)] = Field(7, alias="retentionDiff")
    """Differential backups kept (1 to 1000, default 7)."""
    schedule: BackupSchedule = BackupSchedule()
    """When the backups run (Hetzner stacks' timers; run them by hand locally)."""
    archive_timeout: Annotated[int, int_between(1, 3600)] = Field(60, alias="archiveTimeout")
    """Postgres' archive_timeout in seconds: a WAL segment is archived at least this often even when little
    is written, which bounds what a point-in-time restore can miss (1 to 3600, default 60)."""
    verify: BackupVerify = BackupVerify()
    """The scheduled verified restore and its alert's age."""
