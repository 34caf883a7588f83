"""The MemberImage the Patroni plan puts before the members (components/patroni.py), under the real
engine, and a stand-in member that waits for it as the members do: each create or update of it appends
the image it got to a file, so the test sees whether a refused image reached it.

Config (namespace e2e): image (the members' image reference), log (that file's path).
"""

from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.resources.member_image import MemberImage


class Recorded(ResourceProvider):
    def _record(self, props: dict[str, Any]) -> None:
        with Path(props["log"]).open("a") as log:
            log.write(props["image"] + "\n")

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._record(props)
        return CreateResult(id_="member", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds != news)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._record(news)
        return UpdateResult(outs=news)


class Member(Resource):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__(Recorded(), name, props, opts)


config = pulumi.Config("e2e")
image = config.require("image")
guard = MemberImage("postgres-member-image", image=image)
Member("primary-patroni", {"image": image, "log": config.require("log")}, pulumi.ResourceOptions(depends_on=[guard]))
