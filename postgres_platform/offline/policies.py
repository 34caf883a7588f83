"""Run the policy pack in-process over what the program registered under mocks, as at preview.

Preview is simulated conservatively: every input that flows from another resource is unknown, as it
may be before that resource exists. A policy that reads one of those cannot decide at preview (the
SDK would silently make it advisory); here that is reported as a violation, so it cannot slip by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.policies import POLICIES
from postgres_platform.offline import sdk
from postgres_platform.offline.program import ProgramRun, Registered


@dataclass
class PolicyResult:
    name: str
    enforcement: Literal["mandatory", "advisory"]
    violations: list[str] = field(default_factory=list)
    not_applicable: str | None = None
    fix: str | None = None  # the policy's remediation_steps (text output only: the JSON shape stays)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "enforcement": self.enforcement, "violations": self.violations}


def preview_props(resource: Registered) -> dict[str, Any]:
    """The inputs as a preview may see them: whatever flows from another resource is unknown."""
    return {k: sdk.unknown_like(v) if resource.property_dependencies.get(k) else v for k, v in resource.inputs.items()}


def _options(resource: Registered) -> PolicyResourceOptions:
    return PolicyResourceOptions(resource.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def policy_resources(run: ProgramRun) -> list[PolicyResource]:
    by_urn = {
        r.urn: PolicyResource(
            r.type, sdk.unknown_checking_proxy(preview_props(r)), r.urn, r.name, _options(r), None, None, [], {}
        )
        for r in run.resources
    }
    for r in run.resources:
        by_urn[r.urn].property_dependencies = {
            key: [by_urn[u] for u in urns if u in by_urn] for key, urns in r.property_dependencies.items()
        }
    return list(by_urn.values())


def evaluate(run: ProgramRun, pack_config: dict[str, Any]) -> list[PolicyResult]:
    resources = policy_resources(run)
    results = []
    for policy in POLICIES:
        config = dict(pack_config.get(policy.name, {}))
        level = EnforcementLevel(
            config.pop("enforcementLevel", (policy.enforcement_level or EnforcementLevel.ADVISORY).value)
        )
        enforcement: Literal["mandatory", "advisory"] = (
            "mandatory" if level == EnforcementLevel.MANDATORY else "advisory"
        )
        result = PolicyResult(policy.name, enforcement, fix=policy.remediation_steps)

        def report(message: str, urn: str | None = None, result: PolicyResult = result) -> None:
            result.violations.append(message)

        try:
            if isinstance(policy, ResourceValidationPolicy):
                for r in resources:
                    policy.validate(
                        ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, None, config), report
                    )
            elif isinstance(policy, StackValidationPolicy):
                policy.validate(StackValidationArgs(resources, config), report)
        except sdk.UnknownValueError as exc:
            result.violations.append(f"cannot decide at preview: {exc.message}")
        except sdk.NotApplicableError as exc:
            result.not_applicable = exc.reason or "not applicable"
        results.append(result)
    return results
