"""pgplat doctor [STACK | --stack-file PATH] [--json]: what this machine has and lacks for each job
(offline preflight and tests, pulumi up, real-server tests, a given stack's secrets). Exit 1 when something a
job needs is missing. --json: a list of {"check", "ok", "detail", "fix"}."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from postgres_platform.cli.errors import COULD_NOT_RUN, FOUND_PROBLEMS, command
from postgres_platform.cli.stacks import ChosenStack, load_chosen
from postgres_platform.offline import secrets

Check = dict[str, Any]
DEFAULT_SOCKETS = ("/run/postgres-platform-docker/docker.sock", "/var/run/docker.sock")


def check(name: str, ok: bool, detail: str, fix: str = "") -> Check:
    return {"check": name, "ok": ok, "detail": detail, "fix": "" if ok else fix}


def venv_check() -> Check:
    inside = sys.prefix != sys.base_prefix or "VIRTUAL_ENV" in os.environ
    return check(
        "venv",
        inside,
        sys.prefix,
        "python3 -m venv venv && . venv/bin/activate && pip install -e . (Pulumi.yaml names venv)",
    )


def pulumi_checks() -> list[Check]:
    exe = shutil.which("pulumi")
    if exe is None:
        return [check("pulumi CLI", False, "not on PATH", "install it: https://www.pulumi.com/docs/install/")]
    run = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=30)
    found = [check("pulumi CLI", run.returncode == 0, f"{exe} {run.stdout.strip()}", "reinstall the Pulumi CLI")]
    plugins = subprocess.run([exe, "plugin", "ls", "--json"], capture_output=True, text=True, timeout=60)
    try:
        names = [f"{p.get('name')} {p.get('version')}" for p in json.loads(plugins.stdout or "[]")]
    except json.JSONDecodeError:
        names = []
    found.append(check("pulumi plugins", bool(names), ", ".join(names) or "none", "pulumi install"))
    return found


def docker_socket(env: dict[str, str]) -> str | None:
    host = env.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host.removeprefix("unix://")
    return next((s for s in DEFAULT_SOCKETS if Path(s).exists()), None)


def docker_check(env: dict[str, str]) -> Check:
    socket = docker_socket(env)
    ok = socket is not None and Path(socket).exists()
    return check(
        "docker engine",
        ok,
        socket or "no socket",
        "bash scripts/dockerd.sh start (as root), then export DOCKER_HOST=unix:///run/postgres-platform-docker/docker.sock",
    )


def secret_checks(chosen: ChosenStack) -> list[Check]:
    """The secrets `pulumi up` will ask for with this stack (offline.secrets, as preflight lists them)."""
    return [
        check(f"secret {s.key}", s.present, f"for {s.why}: " + (s.where or "missing"), s.problem()["fix"])
        for s in secrets.needed(chosen.config, chosen.values)
    ]


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgplat doctor", description=__doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("stack", nargs="?", help="stack name: also check the secrets Pulumi.<stack>.yaml needs")
    source.add_argument("--stack-file", type=Path, help="a stack file anywhere")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    checks = [venv_check(), *pulumi_checks(), docker_check(dict(os.environ))]
    if args.stack or args.stack_file:
        chosen = load_chosen(args)
        if chosen is None:
            return COULD_NOT_RUN
        checks += secret_checks(chosen)
    if args.json:
        print(json.dumps(checks, indent=2))
    else:
        for c in checks:
            print(
                f"{'ok ' if c['ok'] else 'MISSING'} {c['check']}: {c['detail']}"
                + (f" -> {c['fix']}" if c["fix"] else "")
            )
    return FOUND_PROBLEMS if any(not c["ok"] for c in checks) else 0
