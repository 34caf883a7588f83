"""The one way the program makes a secret: a RandomPassword whose result is a Pulumi secret."""

from __future__ import annotations

import pulumi
import pulumi_random as random


def generated_password(
    name: str,
    parent: pulumi.Resource,
    length: int = 32,
    was: str | None = None,
    generation: int = 0,
    protect: bool = False,
) -> pulumi.Output[str]:
    """Letters and digits only: safe unescaped in URIs, JDBC URLs, pgpass lines and PgBouncer files.

    `was`: the name a deployed stack knows it by, so a rename keeps the password instead of a new one.
    `generation`: a new one (keepers force a new password) rotates it; 0 adds no keepers, so a stack
    deployed without them keeps its passwords. `protect`: one that must never be regenerated (what
    backups were encrypted with).
    """
    aliases = [pulumi.Alias(name=was)] if was else None
    password = random.RandomPassword(
        name,
        length=length,
        special=False,
        keepers={"generation": str(generation)} if generation else None,
        opts=pulumi.ResourceOptions(parent=parent, aliases=aliases, protect=protect),
    )
    return pulumi.Output.secret(password.result)
