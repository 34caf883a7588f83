"""The resource types the policies look at, and small readers of their literal inputs.

The only module of the pack that spells a type token: every other one finds resources by these, by
COMPONENT_LABEL's values (postgres_platform.model.names) and by the component a resource belongs to
(the parent type in its URN).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource

from postgres_platform.model.names import COMPONENT_LABEL, POSTGRES_SERVERS

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
DOCKER_VOLUME = "docker:index/volume:Volume"
ROLE = "postgresql:index/role:Role"
GRANT_ROLE = "postgresql:index/grantRole:GrantRole"
DATABASE = "postgresql:index/database:Database"
SCHEMA = "postgresql:index/schema:Schema"
FIREWALL = "hcloud:index/firewall:Firewall"
LOAD_BALANCER = "hcloud:index/loadBalancer:LoadBalancer"
LOAD_BALANCER_NETWORK = "hcloud:index/loadBalancerNetwork:LoadBalancerNetwork"
HCLOUD_SERVER = "hcloud:index/server:Server"
HCLOUD_VOLUME = "hcloud:index/volume:Volume"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
COMMANDS = ("command:local:Command", "command:remote:Command")
DYNAMIC = "pulumi-python:dynamic"  # what every dynamic resource's type starts with
SQL_APPLY = "pulumi-python:dynamic/postgres-platform:SqlApply"
ROLE_RETIREMENT = "pulumi-python:dynamic/postgres-platform:RoleRetirement"
# The program's components (components/*.py), as their children's URNs name them.
CONFIG_FILES = "postgres-platform:index:ConfigFiles"  # its command writes the files from stdin
BACKUPS = "postgres-platform:index:Backups"  # its commands create the stanza and schedule the backups
# hetzner.failover: its command PATCHes the cluster's settings to Patroni, their JSON its last argument.
PATRONI_CONFIG = "postgres-platform:index:PatroniDynamicConfig"


def labels(props: Mapping[str, Any]) -> dict[str, str]:
    return {item["label"]: item["value"] for item in props.get("labels") or []}


def component(props: Mapping[str, Any]) -> str | None:
    """The COMPONENT_LABEL value the program puts on its containers and volumes."""
    return labels(props).get(COMPONENT_LABEL)


def parent_type(urn: str | None) -> str | None:
    """The type of the component a resource was declared in: its URN is
    `urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>`."""
    parts = (urn or "").split("::", 3)
    types = parts[2].split("$") if len(parts) == 4 else []
    return types[-2] if len(types) > 1 else None


def is_command_of(resource: PolicyResource, parent: str) -> bool:
    return resource.resource_type in COMMANDS and parent_type(resource.urn) == parent


def postgres_servers(
    resources: Iterable[PolicyResource], roles: Iterable[str] = POSTGRES_SERVERS
) -> list[PolicyResource]:
    """The Postgres containers the program declares (primary and replica, or only the `roles` asked for)."""
    wanted = set(roles)
    return [r for r in resources if r.resource_type == CONTAINER and component(r.props) in wanted]


def server_settings(command: Iterable[str]) -> dict[str, str]:
    """`postgres -c name=value ...` (also `-cname=value` and `--name=value`) as a mapping."""
    args = list(command)
    settings: dict[str, str] = {}
    for i, arg in enumerate(args):
        if arg == "-c" and i + 1 < len(args):
            pair = args[i + 1]
        elif (arg.startswith("-c") and "=" in arg) or (arg.startswith("--") and "=" in arg):
            pair = arg[2:]
        else:
            continue
        name, _, value = pair.partition("=")
        settings[name.replace("-", "_")] = value
    return settings


def settings_of(server: PolicyResource) -> dict[str, str]:
    return server_settings(server.props.get("command") or [])


def role_limit(props: Mapping[str, Any]) -> int:
    """A role's CONNECTION LIMIT; the provider's default is -1 (unlimited)."""
    value = props.get("connectionLimit")
    return -1 if value is None else int(value)


def is_login(props: Mapping[str, Any]) -> bool:
    return bool(props.get("login"))  # the provider's default is NOLOGIN


def patroni_settings(resources: Iterable[PolicyResource]) -> dict[str, str]:
    """The Patroni cluster's Postgres settings (hetzner.failover): what its dynamic-config command PATCHes."""
    for resource in resources:
        if is_command_of(resource, PATRONI_CONFIG):
            argv = shlex.split(str(resource.props.get("create") or ""))
            try:
                parameters = json.loads(argv[-1])["postgresql"]["parameters"]
            except (IndexError, KeyError, TypeError, ValueError):
                return {}
            return {str(name): str(value) for name, value in parameters.items()}
    return {}


def settings_in_stack(server: PolicyResource, resources: Iterable[PolicyResource]) -> dict[str, str]:
    """settings_of, or for a Patroni member (whose command is Patroni's, no `-c`) the cluster's settings."""
    command = [str(arg) for arg in server.props.get("command") or []]
    return patroni_settings(resources) if "patroni" in command else settings_of(server)
