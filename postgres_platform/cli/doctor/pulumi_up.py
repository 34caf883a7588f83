"""The `pulumi up` job: the CLI and its version, the binaries beside it, the plugins the program's SDKs
ask for (those a stack registers resources of, when one is named), the project's venv, the stack's secrets."""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import json
import multiprocessing
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from postgres_platform.cli.doctor.checks import (
    ENGINE_FIX,
    PROJECT,
    Check,
    engine_script_versions,
    first_line,
    parse_version,
    run,
    shown,
    which,
)
from postgres_platform.cli.doctor.secrets import stack_secrets
from postgres_platform.cli.stacks import ChosenStack
from postgres_platform.model.stackfile import ROOT


def cli_check(exe: str | None, answer: str | None, sdk: str, builds: str | None) -> Check:
    """The CLI's presence and version against the Python SDK's (the CLI must be at least as new)."""
    expected = f"the SDK is {sdk}" + (f", scripts/engine.sh builds {builds}" if builds else "")
    if exe is None:
        return Check("up", "pulumi CLI", False, f"not on PATH ({expected})", ENGINE_FIX)
    version = parse_version(answer or "")
    if version is None:
        return Check("up", "pulumi CLI", False, f"{exe}: `pulumi version` answered {answer!r}", ENGINE_FIX)
    wanted = parse_version(sdk)
    old = wanted is not None and version < wanted
    return Check(
        "up",
        "pulumi CLI",
        not old,
        f"{exe} v{shown(version)} ({expected})" + (": older than the SDK" if old else ""),
        ENGINE_FIX,
    )


def needed_plugins(project: str = PROJECT) -> dict[str, str]:
    """The resource plugins the program's SDKs ask for (each package's pulumi-plugin.json): name -> version."""
    try:
        requirements = metadata.requires(project) or []
    except metadata.PackageNotFoundError:
        return {}
    found: dict[str, str] = {}
    for requirement in requirements:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        if name.startswith("pulumi-"):
            found |= plugin_of(name)
    return dict(sorted(found.items()))


def plugin_of(distribution: str) -> dict[str, str]:
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        return {}
    for file in files:
        if file.name == "pulumi-plugin.json":
            manifest = json.loads(file.read_text())
            if manifest.get("resource") and manifest.get("name"):
                return {str(manifest["name"]): str(manifest.get("version", ""))}
    return {}


def engine_plan(tsv: Path = ROOT / "engine" / "providers.tsv") -> dict[str, str]:
    """What scripts/engine.sh tries to build for each provider (engine/providers.tsv): name -> version."""
    lines = tsv.read_text().splitlines() if tsv.is_file() else []
    return {f[0]: f[1] for f in (line.split("\t") for line in lines if line and not line.startswith("#")) if len(f) > 1}


def parse_plugin_list(text: str) -> dict[str, list[str]]:
    """`pulumi plugin ls --json` -> resource plugin name -> the versions installed."""
    try:
        listed = json.loads(text or "[]")
    except json.JSONDecodeError:
        return {}
    found: dict[str, list[str]] = {}
    for plugin in listed if isinstance(listed, list) else []:
        if isinstance(plugin, dict) and plugin.get("kind", "resource") == "resource":
            found.setdefault(str(plugin.get("name")), []).append(str(plugin.get("version", "")).removeprefix("v"))
    return found


def packages_of(type_tokens: list[str]) -> set[str]:
    """The packages whose resources these are: `docker:index/container:Container` -> docker, and a
    provider resource `pulumi:providers:hcloud` -> hcloud."""
    return {t.split(":")[2] if t.startswith("pulumi:providers:") else t.split(":")[0] for t in type_tokens}


def stack_packages(stack: str, values: dict[str, Any]) -> list[str]:
    """The packages the program registers resources of for this stack, under preflight's mocks (no CLI)."""
    from postgres_platform.offline.program import run_program  # the SDK's runtime: only when asked

    return sorted(packages_of(list(run_program(stack, values, preview=True).counts())))


def used_packages(chosen: ChosenStack) -> tuple[set[str] | None, str]:
    """stack_packages in a child process (as preflight runs the program: the SDK's state ends with it),
    or None and why not."""
    try:
        with multiprocessing.get_context().Pool(1) as pool:
            return set(pool.apply(stack_packages, (chosen.name, chosen.values))), ""
    except Exception as exc:  # a program that raises: every plugin counts, and the report says why
        return None, f"the program did not run under mocks ({first_line(str(exc))[:120] or type(exc).__name__})"


def plugin_check(
    name: str, wanted: str, installed: list[str], on_path: str | None, planned: str | None, used: bool = True
) -> Check:
    """One plugin: installed at the version the SDK asks for, or a binary on PATH (the engine takes
    `pulumi-resource-<name>` from PATH before its plugin cache, without a version check). `used`: the
    stack registers resources of it (False: not needed by this stack, reported all the same)."""
    label = f"plugin {name}"
    if not used:
        found = "installed" if wanted in installed else "on PATH" if on_path else "absent"
        return Check("up", label, wanted in installed or bool(on_path), f"{found}; this stack uses none", None, False)
    if wanted in installed:
        return Check("up", label, True, f"{wanted} installed")
    if on_path:
        return Check("up", label, True, f"{on_path} (on PATH: used without a version check; the SDK asks for {wanted})")
    have = f"installed: {', '.join(installed)}; " if installed else ""
    built = (
        f"scripts/engine.sh asks for {planned} (its build's MANIFEST says why it has none)"
        if planned
        else "scripts/engine.sh does not build it"
    )
    return Check(
        "up",
        label,
        False,
        f"{have}the SDK asks for {wanted}; {built}",
        f"pulumi plugin install resource {name} {wanted}",
    )


def without_userinfo(url: str) -> str:
    """A backend URL as it may be shown: no user or password (a postgres:// backend can hold one)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname or "")) if "@" in parts.netloc else url


def login_check(exe: str | None) -> Check:
    """`pulumi up` needs a backend: `pulumi whoami --json` answers where the CLI is logged in."""
    if exe is None:
        return Check("up", "backend login", None, "not checked: no pulumi CLI")
    done = run([exe, "whoami", "--json", "--non-interactive"], timeout=30)
    fix = "pulumi login file://<a state directory> (or your backend's URL)"
    if done is None or done.returncode != 0:
        return Check("up", "backend login", False, first_line(done.stderr if done else "") or "no answer", fix)
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        return Check("up", "backend login", False, "`pulumi whoami --json` printed no JSON", fix)
    return Check("up", "backend login", True, f"{answer.get('user')} at {without_userinfo(str(answer.get('url')))}")


def beside_cli_check(name: str, why: str, path: str) -> Check:
    """A binary Pulumi's releases ship beside `pulumi` (scripts/engine.sh's bin directory holds it too)."""
    found = which(name, path)
    return Check("up", name, found is not None, found or f"not on PATH ({why})", ENGINE_FIX)


def project_venv_check(root: Path = ROOT) -> Check:
    """Pulumi.yaml's `virtualenv`: `pulumi up` runs the program with that directory's python."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    name = str(((project.get("runtime") or {}).get("options") or {}).get("virtualenv") or "")
    if not name:
        return Check("up", "project venv", True, "Pulumi.yaml names no virtualenv: the CLI uses python3 on PATH")
    python = (root / name) / "bin" / "python"
    return Check(
        "up",
        "project venv",
        python.exists(),
        f"{python}" + ("" if python.exists() else " does not exist (Pulumi.yaml: virtualenv: " + name + ")"),
        f"cd {root} && python3 -m venv {name} && {name}/bin/pip install -r requirements.txt (or: pulumi install)",
    )


def pulumi_checks(path: str, used: set[str] | None = None) -> tuple[str | None, list[Check]]:
    """The CLI (its path, when it answers) and its plugins: those of `used` (the packages a stack
    registers resources of), or every one the SDKs ask for when no stack says."""
    exe = which("pulumi", path)
    answer = run([exe, "version"], timeout=30) if exe else None
    sdk = metadata.version("pulumi") if importlib.util.find_spec("pulumi") else "not installed"
    cli = cli_check(exe, answer.stdout.strip() if answer else None, sdk, engine_script_versions().get("CLI_VERSION"))
    listed = run([exe, "plugin", "ls", "--json"]) if exe and cli.ok else None
    installed = parse_plugin_list(listed.stdout if listed and listed.returncode == 0 else "")
    planned = engine_plan()
    plugins = [
        plugin_check(
            name,
            wanted,
            installed.get(name, []),
            which(f"pulumi-resource-{name}", path),
            planned.get(name),
            used is None or name in used,
        )
        for name, wanted in needed_plugins().items()
    ]
    beside = [
        beside_cli_check("pulumi-language-python", "runs the Python program", path),
        beside_cli_check(
            "pulumi-resource-pulumi-python", "serves the dynamic providers SqlApply, RoleRetirement", path
        ),
    ]
    answered = exe if answer is not None and answer.returncode == 0 else None  # an old CLI still reads config
    return answered, [cli, *beside, *plugins]


def plugins_detail(used: set[str] | None, why_not: str) -> str:
    if used is None:
        return why_not
    return "this stack registers resources of: " + ", ".join(sorted(used - {PROJECT, "pulumi-python"}))


def up_checks(path: str, chosen: ChosenStack | None, from_cli: bool) -> list[Check]:
    used, why_not = used_packages(chosen) if chosen else (None, "no stack named: every plugin the SDKs ask for")
    exe, checks = pulumi_checks(path, used)
    checks.insert(1, Check("up", "plugins needed", True if used else None, plugins_detail(used, why_not), None, False))
    checks += [login_check(exe), project_venv_check()]
    if chosen is None:
        checks.append(
            Check("up", "stack secrets", None, "not checked: name a stack (pgplat doctor STACK)", None, False)
        )
    else:
        checks += stack_secrets(chosen, exe, from_cli)
    return checks
