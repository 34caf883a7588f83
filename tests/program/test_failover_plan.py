"""hetzner.failover under mocks: the witness, etcd's members, the private load balancer and its health checks
on Patroni's REST API, the cluster's firewall rules, DSNs on the load balancer, and the policies over them."""

from __future__ import annotations

import configparser
import ipaddress
import json
from typing import Any

import pytest

from policy import network
from policy.resources import FIREWALL, LOAD_BALANCER, LOAD_BALANCER_NETWORK
from postgres_platform.model import budget
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.policies import evaluate
from postgres_platform.offline.policy_config import policy_config
from postgres_platform.offline.program import ProgramRun, RecordingMocks, Registered, run_program
from tests.helpers import config_files, run_of
from tests.program.policy_helpers import check, check_stack, resource

SERVER = "hcloud:index/server:Server"
LB_NETWORK = "hcloud:index/loadBalancerNetwork:LoadBalancerNetwork"
LB_TARGET = "hcloud:index/loadBalancerTarget:LoadBalancerTarget"
LB_SERVICE = "hcloud:index/loadBalancerService:LoadBalancerService"


def with_failover(stack: str, failover: dict[str, Any], **postgres: Any) -> dict[str, Any]:
    """The stack file's values with `hetzner.failover` (and postgres keys) set."""
    values = read_stack_values(stack_file(stack))
    hetzner = json.loads(values["postgres-platform:hetzner"])
    values["postgres-platform:hetzner"] = json.dumps({**hetzner, "failover": failover})
    pg = json.loads(values["postgres-platform:postgres"])
    values["postgres-platform:postgres"] = json.dumps({**pg, **postgres})
    return values


# Prod's budget has no 3 slots free for Patroni (the budget test below): room for them here.
VALUES = with_failover("prod", {"enabled": True}, maxConnections=120)
_runs: dict[str, ProgramRun] = {}


def failover_run() -> ProgramRun:
    if "prod" not in _runs:
        _runs["prod"] = run_program("prod", VALUES)
    return _runs["prod"]


def config() -> PlatformConfig:
    return load_stack_values(VALUES)


def by_role(run: ProgramRun) -> dict[str, Registered]:
    return {s.inputs["labels"]["role"]: s for s in run.of_type(SERVER)}


def test_defaults_when_enabled() -> None:
    failover = config().hetzner.failover  # type: ignore[union-attr]
    assert failover.synchronous and not failover.synchronous_mode_strict
    assert (failover.maximum_lag_on_failover, failover.ttl, failover.loop_wait, failover.retry_timeout) == (
        1048576,
        20,
        5,
        7,
    )
    assert (failover.witnesses, failover.witness_server_type, failover.load_balancer_type) == (1, "cx22", "lb11")
    assert failover.ports() == {
        "hetzner.failover.restApiPort": 8008,
        "hetzner.failover.etcdClientPort": 2379,
        "hetzner.failover.etcdPeerPort": 2380,
    }


def test_a_witness_in_the_private_network_runs_no_postgres_and_holds_no_volume() -> None:
    run, hetzner = failover_run(), config().hetzner
    assert hetzner is not None
    servers = by_role(run)
    assert set(servers) == {"primary", "replica", "witness"}
    witness = servers["witness"].inputs
    (attachment,) = witness["networks"]
    assert attachment["ip"] == "10.0.1.12" and ipaddress.ip_address(attachment["ip"]) in ipaddress.ip_network(
        hetzner.subnet
    )
    assert (
        witness["serverType"] == "cx22" and witness["placementGroupId"] == servers["primary"].inputs["placementGroupId"]
    )
    assert witness["firewallIds"] == servers["primary"].inputs["firewallIds"]
    assert "/var/lib/postgres-platform/etcd" in witness["userData"] and "HC_Volume" not in witness["userData"]
    assert len(run.of_type("hcloud:index/volume:Volume")) == 2  # the database hosts' only
    on_witness = [c for c in run.of_type("docker:index/container:Container") if "witness" in c.urn]
    assert [c.inputs["labels"] for c in on_witness] == [[{"label": "postgres-platform.component", "value": "etcd"}]]
    (provider,) = [p for p in run.of_type("pulumi:providers:docker") if p.name == "witness-1-docker"]
    assert provider.inputs["host"].startswith("ssh://root@198.51.100.")


def test_etcd_has_three_members_the_two_database_hosts_and_the_witness() -> None:
    run, hetzner = failover_run(), config().hetzner
    assert hetzner is not None
    members = hetzner.etcd_member_ips()
    assert members == ["10.0.1.10", "10.0.1.11", "10.0.1.12"]
    declared = {s.inputs["networks"][0]["ip"] for s in run.of_type(SERVER)}
    assert set(members) == declared


def test_the_load_balancer_is_on_the_private_network_only_and_targets_both_hosts() -> None:
    run = failover_run()
    (balancer,) = run.of_type(LOAD_BALANCER)
    assert (balancer.inputs["loadBalancerType"], balancer.inputs["location"]) == ("lb11", "fsn1")
    assert balancer.inputs["deleteProtection"] is True  # prod: protectServers
    (attachment,) = run.of_type(LB_NETWORK)
    assert attachment.inputs["enablePublicInterface"] is False
    assert attachment.inputs["ip"] == "10.0.1.5"
    subnet = next(r for r in run.resources if r.name == "private-subnet")
    assert attachment.property_dependencies["subnetId"] == [subnet.urn]
    targets = run.of_type(LB_TARGET)
    assert all(t.inputs["type"] == "server" and t.inputs["usePrivateIp"] is True for t in targets)
    servers = by_role(run)
    targeted = {urn for t in targets for urn in t.property_dependencies["serverId"]}
    assert targeted == {servers["primary"].urn, servers["replica"].urn}  # not the witness: it runs no Postgres
    assert all(attachment.urn in t.dependencies for t in targets)  # Hetzner wants the LB in the network first


def test_services_health_check_patronis_rest_api_primary_and_replica() -> None:
    services = {s.inputs["listenPort"]: s.inputs for s in failover_run().of_type(LB_SERVICE)}
    assert set(services) == {6432, 5432, 5433}
    expected = {6432: (6432, "/primary"), 5432: (5432, "/primary"), 5433: (5432, "/replica")}
    for port, (destination, path) in expected.items():
        service = services[port]
        assert service["protocol"] == "tcp" and service["destinationPort"] == destination
        check_ = service["healthCheck"]
        assert (check_["protocol"], check_["port"]) == ("http", 8008)
        assert check_["http"] == {"path": path, "statusCodes": ["200"], "tls": True}
        assert check_["interval"] * check_["retries"] <= 10  # the LB follows a promotion within seconds


def test_pgbouncer_on_each_database_host_serves_that_hosts_postgres() -> None:
    run = failover_run()
    pgbouncers = [c for c in run.of_type("docker:index/container:Container") if c.name.endswith("pgbouncer-container")]
    assert sorted(c.name for c in pgbouncers) == ["pgbouncer-container", "replica-pgbouncer-container"]
    for component, ip in (("pgbouncer-config", "10.0.1.10"), ("replica-pgbouncer-config", "10.0.1.11")):
        ini = configparser.ConfigParser(interpolation=None)
        ini.read_string(config_files(run, component)["pgbouncer.ini"].content)
        assert ini["pgbouncer"]["listen_addr"] == ip  # the LB's targets: each host's private IP
        assert all(f"host={ip} port=5432" in line for line in dict(ini["databases"]).values())
    commands = {c.name: c.inputs for c in run.of_type("command:remote:Command")}
    # Written over SSH to the replica's own host (the one its readiness wait ran on).
    assert (
        commands["replica-pgbouncer-config-write"]["connection"]["host"]
        == commands["replica-ready"]["connection"]["host"]
    )
    assert commands["pgbouncer-config-write"]["connection"]["host"] == commands["primary-ready"]["connection"]["host"]
    assert commands["replica-ready"]["connection"]["host"] != commands["primary-ready"]["connection"]["host"]


def test_firewall_opens_patroni_and_etcd_to_the_subnet_only() -> None:
    (firewall,) = failover_run().of_type(FIREWALL)
    rules = {r["port"]: r["sourceIps"] for r in firewall.inputs["rules"]}
    assert rules == {"22": ["203.0.113.10/32"], "5432": ["203.0.113.10/32"], "8008": ["10.0.1.0/24"]} | {
        "2379": ["10.0.1.0/24"],
        "2380": ["10.0.1.0/24"],
    }


def test_dsns_point_at_the_load_balancer_and_its_address_is_in_the_certificates() -> None:
    run = failover_run()
    for app, forms in run.outputs["apps"].items():
        assert "@10.0.1.5:5432/" in forms["direct"]["uri"]
        assert f"@10.0.1.5:6432/{app}?" in forms["pooled"]["uri"]
        if "replica" in forms:
            assert "@10.0.1.5:5433/" in forms["replica"]["uri"]
        assert all("sslmode=verify-full" in forms[kind]["uri"] for kind in forms)
    assert {app for app, forms in run.outputs["apps"].items() if "replica" in forms} == {"worker_app", "dashboard_app"}
    requests = {r.name: r.inputs["ipAddresses"] for r in run.of_type("tls:index/certRequest:CertRequest")}
    assert requests["primary-tls-csr"][:2] == ["10.0.1.10", "10.0.1.5"]
    assert requests["replica-tls-csr"] == ["10.0.1.11", "10.0.1.5"]


def test_patroni_is_in_both_servers_budget_and_the_stack_must_make_room() -> None:
    budgets = failover_run().outputs["budget"]
    assert [b["name"] for b in budgets] == ["primary", "replica"]
    for server in budgets:
        (patroni,) = [e for e in server["entries"] if e["role"] == "patroni"]
        assert (patroni["limit"], patroni["kind"]) == (3, "system")
    # With exactly the slots prod holds without Patroni, Patroni's 3 do not fit: a config error, nothing declared.
    without = load_stack_values(read_stack_values(stack_file("prod")))
    held = sum(e.limit for e in budget.entries(without)) + without.postgres.admin_headroom
    exact = held + without.postgres.superuser_reserved_connections
    recorder = RecordingMocks()
    from postgres_platform.program.deploy import StackConfigError

    with pytest.raises(
        StackConfigError,
        match=rf"server primary does not fit: roles hold {held - without.postgres.admin_headroom + 3} .*, 3 over",
    ):
        run_program("prod", with_failover("prod", {"enabled": True}, maxConnections=exact), recorder=recorder)
    assert recorder.registered == []


def test_the_network_and_budget_policies_pass_over_the_failover_plan() -> None:
    results = {r.name: r for r in evaluate(failover_run(), policy_config(config()))}
    for name in ("no-public-database-ports", "host-network-listeners", "connection-budget", "bounded-roles"):
        assert results[name].violations == [] and results[name].not_applicable is None, name
    assert policy_config(config())["connection-budget"]["systemSlots"]["patroni"] == 3


def test_policies_refuse_a_public_cluster_port_and_a_public_load_balancer() -> None:
    ports = {"clusterPorts": [8008, 2379, 2380]}
    admin = {"direction": "in", "protocol": "tcp", "port": "8000-8100", "sourceIps": ["203.0.113.10/32"]}
    (line,) = check(network.no_public_database_ports, FIREWALL, {"rules": [admin]}, ports)
    assert line == "firewall res opens Patroni/etcd port 8008 to 203.0.113.10/32"
    subnet = {**admin, "port": "2379", "sourceIps": ["10.0.1.0/24"]}
    assert check(network.no_public_database_ports, FIREWALL, {"rules": [subnet]}, ports) == []
    moved = {**admin, "port": "9008"}  # a stack's own REST port, from the pack's config
    assert check(network.no_public_database_ports, FIREWALL, {"rules": [moved]}, {"clusterPorts": [9008]}) != []
    public = check(network.no_public_database_ports, LOAD_BALANCER_NETWORK, {"ip": "10.0.1.5"})
    assert public == ["load balancer network res leaves the load balancer's public interface on"]
    balancer = resource(LOAD_BALANCER, "lb", {"loadBalancerType": "lb11"})
    private = resource(LOAD_BALANCER_NETWORK, "lbn", {"enablePublicInterface": False})
    (alone,) = check_stack(network.host_network_listeners, [balancer])
    assert "load balancer lb has no private-only network attachment" in alone
    assert check_stack(network.host_network_listeners, [balancer, private]) == []


def test_without_failover_nothing_of_it_is_declared() -> None:
    run = run_of("prod")
    assert run.of_type(LOAD_BALANCER) == [] and run.of_type(LB_SERVICE) == []
    assert set(by_role(run)) == {"primary", "replica"}
    assert all(e["role"] != "patroni" for e in run.outputs["budget"][0]["entries"])
    assert "no-public-database-ports" not in policy_config(load_stack_values(read_stack_values(stack_file("prod"))))


def test_failover_without_a_replica_is_a_one_line_error_and_declares_nothing() -> None:
    recorder = RecordingMocks()
    from postgres_platform.program.deploy import StackConfigError

    with pytest.raises(StackConfigError) as caught:
        run_program("staging", with_failover("staging", {"enabled": True}), recorder=recorder)
    lines = str(caught.value).splitlines()[1:]
    assert lines[0].startswith("hetzner.failover.synchronousMode: synchronous_mode with no replica")
    assert recorder.registered == []
