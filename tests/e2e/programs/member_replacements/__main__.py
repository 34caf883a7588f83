"""The wiring of PatroniCluster and MemberReplacements (components/patroni.py) under the real engine, with
stand-ins for what this engine build has no plugin for (the Docker and pulumi-command providers):

- a Member is replaced, deleted before replaced, when its image changes (as a docker.Container);
- a Lead is replaced when its trigger changes and updated in place otherwise (as a remote Command with
  `triggers`), and fails when config `fail` names its step;
- the members wait for the leads through futures resolved after the members are declared (as
  PatroniCluster.roll resolves them once the poolers exist), and the stand-in PATCH waits for the last.

Each create, delete and update appends a line to config `log`, so the test reads the order the engine ran.
Config (namespace e2e): image, log, fail (optional).
"""

import asyncio
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.patroni import LEAD_STEPS


def _record(props: dict[str, Any], line: str) -> None:
    with Path(props["log"]).open("a") as log:
        log.write(line + "\n")


class MemberProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        _record(props, f"create {props['name']} {props['image']}")
        return CreateResult(id_=props["name"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaced = olds.get("image") != news.get("image")
        return DiffResult(changes=olds != news, replaces=["image"] if replaced else [], delete_before_replace=True)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        _record(props, f"delete {props['name']} {props['image']}")


class LeadProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        if props["fail"] == props["step"]:
            raise RuntimeError(f"switchover: {props['to']} did not take the lead (asked to fail)")
        _record(props, f"lead {props['to']} ({props['step']})")
        return CreateResult(id_=props["step"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaced = olds.get("trigger") != news.get("trigger")
        return DiffResult(changes=olds != news, replaces=["trigger"] if replaced else [])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)  # as the Command's `update`: nothing runs


class PatchProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        _record(props, "patch")
        return CreateResult(id_="patch", outs=props)


class Member(Resource, module="e2e", name="Member"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__(MemberProvider(), name, props, opts)


class Lead(Resource, module="e2e", name="Lead"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__(LeadProvider(), name, props, opts)


class Patch(Resource, module="e2e", name="Patch"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__(PatchProvider(), name, props, opts)


config = pulumi.Config("e2e")
image, log, fail = config.require("image"), config.require("log"), config.get("fail") or ""
loop = asyncio.get_event_loop()
leads: dict[str, asyncio.Future[pulumi.Resource]] = {step: loop.create_future() for step in LEAD_STEPS}
waits = {"db-1": leads["before-primary"], "db-2": leads["before-replica"]}
members = {
    name: Member(
        f"{name}-member",
        {"name": name, "image": image, "log": log},
        pulumi.ResourceOptions(depends_on=[waits[name]]),
    )
    for name in ("db-1", "db-2")
}
Patch("patch", {"log": log}, pulumi.ResourceOptions(depends_on=[leads["after"]]))
steps = {  # as MemberReplacements: the member to lead, the member whose image triggers it, what it follows
    "before-replica": ("db-1", "db-2", []),
    "before-primary": ("db-2", "db-1", [members["db-2"]]),
    "after": ("db-1", "db-1", [members["db-1"]]),
}
for step, (to, replaced, after) in steps.items():
    props = {"step": step, "to": to, "trigger": f"{replaced} {image}", "log": log, "fail": fail}
    leads[step].set_result(Lead(f"lead-{step}", props, pulumi.ResourceOptions(depends_on=after)))
