"""The image Patroni's members run (hetzner.failover): a changed one is refused, in one line, at the
preview and the up that would apply it, before any member is touched.

Why: the members are containers, and a new image replaces both in one `pulumi up` (the replica's after
the primary's, both stopped at once), where a minor upgrade must go replica first, a switchover, then
the old primary. Until the program orders that, the stack keeps the image it runs. The check is the
engine's own (a check failure): the members depend on this resource, so none of them is registered.

Serialized by reference like components/resources/sql_apply.py: the engine imports this module.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, Resource, ResourceProvider

IMAGE_CHANGE_REFUSED = (
    "postgres.image: a new image for Patroni's members is not applied by `pulumi up` yet (it would replace"
    " both at once; a minor upgrade goes replica first, a switchover, then the old primary: see"
    " docs/operations/failover.md#a-minor-version-upgrade), got {new} (the members run {old})"
)


def refusal(olds: dict[str, Any], news: dict[str, Any]) -> str | None:
    """IMAGE_CHANGE_REFUSED's line where the image differs from the one recorded; None on a first create."""
    old, new = olds.get("image"), news.get("image")
    return IMAGE_CHANGE_REFUSED.format(new=new, old=old) if old and new != old else None


class MemberImageProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        found = refusal(olds, news)
        return CheckResult(news, [CheckFailure("image", found)] if found else [])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="member-image", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("image") != news.get("image"), replaces=[], delete_before_replace=False)


class MemberImage(Resource, module="postgres-platform", name="MemberImage"):
    """Records the members' image; a preview or up with another one fails its check (IMAGE_CHANGE_REFUSED)."""

    def __init__(self, name: str, *, image: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(MemberImageProvider(), name, {"image": image}, opts)
