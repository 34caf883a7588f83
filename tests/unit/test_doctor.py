"""pgplat doctor: per job, what the machine has and lacks. The pulumi CLI is a tiny script on a PATH of the
test's own (doctor's parsing of its answers is under test, not an engine); the Docker API's answers are
parsed from given (status, body) pairs; a stack's secrets come from `pulumi config` or the stack file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from postgres_platform.cli import doctor
from postgres_platform.cli.doctor import checks as doctor_checks
from postgres_platform.cli.doctor import docker_engine, engine_build, pulumi_up
from postgres_platform.cli.doctor import secrets as doctor_secrets
from postgres_platform.model.images import BUILDS
from postgres_platform.model.stackfile import stack_file
from postgres_platform.offline.secrets import Secret
from tests.helpers import skip_without_real_servers

SECRET_KEY = "postgres-platform:existingAdminPassword"


def fake_pulumi(
    directory: Path, version: str = "v3.274.0", plugins: str = "[]", config: str | None = None, whoami: str = ""
) -> Path:
    """A `pulumi` that answers `version`, `plugin ls --json`, `config --json -s STACK` (exit 255 when config
    is None, as the CLI does without a backend login) and `whoami --json` (exit 3 when empty). It runs cat
    by its full path: the test's PATH may hold only this directory."""
    directory.mkdir(exist_ok=True)
    (directory / "plugins.json").write_text(plugins)
    (directory / "config.json").write_text(config or "")
    (directory / "whoami.json").write_text(whoami)
    not_logged_in = "echo 'error: this command requires logging in' >&2; exit 3"
    no_stack = "echo 'error: no stack named' >&2; exit 255"
    answer_whoami = '"$cat" "$here/whoami.json"' if whoami else not_logged_in
    answer_config = '"$cat" "$here/config.json"' if config is not None else no_stack
    script = directory / "pulumi"
    script.write_text(
        f'#!/bin/sh\nhere="{directory}"\ncat={shutil.which("cat")}\ncase "$1" in\n'
        f'  version) echo "{version}" ;;\n'
        '  plugin) "$cat" "$here/plugins.json" ;;\n'
        f"  whoami) {answer_whoami} ;;\n"
        f"  config) {answer_config} ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    return directory


def executable(directory: Path, name: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("#!/bin/sh\nexit 0\n")
    (directory / name).chmod(0o755)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, dict[str, Any]]]:
    code = doctor.main([*argv, "--json"])
    rows = json.loads(capsys.readouterr().out)
    return code, {row["check"]: row for row in rows}


def test_the_cli_version_is_parsed_and_compared_with_the_sdk() -> None:
    assert doctor_checks.parse_version("v3.274.0\n") == (3, 274, 0)
    assert doctor_checks.parse_version("warning: x\nv3.274.0-dev.0") == (3, 274, 0)
    assert doctor_checks.parse_version("no version here") is None
    assert pulumi_up.cli_check("/x/pulumi", "v3.274.0", "3.272.0", "v3.274.0").ok
    old = pulumi_up.cli_check("/x/pulumi", "v3.100.0", "3.272.0", "v3.274.0")
    assert not old.ok and "older than the SDK" in old.detail and "engine.sh" in (old.fix or "")
    missing = pulumi_up.cli_check(None, None, "3.272.0", "v3.274.0")
    assert not missing.ok and "builds v3.274.0" in missing.detail


def test_engine_sh_and_providers_tsv_are_read_for_what_they_build() -> None:
    assert doctor_checks.engine_script_versions()["CLI_VERSION"].startswith("v3.")
    assert pulumi_up.engine_plan()["postgresql"] == pulumi_up.needed_plugins()["postgresql"]


def test_plugins_the_sdks_ask_for_against_plugin_ls_and_path() -> None:
    needed = pulumi_up.needed_plugins()
    assert {"postgresql", "docker", "random", "tls", "command", "hcloud"} <= set(needed)
    listed = pulumi_up.parse_plugin_list(
        '[{"name": "postgresql", "kind": "resource", "version": "3.18.2"},'
        ' {"name": "python", "kind": "language", "version": "3.1.0"}]'
    )
    assert listed == {"postgresql": ["3.18.2"]}
    assert pulumi_up.parse_plugin_list("not json") == {}
    assert pulumi_up.plugin_check("postgresql", "3.18.2", ["3.18.2"], None, "3.18.2").ok
    assert pulumi_up.plugin_check("random", "4.21.4", [], "/bin/pulumi-resource-random", None).ok
    other = pulumi_up.plugin_check("tls", "5.6.2", ["5.0.0"], None, "5.6.2")
    assert not other.ok and "installed: 5.0.0" in other.detail
    assert other.fix == "pulumi plugin install resource tls 5.6.2"
    assert "does not build it" in pulumi_up.plugin_check("hcloud", "1.43.3", [], None, None).detail
    unused = pulumi_up.plugin_check("hcloud", "1.43.3", [], None, None, used=False)
    assert not unused.ok and not unused.required and "this stack uses none" in unused.detail


def test_the_packages_a_stack_registers_resources_of() -> None:
    tokens = ["docker:index/container:Container", "pulumi:providers:hcloud", "postgres-platform:index:Server"]
    assert pulumi_up.packages_of(tokens) == {"docker", "hcloud", "postgres-platform"}


def test_up_with_a_cli_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = pulumi_up.needed_plugins()
    plugins = json.dumps([{"name": "postgresql", "kind": "resource", "version": wanted["postgresql"]}])
    bin_dir = fake_pulumi(tmp_path / "bin", plugins=plugins)
    executable(bin_dir, "pulumi-resource-random")
    monkeypatch.setenv("PATH", str(bin_dir))
    code, checks = run_json(capsys, "--job", "up")
    assert code == 1  # other plugins are missing
    assert checks["pulumi CLI"]["ok"] and "v3.274.0" in checks["pulumi CLI"]["detail"]
    assert checks["plugin postgresql"]["ok"] and checks["plugin random"]["ok"]
    assert not checks["plugin tls"]["ok"] and checks["plugin tls"]["fix"].startswith("pulumi plugin install")
    assert not checks["pulumi-language-python"]["ok"]
    assert checks["stack secrets"]["ok"] is None  # no stack given: not checked, not a failure
    assert not checks["backend login"]["ok"] and "requires logging in" in checks["backend login"]["detail"]
    assert {row["job"] for row in checks.values()} == {"up"}


def test_an_old_cli_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(fake_pulumi(tmp_path / "bin", version="v3.10.0")))
    _, checks = run_json(capsys, "--job", "up")
    assert not checks["pulumi CLI"]["ok"] and "older than the SDK" in checks["pulumi CLI"]["detail"]


def test_secrets_from_pulumi_config_by_name_never_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        SECRET_KEY: {"secret": True},
        "postgres-platform:somethingElse": {"secret": True, "value": "the-value-never-shown"},
        "postgres-platform:target": {"secret": False, "value": "existing"},
    }
    whoami = json.dumps({"user": "ops", "url": "postgres://ops:the-state-password@db.internal/pulumi"})
    monkeypatch.setenv("PATH", str(fake_pulumi(tmp_path / "bin", config=json.dumps(config), whoami=whoami)))
    code = doctor.main(["legacy", "--job", "up", "--json"])
    out = capsys.readouterr().out
    assert "the-value-never-shown" not in out and "the-state-password" not in out
    checks = {row["check"]: row for row in json.loads(out)}
    assert checks["secrets source"]["detail"] == "pulumi config -s legacy"
    assert checks["backend login"]["ok"] and checks["backend login"]["detail"] == "ops at postgres://db.internal/pulumi"
    assert checks[f"secret {SECRET_KEY}"]["ok"] and "set as a secret" in checks[f"secret {SECRET_KEY}"]["detail"]
    extra = checks["secret postgres-platform:somethingElse"]
    assert extra["ok"] and not extra["required"]
    assert "secret postgres-platform:target" not in checks  # plain values are not secrets
    assert code == 1  # the plugins


def test_a_failing_pulumi_config_falls_back_to_the_stack_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(fake_pulumi(tmp_path / "bin", config=None)))
    _, checks = run_json(capsys, "legacy", "--job", "up")
    source = checks["secrets source"]["detail"]
    assert "Pulumi.legacy.yaml" in source and "`pulumi config -s legacy` failed: error: no stack named" in source
    assert not checks[f"secret {SECRET_KEY}"]["ok"]
    # The program, run under mocks for the legacy stack (an adopted server), uses no Docker or Hetzner.
    assert checks["plugins needed"]["detail"] == "this stack registers resources of: postgresql, random"
    assert checks["plugin postgresql"]["required"] and not checks["plugin docker"]["required"]
    assert not checks["plugin hcloud"]["required"]


def test_a_stack_secrets_missing_then_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi CLI: the stack file is read
    code, checks = run_json(capsys, "legacy")
    assert code == 1
    missing = checks[f"secret {SECRET_KEY}"]
    assert missing["job"] == "up" and not missing["ok"]
    assert f"pulumi config set --secret {SECRET_KEY}" in missing["fix"]
    assert checks["secrets source"]["detail"].endswith("no pulumi CLI")

    document = yaml.safe_load(stack_file("legacy").read_text())
    document["config"][SECRET_KEY] = {"secure": "AAABAMadeUpCipherText"}
    path = tmp_path / "Pulumi.legacy.yaml"
    path.write_text(yaml.safe_dump(document))
    doctor.main(["--stack-file", str(path), "--job", "up", "--json"])
    out = capsys.readouterr().out
    assert "AAABAMadeUpCipherText" not in out
    checks = {c["check"]: c for c in json.loads(out)}
    assert checks[f"secret {SECRET_KEY}"]["ok"] and checks[f"secret {SECRET_KEY}"]["fix"] is None
    assert "stack file" in checks["secrets source"]["detail"]


def test_a_missing_stack_file_could_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor.main(["--stack-file", str(tmp_path / "Pulumi.x.yaml")]) == 2
    assert "Pulumi.x.yaml" in capsys.readouterr().err


def test_every_row_has_the_same_keys_and_the_exit_code_follows_required_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = doctor.main(["--job", "tests", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert all(set(row) == {"job", "check", "ok", "required", "detail", "fix"} for row in rows)
    assert {row["job"] for row in rows} == {"tests"}
    assert {row["check"] for row in rows} >= {"venv", "package", "pytest", "ruff", "mypy"}
    by_name = {row["check"]: row for row in rows}
    assert by_name["pytest"]["ok"]  # this test runs under it
    assert not by_name["venv"]["required"] and not by_name["ruff"]["required"]
    assert code == (1 if any(r["ok"] is False and r["required"] for r in rows) else 0)


def test_the_text_report_is_a_table_per_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    assert doctor.main(["legacy", "--job", "up"]) == 1
    out = capsys.readouterr().out
    assert "up: pulumi up: NOT READY" in out
    assert "MISSING" in out and f"fix: pulumi config set --secret {SECRET_KEY}" in out
    assert "tests:" not in out  # only the job asked about


def test_docker_host_wins_over_the_default_sockets(tmp_path: Path) -> None:
    socket = tmp_path / "docker.sock"
    assert docker_engine.docker_socket({"DOCKER_HOST": f"unix://{socket}"}) == str(socket)
    absent = docker_engine.docker_check({"DOCKER_HOST": f"unix://{socket}"})[0]
    assert not absent.ok and "dockerd.sh start" in (absent.fix or "")
    socket.touch()  # a file, not a listening socket: nothing answers
    assert not docker_engine.docker_check({"DOCKER_HOST": f"unix://{socket}"})[0].ok
    assert docker_engine.docker_check({"DOCKER_HOST": "tcp://127.0.0.1:2375"})[0].ok is None  # not asked: not a socket


def test_the_engine_ping_and_the_images_are_read_from_the_api_answers(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path / 'docker.sock'}"}
    assert docker_engine.docker_check(env, lambda _socket, url: (200, "OK") if url == "/_ping" else (404, "")) == (
        docker_engine.engine(True, f"{tmp_path / 'docker.sock'}: answers"),
        True,
    )
    assert docker_engine.docker_check(env, lambda _socket, _url: (500, "")) == (
        docker_engine.engine(False, f"{tmp_path / 'docker.sock'}: ping answered 500"),
        False,
    )
    # An engine on the project's socket with DOCKER_HOST unset: it answers, the docker client would not find it.
    unset = docker_engine.docker_check({}, lambda _socket, _url: (200, "OK"))
    if docker_engine.docker_socket({}) not in (None, docker_engine.CLIENT_DEFAULT):
        assert unset[1] and not unset[0].ok and (unset[0].fix or "").startswith("export DOCKER_HOST=unix://")
    absent = next(iter(BUILDS))
    asked: list[str] = []

    def answer(_socket: str, url: str) -> tuple[int, str]:
        asked.append(url)
        return (404, "{}") if absent in url else (200, "{}")

    checks = {c.check: c for c in docker_engine.image_checks("/x.sock", answer)}
    assert set(checks) == {f"image {ref}" for ref in BUILDS}
    assert not checks[f"image {absent}"].ok and "build_images.py" in (checks[f"image {absent}"].fix or "")
    assert all(c.ok for name, c in checks.items() if name != f"image {absent}")
    assert f"/images/{absent}/json" in asked  # the reference as the API takes it: name/with/slashes:tag


def test_the_engine_build_is_found_in_its_cache(tmp_path: Path) -> None:
    version = doctor_checks.engine_script_versions()["CLI_VERSION"]
    settings = {"CLI_VERSION": version}
    engine = tmp_path / "engine"
    current = engine / f"pulumi-{version}-cccccccccccc"
    executable(current, "pulumi")  # no .complete: an interrupted build
    assert engine_build.build_check([tmp_path], settings, current.name)[0].ok is False
    stale = engine / f"pulumi-{version}-bbbbbbbbbbbb"
    executable(stale, "pulumi")
    (stale / ".complete").touch()
    check, directory = engine_build.build_check([tmp_path], settings, current.name)
    assert directory == stale and not check.ok and "stale" in check.detail and "engine.sh" in (check.fix or "")
    check, _ = engine_build.build_check([tmp_path], settings, None)  # no go: no key to compare with
    assert check.ok and "not known to be current" in check.detail
    (current / ".complete").touch()
    check, directory = engine_build.build_check([tmp_path], settings, current.name)
    assert directory == current and check.ok and check.detail == f"{current} (current)"

    (current / "MISSING").write_text("pulumi-resource-postgresql\n")
    providers = engine_build.providers_check(current)
    assert not providers.ok and not providers.required and "pulumi-resource-postgresql" in providers.detail
    assert not doctor_checks.lacks([check, providers])  # ready: the runs that need a missing provider skip


def test_the_engine_key_is_the_one_engine_sh_computes(tmp_path: Path) -> None:
    """engine.sh's own key lines, run by bash over a small engine/ tree, against engine_key."""
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "go.mod").write_text("module x\n")
    (tmp_path / "cli" / "tools.go").write_text("package x\n")
    (tmp_path / "providers.tsv").write_text("# none\n")
    (tmp_path / "README.md").write_text("not hashed\n")
    settings = {"RECIPE": "2", "CLI_VERSION": "v3.1.0", "LANGHOST_VERSION": "v3.0.0", "EXEC_SDK_VERSION": "v3.1.0"}
    script = doctor_checks.ENGINE_SCRIPT.read_text()
    start = script.index('key_input="$(')
    lines = script[start : script.index("\n", script.index('key="pulumi-', start))]
    done = subprocess.run(
        ["bash", "-c", f'set -euo pipefail\n{lines}\nprintf "%s" "$key"'],
        env={**os.environ, "engine_src": str(tmp_path), "go_version": "go1.0 linux/amd64"}
        | {k: v for k, v in settings.items()},
        capture_output=True,
        text=True,
        check=True,
    )
    assert engine_build.engine_key(settings, "go1.0 linux/amd64", tmp_path) == done.stdout
    assert doctor_checks.script_assignments()["EXEC_SDK_VERSION"] == doctor_checks.script_assignments()["CLI_VERSION"]


def test_no_engine_build_needs_go(tmp_path: Path) -> None:
    checks = {c.check: c for c in engine_build.e2e_checks({"PGPLAT_CACHE": str(tmp_path), "PATH": str(tmp_path)})}
    assert not checks["engine build"].ok and "engine.sh" in (checks["engine build"].fix or "")
    assert not checks["go"].ok and checks["go"].required


def test_a_secret_an_environment_variable_stands_in_for() -> None:
    token = Secret("hcloud:token", "the Hetzner provider", False, env="HCLOUD_TOKEN")
    plain = Secret(SECRET_KEY, "target existing", False)
    checks = {
        c.check: c
        for c in doctor_secrets.secret_checks([token, plain], {SECRET_KEY: False}, "src", {"HCLOUD_TOKEN": "x"})
    }
    assert checks["secret hcloud:token"].ok and "HCLOUD_TOKEN is set" in checks["secret hcloud:token"].detail
    assert checks[f"secret {SECRET_KEY}"].ok and "not as a secret" in checks[f"secret {SECRET_KEY}"].detail
    missing = {c.check: c for c in doctor_secrets.secret_checks([token], {}, "src", {})}["secret hcloud:token"]
    assert not missing.ok and "HCLOUD_TOKEN" in (missing.fix or "")


def test_a_real_engine_agrees_with_the_harness() -> None:
    """Where the harness finds a Docker engine with every image (its own check, through the docker client),
    doctor's job is ready too."""
    skip_without_real_servers()
    found = {c.check: c for c in docker_engine.real_server_checks(dict(os.environ))}
    assert found["docker engine"].ok, found["docker engine"].detail
    assert all(found[f"image {ref}"].ok for ref in BUILDS)
    assert not doctor_checks.lacks([c for c in found.values() if c.check != "debootstrap"])


def test_a_passphrase_stack_needs_its_variable_set(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config: {}\n")
    assert doctor_secrets.passphrase_check(path, {}) is None  # nothing encrypted yet
    path.write_text("encryptionsalt: v1:abc\nconfig: {}\n")
    unset = doctor_secrets.passphrase_check(path, {})
    assert unset is not None and not unset.ok and "PULUMI_CONFIG_PASSPHRASE_FILE" in (unset.fix or "")
    given = doctor_secrets.passphrase_check(path, {"PULUMI_CONFIG_PASSPHRASE_FILE": "/secret/file"})
    assert given is not None and given.ok and "/secret/file" not in given.detail
    path.write_text("encryptionsalt: v1:abc\nsecretsprovider: awskms://alias/x\nconfig: {}\n")
    assert doctor_secrets.passphrase_check(path, {}) is None
