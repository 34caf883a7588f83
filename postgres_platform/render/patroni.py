"""Patroni's configuration and the etcd members' flags (pure; Patroni 4.0 and etcd 3.5 of Debian 13).

Patroni manages the server; etcd (three members, so one lost host leaves a quorum) holds its leader
lock. What matters for the program's guarantees:

- The program's server settings go into Patroni's *dynamic* configuration (`bootstrap.dcs` at the
  cluster's first start, `PATCH /config` afterwards: `dynamic_config`), which Patroni applies with a
  reload where Postgres allows one and a restart only for settings read at start. A reloadable change
  stays a reload, as without Patroni.
- No password is in patroni.yml: they are in a second file of the member's config directory
  (`patroni_secrets`, 0600). Patroni reads every *.yml there and merges them, at start and again on
  SIGHUP, so a rotated password is a reload (its environment it reads at start only, and that would
  win over the files).
- The REST API's unsafe endpoints (switchover, config, restart) take basic auth; the health checks
  (`GET /primary`, `/replica`) stay open so a load balancer can ask them.
- The containers (`etcd_container`, `patroni_container`) are ContainerSpecs: components/patroni.py
  declares them on the Hetzner hosts and the failover drill starts the same specs with `docker run`.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from postgres_platform.model.config import FailoverConfig, SettingValue
from postgres_platform.model.names import (
    PGBOUNCER_ADMIN,
    PGBOUNCER_CONSOLE_DB,
    PGBOUNCER_PORT,
    PGDATA,
    POSTGRES_CONFIG_DIR,
    POSTGRES_PORT,
    REPLICATION_ROLE,
    SUPERUSER,
)
from postgres_platform.model.settings import restart_settings
from postgres_platform.render.backup import CONFIG_DIR as BACKUP_CONFIG_DIR
from postgres_platform.render.backup import POSIX_REPO
from postgres_platform.render.containers import (
    BACKUP_CONFIG,
    BACKUP_REPO,
    CONFIG,
    DATA,
    POSTGRES_STOP_SECONDS,
    ContainerSpec,
    MountPoint,
    exec_argv,
)
from postgres_platform.render.scram import stable_verifier
from postgres_platform.render.sql.roles import set_password

WatchdogMode = Literal["off", "automatic", "required"]

# Set by Patroni itself (listen/connect addresses, data_dir, its own postgresql.conf and pg_hba): a
# value here would fight it, so the renderer refuses them and `dynamic_parameters` drops them.
PATRONI_OWNED = frozenset(
    {"listen_addresses", "port", "cluster_name", "data_directory", "config_file", "hba_file", "ident_file"}
)
# The roles Patroni logs in as: the stack's superuser and replication login, and a rewind role of its own
# (model.names.REWIND_ROLE reserves the name).
REPLICATION_USER, REWIND_USER = REPLICATION_ROLE, "rewind_user"
# The Postgres logins Patroni uses, by what patroni_secrets calls them.
LOGINS = {"superuser": SUPERUSER, "replication": REPLICATION_USER, "rewind": REWIND_USER}


def _setting(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def dynamic_parameters(settings: Mapping[str, SettingValue]) -> dict[str, str]:
    """The program's server settings (render.postgres.server_settings) as Patroni's dynamic
    `postgresql.parameters`: strings, without what Patroni sets itself (listen_addresses, port, ...)."""
    return {name: _setting(value) for name, value in settings.items() if name not in PATRONI_OWNED}


def _host_port(address: str, what: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what} must be host:port, not {address!r}")


def durability(failover: FailoverConfig) -> dict[str, Any]:
    """hetzner.failover as dynamic_config's (and patroni_config's) keyword arguments: the stacks' and the
    drill's one source; the old primary always rejoins by pg_rewind."""
    return {
        "synchronous_mode": failover.synchronous,
        "synchronous_mode_strict": failover.synchronous and failover.synchronous_mode_strict,
        "maximum_lag_on_failover": failover.maximum_lag_on_failover,
        "failsafe_mode": failover.failsafe_mode,
        "use_pg_rewind": True,
        "ttl": failover.ttl,
        "loop_wait": failover.loop_wait,
        "retry_timeout": failover.retry_timeout,
    }


def dynamic_config(
    *,
    parameters: Mapping[str, str],
    synchronous_mode: bool,
    maximum_lag_on_failover: int,
    failsafe_mode: bool,
    use_pg_rewind: bool,
    synchronous_mode_strict: bool = False,
    ttl: int = 30,
    loop_wait: int = 10,
    retry_timeout: int = 10,
) -> dict[str, Any]:
    """Patroni's cluster-wide configuration: `bootstrap.dcs` in the file, and the body of
    `PATCH /config` to change it later (Patroni reloads or, for start-only settings, flags a restart).

    synchronous_mode: a commit is acknowledged only once the synchronous standby has it, so a failover to
    that standby loses no acknowledged commit; with the standby gone the primary goes on accepting writes
    (and says so in /cluster) unless `synchronous_mode_strict`, where they wait for a standby.
    """
    if synchronous_mode_strict and not synchronous_mode:
        raise ValueError("synchronous_mode_strict needs synchronous_mode")
    owned = sorted(PATRONI_OWNED & parameters.keys())
    if owned:
        raise ValueError(f"postgresql parameter {owned[0]} is Patroni's own (set from its listen/data_dir)")
    if maximum_lag_on_failover < 0:
        raise ValueError(f"maximum_lag_on_failover must be >= 0, not {maximum_lag_on_failover}")
    # Patroni's rule: the leader lock must outlive a loop plus two retries, or a slow DCS demotes it.
    if loop_wait + 2 * retry_timeout > ttl:
        raise ValueError(f"ttl {ttl} must be at least loop_wait + 2 * retry_timeout ({loop_wait + 2 * retry_timeout})")
    return {
        "ttl": ttl,
        "loop_wait": loop_wait,
        "retry_timeout": retry_timeout,
        "maximum_lag_on_failover": maximum_lag_on_failover,
        "synchronous_mode": synchronous_mode,
        "synchronous_mode_strict": synchronous_mode_strict,
        # With the DCS unreachable, a primary that still reaches every member (REST API) stays primary
        # instead of demoting itself: an etcd outage alone does not stop writes.
        "failsafe_mode": failsafe_mode,
        "postgresql": {
            "use_pg_rewind": use_pg_rewind,
            "use_slots": True,  # a replica's WAL is kept for it while it is away (pg_rewind, lag)
            "parameters": dict(parameters),
        },
    }


def patroni_config(
    *,
    scope: str,
    name: str,
    connect_address: str,
    rest_address: str,
    etcd_hosts: Sequence[str],
    data_dir: str,
    bin_dir: str,
    parameters: Mapping[str, str],
    pg_hba: Sequence[str],
    synchronous_mode: bool,
    maximum_lag_on_failover: int,
    failsafe_mode: bool,
    use_pg_rewind: bool,
    create_replica_methods: Sequence[str] = ("pgbackrest", "basebackup"),
    pgbackrest_stanza: str | None = None,
    rest_username: str | None = None,
    listen_address: str | None = None,
    rest_listen: str | None = None,
    watchdog_mode: WatchdogMode = "automatic",
    rest_certfile: str | None = None,
    rest_keyfile: str | None = None,
    synchronous_mode_strict: bool = False,
    ttl: int = 30,
    loop_wait: int = 10,
    retry_timeout: int = 10,
    bootstraps: bool = True,
) -> dict[str, Any]:
    """One member's patroni.yml as a mapping (`patroni_yaml` dumps it). Addresses are host:port;
    Postgres and the REST API listen on the connect addresses unless told otherwise (a host's
    private IP: never a public interface). `bootstraps`: False for every member but the first, which
    then never initialises a cluster of its own, whatever starts first: Patroni bootstraps only a member
    with a `bootstrap` section; the others wait for a leader and clone it."""
    _host_port(connect_address, "connect_address")
    _host_port(rest_address, "rest_address")
    if not etcd_hosts:
        raise ValueError("etcd_hosts must name at least one etcd member")
    for host in etcd_hosts:
        _host_port(host, "an etcd host")
    methods = list(create_replica_methods)
    unknown = sorted(set(methods) - {"pgbackrest", "basebackup"})
    if unknown or not methods:
        raise ValueError(f"create_replica_methods must be pgbackrest and/or basebackup, not {methods}")
    if "pgbackrest" in methods and pgbackrest_stanza is None:
        raise ValueError("create_replica_methods names pgbackrest but no pgbackrest_stanza is given")
    if (rest_certfile is None) != (rest_keyfile is None):
        raise ValueError("rest_certfile and rest_keyfile go together")
    if any("\n" in line for line in pg_hba):
        raise ValueError("a pg_hba line must be one line")
    postgresql: dict[str, Any] = {
        "listen": listen_address or connect_address,
        "connect_address": connect_address,
        "data_dir": data_dir,
        "bin_dir": bin_dir,
        # Patroni writes the replication password here (0600), beside the data directory, not in it.
        "pgpass": posixpath.join(posixpath.dirname(data_dir.rstrip("/")), ".pgpass.patroni"),
        "use_unix_socket": True,  # its own connections over the socket (peer), not the network
        "authentication": {
            # Usernames only: the passwords are in SECRETS_FILE (patroni_secrets).
            "superuser": {"username": SUPERUSER},
            "replication": {"username": REPLICATION_USER},
            "rewind": {"username": REWIND_USER},  # pg_rewind without the superuser (PostgreSQL 11+)
        },
        # The local file, not the DCS: a changed file and a reload (SIGHUP to Patroni) apply it, as today.
        "pg_hba": list(pg_hba),
        "create_replica_methods": methods,
        "basebackup": {"checkpoint": "fast"},
    }
    if pgbackrest_stanza is not None:
        # A new replica restores from the repository (delta: reuses what the data dir already has),
        # falling back to pg_basebackup from the primary; a lagging one fetches archived WAL.
        postgresql["pgbackrest"] = {
            "command": f"pgbackrest --stanza={pgbackrest_stanza} --delta restore",
            "keep_data": True,
            "no_params": True,
        }
        postgresql["recovery_conf"] = {
            "restore_command": f'pgbackrest --stanza={pgbackrest_stanza} archive-get %f "%p"'
        }
    restapi: dict[str, Any] = {"listen": rest_listen or rest_address, "connect_address": rest_address}
    if rest_username is not None:
        restapi["authentication"] = {"username": rest_username}
    if rest_certfile is not None:
        restapi |= {"certfile": rest_certfile, "keyfile": rest_keyfile}
    bootstrap = {
        "dcs": dynamic_config(
            parameters=parameters,
            synchronous_mode=synchronous_mode,
            synchronous_mode_strict=synchronous_mode_strict,
            maximum_lag_on_failover=maximum_lag_on_failover,
            failsafe_mode=failsafe_mode,
            use_pg_rewind=use_pg_rewind,
            ttl=ttl,
            loop_wait=loop_wait,
            retry_timeout=retry_timeout,
        ),
        # As the entrypoint's initdb: checksums (pg_rewind and corruption checks), UTF8, C.UTF-8.
        "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
    }
    return {
        "scope": scope,
        "name": name,
        "restapi": restapi,
        # Patroni's etcd3 client speaks etcd's v3 gRPC gateway (etcd 3.5 serves no v2 API by default).
        "etcd3": {"hosts": list(etcd_hosts)},
        **({"bootstrap": bootstrap} if bootstraps else {}),
        "postgresql": postgresql,
        # automatic: a host with /dev/watchdog (softdog) gets one, so a Patroni that hangs while primary
        # is reset before its leader lock expires and a replica is promoted (no two primaries); without
        # a device Patroni runs on and says so. required refuses to lead without one; off never uses it
        # (a container has no device: the drill).
        "watchdog": {"mode": watchdog_mode},
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def patroni_yaml(**kwargs: Any) -> str:
    """patroni.yml for one member: `patroni_config`'s arguments, as YAML (no password in it)."""
    header = "# postgres-platform: Patroni's config. Its passwords are in secrets.yml beside it.\n"
    return header + yaml.safe_dump(patroni_config(**kwargs), sort_keys=False, default_flow_style=False)


def patroni_secrets(*, superuser: str, replication: str, rewind: str, restapi: str | None) -> str:
    """SECRETS_FILE: Patroni's passwords, merged over patroni.yml (the usernames are there)."""
    passwords = {"superuser": superuser, "replication": replication, "rewind": rewind}
    if restapi is not None:
        passwords["restapi"] = restapi
    for what, value in passwords.items():
        if not value:
            raise ValueError(f"the {what} password must not be empty")
    secrets: dict[str, Any] = {
        "postgresql": {"authentication": {what: {"password": passwords[what]} for what in LOGINS}},
    }
    if restapi is not None:
        secrets["restapi"] = {"authentication": {"password": restapi}}
    header = "# postgres-platform: Patroni's passwords (render/patroni.py), merged over patroni.yml.\n"
    return header + yaml.safe_dump(secrets, sort_keys=False, default_flow_style=False)


def passwords_sql(*, superuser: str, replication: str, rewind: str) -> str:
    """PASSWORDS_SQL: the logins' passwords as SCRAM verifiers (stable: the same password, the same text),
    run on the leader whenever they change (set_passwords_step); Patroni sets them at bootstrap only."""
    plain = {"superuser": superuser, "replication": replication, "rewind": rewind}
    return "".join(set_password(role, stable_verifier(role, plain[what])) for what, role in LOGINS.items())


def etcd_args(
    *,
    name: str,
    members: Mapping[str, tuple[str, str]],
    data_dir: str,
    token: str,
    state: Literal["new", "existing"] = "new",
) -> list[str]:
    """One etcd member's flags. `members`: name -> (client address, peer address), each IP:port; the
    member listens on its own two addresses only (a host's private IP), and the initial cluster names
    every member's peer address. An odd count: three members survive the loss of one (a quorum of two),
    where four would survive no more than three do."""
    if name not in members:
        raise ValueError(f"etcd member {name!r} is not among the members {sorted(members)}")
    if len(members) % 2 == 0:
        raise ValueError(f"an etcd cluster needs an odd number of members, not {len(members)}")
    seen: set[str] = set()
    for member, addresses in members.items():
        for address in addresses:
            _host_port(address, f"etcd member {member}'s address")
            if address in seen:
                raise ValueError(f"etcd address {address} is given twice")
            seen.add(address)
    client, peer = members[name]
    initial = ",".join(f"{member}=http://{addresses[1]}" for member, addresses in members.items())
    return [
        f"--name={name}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls=http://{client}",
        f"--advertise-client-urls=http://{client}",
        f"--listen-peer-urls=http://{peer}",
        f"--initial-advertise-peer-urls=http://{peer}",
        f"--initial-cluster={initial}",
        f"--initial-cluster-state={state}",
        f"--initial-cluster-token={token}",
        # Patroni's leader key lives here; old revisions are compacted hourly so the store stays small.
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=1h",
    ]


def haproxy_cfg(*, listen: str, members: Mapping[str, tuple[str, str]], check: str = "/primary") -> str:
    """A TCP proxy that sends connections only to the member whose Patroni answers 200 on `check`
    (/primary for writes, /replica for reads), as the Hetzner load balancer's health check does.
    `members`: name -> (Postgres address, REST API address). A member marked down has its sessions
    closed, so a pooler's server connections to a demoted primary end instead of lingering."""
    _host_port(listen, "listen")
    lines = [
        "global",
        "    maxconn 1000",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        "    timeout check 2s",
        # Pooled server connections sit idle for long: the proxy must not cut them.
        "    timeout client 30m",
        "    timeout server 30m",
        "listen postgres",
        f"    bind {listen}",
        "    option httpchk",
        f"    http-check send meth GET uri {check}",
        "    http-check expect status 200",
        "    default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 1 on-marked-down shutdown-sessions",
    ]
    for member, (postgres, rest) in members.items():
        _host_port(postgres, f"member {member}'s Postgres address")
        _host_port(rest, f"member {member}'s REST address")
        rest_host, _, rest_port = rest.rpartition(":")
        lines.append(f"    server {member} {postgres} check addr {rest_host} port {rest_port}")
    return "\n".join(lines) + "\n"


# --- the containers (one definition for components/patroni.py and the failover drill's `docker run`) ---

# A member's config directory, mounted read-only where the server's TLS settings (render.postgres) name
# its certificate: patroni.yml, SECRETS_FILE, PASSWORDS_SQL, server.crt/key (Postgres' and the REST API's).
# Patroni is pointed at the directory and reads its *.yml files in name order.
PATRONI_FILE = f"{POSTGRES_CONFIG_DIR}/patroni.yml"
SECRETS_FILE = f"{POSTGRES_CONFIG_DIR}/secrets.yml"  # 0600, the server user's: patroni_secrets' text
PASSWORDS_SQL = f"{POSTGRES_CONFIG_DIR}/passwords.sql"  # 0600: passwords_sql's text
ETCD_DATA = "etcd-data"  # mount key: an etcd member's data directory
ETCD_HOME = "/var/lib/etcd-member"  # the etcd image's user's home; the mounted directory (uid 997)
ETCD_DATA_DIR = f"{ETCD_HOME}/data"  # etcd_args' data_dir inside the container
ETCD_UID = "997"  # the etcd image's user (images/etcd/Dockerfile)
ETCD_STOP_SECONDS = 30  # SIGTERM: etcd leaves its peers and syncs its WAL


def patroni_command() -> tuple[str, ...]:
    """The member's command: Patroni on its config directory (patroni.yml and SECRETS_FILE)."""
    return ("patroni", POSTGRES_CONFIG_DIR)


LEADER_ANSWER_SECONDS = 60  # a member restarting answers within seconds; longer is a member to look at


def set_passwords_step(container: str, port: int = POSTGRES_PORT, answer_seconds: int = LEADER_ANSWER_SECONDS) -> str:
    """The shell lines that set PASSWORDS_SQL on the member when it is the leader (a replica is read-only
    and gets them by replication), over the local socket (peer), before Patroni is sent its SIGHUP.

    A member whose Postgres does not answer within `answer_seconds` fails the step before the SIGHUP:
    skipping it would reload Patroni onto passwords the roles do not have (the replica's replication
    login would fail). The files' RELOAD_PENDING makes the next `pulumi up` run the step again."""
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-p", str(port), "-d", "postgres"]
    recovery = shlex.join(exec_argv(container, [*psql, "-A", "-t", "-c", "SELECT pg_is_in_recovery()"]))
    apply = shlex.join(exec_argv(container, [*psql, "-f", PASSWORDS_SQL]))
    failed = (
        f"postgres-platform: {container}'s Postgres did not answer for {answer_seconds} s: the new"
        " passwords are not set and Patroni is not reloaded; run pulumi up again once it answers"
    )
    return f"""recovery=""
for i in $(seq {max(1, answer_seconds // 2)}); do
  [ "$i" = 1 ] || sleep 2
  recovery="$({recovery} 2>/dev/null)" && break
done
case "$recovery" in
  f) {apply} ;;
  t) ;;
  *) echo {shlex.quote(failed)} >&2; exit 1 ;;
esac"""


def patroni_container(
    *, name: str, image: str, label: str, backup_config: bool = False, posix_repo: bool = False
) -> ContainerSpec:
    """A Patroni-managed Postgres member of the stack's Postgres image (its entrypoint makes PGDATA the
    server user's and drops root; Patroni bootstraps or clones PGDATA itself). Mounts: DATA, CONFIG
    (the member's directory: patroni.yml, SECRETS_FILE, TLS), and with backups pgBackRest's config and a
    posix repository, as the plain server's (render.containers.postgres_container)."""
    if posix_repo and not backup_config:
        raise ValueError("a posix backup repository needs the backup config mounted too")
    mounts = {DATA: MountPoint(PGDATA, read_only=False), CONFIG: MountPoint(POSTGRES_CONFIG_DIR, read_only=True)}
    if backup_config:
        mounts[BACKUP_CONFIG] = MountPoint(BACKUP_CONFIG_DIR, read_only=True)
    if posix_repo:
        mounts[BACKUP_REPO] = MountPoint(POSIX_REPO, read_only=False)
    # SIGINT: Patroni (PID 1) stops Postgres with a fast shutdown; no env: the passwords are in SECRETS_FILE.
    return ContainerSpec(
        name=name,
        image=image,
        label=label,
        command=patroni_command(),
        mounts=mounts,
        stop_seconds=POSTGRES_STOP_SECONDS,
    )


# The etcd member's entrypoint (sh -c; "$@": etcd_args' flags). A member with no data whose peers answer
# joins their cluster as `existing`. Where they list it as having run (it published its client URLs), it
# lost its data (its host replaced, its disk lost) and they still count its old ID, so etcd would refuse
# it: that ID is removed first. Where they do not list it, it is added (retried while the cluster settles
# a removal). Where they list it as never run (a first create whose other two formed the cluster first),
# it just joins. No peer answering (a first create) starts it `new` as its flags say; a member with data
# starts as it is. etcdctl's timeouts bound each question.
ETCD_ENTRYPOINT = """set -eu
peers={peers}
name= peer= state=
for flag in "$@"; do
  case "$flag" in
    --name=*) name=${{flag#--name=}} ;;
    --initial-advertise-peer-urls=*) peer=${{flag#--initial-advertise-peer-urls=}} ;;
  esac
done
ask() {{ etcdctl --endpoints="$peers" --dial-timeout=3s --command-timeout=5s "$@"; }}
if [ ! -d {data_dir}/member ] && known=$(ask member list 2>/dev/null); then
  state=existing
  # ID, then whether it ever ran: a member publishes its client URLs when it first starts.
  listed=$(printf '%s\\n' "$known" | awk -F', ' -v url="$peer" '$4 == url {{print $1, ($5 == "" ? "never" : "ran")}}')
  case "$listed" in
    *ran)
      echo "postgres-platform: etcd member $name has no data: replacing its old ID ${{listed% *}}" >&2
      ask member remove "${{listed% *}}" >&2
      listed=
      ;;
  esac
  tries=0
  while [ -z "$listed" ]; do
    if ask member add "$name" --peer-urls="$peer" >&2; then break; fi
    listed=$(ask member list 2>/dev/null | grep -F ", $peer, " || true)  # added all the same
    tries=$((tries + 1))
    [ -n "$listed" ] || [ "$tries" -lt 30 ] || exit 1
    sleep 1
  done
fi
if [ -n "$state" ]; then
  for flag in "$@"; do
    shift
    case "$flag" in --initial-cluster-state=*) flag=--initial-cluster-state=$state ;; esac
    set -- "$@" "$flag"
  done
fi
exec etcd "$@"
"""


def etcd_container(*, name: str, image: str, label: str, flags: Sequence[str], peers: Sequence[str]) -> ContainerSpec:
    """An etcd member: the image's `etcd` with etcd_args' flags (data_dir ETCD_DATA_DIR), as the image's
    unprivileged user, its data in the ETCD_DATA mount (a host directory owned by ETCD_UID); started by
    ETCD_ENTRYPOINT, which rejoins a member that lost its data. `peers`: the other members' client
    addresses (IP:port)."""
    if not any(flag == f"--data-dir={ETCD_DATA_DIR}" for flag in flags):
        raise ValueError(f"etcd's flags must name --data-dir={ETCD_DATA_DIR} (its mounted directory)")
    if not peers:
        raise ValueError("an etcd member needs the other members' client addresses")
    for peer in peers:
        _host_port(peer, "an etcd peer's client address")
    endpoints = ",".join(f"http://{peer}" for peer in peers)
    script = ETCD_ENTRYPOINT.format(peers=shlex.quote(endpoints), data_dir=shlex.quote(ETCD_DATA_DIR))
    return ContainerSpec(
        name=name,
        image=image,
        label=label,
        command=tuple(flags),
        mounts={ETCD_DATA: MountPoint(ETCD_HOME, read_only=False)},
        entrypoint=("sh", "-c", script, "etcd-member"),
        stop_signal="SIGTERM",
        stop_seconds=ETCD_STOP_SECONDS,
    )


# --- Patroni's dynamic configuration after the first start (components/patroni.py) ---------------

REST_USER = "patroni"  # basic auth of the REST API's unsafe endpoints (PATCH /config, switchover)
CA_FILE = f"{POSTGRES_CONFIG_DIR}/ca.crt"  # the stack CA, in a member's config directory: the REST API's issuer

# PATCH /config with the program's dynamic configuration (argv: the URL, the CA file, the configuration as
# JSON, which holds no secret and so shows in a preview's diff; stdin: `user:password` of the REST API),
# verified against the stack CA. Waits for the REST API (a first start bootstraps first); a parameter the
# stack no longer sets is nulled (PATCH merges), so it goes back to its default; `pause` and anything
# else an operator set with patronictl is left alone (PUT would drop it). Patroni then reloads Postgres,
# or flags pending_restart for a setting read at start only.
CONFIG_PATCH = """import base64, json, ssl, sys, time, urllib.request
url, cafile, desired = sys.argv[1] + "/config", sys.argv[2], json.loads(sys.argv[3])
auth = sys.stdin.readline().rstrip("\\n")
headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode(), "Content-Type": "application/json"}
context = ssl.create_default_context(cafile=cafile)
def call(method, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return json.load(response)
deadline = time.monotonic() + 300
while True:
    try:
        current = call("GET")
        break
    except (OSError, ValueError) as err:
        if time.monotonic() > deadline:
            sys.exit(f"Patroni's REST API did not answer GET /config within 300 s: {err}")
        time.sleep(2)
params = desired["postgresql"]["parameters"]
old = (current.get("postgresql") or {}).get("parameters") or {}
desired["postgresql"]["parameters"] = {**{name: None for name in old if name not in params}, **params}
try:
    call("PATCH", desired)
except (OSError, ValueError) as err:
    sys.exit(f"PATCH /config failed: {err}")
"""


def config_patch_command(container: str, rest_url: str, config: Mapping[str, Any]) -> str:
    """The shell line (on a database host) that runs CONFIG_PATCH in that host's Patroni container, where
    python3 and the CA file are; the REST API's credentials go on stdin (config_patch_input)."""
    if not rest_url.startswith("https://"):
        raise ValueError(f"the REST API is reached over TLS: an https:// URL, not {rest_url!r}")
    body = json.dumps(config, sort_keys=True)
    return shlex.join(["docker", "exec", "-i", container, "python3", "-c", CONFIG_PATCH, rest_url, CA_FILE, body])


DB_1, DB_2 = "db-1", "db-2"  # the Hetzner members' names in Patroni: by host (db-1 bootstraps), not by role


def console_conninfo(host: str) -> str:
    """A host's PgBouncer console, as ROLLING_SCRIPT reaches it from a Patroni container (no password),
    its certificate checked against the stack CA there."""
    return (
        f"host={host} port={PGBOUNCER_PORT} dbname={PGBOUNCER_CONSOLE_DB} user={PGBOUNCER_ADMIN} "
        f"sslmode=verify-full sslrootcert={CA_FILE}"
    )


ROLLING_SCRIPT = (Path(__file__).parent / "patroni_rolling.py").read_text()


def _rolling(container: str, rest_url: str, poolers: Mapping[str, str], grace: float, *mode: str) -> str:
    body = json.dumps(dict(poolers), sort_keys=True)
    args = [mode[0], rest_url, CA_FILE, body, f"{grace:g}", *mode[1:]]
    return shlex.join(["docker", "exec", "-i", container, "python3", "-c", ROLLING_SCRIPT, *args])


def restart_command(container: str, rest_url: str, poolers: Mapping[str, str], grace: float) -> str:
    """The shell line (on a database host) that runs ROLLING_SCRIPT's ordered restarts in that host's
    Patroni container: `poolers` maps a member's name to its host's PgBouncer console conninfo (no
    password: on stdin, with the REST API's credentials: rolling_input)."""
    return _rolling(container, rest_url, poolers, grace, "restart")


def lead_command(container: str, rest_url: str, poolers: Mapping[str, str], grace: float, to: str) -> str:
    """The shell line that makes `to` the leader (ROLLING_SCRIPT's `lead`) from that host's Patroni
    container, when it exists: on a first create it does not yet, and nothing leads to switch from."""
    probe = shlex.join(["docker", "container", "inspect", container])
    switch = _rolling(container, rest_url, poolers, grace, "lead", to)
    return f"if {probe} >/dev/null 2>&1; then {switch}; else echo 'no member yet: nothing to switch'; fi"


def restart_parameters(config: Mapping[str, Any]) -> dict[str, str]:
    """The restart-only parameters (context `postmaster`) of a dynamic configuration: what PatroniRestarts
    is triggered by."""
    parameters = config["postgresql"]["parameters"]
    return {name: str(value) for name, value in sorted(parameters.items()) if name in restart_settings()}


def rolling_input(rest_password: str, pooler_passwords: Mapping[str, str]) -> str:
    """ROLLING_SCRIPT's stdin: the REST API's credentials and each member's PgBouncer console password."""
    return json.dumps({"rest": config_patch_input(rest_password).rstrip("\n"), "poolers": dict(pooler_passwords)})


def config_patch_input(rest_password: str) -> str:
    """CONFIG_PATCH's stdin: the REST API's `user:password` (never an argv)."""
    if not rest_password or "\n" in rest_password:
        raise ValueError("the REST API password must be one non-empty line")
    return f"{REST_USER}:{rest_password}\n"


def member_pg_hba(hba: str, peer_ip: str) -> list[str]:
    """The stack's pg_hba.conf (render.pg_hba, with the peer's replication line) as Patroni's `pg_hba`
    lines, plus pg_rewind's login from the peer (to `postgres`), before the closing rejects."""
    lines = [line for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    rewind = f"hostssl  postgres  {REWIND_USER}  {peer_ip}/32  scram-sha-256"
    first_reject = next((i for i, line in enumerate(lines) if line.split()[-1] == "reject"), len(lines))
    return [*lines[:first_reject], rewind, *lines[first_reject:]]
