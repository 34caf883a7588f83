"""What `pulumi up` would do to get from one config to another: both run under mocks, inputs compared.

Replace versus update comes from each provider's own schema (the inputs it marks ForceNew or
RequiresReplace), for the resource types this program declares; the sources read are named per entry.
A resource's `ignore_changes` inputs are left out, as the engine leaves them out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from postgres_platform.model.images import postgres_major
from postgres_platform.model.names import COMPONENT_LABEL, PGBOUNCER, POSTGRES_SERVERS
from postgres_platform.offline.program import ProgramRun, Registered

Action = Literal["create", "update", "replace", "delete"]

# Inputs whose change replaces the resource (camelCase, as the engine sends them).
REPLACE_ON: dict[str, frozenset[str]] = {
    # cyrilgdn/terraform-provider-postgresql postgresql/resource_postgresql_*.go (ForceNew). A Role has
    # none: a new name is ALTER ROLE ... RENAME. A Database's name is updatable too, but ours are
    # named after it, so a new name is a new resource and the old one a delete (DROP DATABASE).
    "postgresql:index/role:Role": frozenset(),
    "postgresql:index/database:Database": frozenset({"template", "encoding", "lcCollate", "lcCtype"}),
    "postgresql:index/schema:Schema": frozenset({"database"}),
    "postgresql:index/grant:Grant": frozenset(
        {"role", "database", "schema", "objectType", "objects", "columns", "withGrantOption"}
    ),
    "postgresql:index/defaultPrivileges:DefaultPrivileges": frozenset(
        {"role", "database", "owner", "schema", "objectType", "withGrantOption"}
    ),
    "postgresql:index/function:Function": frozenset({"schema", "name", "args", "language", "returns", "database"}),
    "postgresql:index/physicalReplicationSlot:PhysicalReplicationSlot": frozenset({"name"}),
    # kreuzwerker/terraform-provider-docker internal/provider/resource_docker_{image,network,volume}.go
    "docker:index/remoteImage:RemoteImage": frozenset({"name", "pullTriggers", "triggers", "platform", "build"}),
    "docker:index/network:Network": frozenset({"name", "labels", "driver", "options", "internal", "ipamConfig"}),
    "docker:index/volume:Volume": frozenset({"name", "labels", "driver", "driverOpts"}),
    # hetznercloud/terraform-provider-hcloud internal/{server,volume,network}/*.go (ForceNew). A new
    # server_type is an update, but Hetzner powers the server off to rescale it (see INTERRUPTING).
    "hcloud:index/server:Server": frozenset({"image", "location", "userData", "sshKeys"}),
    "hcloud:index/volume:Volume": frozenset({"location"}),
    "hcloud:index/volumeAttachment:VolumeAttachment": frozenset({"serverId", "volumeId"}),
    "hcloud:index/network:Network": frozenset({"ipRange"}),
    "hcloud:index/networkSubnet:NetworkSubnet": frozenset({"networkId", "type", "networkZone", "ipRange"}),
    "hcloud:index/firewall:Firewall": frozenset(),
    "hcloud:index/placementGroup:PlacementGroup": frozenset({"type"}),
    # internal/loadbalancer/*.go: a new type is ChangeType (in place); a network attachment has no Update
    # (every input ForceNew); a target's Update removes and re-adds it.
    "hcloud:index/loadBalancer:LoadBalancer": frozenset({"location", "networkZone", "ipv4Id", "ipv6Id"}),
    "hcloud:index/loadBalancerNetwork:LoadBalancerNetwork": frozenset(
        {"loadBalancerId", "networkId", "subnetId", "ip", "enablePublicInterface"}
    ),
    "hcloud:index/loadBalancerService:LoadBalancerService": frozenset({"loadBalancerId", "protocol", "listenPort"}),
    "hcloud:index/loadBalancerTarget:LoadBalancerTarget": frozenset(
        {"loadBalancerId", "serverId", "labelSelector", "ip"}
    ),
    # pulumi/pulumi-command provider/pkg/provider/common/inputs.go: only `triggers` replaces; a new
    # create script or stdin runs the command again (Update).
    "command:local:Command": frozenset({"triggers"}),
    "command:remote:Command": frozenset({"triggers"}),
    # Our dynamic providers (components/resources/sql_apply.py) never ask for a replacement.
    "pulumi-python:dynamic/postgres-platform:SqlApply": frozenset(),
    "pulumi-python:dynamic/postgres-platform:RoleRetirement": frozenset(),
    "pulumi-python:dynamic/postgres-platform:PrimaryCheck": frozenset(),
}
# kreuzwerker/terraform-provider-docker internal/provider/resource_docker_container.go: every input is
# ForceNew except these (the update function applies restart and resource limits in place).
CONTAINER_UPDATABLE = frozenset(
    {
        "rm",
        "start",
        "wait",
        "waitTimeout",
        "attach",
        "logs",
        "mustRun",
        "restart",
        "maxRetryCount",
        "destroyGraceSeconds",
        "memory",
        "memoryReservation",
        "memorySwap",
        "cpuShares",
        "cpuSet",
        "healthcheck",
        "cpuPeriod",
        "cpuQuota",
        "init",
    }
)
# hashicorp/terraform-provider-random (password) and -tls (key, certificates): every input RequiresReplace.
REPLACE_ALL = frozenset(
    {
        "random:index/randomPassword:RandomPassword",
        "tls:index/privateKey:PrivateKey",
        "tls:index/selfSignedCert:SelfSignedCert",
        "tls:index/certRequest:CertRequest",
        "tls:index/locallySignedCert:LocallySignedCert",
    }
)
CONTAINER = "docker:index/container:Container"
# What holds data: replacing or deleting it loses the data (or fails, where it is protected).
DATA = frozenset(
    {
        "postgresql:index/database:Database",
        "postgresql:index/schema:Schema",
        "docker:index/volume:Volume",
        "hcloud:index/volume:Volume",
        "hcloud:index/server:Server",
    }
)
CLIENT_FACING = (*POSTGRES_SERVERS, PGBOUNCER)  # containers apps connect to
LOAD_BALANCER = frozenset(
    {
        "hcloud:index/loadBalancer:LoadBalancer",
        "hcloud:index/loadBalancerNetwork:LoadBalancerNetwork",
        "hcloud:index/loadBalancerService:LoadBalancerService",
    }
)


@dataclass(frozen=True)
class Change:
    resource: str
    type: str
    action: Action
    data_loss: bool
    interruption: bool
    inputs: tuple[str, ...] = ()  # the inputs that changed (camelCase, as the engine sends them)

    def as_dict(self) -> dict[str, object]:
        return {
            "resource": self.resource,
            "type": self.type,
            "action": self.action,
            "dataLoss": self.data_loss,
            "interruption": self.interruption,
            "properties": list(self.inputs),
        }


ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete")  # the summary's order
MARKERS: dict[Action, str] = {"create": "+", "update": "~", "replace": "±", "delete": "-"}
_RISK: dict[Action, int] = {"delete": 0, "replace": 1, "update": 2, "create": 3}  # the listing's order


def _managed(resource: Registered) -> bool:
    """Components hold nothing of their own; provider config changes are not resource changes."""
    return not resource.type.startswith(("postgres-platform:", "pulumi:providers:"))


def _forces_replacement(type_: str, key: str) -> bool:
    if type_ == CONTAINER:
        return key not in CONTAINER_UPDATABLE
    if type_ in REPLACE_ALL:
        return True
    return key in REPLACE_ON.get(type_, frozenset())


def _label(resource: Registered) -> str | None:
    for item in resource.inputs.get("labels") or []:
        if isinstance(item, dict) and item.get("label") == COMPONENT_LABEL:
            return str(item.get("value"))
    return None


def _interrupts(resource: Registered, action: Action, changed: Iterable[str]) -> bool:
    if resource.type == CONTAINER:
        return action in ("replace", "delete") and _label(resource) in CLIENT_FACING
    if resource.type == "hcloud:index/server:Server":
        return action in ("replace", "delete") or "serverType" in changed
    if resource.type == "hcloud:index/volumeAttachment:VolumeAttachment":
        return action in ("replace", "delete")
    if resource.type in LOAD_BALANCER:  # with failover every DSN names the load balancer's private IP
        return action in ("replace", "delete")
    return False


def _change(resource: Registered, action: Action, changed: tuple[str, ...] = ()) -> Change:
    loses = resource.type in DATA and action in ("replace", "delete")
    return Change(resource.name, resource.type, action, loses, _interrupts(resource, action, changed), changed)


def _new_major(old: Registered, new: Registered) -> bool:
    """A Postgres container on another major: the new server cannot open the old data directory (its
    container restarts in a loop while the old one is gone); that takes pg_upgrade or a restore first."""
    if new.type != CONTAINER or _label(new) not in POSTGRES_SERVERS:
        return False
    before, after = (postgres_major(str(r.inputs.get("image", ""))) for r in (old, new))
    return before is not None and after is not None and before != after


def compare(old: ProgramRun, new: ProgramRun) -> list[Change]:
    """Every resource that changes from `old` to `new`, with what the change costs."""
    before = {(r.type, r.name): r for r in old.resources if _managed(r)}
    changes: list[Change] = []
    for resource in (r for r in new.resources if _managed(r)):
        known = [(resource.type, name) for name in (resource.name, *resource.aliases)]
        previous = next((before.pop(key) for key in known if key in before), None)
        if previous is None:
            changes.append(_change(resource, "create"))
            continue
        keys = (set(previous.inputs) | set(resource.inputs)) - set(resource.ignore_changes)
        changed = tuple(sorted(k for k in keys if previous.inputs.get(k) != resource.inputs.get(k)))
        if changed:
            replace = any(_forces_replacement(resource.type, k) for k in changed)
            change = _change(resource, "replace" if replace else "update", changed)
            if _new_major(previous, resource):
                change = dataclasses.replace(change, data_loss=True)
            changes.append(change)
    changes += [_change(resource, "delete") for resource in before.values()]
    # The SDK registers from a thread pool, so registration order varies: the riskiest first, then by name.
    return sorted(changes, key=lambda c: (not c.data_loss, _RISK[c.action], c.resource, c.type))


def summary(changes: list[Change]) -> dict[str, int]:
    """How many changes of each action, how many lose data and how many interrupt apps (JSON `summary`)."""
    counts: dict[str, int] = {action: sum(c.action == action for c in changes) for action in ACTIONS}
    return {
        **counts,
        "dataLoss": sum(c.data_loss for c in changes),
        "interruption": sum(c.interruption for c in changes),
    }


def summary_line(changes: list[Change]) -> str:
    """`3 to create, 1 to update, 0 to replace, 0 to delete; 0 lose data, 0 interrupt apps`."""
    counts = summary(changes)
    actions = ", ".join(f"{counts[action]} to {action}" for action in ACTIONS)
    return f"{actions}; {counts['dataLoss']} lose data, {counts['interruption']} interrupt apps"


def _row(change: Change) -> tuple[str, ...]:
    return (
        MARKERS[change.action],
        change.resource,
        change.type,
        change.action,
        "DATA LOSS" if change.data_loss else "",
        "interruption" if change.interruption else "",
        ", ".join(change.inputs),
    )


def render_table(changes: list[Change], markdown: bool = False) -> str:
    """The summary line, then one line per change: its marker (+ create, ~ update, ± replace, - delete),
    resource, type, action, what it costs, and the properties that changed."""
    if not changes:
        return "no changes"
    rows = [_row(c) for c in changes]
    if markdown:
        head = [
            f"**{summary_line(changes)}**",
            "",
            "| | resource | type | action | data | apps | properties |",
            "|---|---|---|---|---|---|---|",
        ]
        return "\n".join(head + [f"| {' | '.join(row)} |" for row in rows])
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:6], widths, strict=True)) + f"  {row[6]}" for row in rows]
    return "\n".join([summary_line(changes), *(f"  {line.rstrip()}" for line in lines)])
