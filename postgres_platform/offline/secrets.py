"""The secrets `pulumi up` will need for a stack, by config key, and whether the stack file holds them.

The program reads its own with `pulumi.Config(...).require_secret` (program/deploy.py: the S3 keys of an
s3 backup repo, an adopted server's admin password: model.load decides which a config needs); the
Hetzner provider reads `hcloud:token` (or HCLOUD_TOKEN). `pulumi config set --secret` writes each into
the stack file as a `secure:` value: a key the file lacks makes `pulumi up` fail, however green the
rest of preflight is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.load import required_secrets
from postgres_platform.model.names import NAMESPACE

HCLOUD_TOKEN = "hcloud:token"
HCLOUD_TOKEN_ENV = "HCLOUD_TOKEN"  # what the provider reads when the stack has no hcloud:token


@dataclass(frozen=True)
class Secret:
    key: str  # the full config key, as `pulumi config set --secret` takes it
    why: str
    present: bool
    where: str = ""  # where it was found (the stack file, the environment)
    env: str = ""  # an environment variable that stands in for it, where there is one

    def as_dict(self) -> dict[str, object]:
        return {"key": self.key, "present": self.present, "neededFor": self.why}

    def problem(self) -> dict[str, str]:
        """The report's {problem, fix} for a missing one."""
        return {
            "problem": f"{self.key}: `pulumi up` needs it for {self.why}, and the stack file has no secure value"
            + (f" (nor is {self.env} set)" if self.env else ""),
            "fix": f"pulumi config set --secret {self.key}" + (f", or set {self.env}" if self.env else ""),
        }


def _secure(value: Any) -> bool:
    """A `secure:` value as stackfile.read_stack_values passes it on (an object, JSON-encoded)."""
    return isinstance(value, str) and value.startswith('{"secure":')


def needed(config: PlatformConfig, values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[Secret]:
    """Every secret `pulumi up` will ask for with this config, in key order."""
    environ = os.environ if environ is None else environ
    found: list[Secret] = []
    for name, why in required_secrets(config).items():
        key = f"{NAMESPACE}:{name}"
        found.append(Secret(key, why, _secure(values.get(key)), "stack file" if _secure(values.get(key)) else ""))
    if config.target == "hetzner":
        in_file, in_env = _secure(values.get(HCLOUD_TOKEN)), bool(environ.get(HCLOUD_TOKEN_ENV))
        where = "stack file" if in_file else HCLOUD_TOKEN_ENV if in_env else ""
        found.append(Secret(HCLOUD_TOKEN, "the Hetzner provider", in_file or in_env, where, HCLOUD_TOKEN_ENV))
    return sorted(found, key=lambda s: s.key)


def render(secrets: list[Secret]) -> str:
    """The text report's section."""
    if not secrets:
        return "secrets: none needed by `pulumi up` for this config"
    width = max(len(s.key) for s in secrets)
    lines = ["secrets `pulumi up` will need:"]
    for s in secrets:
        state = f"present ({s.where})" if s.present else "MISSING"
        lines.append(f"  {s.key.ljust(width)}  {state:22s}  for {s.why}")
    return "\n".join(lines)
