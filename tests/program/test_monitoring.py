"""Monitoring under mocks: the exporters (and Prometheus, Alertmanager where asked) declared per target with
the right listen addresses and publishing, their secrets only in secret files, the rules and scrape config
as plain outputs of every stack, a bad monitoring section refused before any resource."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import MONITORING_ROLE
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.program import ProgramRun, RecordingMocks, fake_secret, run_program
from postgres_platform.program.deploy import StackConfigError
from postgres_platform.render import monitoring
from postgres_platform.render import monitoring_containers as mc
from tests.helpers import STACKS, config_files, run_of
from tests.program.test_failover_plan import with_failover

CONTAINER = "docker:index/container:Container"
MONITOR_PASSWORD = fake_secret(f"access-{MONITORING_ROLE}-password")


def containers(run: ProgramRun) -> dict[str, Any]:
    """The monitoring containers by resource name."""
    return {c.name: c for c in run.of_type(CONTAINER) if c.inputs["labels"][0]["value"] in mc.MONITORING_LABELS}


def _listen(container: Any) -> str | None:
    return mc.listen_address(container.inputs["command"])


def _visible(container: Any) -> str:
    """What `docker inspect` shows: entrypoint, command and environment."""
    inputs = container.inputs
    return json.dumps([inputs.get("entrypoints"), inputs.get("command"), inputs.get("envs")])


def test_the_monitoring_role_password_resource_is_the_one_the_exporters_read() -> None:
    run = run_of("local")
    names = {r.name for r in run.of_type("random:index/randomPassword:RandomPassword")}
    assert f"access-{MONITORING_ROLE}-password" in names


def test_local_exporters_on_the_bridge_published_on_loopback_only() -> None:
    run = run_of("local")
    found = containers(run)
    assert set(found) == {
        "monitoring-primary-postgres-exporter-container",
        "monitoring-primary-pgbouncer-exporter-container",
    }
    # by name: the SDK registers from a thread pool, in no fixed order
    ports = {"postgres-exporter": 9187, "pgbouncer-exporter": 9127}
    for container, port in ((found[f"monitoring-primary-{kind}-container"], port) for kind, port in ports.items()):
        assert "networkMode" not in container.inputs  # the stack's bridge network, not the host's
        assert container.inputs["networksAdvanced"][0]["name"] == "postgres-platform-local"  # the stack's network
        assert [(p["internal"], p["external"], p["ip"]) for p in container.inputs["ports"]] == [
            (port, port, "127.0.0.1")
        ]
        assert _listen(container) == "0.0.0.0"  # inside its own container: reachable only through the loopback port
        assert MONITOR_PASSWORD not in _visible(container)
    exporter = found["monitoring-primary-postgres-exporter-container"].inputs
    assert "DATA_SOURCE_URI=postgres:5432/postgres?sslmode=disable" in exporter["envs"]  # the alias on the bridge


def test_the_monitoring_password_reaches_the_exporters_as_secret_files_only() -> None:
    run = run_of("local")
    for component in ("monitoring-primary-postgres-exporter-config", "monitoring-primary-pgbouncer-exporter-config"):
        (write,) = [c for c in run.of_type("command:local:Command") if c.name == f"{component}-write"]
        assert "stdin" in write.secret_inputs
        files = config_files(run, component)
        assert files[mc.PASSWORD].content == MONITOR_PASSWORD and files[mc.PASSWORD].mode == "0600"
        assert MONITOR_PASSWORD not in write.inputs["create"]  # the script: no secret
    queries = config_files(run, "monitoring-primary-postgres-exporter-config")[mc.QUERIES].content
    assert queries == monitoring.queries_yaml(load_stack_values(read_stack_values(stack_file("local"))))


def test_hetzner_exporters_listen_on_each_hosts_private_ip_on_the_host_network() -> None:
    run = run_of("prod")  # a primary at 10.0.1.10 and a replica at 10.0.1.11
    found = containers(run)
    listen = {name: (c.inputs.get("networkMode"), _listen(c), c.inputs.get("ports")) for name, c in found.items()}
    assert listen == {
        "monitoring-primary-postgres-exporter-container": ("host", "10.0.1.10", None),
        "monitoring-primary-pgbouncer-exporter-container": ("host", "10.0.1.10", None),
        "monitoring-replica-postgres-exporter-container": ("host", "10.0.1.11", None),
    }
    replica = found["monitoring-replica-postgres-exporter-container"].inputs
    assert any(e.startswith("DATA_SOURCE_URI=10.0.1.11:5432/postgres?sslmode=verify-full") for e in replica["envs"])
    for container in found.values():
        assert MONITOR_PASSWORD not in _visible(container)
    # The exporters' CA comes with their files; the server's pg_hba admits the role from each host only.
    files = config_files(run, "monitoring-primary-postgres-exporter-config")
    assert set(files) == {mc.QUERIES, mc.PASSWORD, mc.CA_FILE}
    hba = config_files(run, "postgres-config")["pg_hba.conf"].content
    monitor_lines = [line.split() for line in hba.splitlines() if MONITORING_ROLE in line]
    assert monitor_lines == [
        ["hostssl", "postgres", MONITORING_ROLE, f"{ip}/32", "scram-sha-256"] for ip in ("10.0.1.10", "10.0.1.11")
    ]


def test_the_firewall_opens_no_monitoring_port() -> None:
    run = run_of("prod")
    (firewall,) = run.of_type("hcloud:index/firewall:Firewall")
    ports = {rule["port"] for rule in firewall.inputs["rules"]}
    config = load_stack_values(read_stack_values(stack_file("prod")))
    assert not ports & {str(p) for p in config.monitoring.ports().values()}


def test_an_existing_server_gets_no_exporters() -> None:
    run = run_of("legacy")
    assert containers(run) == {}


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_exports_its_rules_and_scrape_config_in_plain(stack: str) -> None:
    run = run_of(stack)
    config = load_stack_values(read_stack_values(stack_file(stack)))
    assert run.outputs["alertRules"] == monitoring.rules_yaml(config, stack)
    assert "alertRules" not in run.secret_outputs and "scrapeConfig" not in run.secret_outputs
    scrape = yaml.safe_load(run.outputs["scrapeConfig"])["scrape_configs"]
    assert [job["job_name"] for job in scrape] == monitoring.jobs(config)  # the jobs the rules name
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape}
    expected = {
        "local": {"postgres-primary": ["127.0.0.1:9187"], "pgbouncer": ["127.0.0.1:9127"]},
        "prod": {
            "postgres-primary": ["10.0.1.10:9187"],
            "postgres-replica": ["10.0.1.11:9187"],
            "pgbouncer": ["10.0.1.10:9127"],
        },
        "staging": {"postgres-primary": ["10.1.1.10:9187"], "pgbouncer": ["10.1.1.10:9127"]},
    }
    # target existing: the jobs without targets (the operator runs the exporters where they reach the server)
    assert targets == expected.get(stack, {job: [] for job in monitoring.jobs(config)})


def _with_monitoring(stack: str, section: dict[str, Any]) -> dict[str, Any]:
    values = read_stack_values(stack_file(stack))
    values["postgres-platform:monitoring"] = json.dumps(section)
    return values


def test_bundled_prometheus_and_alertmanager_with_the_receiver_secret_by_file() -> None:
    section = {"prometheus": True, "retention": "30d", "alertmanager": {"receiver": "webhook"}}
    run = run_program("staging", _with_monitoring("staging", section))
    found = containers(run)
    prometheus = found["monitoring-prometheus-container"]
    alertmanager = found["monitoring-alertmanager-container"]
    assert (_listen(prometheus), _listen(alertmanager)) == ("10.1.1.10", "10.1.1.10")
    assert "--storage.tsdb.retention.time=30d" in prometheus.inputs["command"]
    # the stand-in the offline run gives the secret config (with_operator_secrets)
    url = "offline-alertWebhookUrl"
    assert all(url not in _visible(c) for c in found.values())
    files = config_files(run, "monitoring-alertmanager-config")
    assert files[mc.WEBHOOK_URL_FILE].content == url and files[mc.WEBHOOK_URL_FILE].mode == "0600"
    assert url not in files[mc.ALERTMANAGER_CONFIG].content
    (write,) = [c for c in run.of_type("command:remote:Command") if c.name == "monitoring-alertmanager-config-write"]
    assert "stdin" in write.secret_inputs
    prom = yaml.safe_load(config_files(run, "monitoring-prometheus-config")[mc.PROMETHEUS_CONFIG].content)
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["10.1.1.10:9093"]
    assert {j["job_name"]: j["static_configs"][0]["targets"] for j in prom["scrape_configs"]} == {
        "postgres-primary": ["10.1.1.10:9187"],
        "pgbouncer": ["10.1.1.10:9127"],
    }
    volumes = {v.inputs["name"] for v in run.of_type("docker:index/volume:Volume")}
    assert {"postgres-platform-staging-prometheus-data", "postgres-platform-staging-alertmanager-data"} <= volumes


def test_local_bundled_prometheus_reaches_the_exporters_by_alias() -> None:
    run = run_program("local", _with_monitoring("local", {"prometheus": True}))
    prometheus = containers(run)["monitoring-prometheus-container"]
    assert [(p["external"], p["ip"]) for p in prometheus.inputs["ports"]] == [(9090, "127.0.0.1")]
    prom = yaml.safe_load(config_files(run, "monitoring-prometheus-config")[mc.PROMETHEUS_CONFIG].content)
    assert {j["job_name"]: j["static_configs"][0]["targets"] for j in prom["scrape_configs"]} == {
        "postgres-primary": ["postgres-exporter:9187"],
        "pgbouncer": ["pgbouncer-exporter:9127"],
    }
    assert "alerting" not in prom


def test_with_failover_patroni_is_scraped_over_tls_checked_against_the_stack_ca() -> None:
    """Patroni's REST API (/metrics) on each database host, https, its certificate checked against the stack
    CA: the bundled Prometheus has its own copy; the output names where apps keep it."""
    values = with_failover("prod", {"enabled": True}, maxConnections=120)
    values["postgres-platform:monitoring"] = json.dumps({"prometheus": True})
    run = run_program("prod", values)
    expected = ["10.0.1.10:8008", "10.0.1.11:8008"]
    (output,) = [j for j in yaml.safe_load(run.outputs["scrapeConfig"])["scrape_configs"] if j["job_name"] == "patroni"]
    assert (output["scheme"], output["static_configs"][0]["targets"]) == ("https", expected)
    assert output["tls_config"]["ca_file"] == "/etc/postgres-platform/prod-ca.crt"
    files = config_files(run, "monitoring-prometheus-config")
    prom = yaml.safe_load(files[mc.PROMETHEUS_CONFIG].content)
    (inside,) = [j for j in prom["scrape_configs"] if j["job_name"] == "patroni"]
    assert inside["static_configs"][0]["targets"] == expected
    assert inside["tls_config"]["ca_file"] == f"{Path(prom['rule_files'][0]).parent}/{mc.STACK_CA}"
    assert files[mc.STACK_CA].content == run.outputs["caCertPem"]


@pytest.mark.parametrize(
    ("section", "line"),
    [
        (
            {"alertmanager": {"receiver": "webhook"}},
            'monitoring.alertmanager: needs monitoring.prometheus true, got "webhook"',
        ),
        ({"retention": "forever"}, "monitoring.retention: must be a positive number"),
    ],
)
def test_bad_monitoring_config_is_one_line_before_any_resource(section: dict[str, Any], line: str) -> None:
    recorder = RecordingMocks()
    with pytest.raises(StackConfigError) as caught:
        run_program("local", _with_monitoring("local", section), recorder=recorder)
    (problem,) = str(caught.value).splitlines()[1:]
    assert problem.startswith(line)
    assert recorder.registered == []
