"""Preflight: what a stack would declare, whether its budget fits and its policies pass. No cloud, no CLI.

    python scripts/preflight.py prod
    python scripts/preflight.py --stack-file path/to/Pulumi.x.yaml --json
    python scripts/preflight.py prod --markdown >> "$GITHUB_STEP_SUMMARY"
    python scripts/preflight.py prod --against base/Pulumi.prod.yaml --json   # what an up would change

Loads the stack config (a bad one: its one-line errors on stderr, exit 1), runs the real program
under Pulumi mocks (in a child process), runs every policy of policy/ over what it declared (as at
preview), and prints the resources, the budget per server and the policy results. Exit 1 on a mandatory
policy violation. With --against: also what `pulumi up` would do to get from that stack file to this
one (create, update, replace, delete; data loss; app interruption), and exit 1 if a change loses data.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import sys
from pathlib import Path
from typing import Any

from postgres_platform.cli.stacks import add_stack_arguments, load_chosen
from postgres_platform.model import budget
from postgres_platform.model.config import ConfigError, PlatformConfig
from postgres_platform.model.images import versions_of
from postgres_platform.model.stackfile import load_stack_file
from postgres_platform.offline import impact
from postgres_platform.offline.policies import PolicyResult, evaluate
from postgres_platform.offline.policy_config import policy_config
from postgres_platform.offline.program import ProgramRun, run_program


def report(stack: str, config: PlatformConfig, run: ProgramRun, policies: list[PolicyResult]) -> dict[str, Any]:
    return {
        "stack": stack,
        "servers": [server.as_dict() for server in budget.compute(config)],
        "resources": run.counts(),
        "policies": [p.as_dict() for p in policies],
        # What the stack's images carry (model/images.py); bench_pool.py --json reports what servers say.
        "versions": versions_of(config.postgres.image, config.pgbouncer.image if config.pgbouncer else None),
    }


def _status(result: PolicyResult) -> str:
    if result.not_applicable:
        return f"not applicable: {result.not_applicable}"
    return f"{len(result.violations)} violation(s)" if result.violations else "pass"


def render_policies(policies: list[PolicyResult]) -> str:
    lines = ["policies:"]
    for p in policies:
        lines.append(f"  {p.name:26s} {p.enforcement:9s} {_status(p)}")
        lines += [f"      - {v}" for v in p.violations]
        if p.violations and p.fix:
            lines.append(f"      fix: {p.fix}")
    return "\n".join(lines)


def render_markdown(stack: str, config: PlatformConfig, policies: list[PolicyResult]) -> str:
    """For a PR comment or job summary: the budget table, a pie of who holds the slots, the policies."""
    out = [f"### postgres-platform preflight: `{stack}`", ""]
    for server in budget.compute(config):
        out += [
            f"**{server.name}**: {server.total + server.headroom + server.superuser_reserved} of "
            f"{server.max_connections} connections promised, **{server.free} free**",
            "",
            "| role | database | kind | limit |",
            "|---|---|---|---:|",
            *(f"| {e.role} | {e.database or '-'} | {e.kind} | {e.limit} |" for e in server.entries),
            f"| admin headroom | - | reserve | {server.headroom} |",
            f"| superuser reserved | - | reserve | {server.superuser_reserved} |",
            "",
            "```mermaid",
            f"pie showData title {server.name}: max_connections {server.max_connections}",
            *(f'    "{e.role}" : {e.limit}' for e in server.entries),
            f'    "admin headroom" : {server.headroom}',
            f'    "superuser reserved" : {server.superuser_reserved}',
            f'    "free" : {server.free}',
            "```",
            "",
        ]
    out += [*(f"{line}  " for line in backup_lines(config)), ""]
    out += ["| policy | enforcement | result |", "|---|---|---|"]
    for p in policies:
        details = "<br>".join(p.violations + ([f"fix: {p.fix}"] if p.violations and p.fix else []))
        out.append(f"| {p.name} | {p.enforcement} | {_status(p)}{'<br>' + details if details else ''} |")
    return "\n".join(out)


def backup_lines(config: PlatformConfig) -> list[str]:
    """Where backups go and when (from the stack config; the same text the `backup` output holds)."""
    backup = config.backup
    if backup is None:
        return ["backups: none (a local stack may go without; every Hetzner stack has them)"]
    where = f"s3://{backup.s3.bucket}{backup.s3.path} at {backup.s3.endpoint}" if backup.s3 else "a Docker volume"
    return [
        f"backups: pgBackRest {backup.repo} repo, {where}, encrypted, keep {backup.retention_full} full / "
        f"{backup.retention_diff} diff",
        f"  full: {backup.schedule.full}; diff: {backup.schedule.diff}; check: hourly; "
        f"archive_timeout {backup.archive_timeout}s"
        + ("" if config.target == "hetzner" else " (timers: Hetzner hosts only)"),
    ]


def render_text(stack: str, config: PlatformConfig, run: ProgramRun) -> str:
    counts = run.counts()
    lines = [f"stack {stack} (target {config.target}): {sum(counts.values())} resources declared"]
    lines += [f"  {count:4d}  {token}" for token, count in counts.items()]
    lines.append("")
    lines += [budget.render_table(server) for server in budget.compute(config)]
    lines += ["", *backup_lines(config)]
    return "\n".join(lines)


def _run_in_child(stack: str, values: dict[str, Any]) -> ProgramRun:
    """A run in a child process that ends with it: its collector stays off, so the SDK's million objects
    are neither scanned nor freed (seconds, at 500 apps), and only the ProgramRun comes back."""
    gc.disable()
    return run_program(stack, values, preview=True)


def runs_aside(stack: str, *stack_values: dict[str, Any]) -> list[ProgramRun]:
    """The program's run for each of these config values, all at once, each in a child process (the SDK's
    state is one per process): --against costs about one run, not two in series."""
    with multiprocessing.get_context().Pool(len(stack_values)) as pool:  # leaving it kills the children
        pending = [pool.apply_async(_run_in_child, (stack, values)) for values in stack_values]
        return [result.get() for result in pending]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print only the JSON report on stdout")
    output.add_argument("--markdown", action="store_true", help="print the budget and policies as Markdown")
    parser.add_argument(
        "--against",
        type=Path,
        metavar="OLD_STACK_FILE",
        help="also list what `pulumi up` would change to get from this stack file to the new one",
    )
    parser.add_argument(
        "--accept-data-loss",
        action="store_true",
        help="exit 0 even when a change would delete or replace something that holds data",
    )
    args = parser.parse_args(argv)

    chosen = load_chosen(args)
    if chosen is None:
        return 1
    stack, values, config = chosen.name, chosen.values, chosen.config
    if args.against is None:
        (run,), changes = runs_aside(stack, values), None
    else:
        try:
            old_values, _ = load_stack_file(args.against)
        except ConfigError as exc:
            print(f"{args.against}: {exc}", file=sys.stderr)
            return 1
        # The same stack name: names derived from it (containers, directories) are not changes.
        run, old_run = runs_aside(stack, values, old_values)
        changes = impact.compare(old_run, run)
    policies = evaluate(run, policy_config(config))
    if args.json:
        out = report(stack, config, run, policies)
        if changes is not None:
            out["changes"] = [c.as_dict() for c in changes]
        print(json.dumps(out, indent=2))
    elif args.markdown:
        print(render_markdown(stack, config, policies))
        if changes is not None:
            print(f"\n#### Changes from `{args.against.name}`\n\n" + impact.render_table(changes, markdown=True))
    else:
        print(render_text(stack, config, run) + "\n\n" + render_policies(policies))
        if changes is not None:
            print(f"\nchanges from {args.against}:\n" + impact.render_table(changes))
    blocked = any(p.enforcement == "mandatory" and p.violations for p in policies)
    losing = [c.resource for c in changes or [] if c.data_loss]
    if losing and not args.accept_data_loss:
        print(
            f"refused: these changes lose data: {', '.join(losing)} (--accept-data-loss to exit 0; the "
            "protected ones fail `pulumi up` anyway: docs/operations/changing-a-live-stack.md)",
            file=sys.stderr,
        )
    return 1 if blocked or (losing and not args.accept_data_loss) else 0
