"""SQL steps: dynamic resources are only the program's own, and their SQL only hardens and revokes."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policy.resources import DYNAMIC, ROLE_RETIREMENT, SQL_APPLY

SQL_STEPS = {SQL_APPLY: ("sql", "check"), ROLE_RETIREMENT: ("statements",)}  # each step's inputs holding SQL
# Statements that make or widen a role, or reach the server's files and programs: never in our steps.
ESCALATING = re.compile(
    r"\b(CREATE|ALTER)\s+(ROLE|USER|GROUP)\b|\bSUPERUSER\b|\bGRANT\b|\bALTER\s+SYSTEM\b|\bCOPY\b|\bLO_IMPORT\b"
    r"|\bSET\s+(SESSION\s+)?ROLE\b|\bSECURITY\s+DEFINER\b",
    re.IGNORECASE,
)


def check_sql_steps(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A dynamic resource runs whatever code it carries: only the program's own two SQL steps, and their
    SQL may only harden and revoke (REVOKE, ALTER FUNCTION ... SET search_path, REASSIGN/DROP OWNED)."""
    if not args.resource_type.startswith(DYNAMIC):
        return
    fields = SQL_STEPS.get(args.resource_type)
    if fields is None:
        report(f"{args.name}: dynamic resource {args.resource_type} is not one of the program's SQL steps", None)
        return
    for field in fields:
        value = args.props.get(field)
        texts = list(value.values()) if isinstance(value, Mapping) else [value]
        for text in texts:
            if match := ESCALATING.search(str(text or "")):
                report(f"{args.name}: its {field} runs {match.group(0)!r}: the SQL steps only harden and revoke", None)


sql_steps = ResourceValidationPolicy(
    name="sql-steps",
    description="Dynamic resources are only the program's SQL steps, and those never create or widen a role.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_sql_steps,
    remediation_steps=(
        "Keep dynamic resources to the program's SqlApply and RoleRetirement steps, whose SQL only revokes and "
        "hardens; what creates or widens a role belongs in the access plan (render_sql.py's script)."
    ),
)
