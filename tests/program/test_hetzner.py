"""Staging and prod on Hetzner under mocks: network, firewall, hosts, protected volumes, TLS, replica."""

from __future__ import annotations

import configparser
import ipaddress
import json
from typing import Any

import pytest

from postgres_platform.model.images import POSTGRES_17
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.program import ProgramRun, Registered, run_program
from tests.helpers import config_files, run_of

HETZNER_STACKS = ["staging", "prod"]


def config_of(stack: str) -> Any:
    return load_stack_values(read_stack_values(stack_file(stack)))


def one(run: ProgramRun, type_: str) -> Registered:
    (resource,) = run.of_type(type_)
    return resource


def containers(run: ProgramRun) -> dict[str, Registered]:
    return {c.inputs["labels"][0]["value"]: c for c in run.of_type("docker:index/container:Container")}


def files_of(run: ProgramRun, component: str) -> dict[str, str]:
    return {name: f.content for name, f in config_files(run, component).items()}


@pytest.mark.parametrize("stack", HETZNER_STACKS)
def test_network_and_subnet(stack: str) -> None:
    run, hetzner = run_of(stack), config_of(stack).hetzner
    assert one(run, "hcloud:index/network:Network").inputs["ipRange"] == hetzner.ip_range
    subnet = one(run, "hcloud:index/networkSubnet:NetworkSubnet").inputs
    assert (subnet["ipRange"], subnet["networkZone"], subnet["type"]) == (hetzner.subnet, hetzner.network_zone, "cloud")


@pytest.mark.parametrize("stack", HETZNER_STACKS)
def test_firewall_admits_ssh_and_postgres_from_admins_only(stack: str) -> None:
    run, hetzner = run_of(stack), config_of(stack).hetzner
    rules = one(run, "hcloud:index/firewall:Firewall").inputs["rules"]
    assert {(r["direction"], r["protocol"], r["port"]) for r in rules} == {("in", "tcp", "22"), ("in", "tcp", "5432")}
    for rule in rules:
        assert rule["sourceIps"] == hetzner.admin_cidrs
        assert not {"0.0.0.0/0", "::/0"} & set(rule["sourceIps"])
    assert all("6432" not in r["port"] for r in rules)  # PgBouncer: private network only


@pytest.mark.parametrize("stack", HETZNER_STACKS)
def test_servers_are_spread_firewalled_labelled_and_on_fixed_private_ips(stack: str) -> None:
    run, hetzner = run_of(stack), config_of(stack).hetzner
    group = one(run, "hcloud:index/placementGroup:PlacementGroup")
    assert group.inputs["type"] == "spread"
    servers = {s.inputs["labels"]["role"]: s.inputs for s in run.of_type("hcloud:index/server:Server")}
    assert set(servers) == ({"primary", "replica"} if hetzner.replicas else {"primary"})
    ips = {"primary": hetzner.primary_ip(), "replica": hetzner.replica_ip()}
    subnet = ipaddress.ip_network(hetzner.subnet)
    for role, server in servers.items():
        assert server["labels"]["env"] == stack
        assert (server["serverType"], server["image"], server["location"]) == (
            hetzner.server_type,
            hetzner.image,
            hetzner.location,
        )
        assert server["sshKeys"] == hetzner.ssh_keys
        assert server["placementGroupId"] is not None and len(server["firewallIds"]) == 1
        (network,) = server["networks"]
        assert network["ip"] == ips[role] and ipaddress.ip_address(network["ip"]) in subnet
        assert server["deleteProtection"] is server["rebuildProtection"] is (stack == "prod")
        assert "scsi-0HC_Volume_" in server["userData"] and "/mnt/pgdata" in server["userData"]


@pytest.mark.parametrize("stack", HETZNER_STACKS)
def test_data_volumes_are_protected_twice(stack: str) -> None:
    run, hetzner = run_of(stack), config_of(stack).hetzner
    volumes = run.of_type("hcloud:index/volume:Volume")
    assert len(volumes) == 1 + hetzner.replicas
    for volume in volumes:
        assert volume.protect is True
        assert volume.inputs["deleteProtection"] is True
        assert volume.inputs["size"] == hetzner.volume_size
    assert len(run.of_type("hcloud:index/volumeAttachment:VolumeAttachment")) == len(volumes)


@pytest.mark.parametrize("stack", HETZNER_STACKS)
def test_docker_reached_over_ssh_after_the_host_is_ready(stack: str) -> None:
    run = run_of(stack)
    servers = {s.name: s for s in run.of_type("hcloud:index/server:Server")}
    providers = run.of_type("pulumi:providers:docker")
    assert len(providers) == len(servers)
    ready = [c for c in run.of_type("command:remote:Command") if c.name.endswith("-ready")]
    assert len(ready) == len(servers)
    for command in ready:
        assert "cloud-init status --wait" in command.inputs["create"] and "docker info" in command.inputs["create"]
    for provider in providers:
        assert provider.inputs["host"].startswith("ssh://root@198.51.100.")


@pytest.mark.parametrize("stack", HETZNER_STACKS)
def test_postgres_runs_tls_with_our_pg_hba_ending_in_rejects(stack: str) -> None:
    run = run_of(stack)
    postgres = containers(run)["postgres"]
    command = postgres.inputs["command"]
    for setting in ("hba_file=/etc/postgresql/pg_hba.conf", "max_connections=", "superuser_reserved_connections="):
        assert any(arg.startswith(setting) for arg in command), setting
    files = files_of(run, "postgres-config")
    for setting in (
        "ssl = 'on'",
        "ssl_min_protocol_version = 'TLSv1.2'",
        "ssl_key_file = '/etc/postgresql/server.key'",
    ):
        assert setting in files["postgresql.conf"].splitlines(), setting  # reloadable: not the command line
    hba = files["pg_hba.conf"].splitlines()
    assert hba[-2].split() == ["host", "all", "all", "0.0.0.0/0", "reject"]
    assert hba[-1].split() == ["host", "all", "all", "::/0", "reject"]
    assert all(line.split()[0] in ("local", "hostssl") for line in hba[:-2])
    assert files["server.crt"].startswith("-----BEGIN CERTIFICATE-----")
    assert "server.key" in files and config_files(run, "postgres-config")["server.key"].mode == "0600"
    (write,) = [r for r in run.of_type("command:remote:Command") if r.name == "postgres-config-write"]
    assert "stdin" in write.secret_inputs  # the key and the superuser password reach the host on stdin only
    assert postgres.inputs["networkMode"] == "host" and not postgres.inputs.get("ports")
    data, config, pgbackrest = postgres.inputs["mounts"]
    assert (pgbackrest["target"], pgbackrest["readOnly"]) == ("/etc/pgbackrest", True)
    # A bind mount fails when the volume is not mounted (no empty PGDATA on the root disk).
    assert (data["type"], data["source"], data["target"]) == ("bind", "/mnt/pgdata/data", "/var/lib/postgresql/data")
    assert (config["source"], config["target"], config["readOnly"]) == (
        "/etc/postgres-platform/postgres",
        "/etc/postgresql",
        True,
    )


@pytest.mark.parametrize("stack", HETZNER_STACKS)
def test_pgbouncer_listens_privately_and_speaks_tls_both_ways(stack: str) -> None:
    run, hetzner = run_of(stack), config_of(stack).hetzner
    pgbouncer = containers(run)["pgbouncer"]
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(files_of(run, "pgbouncer-config")["pgbouncer.ini"])
    settings = ini["pgbouncer"]
    assert settings["listen_addr"] == hetzner.primary_ip()
    assert (settings["server_tls_sslmode"], settings["client_tls_sslmode"]) == ("verify-full", "require")
    assert all(f"host={hetzner.primary_ip()} port=5432" in line for line in dict(ini["databases"]).values())
    assert pgbouncer.inputs["networkMode"] == "host"


@pytest.mark.parametrize("stack", HETZNER_STACKS)
def test_dsns_on_private_ips_with_verify_full_and_the_ca_as_output(stack: str) -> None:
    run, hetzner = run_of(stack), config_of(stack).hetzner
    for app, forms in run.outputs["apps"].items():
        assert f"@{hetzner.primary_ip()}:5432/" in forms["direct"]["uri"]
        assert f"@{hetzner.primary_ip()}:6432/{app}?" in forms["pooled"]["uri"]
        for kind in ("direct", "pooled"):
            assert "sslmode=verify-full" in forms[kind]["uri"] and "sslrootcert=" in forms[kind]["uri"]
    assert run.outputs["caCertPem"].startswith("-----BEGIN CERTIFICATE-----")
    assert "caCertPem" not in run.secret_outputs and "adminDsn" in run.secret_outputs
    assert run.outputs["adminHost"].startswith("198.51.100.")  # the primary's public IPv4 (mocked)
    assert f"@{run.outputs['adminHost']}:5432/postgres" in run.outputs["adminDsn"]


def test_certificates_cover_the_private_ip_and_the_admin_address() -> None:
    run = run_of("prod")
    requests = {r.name: r.inputs for r in run.of_type("tls:index/certRequest:CertRequest")}
    primary = requests["primary-tls-csr"]["ipAddresses"]
    assert primary[0] == "10.0.1.10" and primary[1] == run.outputs["adminHost"]
    assert requests["replica-tls-csr"]["ipAddresses"] == ["10.0.1.11"]
    ca = one(run, "tls:index/selfSignedCert:SelfSignedCert").inputs
    assert ca["isCaCertificate"] is True


def test_replica_streams_from_a_slot_and_serves_read_dsns() -> None:
    run = run_of("prod")
    slot = one(run, "postgresql:index/physicalReplicationSlot:PhysicalReplicationSlot")
    assert slot.inputs["name"] == "replica_1"
    replicator = [r.inputs for r in run.of_type("postgresql:index/role:Role") if r.inputs["name"] == "replicator"]
    assert replicator == [{**replicator[0], "replication": True, "login": True, "connectionLimit": 2}]
    replica = containers(run)["postgres-replica"]
    settings = files_of(run, "replica-config")["postgresql.conf"].splitlines()
    assert "primary_slot_name = 'replica_1'" in settings and "hot_standby=on" in replica.inputs["command"]
    conninfo = next(a for a in settings if a.startswith("primary_conninfo ="))
    assert (
        "host=10.0.1.10" in conninfo
        and "sslmode=verify-full" in conninfo
        and "password" not in conninfo.replace("passfile", "")
    )
    (basebackup,) = [c for c in run.of_type("command:remote:Command") if c.name == "replica-basebackup"]
    # With backups the standby is restored from the repository, not copied from the primary.
    assert (
        "pgbackrest --stanza=main --repo1-cipher-type=aes-256-cbc --pg1-path=/mnt/pgdata/data --type=standby "
        "restore" in basebackup.inputs["create"]
    )
    assert "pg_basebackup" not in basebackup.inputs["create"]
    assert "-v /etc/postgres-platform/pgbackrest:/etc/pgbackrest:ro" in basebackup.inputs["create"]
    stanza = next(r for r in run.resources if r.name == "backups-stanza")
    assert stanza.urn in basebackup.dependencies  # after the stanza step, which makes sure a full backup exists
    assert replica.inputs["image"] == POSTGRES_17.reference
    assert "pgbackrest.conf" in config_files(run, "replica-backups-config")
    assert "stdin" in basebackup.secret_inputs  # the replication password never in the script
    hba = files_of(run, "postgres-config")["pg_hba.conf"]
    assert "hostssl  replication" in hba and "10.0.1.11/32" in hba
    for app, forms in run.outputs["apps"].items():
        read = config_of("prod").apps[app].access == "read"
        assert ("replica" in forms) is read
        if read:
            assert "@10.0.1.11:5432/tracksolid_db" in forms["replica"]["uri"]


def test_staging_has_no_replica() -> None:
    run = run_of("staging")
    assert run.of_type("postgresql:index/physicalReplicationSlot:PhysicalReplicationSlot") == []
    assert "postgres-replica" not in containers(run)
    assert all("replica" not in forms for forms in run.outputs["apps"].values())


def test_bad_network_config_declares_nothing() -> None:
    values = read_stack_values(stack_file("prod"))
    hetzner = json.loads(values["postgres-platform:hetzner"])
    hetzner["adminCidrs"] = ["0.0.0.0/0"]
    values["postgres-platform:hetzner"] = json.dumps(hetzner)
    from postgres_platform.offline.program import RecordingMocks
    from postgres_platform.program.deploy import StackConfigError

    recorder = RecordingMocks()
    with pytest.raises(StackConfigError, match=r"hetzner.adminCidrs: together open more than a /16 of IPv4"):
        run_program("prod", values, recorder=recorder)
    assert recorder.registered == []


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_reapply_step_verifies_the_server_with_the_stack_ca_like_the_provider(stack: str) -> None:
    run = run_of(stack)
    (provider,) = run.of_type("pulumi:providers:postgresql")
    for reapply in run.of_type("pulumi-python:dynamic/postgres-platform:SqlApply"):
        connection = reapply.inputs["connection"]
        assert connection["sslmode"] == "verify-full"
        # Without it libpq looks for ~/.postgresql/root.crt and every up fails at this step.
        assert connection["sslrootcert"] == provider.inputs["sslrootcert"]
        assert connection["sslrootcert"].endswith(f"/.postgres-platform/{stack}-ca.crt")


@pytest.mark.parametrize("stack", HETZNER_STACKS)
def test_day_two_on_a_host_keys_and_cloud_init_never_replace_it_and_the_volume_grows(stack: str) -> None:
    run = run_of(stack)
    hetzner = config_of(stack).hetzner
    for server in run.of_type("hcloud:index/server:Server"):
        # ForceNew in the hcloud provider; read once at first boot: changing them must not rebuild the host.
        assert set(server.ignore_changes) == {"sshKeys", "userData"}
        assert "nofail" not in server.inputs["userData"]
        assert "mountpoint -q /mnt/pgdata && mkdir -p /mnt/pgdata/data" in server.inputs["userData"]
    grow = [c for c in run.of_type("command:remote:Command") if c.name.endswith("-grow-filesystem")]
    assert len(grow) == 1 + hetzner.replicas
    assert all(
        f"# volume size {hetzner.volume_size} GB" in c.inputs["create"] and "resize2fs" in c.inputs["create"]
        for c in grow
    )


def test_a_replica_slot_cannot_fill_the_primary_disk() -> None:
    run, hetzner = run_of("prod"), config_of("prod").hetzner
    settings = files_of(run, "postgres-config")["postgresql.conf"].splitlines()
    assert f"max_slot_wal_keep_size = '{hetzner.volume_size * 1024 // 4}MB'" in settings  # a quarter of the volume
    assert not [
        s
        for s in files_of(run_of("staging"), "postgres-config")["postgresql.conf"].splitlines()
        if s.startswith("max_slot_wal_keep_size")
    ]  # no replica, no slot
