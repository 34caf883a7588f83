"""The monitoring containers (pure): postgres_exporter, pgbouncer_exporter, Prometheus and Alertmanager as
ContainerSpecs, the files each reads, and the scrape config. One definition for components/monitoring.py
(docker.Container) and for scripts/monitor_drill.py (`docker run`): what the drill runs is what stacks ship.

Secrets only in files of a container's config directory, never in its command line or environment (both
show in `docker inspect`): postgres_exporter reads DATA_SOURCE_PASS_FILE; pgbouncer_exporter (lib/pq)
takes PGPASSWORD, which a two-line sh entrypoint exports from its file (lib/pq's PGPASSFILE works too, but
refuses a file other users may read, and on a developer's machine every config file is 0644 in a 0700
directory: render.files.install_script); Alertmanager reads its receiver's URL or SMTP password from
`url_file` / `auth_password_file`.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

from postgres_platform.model.config import AlertmanagerConfig, PlatformConfig
from postgres_platform.model.images import (
    ALERTMANAGER_028,
    PGBOUNCER_EXPORTER_010,
    POSTGRES_EXPORTER_017,
    PROMETHEUS_253,
)
from postgres_platform.model.names import MONITORING_ROLE, PGBOUNCER_CONSOLE_DB, container_name
from postgres_platform.render import monitoring
from postgres_platform.render.containers import CONFIG, ContainerSpec, MountPoint
from postgres_platform.render.files import File
from postgres_platform.render.files import reload_if_running as hup_if_running

C = TypeVar("C")  # a file's content: str (the drill), a pulumi.Input[str] (the component)

# COMPONENT_LABEL values and container name suffixes.
POSTGRES_EXPORTER = "postgres-exporter"
PGBOUNCER_EXPORTER = "pgbouncer-exporter"
PROMETHEUS = "prometheus"
ALERTMANAGER = "alertmanager"
EXPORTERS = (POSTGRES_EXPORTER, PGBOUNCER_EXPORTER)
MONITORING_LABELS = (*EXPORTERS, PROMETHEUS, ALERTMANAGER)
LISTEN_FLAG = "--web.listen-address="  # every one of them takes it; the policies read it

NOBODY_UID = "65534"  # the exporters' and Alertmanager's user in their images
PROMETHEUS_UID = "100"  # Debian's prometheus user (owns /var/lib/prometheus/metrics2 in the image)
DATA = "data"  # mount key: Prometheus' and Alertmanager's storage (a volume)
PROMETHEUS_DATA = "/var/lib/prometheus/metrics2"
ALERTMANAGER_DATA = "/var/lib/alertmanager"
STOP_SECONDS = 30

# The config directory of each, mounted read-only.
CONFIG_DIRS = {label: f"/etc/postgres-platform/{label}" for label in MONITORING_LABELS}
PASSWORD = "password"  # the monitoring role's password, in both exporters' directories
CA_FILE = "ca.crt"  # the stack CA, where the exporters verify the server (Hetzner)
QUERIES = "queries.yml"
PROMETHEUS_CONFIG = "prometheus.yml"
RULES = "rules.yml"
STACK_CA = "ca.crt"  # Prometheus' copy of the stack CA: Patroni's REST API certificate is checked against it
ALERTMANAGER_CONFIG = "alertmanager.yml"
WEBHOOK_URL_FILE = "webhook-url"
SMTP_PASSWORD_FILE = "smtp-password"
SCRAPE_INTERVAL = "30s"


def _in(label: str, name: str) -> str:
    return f"{CONFIG_DIRS[label]}/{name}"


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Upstream:
    """Where an exporter reaches its server, and whether it verifies the server's certificate (verify-full
    against the stack CA in its directory) or connects without TLS (local: the stack's bridge network)."""

    address: Address
    tls: bool


def _sslmode(label: str, upstream: Upstream) -> str:
    return f"sslmode=verify-full&sslrootcert={_in(label, CA_FILE)}" if upstream.tls else "sslmode=disable"


def _spec(stack: str, label: str, image: str, command: Sequence[str], **kwargs: Any) -> ContainerSpec:
    mounts = {CONFIG: MountPoint(CONFIG_DIRS[label], read_only=True), **kwargs.pop("mounts", {})}
    return ContainerSpec(
        name=container_name(stack, label),
        image=image,
        label=label,
        command=tuple(command),
        mounts=mounts,
        stop_signal="SIGTERM",  # the Go servers' graceful stop
        stop_seconds=STOP_SECONDS,
        **kwargs,
    )


def postgres_exporter_container(stack: str, listen: Address, upstream: Upstream) -> ContainerSpec:
    """postgres_exporter as the monitoring role, with the stack's custom queries; the password from its file."""
    uri = f"{upstream.address}/postgres?{_sslmode(POSTGRES_EXPORTER, upstream)}"
    return _spec(
        stack,
        POSTGRES_EXPORTER,
        POSTGRES_EXPORTER_017.reference,
        [f"{LISTEN_FLAG}{listen}", f"--extend.query-path={_in(POSTGRES_EXPORTER, QUERIES)}"],
        env=(
            f"DATA_SOURCE_URI={uri}",
            f"DATA_SOURCE_USER={MONITORING_ROLE}",
            f"DATA_SOURCE_PASS_FILE={_in(POSTGRES_EXPORTER, PASSWORD)}",
        ),
        user=NOBODY_UID,
    )


def postgres_exporter_files(config: PlatformConfig, password: C, ca_pem: C | None) -> list[File[C | str]]:
    files: list[File[C | str]] = [
        File(QUERIES, "0644", monitoring.queries_yaml(config)),
        File(PASSWORD, "0600", password),
    ]
    return files + ([File(CA_FILE, "0644", ca_pem)] if ca_pem is not None else [])


# PGPASSWORD from the file, so the password is in no argv and no container config (lib/pq reads it).
PGBOUNCER_EXPORTER_ENTRYPOINT = (
    "sh",
    "-c",
    f'PGPASSWORD="$(cat {_in(PGBOUNCER_EXPORTER, PASSWORD)})" && export PGPASSWORD'
    ' && exec prometheus-pgbouncer-exporter "$@"',
    PGBOUNCER_EXPORTER,  # $0
)


def pgbouncer_exporter_container(stack: str, listen: Address, upstream: Upstream) -> ContainerSpec:
    """pgbouncer_exporter on PgBouncer's console as the monitoring role (a stats_users member)."""
    console = (
        f"postgres://{MONITORING_ROLE}@{upstream.address}/{PGBOUNCER_CONSOLE_DB}"
        f"?{_sslmode(PGBOUNCER_EXPORTER, upstream)}"
    )
    return _spec(
        stack,
        PGBOUNCER_EXPORTER,
        PGBOUNCER_EXPORTER_010.reference,
        [f"--pgBouncer.connectionString={console}", f"{LISTEN_FLAG}{listen}"],
        entrypoint=PGBOUNCER_EXPORTER_ENTRYPOINT,
        user=NOBODY_UID,
    )


def pgbouncer_exporter_files(password: C, ca_pem: C | None) -> list[File[C]]:
    files = [File(PASSWORD, "0600", password)]
    return files + ([File(CA_FILE, "0644", ca_pem)] if ca_pem is not None else [])


def prometheus_container(stack: str, listen: Address, retention: str, *, extra: Sequence[str] = ()) -> ContainerSpec:
    """Prometheus (the image's entrypoint is promtool) as Debian's prometheus user, its TSDB on a volume."""
    return _spec(
        stack,
        PROMETHEUS,
        PROMETHEUS_253.reference,
        [
            f"--config.file={_in(PROMETHEUS, PROMETHEUS_CONFIG)}",
            f"--storage.tsdb.path={PROMETHEUS_DATA}",
            f"--storage.tsdb.retention.time={retention}",
            f"{LISTEN_FLAG}{listen}",
            *extra,
        ],
        entrypoint=("prometheus",),
        user=PROMETHEUS_UID,
        mounts={DATA: MountPoint(PROMETHEUS_DATA, read_only=False)},
    )


def alertmanager_container(stack: str, listen: Address) -> ContainerSpec:
    """Alertmanager alone (no cluster listener: `--cluster.listen-address=` empty turns gossip off)."""
    return _spec(
        stack,
        ALERTMANAGER,
        ALERTMANAGER_028.reference,
        [
            f"--config.file={_in(ALERTMANAGER, ALERTMANAGER_CONFIG)}",
            f"--storage.path={ALERTMANAGER_DATA}",
            f"{LISTEN_FLAG}{listen}",
            "--cluster.listen-address=",
        ],
        user=NOBODY_UID,
        mounts={DATA: MountPoint(ALERTMANAGER_DATA, read_only=False)},
    )


def scrape_configs(
    targets: Mapping[str, Sequence[str]], interval: str = SCRAPE_INTERVAL, patroni_ca: str | None = None
) -> list[dict[str, Any]]:
    """One job per exporter, named as the rules expect (render.monitoring.jobs); Patroni's REST API
    (hetzner.failover) over TLS, its certificate checked against the stack CA at `patroni_ca`."""
    configs = []
    for job, addresses in targets.items():
        scrape: dict[str, Any] = {"job_name": job, "scrape_interval": interval}
        if job == monitoring.PATRONI_JOB:
            scrape |= {"scheme": "https", "tls_config": {"ca_file": patroni_ca}} if patroni_ca else {"scheme": "https"}
        configs.append(scrape | {"static_configs": [{"targets": list(addresses)}]})
    return configs


def scrape_config_yaml(targets: Mapping[str, Sequence[str]], patroni_ca: str | None = None) -> str:
    """The `scrapeConfig` stack output: scrape_configs for an existing Prometheus."""
    configs = scrape_configs(targets, patroni_ca=patroni_ca)
    return yaml.safe_dump({"scrape_configs": configs}, sort_keys=False, width=1000)


def prometheus_config(
    targets: Mapping[str, Sequence[str]],
    alertmanagers: Sequence[str],
    interval: str = SCRAPE_INTERVAL,
    timeout: str | None = None,  # Prometheus' default 10s; at most the interval
) -> dict[str, Any]:
    timing = {"scrape_interval": interval, "evaluation_interval": interval}
    config: dict[str, Any] = {
        "global": timing | ({"scrape_timeout": timeout} if timeout else {}),
        "rule_files": [_in(PROMETHEUS, RULES)],
        "scrape_configs": scrape_configs(targets, interval, _in(PROMETHEUS, STACK_CA)),
    }
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    return config


def prometheus_files(config: PlatformConfig, stack: str, prometheus: Mapping[str, Any]) -> list[File[str]]:
    return [
        File(PROMETHEUS_CONFIG, "0644", yaml.safe_dump(prometheus, sort_keys=False, width=1000)),
        File(RULES, "0644", monitoring.rules_yaml(config, stack)),
    ]


def alertmanager_config(alertmanager: AlertmanagerConfig) -> dict[str, Any]:
    """One route to the one receiver; its secret is named by file (url_file, auth_password_file)."""
    receiver: dict[str, Any] = {"name": alertmanager.receiver}
    if alertmanager.receiver == "webhook":
        receiver["webhook_configs"] = [
            {"url_file": _in(ALERTMANAGER, WEBHOOK_URL_FILE), "send_resolved": alertmanager.send_resolved}
        ]
    else:
        email = alertmanager.email
        assert email is not None  # config checks: receiver email requires the section
        settings: dict[str, Any] = {
            "to": email.to,
            "from": email.from_,
            "smarthost": email.smarthost,
            "require_tls": email.require_tls,
            "send_resolved": alertmanager.send_resolved,
        }
        if email.username is not None:
            settings |= {"auth_username": email.username, "auth_password_file": _in(ALERTMANAGER, SMTP_PASSWORD_FILE)}
        receiver["email_configs"] = [settings]
    return {
        "route": {
            "receiver": alertmanager.receiver,
            "group_by": ["alertname", "job", "role", "database"],
            "group_wait": "30s",
            "group_interval": "5m",
            # The Watchdog repeats within a dead man's switch's usual window (an hour or more).
            "repeat_interval": "30m",
        },
        "receivers": [receiver],
    }


def alertmanager_files(alertmanager: AlertmanagerConfig) -> list[File[str]]:
    return [File(ALERTMANAGER_CONFIG, "0644", yaml.safe_dump(alertmanager_config(alertmanager), sort_keys=False))]


def receiver_secret_file(alertmanager: AlertmanagerConfig, secret: C) -> File[C]:
    """The receiver's secret (the webhook URL or the SMTP password) in its own 0600 file."""
    return File(WEBHOOK_URL_FILE if alertmanager.receiver == "webhook" else SMTP_PASSWORD_FILE, "0600", secret)


def reload_if_running(spec: ContainerSpec) -> str:
    """After a file changed: Prometheus and Alertmanager reload on SIGHUP; the exporters read their files at
    start (a SIGHUP would end them), so a running one is restarted."""
    if spec.label not in EXPORTERS:
        return hup_if_running(spec.name)
    c = shlex.quote(spec.name)
    return f"""if [ "$(docker inspect -f '{{{{.State.Running}}}}' {c} 2>/dev/null)" = true ]; then
  docker restart -t {spec.stop_seconds} {c} >/dev/null
fi"""


def listen_address(argv: Sequence[str]) -> str | None:
    """The host part of a container's `--web.listen-address=` (the policies read it); None: not given."""
    for arg in argv:
        if arg.startswith(LISTEN_FLAG):
            host, _, _ = arg.removeprefix(LISTEN_FLAG).rpartition(":")
            return host.strip("[]")
    return None
