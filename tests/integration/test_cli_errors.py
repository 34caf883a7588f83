"""The incident tools against a real server that is down, refuses the password or the certificate: one line,
exit 2 (could not run); `live --watch` rides out a server restart and ends quietly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from postgres_platform.harness.ports import free_port
from postgres_platform.harness.servers import Servers
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import ROOT, read_stack_values, stack_file

LOCAL = load_stack_values(read_stack_values(stack_file("local"))).model_copy(update={"backup": None})
LIVE = [sys.executable, str(ROOT / "scripts" / "live_budget.py"), "local"]
WATCH_SECONDS = 60  # the bound on each wait below


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with Servers(LOCAL) as started:
        yield started


def dsn_file(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "admin.dsn"
    path.write_text(dsn)
    path.chmod(0o600)
    return path


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def assert_could_not_run(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert all(text in lines[0] for text in expected), lines[0]


def test_a_server_that_is_down_is_one_line_and_json_says_so(tmp_path: Path) -> None:
    nobody = f"host=127.0.0.1 port={free_port()} user=postgres dbname=postgres connect_timeout=3"
    done = run([*LIVE, "--dsn", nobody])
    assert_could_not_run(done, "cannot connect", "127.0.0.1")
    as_json = run([*LIVE, "--dsn", nobody, "--json"])
    assert_could_not_run(as_json)
    assert json.loads(as_json.stdout)["error"] == as_json.stderr.strip().removeprefix("error: ")
    grants = run([*LIVE, "--dsn", nobody, "--check-grants"])
    assert_could_not_run(grants, "cannot connect")


def test_a_wrong_password_is_one_line(servers: Servers, tmp_path: Path) -> None:
    no_password = servers.superuser_dsn().replace(f"password={servers.superuser_password}", "")
    assert servers.superuser_password not in no_password
    done = run([*LIVE, "--dsn", no_password], PGPASSWORD="not-the-password")
    assert_could_not_run(done, "password authentication failed")


def test_verify_full_without_a_ca_is_one_line(servers: Servers, tmp_path: Path) -> None:
    strict = servers.superuser_dsn() + f" sslmode=verify-full sslrootcert={tmp_path / 'no-such-ca.crt'}"
    done = run([*LIVE, "--dsn-file", str(dsn_file(tmp_path, strict))])
    assert_could_not_run(done, "cannot connect")


def test_a_missing_stack_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "Pulumi.x.yaml"
    done = run(
        [sys.executable, str(ROOT / "scripts" / "live_budget.py"), "--stack-file", str(missing), "--dsn", "host=x"]
    )
    assert_could_not_run(done, "Pulumi.x.yaml")


def read_until(process: subprocess.Popen[str], wanted: str) -> dict[str, object]:
    """The first --json --watch line holding key `wanted` (the process keeps printing one per refresh)."""
    assert process.stdout is not None
    deadline = time.monotonic() + WATCH_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        refresh: dict[str, object] = json.loads(line)
        assert "time" in refresh
        if wanted in refresh:
            return refresh
    raise AssertionError(f"no refresh with {wanted!r} within {WATCH_SECONDS} s")


def test_watch_rides_out_a_restart_and_ctrl_c_is_quiet(servers: Servers, tmp_path: Path) -> None:
    path = dsn_file(tmp_path, servers.superuser_dsn() + " connect_timeout=2")
    watch = subprocess.Popen(
        [*LIVE, "--dsn-file", str(path), "--json", "--watch", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = read_until(watch, "roles")
        assert first["problems"] == []  # its own connection is not counted: the superuser holds none
        assert {r["role"]: r["connections"] for r in first["roles"]}["postgres"] == 0  # type: ignore[attr-defined]
        subprocess.run(["docker", "stop", "--time", "10", servers.postgres_container], check=True, capture_output=True)
        down = read_until(watch, "downSince")
        assert "cannot connect" in str(down["error"])
        subprocess.run(["docker", "start", servers.postgres_container], check=True, capture_output=True)
        back = read_until(watch, "roles")
        assert back["problems"] == []
        watch.send_signal(signal.SIGINT)
        _, stderr = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 130 and "Traceback" not in stderr, stderr
