"""A stack's secrets for `pulumi up`, by name only: from `pulumi config --json` where the CLI answers,
else from the stack file's `secure:` entries (offline.secrets decides which keys a config needs)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from postgres_platform.cli.doctor.checks import Check, first_line, run
from postgres_platform.cli.stacks import ChosenStack
from postgres_platform.model.stackfile import ROOT
from postgres_platform.offline import secrets


def parse_pulumi_config(text: str) -> dict[str, bool]:
    """`pulumi config --json` -> key -> whether it is a secret. Values are never kept."""
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("not an object")
    return {str(key): bool(isinstance(entry, dict) and entry.get("secret")) for key, entry in document.items()}


def stack_file_keys(values: Mapping[str, Any]) -> dict[str, bool]:
    """The stack file's keys -> whether it holds a `secure:` value (as stackfile passes them on)."""
    return {key: isinstance(value, str) and value.startswith('{"secure":') for key, value in values.items()}


def pulumi_config(exe: str, stack: str, root: Path = ROOT) -> tuple[dict[str, bool] | None, str]:
    """The stack's config keys as the CLI sees them, or None and why not."""
    done = run([exe, "config", "--json", "-s", stack, "--non-interactive"], cwd=root)
    if done is None:
        return None, "`pulumi config` did not answer"
    if done.returncode != 0:
        return None, f"`pulumi config -s {stack}` failed: {first_line(done.stderr or done.stdout)[:200]}"
    try:
        return parse_pulumi_config(done.stdout), ""
    except ValueError:
        return None, f"`pulumi config -s {stack}` printed no JSON object"


def secret_checks(
    needed: list[secrets.Secret], keys: dict[str, bool], source: str, environ: Mapping[str, str]
) -> list[Check]:
    """The secrets `pulumi up` will ask for, against the keys the source holds, then the source's other
    secrets by name. `keys`: key -> whether it is a secret."""
    checks = [Check("up", "secrets source", True, source)]
    for s in needed:
        in_env = bool(s.env and environ.get(s.env))
        where = (
            "set as a secret"
            if keys.get(s.key)
            else "set, but not as a secret"
            if s.key in keys
            else f"{s.env} is set"
            if in_env
            else "missing"
        )
        checks.append(
            Check("up", f"secret {s.key}", s.key in keys or in_env, f"for {s.why}: {where}", s.problem()["fix"])
        )
    wanted = {s.key for s in needed}
    checks += [
        Check("up", f"secret {key}", True, "set as a secret (this config does not ask for it)", None, False)
        for key, secret in sorted(keys.items())
        if secret and key not in wanted
    ]
    return checks


PASSPHRASE_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


def passphrase_check(stack_file: Path, environ: Mapping[str, str]) -> Check | None:
    """A stack whose secrets a passphrase encrypts (`encryptionsalt:` and no `secretsprovider:`): `pulumi up`
    needs PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE. Only whether one is set is looked at."""
    document = yaml.safe_load(stack_file.read_text()) or {}
    if not isinstance(document, dict) or "encryptionsalt" not in document or document.get("secretsprovider"):
        return None
    given = [name for name in PASSPHRASE_VARIABLES if environ.get(name)]
    return Check(
        "up",
        "secrets passphrase",
        bool(given),
        f"{given[0]} is set"
        if given
        else f"the stack's secrets are passphrase-encrypted, and neither {' nor '.join(PASSPHRASE_VARIABLES)} is set",
        "export PULUMI_CONFIG_PASSPHRASE_FILE=<a file holding it, mode 0600> (the passphrase never on a command line)",
    )


def stack_secrets(chosen: ChosenStack, exe: str | None, from_cli: bool) -> list[Check]:
    """`pulumi config` where the CLI exists and a stack was named; otherwise the stack file's `secure:` entries."""
    needed = secrets.needed(chosen.config, chosen.values)
    passphrase = passphrase_check(chosen.path, os.environ)
    return ([passphrase] if passphrase else []) + source_checks(chosen, needed, exe, from_cli)


def source_checks(chosen: ChosenStack, needed: list[secrets.Secret], exe: str | None, from_cli: bool) -> list[Check]:
    file_source = f"the stack file {chosen.path} (its `secure:` entries)"
    if exe and from_cli:
        keys, why_not = pulumi_config(exe, chosen.name)
        if keys is not None:
            return secret_checks(needed, keys, f"pulumi config -s {chosen.name}", os.environ)
        file_source += f": {why_not}"
    elif from_cli:
        file_source += ": no pulumi CLI"
    return secret_checks(needed, stack_file_keys(chosen.values), file_source, os.environ)
