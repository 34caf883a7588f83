"""Patroni's config, its secrets file and passwords SQL, etcd's flags and the proxy's health checks, rendered (pure). The real
Patroni, etcd and HAProxy run them in tests/integration/test_failover_drill.py."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from postgres_platform.cli import failover_drill
from postgres_platform.model.load import parse
from postgres_platform.render import patroni_rolling
from postgres_platform.render.files import reload_if_running
from postgres_platform.render.patroni import (
    CA_FILE,
    PASSWORDS_SQL,
    ROLLING_SCRIPT,
    console_conninfo,
    dynamic_parameters,
    etcd_args,
    haproxy_cfg,
    lead_command,
    passwords_sql,
    patroni_secrets,
    patroni_yaml,
    restart_command,
    restart_parameters,
    rolling_input,
    set_passwords_step,
)
from postgres_platform.render.patroni_rolling import restart_order
from postgres_platform.render.postgres import server_settings
from postgres_platform.render.scram import stable_verifier
from tests.helpers import fake_commands, valid_config

ETCD = ["10.0.1.2:2379", "10.0.1.3:2379", "10.0.1.4:2379"]


def member(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "scope": "prod",
        "name": "db-0",
        "connect_address": "10.0.1.2:5432",
        "rest_address": "10.0.1.2:8008",
        "etcd_hosts": ETCD,
        "data_dir": "/var/lib/postgresql/data",
        "bin_dir": "/usr/lib/postgresql/17/bin",
        "parameters": {"max_connections": "100", "shared_buffers": "256MB"},
        "pg_hba": ["local all all peer", "hostssl all all 10.0.1.0/24 scram-sha-256"],
        "synchronous_mode": True,
        "maximum_lag_on_failover": 1048576,
        "failsafe_mode": True,
        "use_pg_rewind": True,
        "create_replica_methods": ["pgbackrest", "basebackup"],
        "pgbackrest_stanza": "main",
        "rest_username": "patroni",
    }
    return kwargs | overrides


def parsed(**overrides: Any) -> dict[str, Any]:
    loaded = yaml.safe_load(patroni_yaml(**member(**overrides)))
    assert isinstance(loaded, dict)
    return loaded


def test_the_programs_settings_are_dynamic_config_with_the_durability_switches() -> None:
    dcs = parsed()["bootstrap"]["dcs"]
    assert dcs["postgresql"]["parameters"] == {"max_connections": "100", "shared_buffers": "256MB"}
    assert dcs["synchronous_mode"] is True
    assert dcs["synchronous_mode_strict"] is False
    assert dcs["maximum_lag_on_failover"] == 1048576
    assert dcs["failsafe_mode"] is True
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (30, 10, 10)


def test_a_member_listens_on_its_addresses_and_finds_etcd() -> None:
    config = parsed()
    assert (config["scope"], config["name"]) == ("prod", "db-0")
    assert config["postgresql"]["listen"] == config["postgresql"]["connect_address"] == "10.0.1.2:5432"
    assert config["restapi"]["listen"] == config["restapi"]["connect_address"] == "10.0.1.2:8008"
    assert config["etcd3"] == {"hosts": ETCD}
    assert config["postgresql"]["pg_hba"] == ["local all all peer", "hostssl all all 10.0.1.0/24 scram-sha-256"]


def test_replicas_come_from_pgbackrest_then_basebackup() -> None:
    postgresql = parsed()["postgresql"]
    assert postgresql["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert postgresql["pgbackrest"]["command"] == "pgbackrest --stanza=main --delta restore"
    assert postgresql["pgbackrest"]["keep_data"] is True
    assert "archive-get" in postgresql["recovery_conf"]["restore_command"]
    only_basebackup = parsed(create_replica_methods=["basebackup"], pgbackrest_stanza=None)["postgresql"]
    assert "pgbackrest" not in only_basebackup and "recovery_conf" not in only_basebackup


def test_no_password_in_the_yaml_only_usernames() -> None:
    config = parsed()
    authentication = config["postgresql"]["authentication"]
    assert authentication == {
        "superuser": {"username": "postgres"},
        "replication": {"username": "replicator"},
        "rewind": {"username": "rewind_user"},
    }
    assert config["restapi"]["authentication"] == {"username": "patroni"}
    assert "password" not in keys(config)


def keys(node: object) -> set[str]:
    """Every mapping key at any depth."""
    if isinstance(node, dict):
        return set(node) | {k for value in node.values() for k in keys(value)}
    if isinstance(node, list):
        return {k for value in node for k in keys(value)}
    return set()


def test_watchdog_mode_is_chosen_and_defaults_to_automatic() -> None:
    assert parsed()["watchdog"] == {"mode": "automatic"}
    assert parsed(watchdog_mode="off")["watchdog"] == {"mode": "off"}


def merged(*documents: str) -> dict[str, Any]:
    """Patroni's merge of a config directory's files (patch_config: nested mappings merged, later wins)."""

    def patch(into: dict[str, Any], other: dict[str, Any]) -> None:
        for key, value in other.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                patch(into[key], value)
            else:
                into[key] = value

    result: dict[str, Any] = {}
    for text in documents:
        patch(result, yaml.safe_load(text))
    return result


def test_the_secrets_file_completes_patroni_yml_with_each_password_kept_literally() -> None:
    tricky = "a=b'c\"d $HOME `x` : # {y}\nz"  # what YAML or a shell would read otherwise: kept as it is
    config = merged(
        patroni_yaml(**member(rest_username="patroni")),
        patroni_secrets(superuser=tricky, replication="r", rewind="w", restapi="a"),
    )
    auth = config["postgresql"]["authentication"]
    assert auth == {
        "superuser": {"username": "postgres", "password": tricky},
        "replication": {"username": "replicator", "password": "r"},
        "rewind": {"username": "rewind_user", "password": "w"},
    }
    assert config["restapi"]["authentication"] == {"username": "patroni", "password": "a"}
    assert "restapi" not in yaml.safe_load(patroni_secrets(superuser="s", replication="r", rewind="w", restapi=None))
    with pytest.raises(ValueError, match="rewind password"):
        patroni_secrets(superuser="s", replication="r", rewind="", restapi=None)


def test_the_passwords_sql_sets_verifiers_never_the_passwords() -> None:
    sql = passwords_sql(superuser="s3cr3t-s", replication="s3cr3t-r", rewind="s3cr3t-w")
    assert "s3cr3t" not in sql
    assert sql.splitlines() == [
        f"ALTER ROLE \"postgres\" WITH PASSWORD '{stable_verifier('postgres', 's3cr3t-s')}';",
        f"ALTER ROLE \"replicator\" WITH PASSWORD '{stable_verifier('replicator', 's3cr3t-r')}';",
        f"ALTER ROLE \"rewind_user\" WITH PASSWORD '{stable_verifier('rewind_user', 's3cr3t-w')}';",
    ]


FAKE_DOCKER = """#!/bin/sh
# docker as the reload sees it: a running container whose psql answers $RECOVERY (none: it fails)
echo "$*" >> "$CALLS"
case "$*" in
  inspect*) echo true ;;
  *"SELECT pg_is_in_recovery()"*) [ -n "$RECOVERY" ] || exit 2; echo "$RECOVERY" ;;
esac
"""


@pytest.mark.parametrize(
    ("recovery", "applied", "reloaded"), [("f", True, True), ("t", False, True), ("", False, False)]
)
def test_the_passwords_are_set_on_the_leader_skipped_on_a_replica_and_a_silent_member_fails_the_reload(
    tmp_path: Path, recovery: str, applied: bool, reloaded: bool
) -> None:
    calls = tmp_path / "calls"
    env = fake_commands(tmp_path / "bin", {"docker": FAKE_DOCKER}, CALLS=str(calls), RECOVERY=recovery)
    script = reload_if_running("pg", set_passwords_step("pg", answer_seconds=4))
    done = subprocess.run(["sh", "-eu", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    lines = calls.read_text().splitlines()
    assert any(line.endswith(f"-f {PASSWORDS_SQL}") for line in lines) is applied
    assert ("kill --signal=HUP pg" in lines) is reloaded  # no SIGHUP onto passwords the roles lack
    assert done.returncode == (0 if reloaded else 1)
    if not reloaded:
        assert sum("pg_is_in_recovery" in line for line in lines) == 2  # asked again within answer_seconds
        assert done.stderr == (
            "postgres-platform: pg's Postgres did not answer for 4 s: the new passwords are not set and Patroni is"
            " not reloaded; run pulumi up again once it answers\n"
        )


def test_settings_patroni_owns_are_dropped_from_the_programs_and_refused_in_the_config() -> None:
    settings = server_settings(parse(valid_config()))
    assert "listen_addresses" in settings
    parameters = dynamic_parameters(settings)
    assert "listen_addresses" not in parameters
    assert parameters["max_connections"] == str(settings["max_connections"])
    assert parameters["password_encryption"] == "scram-sha-256"
    with pytest.raises(ValueError, match="listen_addresses is Patroni's own"):
        patroni_yaml(**member(parameters={"listen_addresses": "*"}))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"connect_address": "10.0.1.2"}, "connect_address must be host:port"),
        ({"etcd_hosts": []}, "at least one etcd member"),
        ({"pgbackrest_stanza": None}, "no pgbackrest_stanza"),
        ({"create_replica_methods": ["wal-e"]}, "pgbackrest and/or basebackup"),
        ({"ttl": 20}, "ttl 20 must be at least loop_wait"),
        ({"maximum_lag_on_failover": -1}, "maximum_lag_on_failover must be >= 0"),
        ({"pg_hba": ["host all all 0.0.0.0/0 trust\nlocal all all trust"]}, "one line"),
    ],
)
def test_bad_inputs_are_one_line_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        patroni_yaml(**member(**overrides))
    assert "\n" not in str(raised.value)


MEMBERS = {
    "db-0": ("10.0.1.2:2379", "10.0.1.2:2380"),
    "db-1": ("10.0.1.3:2379", "10.0.1.3:2380"),
    "witness": ("10.0.1.4:2379", "10.0.1.4:2380"),
}


def test_an_etcd_member_listens_on_its_own_addresses_and_knows_all_three_peers() -> None:
    flags = dict(
        flag.removeprefix("--").split("=", 1)
        for flag in etcd_args(name="db-1", members=MEMBERS, data_dir="/var/lib/etcd", token="prod")
    )
    assert flags["name"] == "db-1"
    assert flags["listen-client-urls"] == flags["advertise-client-urls"] == "http://10.0.1.3:2379"
    assert flags["listen-peer-urls"] == flags["initial-advertise-peer-urls"] == "http://10.0.1.3:2380"
    assert flags["initial-cluster"] == (
        "db-0=http://10.0.1.2:2380,db-1=http://10.0.1.3:2380,witness=http://10.0.1.4:2380"
    )
    assert (flags["initial-cluster-state"], flags["initial-cluster-token"]) == ("new", "prod")


def test_etcd_refuses_an_even_cluster_an_unknown_member_and_a_shared_address() -> None:
    with pytest.raises(ValueError, match="odd number of members, not 2"):
        etcd_args(name="db-0", members=dict(list(MEMBERS.items())[:2]), data_dir="/d", token="t")
    with pytest.raises(ValueError, match="not among the members"):
        etcd_args(name="db-9", members=MEMBERS, data_dir="/d", token="t")
    clash = MEMBERS | {"witness": ("10.0.1.2:2379", "10.0.1.4:2380")}
    with pytest.raises(ValueError, match="is given twice"):
        etcd_args(name="db-0", members=clash, data_dir="/d", token="t")


def test_the_proxy_checks_patronis_primary_endpoint_on_each_rest_port() -> None:
    cfg = haproxy_cfg(
        listen="127.0.0.1:5000",
        members={"db-0": ("10.0.1.2:5432", "10.0.1.2:8008"), "db-1": ("10.0.1.3:5432", "10.0.1.3:8008")},
    )
    lines = [line.strip() for line in cfg.splitlines()]
    assert "http-check send meth GET uri /primary" in lines
    assert "http-check expect status 200" in lines
    assert "server db-0 10.0.1.2:5432 check addr 10.0.1.2 port 8008" in lines
    assert "server db-1 10.0.1.3:5432 check addr 10.0.1.3 port 8008" in lines
    assert any("on-marked-down shutdown-sessions" in line for line in lines)
    assert "uri /replica" in haproxy_cfg(listen="127.0.0.1:5001", members={}, check="/replica")


def test_the_drill_fails_on_a_lost_commit_or_no_rejoin() -> None:
    def result(lost: int, rejoined: bool) -> dict[str, Any]:
        phase = {"seconds": 1.0, "acknowledged": 10, "acknowledgedLost": 0, "failedTransactions": 0}
        return {"failover": phase, "switchover": phase | {"acknowledgedLost": lost}, "rejoined": rejoined}

    assert failover_drill.verdict(result(0, True)) == 0
    assert failover_drill.verdict(result(1, True)) == 1
    assert failover_drill.verdict(result(0, False)) == 1


def test_the_restart_order_is_the_pending_replicas_then_the_leader() -> None:
    cluster: list[dict[str, Any]] = [
        {"name": "db-1", "role": "leader", "pending_restart": True},
        {"name": "db-3", "role": "replica"},
        {"name": "db-2", "role": "sync_standby", "pending_restart": True},
    ]
    assert [m["name"] for m in restart_order(cluster)] == ["db-2", "db-1"]
    assert restart_order([{"name": "db-1", "role": "leader"}]) == []


def test_the_restart_script_is_triggered_by_restart_only_settings_and_reads_secrets_from_stdin() -> None:
    config = {"postgresql": {"parameters": {"work_mem": "4MB", "max_connections": "100", "shared_buffers": "1GB"}}}
    assert restart_parameters(config) == {"max_connections": "100", "shared_buffers": "1GB"}
    line = restart_command("pg", "https://10.0.1.10:8008", {"db-1": console_conninfo("10.0.1.10")}, 5)
    argv = shlex.split(line)
    assert argv[:6] == ["docker", "exec", "-i", "pg", "python3", "-c"]
    assert argv[6] == ROLLING_SCRIPT
    assert argv[7:] == [
        "restart",
        "https://10.0.1.10:8008",
        CA_FILE,
        json.dumps({"db-1": console_conninfo("10.0.1.10")}),
        "5",
    ]
    assert "sslmode=verify-full" in console_conninfo("10.0.1.10")
    assert json.loads(rolling_input("s3cret", {"db-1": "a"})) == {"rest": "patroni:s3cret", "poolers": {"db-1": "a"}}


def test_a_pause_that_fails_is_resumed_and_the_member_not_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []

    def console(_conninfo: str, _password: str, statement: str) -> None:
        sent.append(statement)
        if statement == "PAUSE":
            raise patroni_rolling.Failed("PgBouncer's PAUSE did not return in 60 s")

    monkeypatch.setattr(patroni_rolling, "console", console)
    monkeypatch.setattr(patroni_rolling, "restart", lambda *_: sent.append("restart"))
    member = {"name": "db-2", "role": "replica", "api_url": "https://10.0.1.11:8008/patroni"}
    with pytest.raises(patroni_rolling.Failed, match="PAUSE did not return"):
        patroni_rolling.restart_paused(patroni_rolling.Api("ca", "u:p"), member, ("host=x", "pw"), 0)
    assert sent == ["PAUSE", "RESUME"]  # resumed (it may be left pausing), never restarted
    sent.clear()
    monkeypatch.setattr(patroni_rolling, "console", lambda *args: sent.append(args[2]))
    patroni_rolling.restart_paused(patroni_rolling.Api("ca", "u:p"), member, ("host=x", "pw"), 0)
    assert sent == ["PAUSE", "restart", "RESUME"]


def test_a_lead_runs_in_the_member_container_only_where_it_exists() -> None:
    line = lead_command("pg", "https://10.0.1.11:8008", {"db-1": "host=a"}, 5, "db-2")
    probe, _, rest = line.partition("; then ")
    assert shlex.split(probe) == ["if", "docker", "container", "inspect", "pg", ">/dev/null", "2>&1"]
    switch = rest.partition("; else ")[0]
    assert shlex.split(switch)[:7] == ["docker", "exec", "-i", "pg", "python3", "-c", ROLLING_SCRIPT]
    assert shlex.split(switch)[7:] == ["lead", "https://10.0.1.11:8008", CA_FILE, '{"db-1": "host=a"}', "5", "db-2"]
    done = subprocess.run(["sh", "-c", line.replace("docker container inspect", "false")], capture_output=True)
    assert (done.returncode, done.stdout) == (0, b"no member yet: nothing to switch\n")


@pytest.mark.parametrize(
    ("member", "synchronous", "why"),
    [
        ({"role": "sync_standby", "state": "streaming"}, True, None),
        ({"role": "replica", "state": "streaming"}, False, None),
        ({"role": "replica", "state": "streaming"}, True, "db-2 is not the synchronous standby yet"),
        ({"role": "replica", "state": "starting"}, False, "db-2 is replica, starting"),
        ({"role": "leader", "state": "running"}, False, "db-2 is leader, running"),
    ],
)
def test_a_member_takes_the_lead_only_once_it_streams_and_is_the_sync_standby_where_required(
    member: dict[str, str], synchronous: bool, why: str | None
) -> None:
    cluster = {"members": [{"name": "db-1", "role": "leader", "state": "running"}, {"name": "db-2", **member}]}
    assert patroni_rolling.not_ready(cluster, "db-2", synchronous) == why
    assert patroni_rolling.not_ready(cluster, "db-3", synchronous) == "db-3 is not in the cluster"


class FakeApi(patroni_rolling.Api):
    """Patroni's answers for a lead: db-1 leads, db-2 the synchronous standby; /switchover answers `status`."""

    def __init__(self, status: int) -> None:
        super().__init__("ca", "u:p")
        self.status = status
        self.posted: list[Any] = []

    def call(self, url: str, method: str = "GET", body: Any = None, timeout: float = 10) -> tuple[int, Any]:
        members = [
            {"name": "db-1", "role": "leader", "state": "running", "api_url": "https://a:8008/patroni"},
            {"name": "db-2", "role": "sync_standby", "state": "streaming", "api_url": "https://b:8008/patroni"},
        ]
        if method == "POST":
            self.posted.append(body)
            return self.status, "switchover failed"
        return 200, {"/cluster": {"members": members}, "/config": {"synchronous_mode": True}}.get(url[9:], {})


def test_a_lead_pauses_every_pooler_and_resumes_them_whatever_the_switchover_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(patroni_rolling, "console", lambda conninfo, _pw, statement: sent.append((conninfo, statement)))
    monkeypatch.setattr("postgres_platform.render.patroni_rolling.time.sleep", lambda _s: None)
    poolers, secrets = {"db-1": "host=a", "db-2": "host=b"}, {"poolers": {"db-1": "x", "db-2": "y"}}
    api = FakeApi(503)
    with pytest.raises(patroni_rolling.Failed, match="POST /switchover to db-2: HTTP 503"):
        patroni_rolling.lead(api, "https://a", "db-2", poolers, 0, secrets)
    assert api.posted == [{"leader": "db-1", "candidate": "db-2"}]
    pauses = [("host=a", "PAUSE"), ("host=b", "PAUSE")]
    resumes = [("host=a", "RECONNECT"), ("host=a", "RESUME"), ("host=b", "RECONNECT"), ("host=b", "RESUME")]
    assert sent == pauses + resumes
    sent.clear()
    patroni_rolling.lead(FakeApi(200), "https://a", "db-1", poolers, 0, secrets)  # db-1 leads already
    assert sent == []
