"""Preflight: what a stack would declare, whether its budget fits and its policies pass. No cloud, no CLI.

    python scripts/preflight.py prod
    python scripts/preflight.py --stack-file path/to/Pulumi.x.yaml --json
    python scripts/preflight.py prod --markdown >> "$GITHUB_STEP_SUMMARY"
    python scripts/preflight.py prod --against base/Pulumi.prod.yaml --json   # what an up would change

Loads the stack config (a bad one: its one-line errors on stderr, exit 2), runs the real program
under Pulumi mocks (in a child process), runs every policy of policy/ over what it declared (as at
preview), and prints the resources, the budget per server, the policy results and the secrets `pulumi
up` will need. With --against: first what `pulumi up` would do to get from that stack file to this one
(a summary line, then each change: + create, ~ update, ± replace, - delete, with the properties that
change, data loss, app interruption).

Exit 1 when it ran and found a problem: a mandatory policy violation, a change that loses data, a
secret the stack file lacks, a config over its connection budget (whose table, overflow included, is
still printed in every format). Exit 2 when it could not run (a missing or bad stack file).
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postgres_platform.cli.errors import COULD_NOT_RUN, FOUND_PROBLEMS, command
from postgres_platform.cli.stacks import add_stack_arguments, chosen_stack
from postgres_platform.model import budget
from postgres_platform.model.config import ConfigError, PlatformConfig
from postgres_platform.model.images import versions_of
from postgres_platform.model.names import NAMESPACE
from postgres_platform.model.stackfile import load_stack_file, read_stack_values
from postgres_platform.offline import impact, secrets
from postgres_platform.offline.policies import PolicyResult, evaluate
from postgres_platform.offline.policy_config import policy_config
from postgres_platform.offline.program import ProgramRun, run_program


def report(stack: str, config: PlatformConfig, run: ProgramRun, policies: list[PolicyResult]) -> dict[str, Any]:
    return {
        "stack": stack,
        "servers": [server.as_dict() for server in budget.compute(config)],
        "resources": [{"type": token, "count": count} for token, count in run.counts().items()],  # sorted by type
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


def markdown_budget(server: budget.ServerBudget) -> list[str]:
    """A server's budget table and a pie of who holds the slots (an overflow row, and no pie, when over)."""
    left = f"**{server.over} over**" if server.over else f"**{server.free} free**"
    lines = [
        f"**{server.name}**: {server.total + server.headroom + server.superuser_reserved + server.reserved} of "
        f"{server.max_connections} connections promised, {left}",
        "",
        "| role | database | kind | limit |",
        "|---|---|---|---:|",
        *(f"| {e.role} | {e.database or '-'} | {e.kind} | {e.limit} |" for e in server.entries),
        f"| admin headroom | - | reserve | {server.headroom} |",
        f"| superuser reserved | - | reserve | {server.superuser_reserved} |",
        *([f"| reserved_connections | - | reserve | {server.reserved} |"] if server.reserved else []),
        *([f"| **{budget.OVERFLOW_ROW}** | - | overflow | **{server.over}** |"] if server.over else []),
        "",
    ]
    if server.over:
        return lines
    return [
        *lines,
        "```mermaid",
        f"pie showData title {server.name}: max_connections {server.max_connections}",
        *(f'    "{e.role}" : {e.limit}' for e in server.entries),
        f'    "admin headroom" : {server.headroom}',
        f'    "superuser reserved" : {server.superuser_reserved}',
        *([f'    "reserved_connections" : {server.reserved}'] if server.reserved else []),
        f'    "free" : {server.free}',
        "```",
        "",
    ]


def render_markdown(stack: str, config: PlatformConfig, policies: list[PolicyResult]) -> str:
    """For a PR comment or job summary: the budget table, a pie of who holds the slots, the policies."""
    out = [f"### postgres-platform preflight: `{stack}`", ""]
    for server in budget.compute(config):
        out += markdown_budget(server)
    out += [*(f"{line}  " for line in backup_lines(config)), ""]
    out += ["| policy | enforcement | result |", "|---|---|---|"]
    for p in policies:
        details = "<br>".join(p.violations + ([f"fix: {p.fix}"] if p.violations and p.fix else []))
        out.append(f"| {p.name} | {p.enforcement} | {_status(p)}{'<br>' + details if details else ''} |")
    return "\n".join(out)


def markdown_secrets(found: list[secrets.Secret]) -> str:
    if not found:
        return "secrets: none needed by `pulumi up` for this config"
    rows = [f"| `{s.key}` | {'present' if s.present else '**missing**'} | {s.why} |" for s in found]
    return "\n".join(["| secret | in the stack | for |", "|---|---|---|", *rows])


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


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--require-secrets",
        action="store_true",
        help="exit 1 when the stack file lacks a secret `pulumi up` needs (the last check before an up; without "
        "it they are listed only, since an ESC environment or the CI may set them)",
    )
    return parser


class _CannotLoad(Exception):
    """A stack file preflight cannot run on: its config problems, one per line, each naming its key."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("; ".join(lines))


@dataclass(frozen=True)
class _Loaded:
    values: dict[str, Any]
    config: PlatformConfig | None  # None: over budget (the only problem), see `over`
    over: tuple[budget.OverBudget, ...] = ()


def _load(path: Path, prefix: str = "") -> _Loaded:
    """A stack file's values and config; over budget (and nothing else wrong) is a result, not an error."""
    try:
        values, config = load_stack_file(path)
    except ConfigError as exc:
        over = tuple(line for line in exc.lines if isinstance(line, budget.OverBudget))
        if over and len(over) == len(exc.lines):
            return _Loaded(read_stack_values(path), None, over)
        raise _CannotLoad([f"{prefix}{line}" for line in exc.lines]) from None
    return _Loaded(values, config)


def _servers(loaded: _Loaded) -> list[budget.ServerBudget]:
    return [line.server for line in loaded.over] if loaded.config is None else budget.compute(loaded.config)


def _emit(text: str) -> None:
    """Print and flush inside the command, so that a closed pipe (`| head`) is the decorator's to end quietly."""
    print(text)
    sys.stdout.flush()


def _print_problems(problems: list[dict[str, str]]) -> None:
    for p in problems:
        print(f"{p['problem']} ({p['fix']})", file=sys.stderr)


def over_budget(args: argparse.Namespace, stack: str, loaded: _Loaded) -> int:
    """A config over its budget ran into a problem: the budget table with its overflow, in every format."""
    servers = _servers(loaded)
    old = {s.name: s for s in _servers(_load(args.against, f"{args.against}: "))} if args.against else {}
    grown = {s.name: budget.growth(old[s.name], s) if s.name in old else None for s in servers}
    against = args.against.name if args.against else ""
    lines = [budget.overflow_line(s, old.get(s.name), against) for s in servers if s.over]
    problems = [{"problem": line, "fix": "see docs/connection-budget.md"} for line in lines]
    print("\n".join(lines), file=sys.stderr)  # each a config error line: `key: problem, got value`
    if args.json:
        out = {
            "stack": stack,
            "servers": [s.as_dict() for s in servers],
            "overBudget": [
                {
                    "server": s.name,
                    "over": s.over,
                    "largest": [{"role": e.role, "key": e.key, "limit": e.limit} for e in budget.largest(s)],
                    "grew": None if grown[s.name] is None else [g.as_dict() for g in grown[s.name] or []],
                }
                for s in servers
                if s.over
            ],
            "problems": problems,
            "error": lines[0],
        }
        _emit(json.dumps(out, indent=2))
    elif args.markdown:
        body = [line for s in servers for line in markdown_budget(s)]
        _emit("\n".join([f"### postgres-platform preflight: `{stack}`", "", *body, *(f"- {line}" for line in lines)]))
    else:
        target = loaded.values.get(f"{NAMESPACE}:target", "?")
        head = f"stack {stack} (target {target}): over the connection budget, nothing declared"
        _emit("\n\n".join([head, *(budget.render_table(s) for s in servers)]))
    return FOUND_PROBLEMS


def _run(args: argparse.Namespace, stack: str, values: dict[str, Any]) -> tuple[ProgramRun, list[impact.Change] | None]:
    if args.against is None:
        (run,) = runs_aside(stack, values)
        return run, None
    old = _load(args.against, f"{args.against}: ")
    if old.config is None:
        raise _CannotLoad([f"{args.against}: {line}" for line in old.over])
    # The same stack name: names derived from it (containers, directories) are not changes.
    run, old_run = runs_aside(stack, values, old.values)
    return run, impact.compare(old_run, run)


def _problems(
    args: argparse.Namespace, changes: list[impact.Change] | None, found: list[secrets.Secret]
) -> list[dict[str, str]]:
    """What the report found besides the policies' violations, each as {problem, fix}."""
    problems = [s.problem() for s in found if not s.present] if args.require_secrets else []
    losing = [c.resource for c in changes or [] if c.data_loss]
    if losing and not args.accept_data_loss:
        problems.append(
            {
                "problem": f"refused: these changes lose data: {', '.join(losing)}",
                "fix": "--accept-data-loss to exit 0; the protected ones fail `pulumi up` anyway: "
                "docs/operations/changing-a-live-stack.md",
            }
        )
    return problems


def _print_report(
    args: argparse.Namespace,
    stack: str,
    config: PlatformConfig,
    run: ProgramRun,
    changes: list[impact.Change] | None,
    policies: list[PolicyResult],
    found: list[secrets.Secret],
    problems: list[dict[str, str]],
) -> None:
    if args.json:
        out = report(stack, config, run, policies)
        out["secrets"] = [s.as_dict() for s in found]
        out["problems"] = problems
        if changes is not None:
            out["summary"] = impact.summary(changes)
            out["changes"] = [c.as_dict() for c in changes]
        _emit(json.dumps(out, indent=2))
        return
    first = [] if changes is None else [_changes_section(args, changes)]  # what an up would do: first
    if args.markdown:
        rest = [render_markdown(stack, config, policies), markdown_secrets(found)]
    else:
        rest = [render_text(stack, config, run), render_policies(policies), secrets.render(found)]
    _emit("\n\n".join(first + rest))


def _changes_section(args: argparse.Namespace, changes: list[impact.Change]) -> str:
    if args.markdown:
        return f"#### Changes from `{args.against.name}`\n\n" + impact.render_table(changes, markdown=True)
    return f"changes from {args.against}: " + impact.render_table(changes)


@command
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stack, path = chosen_stack(args)
    try:
        loaded = _load(path)
        if loaded.config is None:
            return over_budget(args, stack, loaded)
        run, changes = _run(args, stack, loaded.values)
    except _CannotLoad as exc:
        print("\n".join(exc.lines), file=sys.stderr)
        if args.json:
            problems = [{"problem": line, "fix": "correct the stack file"} for line in exc.lines]
            _emit(json.dumps({"error": exc.lines[0], "problems": problems}))
        return COULD_NOT_RUN
    config = loaded.config
    policies = evaluate(run, policy_config(config))
    found = secrets.needed(config, loaded.values)
    problems = _problems(args, changes, found)
    _print_report(args, stack, config, run, changes, policies, found, problems)
    _print_problems(problems)
    blocked = any(p.enforcement == "mandatory" and p.violations for p in policies)
    return FOUND_PROBLEMS if blocked or problems else 0
