"""hetzner.failover under mocks: what runs on each host (etcd everywhere, a Patroni member on each database
host, no plain Postgres and no StreamingReplica), on private addresses only, with no secret in any container,
and the program's settings as Patroni's dynamic configuration: a reloadable change is that command's input
only, never a container's."""

from __future__ import annotations

import dataclasses
import json
import shlex
from typing import Any

import pytest
import yaml

from postgres_platform.model.images import BUILDS, POSTGRES_17
from postgres_platform.offline.program import ProgramRun, Registered, fake_secret, run_program
from postgres_platform.render.containers import CONFIG, DATA
from postgres_platform.render.patroni import (
    CONFIG_PATCH,
    ETCD_DATA,
    config_patch_command,
    config_patch_input,
    console_conninfo,
    etcd_container,
    lead_command,
    member_pg_hba,
    patroni_container,
    restart_command,
    restart_parameters,
)
from tests.helpers import config_files
from tests.program.test_failover_plan import VALUES, failover_run, with_failover

CONTAINER = "docker:index/container:Container"
REMOTE = "command:remote:Command"
PATCH = "postgres-dynamic-config-patch"
IPS = {"primary": "10.0.1.10", "replica": "10.0.1.11", "witness-1": "10.0.1.12"}
ETCD_NAMES = {"primary": "db-1", "replica": "db-2", "witness-1": "witness-1"}


def named(run: ProgramRun, name: str) -> Registered:
    (resource,) = [r for r in run.resources if r.name == name]
    return resource


def ssh_host(run: ProgramRun, name: str) -> Any:
    return named(run, name).inputs["connection"]["host"]


def containers(run: ProgramRun) -> dict[str, Registered]:
    return {c.name: c for c in run.of_type(CONTAINER)}


def test_each_database_host_runs_etcd_patroni_and_pgbouncer_and_the_witness_etcd_only() -> None:
    run = failover_run()
    # The monitoring exporters (components/monitoring.py) aside: what serves and replicates the data.
    assert {name for name in containers(run) if not name.startswith("monitoring-")} == {
        "db-1-etcd-container",
        "db-2-etcd-container",
        "witness-1-etcd-container",
        "primary-patroni-container",
        "replica-patroni-container",
        "pgbouncer-container",
        "replica-pgbouncer-container",
    }  # no plain Postgres container: Patroni runs the server on both hosts
    types = {r.type for r in run.resources}
    assert "postgres-platform:index:StreamingReplica" not in types  # Patroni clones the replica itself
    assert "postgresql:index/physicalReplicationSlot:PhysicalReplicationSlot" not in types  # Patroni's slots
    # Where each runs: its host directory is written over SSH to that host (the one its readiness wait ran on).
    for role, etcd in ETCD_NAMES.items():
        assert ssh_host(run, f"{etcd}-etcd-data-dir") == ssh_host(run, f"{role}-ready")
    for role in ("primary", "replica"):
        assert ssh_host(run, f"{role}-patroni-config-write") == ssh_host(run, f"{role}-ready")
        member = named(run, f"{role}-patroni-container")
        assert named(run, f"{role}-patroni-config-write").urn in member.dependencies
        assert member.inputs["networkMode"] == "host"
    # Both once every etcd member is declared; only db-1 bootstraps (db-2's patroni.yml has no bootstrap
    # section: it waits for a leader and clones it, whichever container starts first).
    for role in ("primary", "replica"):
        member = named(run, f"{role}-patroni-container")
        assert all(named(run, f"{e}-etcd-container").urn in member.dependencies for e in ETCD_NAMES.values())
    assert named(run, "primary-patroni-container").inputs["wait"] is True
    bootstrap = {
        role: "bootstrap" in yaml.safe_load(config_files(run, f"{role}-patroni-config")["patroni.yml"].content)
        for role in ("primary", "replica")
    }
    assert bootstrap == {"primary": True, "replica": False}


def test_etcd_and_patroni_listen_on_the_private_ip_only() -> None:
    run = failover_run()
    for role, etcd in ETCD_NAMES.items():
        flags = named(run, f"{etcd}-etcd-container").inputs["command"]
        ip = IPS[role]
        assert f"--listen-client-urls=http://{ip}:2379" in flags and f"--listen-peer-urls=http://{ip}:2380" in flags
        assert (
            "--initial-cluster=db-1=http://10.0.1.10:2380,db-2=http://10.0.1.11:2380,witness-1=http://10.0.1.12:2380"
            in flags
        )
        assert not any("0.0.0.0" in flag for flag in flags)
        # The entrypoint that rejoins a member with no data asks the other two members (ETCD_ENTRYPOINT).
        entrypoint = named(run, f"{etcd}-etcd-container").inputs["entrypoints"]
        others = ",".join(f"http://{IPS[other]}:2379" for other in ETCD_NAMES if other != role)
        assert entrypoint[:2] == ["sh", "-c"] and f"peers={others}\n" in entrypoint[2]
        (mount,) = named(run, f"{etcd}-etcd-container").inputs["mounts"]
        assert mount["source"] == "/var/lib/postgres-platform/etcd" and mount["type"] == "bind"  # the root disk
    for role in ("primary", "replica"):
        files = config_files(run, f"{role}-patroni-config")
        patroni = yaml.safe_load(files["patroni.yml"].content)
        ip = IPS[role]
        assert patroni["postgresql"]["listen"] == patroni["postgresql"]["connect_address"] == f"{ip}:5432"
        assert patroni["restapi"]["listen"] == f"{ip}:8008"
        # The REST API speaks TLS with the host's certificate (which the LB's checks and CONFIG_PATCH expect).
        assert (patroni["restapi"]["certfile"], patroni["restapi"]["keyfile"]) == (
            "/etc/postgresql/server.crt",
            "/etc/postgresql/server.key",
        )
        assert patroni["etcd3"]["hosts"] == ["10.0.1.10:2379", "10.0.1.11:2379", "10.0.1.12:2379"]


def test_pg_hba_lets_each_member_replicate_and_rewind_from_the_other_only() -> None:
    run = failover_run()
    for role, peer in (("primary", "10.0.1.11"), ("replica", "10.0.1.10")):
        hba = yaml.safe_load(config_files(run, f"{role}-patroni-config")["patroni.yml"].content)["postgresql"]["pg_hba"]
        rows = [line.split() for line in hba]
        assert ["hostssl", "replication", "replicator", f"{peer}/32", "scram-sha-256"] in rows
        assert ["hostssl", "postgres", "rewind_user", f"{peer}/32", "scram-sha-256"] in rows
        rejects = [i for i, row in enumerate(rows) if row[-1] == "reject"]
        assert rejects and rejects[0] == len(rows) - 2  # the rejects still close it: first match wins


def test_no_secret_in_any_containers_env_or_command_only_in_the_0600_secrets_file() -> None:
    run = failover_run()
    passwords = [fake_secret(f"postgres-{what}-password") for what in ("superuser", "replication", "rewind", "restapi")]
    for container in run.of_type(CONTAINER):
        text = json.dumps(container.inputs)
        assert not any(pw in text for pw in passwords), container.name
        assert "PASSWORD" not in json.dumps(container.inputs.get("envs") or []), container.name
    for role in ("primary", "replica"):
        files = config_files(run, f"{role}-patroni-config")
        secrets, sql = files["secrets.yml"], files["passwords.sql"]
        assert secrets.mode == sql.mode == files["server.key"].mode == "0600"
        auth = yaml.safe_load(secrets.content)["postgresql"]["authentication"]
        assert [auth[what]["password"] for what in ("superuser", "replication", "rewind")] == passwords[:3]
        assert yaml.safe_load(secrets.content)["restapi"]["authentication"]["password"] == passwords[3]
        assert not any(pw in files["patroni.yml"].content or pw in sql.content for pw in passwords)  # verifiers
        write = named(run, f"{role}-patroni-config-write")
        assert "stdin" in write.secret_inputs
        member = named(run, f"{role}-patroni-container").inputs
        assert member["command"] == ["patroni", "/etc/postgresql"]  # the directory: patroni.yml and secrets.yml
    patch = named(run, PATCH)
    assert "stdin" in patch.secret_inputs and passwords[3] not in patch.inputs["create"]
    assert patch.inputs["stdin"] == f"patroni:{passwords[3]}\n"


def test_a_new_password_is_set_where_the_member_leads_then_patroni_rereads_its_files() -> None:
    """A replaced password changes the files only (no container): the write's reload runs ALTER ROLE where
    the member is the leader, then the SIGHUP that makes Patroni reread secrets.yml."""
    run = failover_run()
    for role, container in (
        ("primary", "postgres-platform-prod-postgres"),
        ("replica", "postgres-platform-prod-postgres-replica"),
    ):
        script = named(run, f"{role}-patroni-config-write").inputs["create"]
        leads, hup = script.index("SELECT pg_is_in_recovery()"), script.index(f"docker kill --signal=HUP {container}")
        assert leads < script.index("-f /etc/postgresql/passwords.sql") < hup


def patch_config(run: ProgramRun) -> dict[str, Any]:
    argv = shlex.split(named(run, PATCH).inputs["create"])
    assert argv[:7] == ["docker", "exec", "-i", "postgres-platform-prod-postgres", "python3", "-c", CONFIG_PATCH]
    assert argv[7:9] == ["https://10.0.1.10:8008", "/etc/postgresql/ca.crt"]  # private IP, TLS, the stack CA
    config: dict[str, Any] = json.loads(argv[9])
    return config


def test_the_programs_settings_are_patched_into_patronis_dynamic_config_after_the_cluster_is_up() -> None:
    run = failover_run()
    config = patch_config(run)
    parameters = config["postgresql"]["parameters"]
    assert (parameters["max_connections"], parameters["shared_buffers"], parameters["archive_mode"]) == (
        "120",
        "2GB",
        "on",
    )
    assert "listen_addresses" not in parameters and "hba_file" not in parameters  # Patroni's own
    assert (config["synchronous_mode"], config["ttl"], config["loop_wait"], config["retry_timeout"]) == (True, 20, 5, 7)
    assert config["failsafe_mode"] is True and config["postgresql"]["use_pg_rewind"] is True
    # The same configuration bootstraps the cluster (patroni.yml's bootstrap.dcs).
    bootstrap = yaml.safe_load(config_files(run, "primary-patroni-config")["patroni.yml"].content)["bootstrap"]["dcs"]
    assert bootstrap == config
    # Run on the primary's host, in its Patroni container, once that container runs.
    patch = named(run, PATCH)
    assert patch.inputs["connection"]["host"] == ssh_host(run, "primary-ready")
    assert named(run, "primary-patroni-container").urn in patch.dependencies
    # The replica is created by Patroni from the repository first, pg_basebackup else.
    replica = yaml.safe_load(config_files(run, "replica-patroni-config")["patroni.yml"].content)["postgresql"]
    assert replica["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert named(run, "replica-patroni-container").inputs["mounts"][2]["target"] == "/etc/pgbackrest"


def test_a_reloadable_change_is_the_patch_commands_input_only_never_a_container() -> None:
    before = failover_run()
    changed = with_failover("prod", {"enabled": True}, maxConnections=120)
    pg = json.loads(changed["postgres-platform:postgres"])
    pg["settings"] = {**pg["settings"], "work_mem": "16MB"}  # reloadable
    changed["postgres-platform:postgres"] = json.dumps(pg)
    after = run_program("prod", changed)
    assert patch_config(after)["postgresql"]["parameters"]["work_mem"] == "16MB"
    assert "work_mem" not in patch_config(before)["postgresql"]["parameters"]
    for name, container in containers(before).items():
        assert containers(after)[name].inputs == container.inputs, name  # no container is replaced
    differs = {
        r.name for r in after.resources if r.type.startswith("command:") and r.inputs != named(before, r.name).inputs
    }
    # The patch, and db-1's patroni.yml (its bootstrap section, read at a first start only: a SIGHUP); db-2's
    # has none.
    assert differs == {PATCH, "primary-patroni-config-write"}


def test_synchronous_mode_strict_reaches_patroni_only_when_asked() -> None:
    assert patch_config(failover_run())["synchronous_mode_strict"] is False
    strict = run_program(
        "prod", with_failover("prod", {"enabled": True, "synchronousModeStrict": True}, maxConnections=120)
    )
    config = patch_config(strict)
    assert (config["synchronous_mode"], config["synchronous_mode_strict"]) == (True, True)
    bootstrap = yaml.safe_load(config_files(strict, "primary-patroni-config")["patroni.yml"].content)["bootstrap"][
        "dcs"
    ]
    assert bootstrap["synchronous_mode_strict"] is True


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"^a posix backup repository needs the backup config mounted too$"):
        patroni_container(name="n", image="i", label="postgres", posix_repo=True)
    with pytest.raises(ValueError, match=r"^etcd's flags must name --data-dir=/var/lib/etcd-member/data"):
        etcd_container(name="n", image="i", label="etcd", flags=["--data-dir=/tmp/etcd"], peers=["10.0.1.11:2379"])
    with pytest.raises(ValueError, match=r"^an etcd member needs the other members' client addresses$"):
        etcd_container(name="n", image="i", label="etcd", flags=["--data-dir=/var/lib/etcd-member/data"], peers=[])
    with pytest.raises(ValueError, match=r"^an etcd peer's client address must be host:port, not '10.0.1.11'$"):
        etcd_container(
            name="n", image="i", label="etcd", flags=["--data-dir=/var/lib/etcd-member/data"], peers=["10.0.1.11"]
        )
    with pytest.raises(
        ValueError, match=r"^the REST API is reached over TLS: an https:// URL, not 'http://10.0.1.10:8008'$"
    ):
        config_patch_command("c", "http://10.0.1.10:8008", {})
    with pytest.raises(ValueError, match=r"^the REST API password must be one non-empty line$"):
        config_patch_input("a\nb")


def test_the_member_spec_mounts_data_and_config_and_carries_no_env() -> None:
    spec = patroni_container(name="n", image="i", label="postgres", backup_config=True)
    assert set(spec.mounts) == {DATA, CONFIG, "backup-config"} and spec.env == ()
    assert spec.mounts[CONFIG].read_only and not spec.mounts[DATA].read_only
    assert spec.stop_signal == "SIGINT"
    etcd = etcd_container(
        name="e", image="i", label="etcd", flags=["--data-dir=/var/lib/etcd-member/data"], peers=["10.0.1.11:2379"]
    )
    assert set(etcd.mounts) == {ETCD_DATA} and etcd.stop_signal == "SIGTERM" and etcd.user is None
    assert member_pg_hba("local all postgres peer\nhost all all 0.0.0.0/0 reject\n", "10.0.1.11") == [
        "local all postgres peer",
        "hostssl  postgres  rewind_user  10.0.1.11/32  scram-sha-256",
        "host all all 0.0.0.0/0 reject",
    ]


def test_the_provider_waits_for_the_check_that_its_host_is_a_primary() -> None:
    """The postgresql provider takes one host (db-1): a PrimaryCheck on the same admin connection comes first,
    so after a failover a preview or an up stops there (components/resources/sql_apply.py), before any role."""
    run = failover_run()
    check = named(run, "postgres-primary-check")
    assert check.type == "pulumi-python:dynamic/postgres-platform:PrimaryCheck" and "connection" in check.secret_inputs
    assert named(run, "primary-patroni-container").urn in check.dependencies
    (provider,) = [r for r in run.of_type("pulumi:providers:postgresql") if r.name == "postgres-provider"]
    assert check.urn in provider.dependencies


def test_backups_run_on_whichever_database_host_leads() -> None:
    """Both hosts get the backup and verified-restore units, each gated on its own member being the leader
    (render/backup.leads_condition); the stanza is made once, on db-1's host (the provider's: it leads)."""
    run = failover_run()
    for prefix, container in (
        ("backups", "postgres-platform-prod-postgres"),
        ("replica-backups", "postgres-platform-prod-postgres-replica"),
    ):
        gate = f"ExecCondition=/usr/bin/docker exec -u postgres {container} sh /etc/pgbackrest/leads.sh"
        timers = named(run, f"{prefix}-timers").inputs["create"]
        assert timers.count(gate) == 3  # full, diff and the hourly check
        verify = named(run, f"{prefix}-verify").inputs["create"]
        assert gate in verify and f"server={container}" in verify
        assert ssh_host(run, f"{prefix}-timers") == ssh_host(run, f"{prefix}-config-write")
        assert "leads.sh" in config_files(run, f"{prefix}-config")
    assert ssh_host(run, "backups-timers") != ssh_host(run, "replica-backups-timers")
    assert not [r for r in run.resources if r.name == "replica-backups-stanza"]


RESTARTS = "postgres-restarts-command"


def test_a_restart_only_setting_is_applied_by_ordered_restarts_from_db1_after_the_patch() -> None:
    run = failover_run()
    restarts, config = named(run, RESTARTS), patch_config(run)
    consoles = {"db-1": console_conninfo(IPS["primary"]), "db-2": console_conninfo(IPS["replica"])}
    container = named(run, "primary-patroni-container").inputs["name"]
    assert restarts.inputs["create"] == restart_command(container, f"https://{IPS['primary']}:8008", consoles, 5)
    assert restarts.inputs["connection"]["host"] == ssh_host(run, "primary-ready")
    # After the PATCH, and once both hosts' PgBouncers (which it pauses) run.
    assert named(run, PATCH).urn in restarts.dependencies
    pgbouncers = {named(run, "pgbouncer-container").urn, named(run, "replica-pgbouncer-container").urn}
    assert pgbouncers <= set(restarts.dependencies)
    # Triggered by the restart-only settings alone, which the PATCH carries.
    triggers = json.loads(restarts.inputs["triggers"][0])
    assert triggers == restart_parameters(config)
    assert {"max_connections", "shared_buffers", "archive_mode"} <= set(triggers) and "work_mem" not in triggers
    # The REST API's and the consoles' passwords on stdin only.
    stdin = json.loads(restarts.inputs["stdin"])
    assert stdin["rest"] == f"patroni:{fake_secret('postgres-restapi-password')}"
    assert stdin["poolers"] == {
        "db-1": fake_secret("pgbouncer-admin-password"),
        "db-2": fake_secret("replica-pgbouncer-admin-password"),
    }
    passwords = [stdin["rest"].split(":", 1)[1], *stdin["poolers"].values()]
    assert not any(password in restarts.inputs["create"] for password in passwords)


def test_a_changed_restart_only_setting_changes_the_restarts_triggers_only() -> None:
    before = failover_run()
    after = run_program("prod", with_failover("prod", {"enabled": True}, maxConnections=130))
    old, new = named(before, RESTARTS).inputs, named(after, RESTARTS).inputs
    assert json.loads(new["triggers"][0])["max_connections"] == "130"
    assert {key for key in new if new[key] != old[key]} == {"triggers"}
    for name, container in containers(before).items():  # restarted by Patroni, not replaced by Pulumi
        assert containers(after)[name].inputs == container.inputs, name


LEADS = {step: f"postgres-replacements-{step}" for step in ("before-replica", "before-primary", "after")}


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "up"])
def test_each_members_container_is_replaced_only_while_the_other_member_leads(preview: bool) -> None:
    run = failover_run() if preview else run_program("prod", VALUES, preview=False)  # `pulumi up` refuses nothing
    leads = {step: named(run, name) for step, name in LEADS.items()}
    primary, replica = named(run, "primary-patroni-container"), named(run, "replica-patroni-container")
    # db-1 leads, db-2's container, db-2 leads, db-1's container, db-1 leads, then what needs db-1 leading.
    assert leads["before-replica"].urn in replica.dependencies
    assert replica.urn in leads["before-primary"].dependencies
    assert leads["before-primary"].urn in primary.dependencies
    assert primary.urn in leads["after"].dependencies
    assert leads["after"].urn in named(run, PATCH).dependencies
    assert leads["after"].urn in named(run, "postgres-primary-check").dependencies
    consoles = {"db-1": console_conninfo(IPS["primary"]), "db-2": console_conninfo(IPS["replica"])}
    runs_on = {
        "before-replica": ("primary", "db-1"),
        "before-primary": ("replica", "db-2"),
        "after": ("primary", "db-1"),
    }
    restarts_stdin = named(run, RESTARTS).inputs["stdin"]
    for step, (role, to) in runs_on.items():
        lead, container = leads[step].inputs, named(run, f"{role}-patroni-container").inputs["name"]
        assert lead["create"] == lead_command(container, f"https://{IPS[role]}:8008", consoles, 5, to)
        assert lead["connection"]["host"] == ssh_host(run, f"{role}-ready")
        assert lead["update"] == "true"  # a new password on stdin switches nothing
        assert lead["stdin"] == restarts_stdin and "stdin" in leads[step].secret_inputs
        # Not the poolers' containers (they wait for the cluster): their passwords only.
        pgbouncers = {named(run, "pgbouncer-container").urn, named(run, "replica-pgbouncer-container").urn}
        assert not pgbouncers & set(leads[step].dependencies)


def test_a_new_image_triggers_the_switchovers_and_a_reloadable_change_none(monkeypatch: pytest.MonkeyPatch) -> None:
    before = failover_run()
    image = "postgres-platform/postgres:17.13-deb13u1-patroni4.0.7"  # as a next release of images/ would ship
    monkeypatch.setitem(BUILDS, image, dataclasses.replace(POSTGRES_17, reference=image))
    after = run_program("prod", with_failover("prod", {"enabled": True}, maxConnections=120, image=image))
    for role in ("primary", "replica"):
        assert named(after, f"{role}-patroni-container").inputs["image"] == image
    for name in LEADS.values():
        old, new = named(before, name).inputs, named(after, name).inputs
        assert {key for key in new if new[key] != old[key]} == {"triggers"}, name
        assert image in new["triggers"][0] and image not in old["triggers"][0]
    changed = with_failover("prod", {"enabled": True}, maxConnections=120)
    pg = json.loads(changed["postgres-platform:postgres"])
    changed["postgres-platform:postgres"] = json.dumps({**pg, "settings": {**pg["settings"], "work_mem": "16MB"}})
    reloaded = run_program("prod", changed)
    assert all(named(reloaded, name).inputs == named(before, name).inputs for name in LEADS.values())
