"""The monitoring containers' specs and files, and the `monitoring` config section: no secret in an argv or an
environment, each listening where it is told, the receiver's secret by file, bad input one line."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from postgres_platform.model.config import AlertmanagerConfig, ConfigError, EmailReceiverConfig
from postgres_platform.model.load import load_stack_values, parse
from postgres_platform.model.names import MONITORING_ROLE
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render import monitoring
from postgres_platform.render import monitoring_containers as mc
from postgres_platform.render.containers import CONFIG, ContainerSpec, MountSource
from postgres_platform.render.files import File
from postgres_platform.render.pg_hba import HbaSources, render_pg_hba
from tests.helpers import valid_config

SECRET = "s3cr3t-monitoring-password"
PRIVATE = mc.Address("10.0.1.10", 9187)


def _everything_visible(spec: ContainerSpec) -> str:
    """What `docker inspect` (and `ps` on the host) shows of a container: its argv and environment."""
    sources = {key: MountSource(f"/src/{key}") for key in spec.mounts}
    return " ".join([*spec.docker_run(sources), *spec.env])


def _specs() -> list[ContainerSpec]:
    upstream = mc.Upstream(mc.Address("10.0.1.10", 5432), tls=True)
    return [
        mc.postgres_exporter_container("prod", PRIVATE, upstream),
        mc.pgbouncer_exporter_container("prod", mc.Address("10.0.1.10", 9127), upstream),
        mc.prometheus_container("prod", mc.Address("10.0.1.10", 9090), "15d"),
        mc.alertmanager_container("prod", mc.Address("10.0.1.10", 9093)),
    ]


def test_no_secret_in_any_argv_or_environment_only_in_0600_files() -> None:
    config = parse(valid_config())
    for spec in _specs():
        assert SECRET not in _everything_visible(spec)
        assert "PASS=" not in _everything_visible(spec) and "PASSWORD=" not in " ".join(spec.env)
    for files in (
        mc.postgres_exporter_files(config, SECRET, "CA"),
        mc.pgbouncer_exporter_files(SECRET, "CA"),
    ):
        holding = [f for f in files if f.content == SECRET]
        assert [(f.name, f.mode) for f in holding] == [(mc.PASSWORD, "0600")]
    exporter = mc.postgres_exporter_container("prod", PRIVATE, mc.Upstream(mc.Address("10.0.1.10", 5432), tls=True))
    assert f"DATA_SOURCE_PASS_FILE={mc.CONFIG_DIRS[mc.POSTGRES_EXPORTER]}/password" in exporter.env
    assert f"DATA_SOURCE_USER={MONITORING_ROLE}" in exporter.env
    # verify-full against the stack CA in its own directory, on the host's private address
    assert "DATA_SOURCE_URI=10.0.1.10:5432/postgres?sslmode=verify-full&sslrootcert=" in " ".join(exporter.env)


def test_pgbouncer_exporter_reads_its_password_from_the_file_in_its_entrypoint() -> None:
    spec = mc.pgbouncer_exporter_container(
        "s", mc.Address("0.0.0.0", 9127), mc.Upstream(mc.Address("pgbouncer", 6432), False)
    )
    assert spec.entrypoint is not None and spec.entrypoint[:2] == ("sh", "-c")
    assert f'PGPASSWORD="$(cat {mc.CONFIG_DIRS[mc.PGBOUNCER_EXPORTER]}/password)"' in spec.entrypoint[2]
    assert 'exec prometheus-pgbouncer-exporter "$@"' in spec.entrypoint[2]
    (console,) = [a for a in spec.command if a.startswith("--pgBouncer.connectionString=")]
    # No password part: lib/pq takes PGPASSWORD only when the URI has none.
    assert (
        console == f"--pgBouncer.connectionString=postgres://{MONITORING_ROLE}@pgbouncer:6432/pgbouncer?sslmode=disable"
    )


@pytest.mark.parametrize("host", ["10.0.1.10", "127.0.0.1", "0.0.0.0"])
def test_each_container_listens_where_it_is_told(host: str) -> None:
    upstream = mc.Upstream(mc.Address("postgres", 5432), tls=False)
    specs = [
        mc.postgres_exporter_container("s", mc.Address(host, 9187), upstream),
        mc.pgbouncer_exporter_container("s", mc.Address(host, 9127), upstream),
        mc.prometheus_container("s", mc.Address(host, 9090), "15d"),
        mc.alertmanager_container("s", mc.Address(host, 9093)),
    ]
    assert [mc.listen_address(spec.command) for spec in specs] == [host] * 4
    assert [s.label for s in specs] == list(mc.MONITORING_LABELS)
    # Alertmanager opens no gossip listener; every config directory is read-only.
    assert "--cluster.listen-address=" in specs[3].command
    assert all(spec.mounts[CONFIG].read_only for spec in specs)
    assert mc.listen_address(["--web.listen-address=:9187"]) == ""  # every interface: the policy refuses it


def test_prometheus_runs_as_its_user_with_its_retention_on_a_volume() -> None:
    spec = mc.prometheus_container("s", mc.Address("127.0.0.1", 9090), "30d")
    assert spec.entrypoint == ("prometheus",)  # the image's own is promtool
    assert spec.user == mc.PROMETHEUS_UID
    assert "--storage.tsdb.retention.time=30d" in spec.command
    assert spec.mounts[mc.DATA].target == mc.PROMETHEUS_DATA and not spec.mounts[mc.DATA].read_only


def test_the_exporters_restart_on_a_change_and_the_servers_reload() -> None:
    upstream = mc.Upstream(mc.Address("postgres", 5432), tls=False)
    exporter = mc.postgres_exporter_container("s", PRIVATE, upstream)
    assert f"docker restart -t {exporter.stop_seconds} {exporter.name}" in mc.reload_if_running(exporter)
    prometheus = mc.prometheus_container("s", PRIVATE, "15d")
    assert "docker kill --signal=HUP" in mc.reload_if_running(prometheus)


def test_receiver_secrets_are_named_by_file_never_written_into_the_config() -> None:
    webhook = AlertmanagerConfig(receiver="webhook")
    (receiver,) = mc.alertmanager_config(webhook)["receivers"]
    assert receiver["webhook_configs"] == [
        {"url_file": f"{mc.CONFIG_DIRS[mc.ALERTMANAGER]}/webhook-url", "send_resolved": True}
    ]
    assert mc.receiver_secret_file(webhook, "https://hook/token") == File("webhook-url", "0600", "https://hook/token")
    email = AlertmanagerConfig(
        receiver="email",
        email=EmailReceiverConfig.model_validate(
            {"smarthost": "smtp.example.org:587", "from": "a@example.org", "to": "b@example.org", "username": "u"}
        ),
    )
    (receiver,) = mc.alertmanager_config(email)["receivers"]
    (settings,) = receiver["email_configs"]
    assert settings["auth_password_file"] == f"{mc.CONFIG_DIRS[mc.ALERTMANAGER]}/smtp-password"
    assert settings["auth_username"] == "u" and "auth_password" not in settings
    assert mc.receiver_secret_file(email, "pw").name == "smtp-password"
    assert mc.alertmanager_config(email)["route"]["receiver"] == "email"


def test_scrape_config_names_the_jobs_the_rules_expect() -> None:
    config = parse(valid_config())
    targets = {monitoring.job("primary"): ["127.0.0.1:9187"], "pgbouncer": ["127.0.0.1:9127"]}
    assert list(targets) == monitoring.jobs(config)
    parsed = yaml.safe_load(mc.scrape_config_yaml(targets))
    assert parsed == {
        "scrape_configs": [
            {
                "job_name": "postgres-primary",
                "scrape_interval": "30s",
                "static_configs": [{"targets": ["127.0.0.1:9187"]}],
            },
            {"job_name": "pgbouncer", "scrape_interval": "30s", "static_configs": [{"targets": ["127.0.0.1:9127"]}]},
        ]
    }
    prometheus = mc.prometheus_config(targets, ["alertmanager:9093"])
    assert prometheus["rule_files"] == [f"{mc.CONFIG_DIRS[mc.PROMETHEUS]}/rules.yml"]
    assert prometheus["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]
    assert "alerting" not in mc.prometheus_config(targets, [])


def test_pg_hba_admits_the_monitoring_role_to_postgres_only_from_the_exporters_hosts() -> None:
    config = parse(valid_config())
    without = render_pg_hba(config, HbaSources(("10.0.1.0/24",), ("203.0.113.10/32",)))
    assert MONITORING_ROLE not in without
    hba = render_pg_hba(config, HbaSources(("10.0.1.0/24",), ("203.0.113.10/32",), None, ("10.0.1.10",)))
    (line,) = [row.split() for row in hba.splitlines() if MONITORING_ROLE in row]
    assert line == ["hostssl", "postgres", MONITORING_ROLE, "10.0.1.10/32", "scram-sha-256"]
    assert hba.index(MONITORING_ROLE) < hba.index("reject")  # before the catch-all rejects


# --- the monitoring section of the stack config ---------------------------------------------


def _with(**monitoring_section: Any) -> dict[str, Any]:
    raw = valid_config()
    raw["monitoring"] = monitoring_section
    return raw


def test_exporters_run_by_default_where_the_program_runs_postgres() -> None:
    config = parse(valid_config())
    assert config.exporters_run() and not config.monitoring.prometheus and config.monitoring.alertmanager is None
    assert not parse(_with(exporters=False)).exporters_run()


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {"retention": "15"},
            'monitoring.retention: must be a positive number and one unit of h, d, w, y (e.g. 15d), got "15"',
        ),
        (
            {"alertmanager": {"receiver": "webhook"}},
            'monitoring.alertmanager: needs monitoring.prometheus true, got "webhook"',
        ),
        (
            {"prometheus": True, "alertmanager": {"receiver": "email"}},
            "monitoring.alertmanager.email: is required with receiver email, got null",
        ),
        (
            {
                "prometheus": True,
                "alertmanager": {"receiver": "webhook", "email": {"smarthost": "s:25", "from": "a@b", "to": "c@d"}},
            },
            'monitoring.alertmanager.email: is only for receiver email, not webhook, got "c@d"',
        ),
        (
            {"prometheus": True, "exporters": False},
            "monitoring.prometheus: needs monitoring.exporters (nothing to scrape), got true",
        ),
        (
            {"postgresExporterPort": 6432},
            "monitoring.postgresExporterPort: must differ from local.pgbouncerPort, got 6432",
        ),
        (
            {"pgbouncerExporterPort": 9187},
            "monitoring.pgbouncerExporterPort: must differ from monitoring.postgresExporterPort, got 9187",
        ),
        ({"alertmanager": {"receiver": "sms"}, "prometheus": True}, "monitoring.alertmanager.receiver"),
        ({"grafana": True}, "monitoring.grafana"),
    ],
)
def test_bad_monitoring_input_is_one_line_naming_key_and_value(section: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(_with(**section))
    assert len(caught.value.lines) == 1
    assert caught.value.lines[0].startswith(expected)


def _values(section: dict[str, Any], **extra: str) -> dict[str, Any]:
    values = {f"postgres-platform:{k}": json.dumps(v) for k, v in _with(**section).items() if k != "target"}
    return {"postgres-platform:target": "local", **values, **{f"postgres-platform:{k}": v for k, v in extra.items()}}


def test_the_receivers_secrets_are_stack_secrets_never_plain() -> None:
    webhook = {"prometheus": True, "alertmanager": {"receiver": "webhook"}}
    with pytest.raises(ConfigError) as caught:
        load_stack_values(_values(webhook, alertWebhookUrl="https://hook/token"))
    assert caught.value.lines == [
        "alertWebhookUrl: must be set with `pulumi config set --secret`, not in plain YAML, got a plain value"
    ]
    with pytest.raises(ConfigError) as caught:
        load_stack_values(_values(webhook), secret_keys=[])  # where Pulumi runs: required
    (line,) = caught.value.lines
    assert line.startswith("alertWebhookUrl: is required for monitoring.alertmanager.receiver webhook")
    key = "postgres-platform:alertWebhookUrl"
    config = load_stack_values(_values(webhook, alertWebhookUrl="https://hook/token"), secret_keys=[key])
    assert "https://hook/token" not in config.model_dump_json()  # never in the model, so never in an output
    email = {
        "prometheus": True,
        "alertmanager": {
            "receiver": "email",
            "email": {"smarthost": "s:587", "from": "a@b", "to": "c@d", "username": "u"},
        },
    }
    with pytest.raises(ConfigError) as caught:
        load_stack_values(_values(email), secret_keys=[])
    assert caught.value.lines[0].startswith("alertSmtpPassword: is required for monitoring.alertmanager.email.username")


def test_an_adopted_server_runs_no_exporters_and_may_not_ask_for_them() -> None:
    values = read_stack_values(stack_file("legacy"))  # target existing
    assert not load_stack_values(values).exporters_run()
    values["postgres-platform:monitoring"] = json.dumps({"exporters": True})
    with pytest.raises(ConfigError) as caught:
        load_stack_values(values)
    assert caught.value.lines == [
        "monitoring.exporters: must be false for target existing (the server is not ours to run beside), got true"
    ]
