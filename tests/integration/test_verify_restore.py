"""The scheduled verified restore run for real (render/restore_check.job_script, as the host's timer runs
it: `bash verify-restore.sh`) on a server of the shipped image with a posix pgBackRest repository: a good
backup verifies and is recorded; one corrupted file of the repository fails the job, is recorded, and the
exporter query's real values make PostgresRestoreVerificationFailed fire in promtool."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from postgres_platform.cli import backup_drill
from postgres_platform.harness.docker import docker
from postgres_platform.harness.servers import Servers
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import MONITORING_ROLE
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.ops import restore_check as restore_check_ops
from postgres_platform.render import monitoring, restore_check
from postgres_platform.render.backup import STANZA, RepoSecrets, command
from tests.integration.test_alert_rules import EVAL, expected, promtool

CONFIG = backup_drill.drill_config(load_stack_values(read_stack_values(stack_file("local"))), "posix", None)
ROWS = 5000


def must(servers: Servers, argv: list[str]) -> None:
    done = servers.pgbackrest(argv)
    assert done.returncode == 0, (argv, done.stderr or done.stdout)


@pytest.fixture(scope="module")
def posix() -> Iterator[Servers]:
    with Servers(CONFIG, backup_secrets=RepoSecrets(cipher_pass="verify-passphrase")) as started:
        must(started, command("stanza-create"))
        database = next(iter(CONFIG.databases))
        with psycopg.connect(started.superuser_dsn(database), autocommit=True) as conn:
            conn.execute("CREATE TABLE verified (id int PRIMARY KEY, note text)")
            conn.execute("INSERT INTO verified SELECT g, repeat('x', 100) FROM generate_series(1, %s) g", (ROWS,))
        must(started, command("--type=full", "backup", backup=CONFIG.backup))
        yield started


def run_job(servers: Servers) -> tuple[subprocess.CompletedProcess[str], float]:
    """The rendered job with this server's paths (Servers.verify_job), run as `bash verify-restore.sh`."""
    started = time.monotonic()
    done = restore_check_ops.run_job(servers.verify_job(timeout=900))
    return done, time.monotonic() - started


def rows(servers: Servers) -> list[tuple[Any, ...]]:
    with psycopg.connect(servers.superuser_dsn()) as conn:
        return conn.execute(f"SELECT ok, seconds, detail FROM {restore_check.TABLE} ORDER BY finished_at").fetchall()


def exporter_values(servers: Servers) -> dict[str, float]:
    """The custom query as postgres_exporter runs it: as the monitoring role, in the postgres database."""
    spec = monitoring.queries(servers.config)["pgplatform_restore_verification"]
    with psycopg.connect(servers.dsn(MONITORING_ROLE, "postgres", pooled=False)) as conn:
        cursor = conn.execute(spec["query"])
        (row,) = cursor.fetchall()
        return {d.name: float(v) for d, v in zip(cursor.description or [], row, strict=True)}


def copies_left(servers: Servers) -> str:
    return docker("ps", "-a", "-q", "--filter", f"name={servers.postgres_container}-verify-restore").stdout.strip()


def promtool_test(tmp_path: Path, values: dict[str, float], firing: dict[str, list[dict[str, Any]]]) -> str:
    """The stack's rules on series holding the query's values (the verification's age kept: promtool's
    clock starts at 0); `firing`: what each of the two alerts must fire (empty: quiet)."""
    rules = monitoring.rules(CONFIG, "local")
    (tmp_path / "rules.yml").write_text(monitoring.rules_yaml(CONFIG, "local"))
    age = time.time() - values["last_success_time_seconds"]
    primary = 'job="postgres-primary"'
    series = [
        {
            "series": f"pgplatform_restore_verification_last_success_time_seconds{{{primary}}}",
            "values": f"{EVAL * 60 - age:.0f}x{EVAL + 5}",
        },
        {
            "series": f"pgplatform_restore_verification_latest_ok{{{primary}}}",
            "values": f"{values['latest_ok']:g}x{EVAL + 5}",
        },
    ]
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    test = {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": f"{EVAL}m", "alertname": name, "exp_alerts": alerts} for name, alerts in firing.items()
        ],
    }
    assert set(firing) <= set(by_name)
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [test]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False, width=1000))
    done = promtool(tmp_path, "test", "rules", "tests.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_good_backup_verifies_then_a_corrupted_repository_fails_and_alerts(posix: Servers, tmp_path: Path) -> None:
    before = exporter_values(posix)
    assert before == {"last_success_time_seconds": 0, "latest_time_seconds": 0, "latest_ok": -1}  # no table yet

    good, seconds = run_job(posix)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.splitlines()[-1].startswith("verified restore: ok=true in ")
    print(f"verified restore (good backup): {seconds:.1f} s")
    ((ok, recorded, detail),) = rows(posix)
    assert ok is True and 0 < recorded <= seconds and detail.splitlines()[-1] == "verified"
    assert f"read 1 relations of {next(iter(CONFIG.databases))}" in detail  # the table written above was read
    assert not copies_left(posix)
    # The copy promoted (a new timeline) and archived nothing: no history file reached the repository.
    assert not list((posix.repo / "archive" / STANZA).rglob("*.history*"))
    verified = exporter_values(posix)
    assert verified["latest_ok"] == 1 and abs(verified["last_success_time_seconds"] - time.time()) < 120
    assert verified["latest_time_seconds"] == verified["last_success_time_seconds"]
    promtool_test(tmp_path, verified, {"PostgresRestoreVerificationFailed": [], "PostgresRestoreNotVerified": []})

    newest = sorted(d for d in (posix.repo / "backup" / STANZA).iterdir() if d.name.endswith("F"))[-1]
    largest = max((f for f in (newest / "pg_data").rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)
    data = bytearray(largest.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    largest.write_bytes(bytes(data))

    bad, bad_seconds = run_job(posix)
    print(f"verified restore (corrupted repository): {bad_seconds:.1f} s, detail: {rows(posix)[-1][2]!r}")
    assert bad.returncode != 0 and "verified restore: ok=false" in bad.stdout, bad.stdout + bad.stderr
    assert not copies_left(posix)
    recorded_rows = rows(posix)
    assert [r[0] for r in recorded_rows] == [True, False] and recorded_rows[-1][2]  # the failure says why
    failed = exporter_values(posix)
    assert failed["latest_ok"] == 0 and failed["last_success_time_seconds"] == verified["last_success_time_seconds"]
    assert failed["latest_time_seconds"] > failed["last_success_time_seconds"]
    rule = next(
        r
        for g in monitoring.rules(CONFIG, "local")["groups"]
        for r in g["rules"]
        if r["alert"] == "PostgresRestoreVerificationFailed"
    )
    fires = expected(rule, {"job": "postgres-primary"}, failed["latest_ok"])
    promtool_test(tmp_path, failed, {"PostgresRestoreVerificationFailed": [fires], "PostgresRestoreNotVerified": []})
