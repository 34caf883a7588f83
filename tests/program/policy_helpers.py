"""Calling the policies directly, with args shaped as the engine sends them (camelCase, proxied)."""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy


def opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def urn(type_: str, name: str, parent: str | None = None) -> str:
    """As the engine names a resource: its parent component's type, if any, before its own."""
    qualified = f"{parent}${type_}" if parent else type_
    return f"urn:pulumi:test::postgres-platform::{qualified}::{name}"


def resource(
    type_: str,
    name: str,
    props: dict[str, Any],
    *,
    protect: bool = False,
    deps: dict[str, list[PolicyResource]] | None = None,
    parent: str | None = None,
) -> PolicyResource:
    """A declared resource; `parent` the type of the component it is declared in."""
    return PolicyResource(
        type_, unknown_checking_proxy(props), urn(type_, name, parent), name, opts(protect), None, None, [], deps or {}
    )


def check(
    policy: Any, type_: str, props: dict[str, Any], config: dict[str, Any] | None = None, protect: bool = False
) -> list[str]:
    """A resource policy's violations for one resource."""
    violations: list[str] = []
    args = ResourceValidationArgs(type_, unknown_checking_proxy(props), "urn:x", "res", opts(protect), None, config)
    policy.validate(args, lambda message, urn=None: violations.append(message))
    return violations


def check_stack(policy: Any, resources: list[PolicyResource], config: dict[str, Any] | None = None) -> list[str]:
    """A stack policy's violations for these resources."""
    violations: list[str] = []
    policy.validate(StackValidationArgs(resources, config), lambda message, urn=None: violations.append(message))
    return violations
