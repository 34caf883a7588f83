"""Secrets: every password and config-file secret is generated, none is a literal or in an environment.

(Not `secrets.py`: run from policy/, that name would shadow the standard library's module.)
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyResource, ReportViolation, StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError

from policy.resources import CONFIG_FILES, RANDOM_PASSWORD, ROLE, is_command_of, is_login, postgres_servers

VERIFIER_PREFIX = "SCRAM-SHA-256$"
PASSWORD_VARIABLE = "POSTGRES_PASSWORD="  # the image's variable; POSTGRES_PASSWORD_FILE names a file instead


def _generated(resource: PolicyResource, prop: str) -> bool:
    return any(d.resource_type == RANDOM_PASSWORD for d in resource.property_dependencies.get(prop, []))


def _plaintext_password(resource: PolicyResource) -> bool:
    """The program sets every role from its password's SCRAM verifier. At `up` the value is known: anything
    else was swapped in (say a literal inside an apply that still depends on the RandomPassword). At
    preview it is unknown and this decides nothing (the dependency check still does)."""
    try:
        password = resource.props.get("password")
    except UnknownValueError:
        return False
    return isinstance(password, str) and not password.startswith(VERIFIER_PREFIX)


def _check_login(role: PolicyResource, report: ReportViolation) -> None:
    name = role.props["name"]
    if not _generated(role, "password"):
        report(f"login role {name}: its password must come from a RandomPassword", role.urn)
    if _plaintext_password(role):
        report(
            f"login role {name}: its password is not a SCRAM verifier: a literal replaced the generated one, "
            "or plaintext would reach the server's log",
            role.urn,
        )


def _check_environment(server: PolicyResource, report: ReportViolation) -> None:
    """The superuser password reaches the image as a file (POSTGRES_PASSWORD_FILE), written with the
    other config files: never in the environment, where `docker inspect` shows it."""
    for env in server.props.get("envs") or []:
        if str(env).startswith(PASSWORD_VARIABLE):
            report(
                f"container {server.name}: the superuser password is in its environment: use POSTGRES_PASSWORD_FILE",
                server.urn,
            )


def check_secret_sources(args: StackValidationArgs, report: ReportViolation) -> None:
    """What the SDK can see: every password input flows from a RandomPassword, none is a literal.

    The analyzer unwraps secrets before policies run, so whether a stack output is marked secret is
    invisible here; tests/program/test_program.py proves that instead (docs/policies.md).
    """
    servers = postgres_servers(args.resources)
    for resource in args.resources:
        if resource.resource_type == ROLE and is_login(resource.props):
            _check_login(resource, report)
        elif resource in servers:
            _check_environment(resource, report)
        elif is_command_of(resource, CONFIG_FILES) and not _generated(resource, "stdin"):
            report(f"config files {resource.name}: their secrets must come from a RandomPassword", resource.urn)


secret_outputs = StackValidationPolicy(
    name="secret-outputs",
    description="Passwords are generated (RandomPassword), never literals in code or config.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_secret_sources,
    remediation_steps=(
        "Set every login role's password from its RandomPassword's SCRAM verifier and the config files' secrets "
        "from RandomPasswords; give the Postgres image the superuser password as a file (POSTGRES_PASSWORD_FILE), "
        "never in its environment."
    ),
)
