"""pgplat doctor [STACK | --stack-file PATH] [--job NAME] [--json]: what this machine has and lacks for each
job: the fast tests, `pulumi up`, the real-server tests, the end-to-end runs. Each job is ready or not, and
each check says what was found and, when it is missing, the fix. Exit 1 when a job asked about (every job,
without --job) lacks something it needs. --json: a list of {"job", "check", "ok", "required", "detail",
"fix"}. A secret's value is never read into the report: only its key and whether it is set."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from postgres_platform.cli.doctor.checks import Check, lacks
from postgres_platform.cli.doctor.docker_engine import real_server_checks
from postgres_platform.cli.doctor.engine_build import e2e_checks
from postgres_platform.cli.doctor.pulumi_up import up_checks
from postgres_platform.cli.doctor.python_env import fast_test_checks
from postgres_platform.cli.errors import COULD_NOT_RUN, FOUND_PROBLEMS, command
from postgres_platform.cli.stacks import ChosenStack, load_chosen

JOBS = {
    "tests": "preflight and the fast tests",
    "up": "pulumi up",
    "real-servers": "real-server tests (containers of the project's images)",
    "e2e": "end-to-end runs (the Pulumi engine scripts/engine.sh builds)",
}


def gather(jobs: list[str], env: Mapping[str, str], chosen: ChosenStack | None, from_cli: bool) -> list[Check]:
    found: list[Check] = []
    for job in jobs:
        if job == "tests":
            found += fast_test_checks()
        elif job == "up":
            found += up_checks(env.get("PATH", ""), chosen, from_cli)
        elif job == "real-servers":
            found += real_server_checks(env)
        else:
            found += e2e_checks(env)
    return found


def state(c: Check) -> str:
    if c.ok is None:
        return "[dim]-[/]"
    if c.ok:
        return "[green]ok[/]"
    return "[red]MISSING[/]" if c.required else "[yellow]optional[/]"


def print_tables(jobs: list[str], checks: list[Check], console: Console) -> None:
    for job in jobs:
        mine = [c for c in checks if c.job == job]
        ready = "[red]NOT READY[/]" if lacks(mine) else "[green]ready[/]"
        table = Table(title=f"{job}: {JOBS[job]}: {ready}", title_justify="left", expand=False)
        for column in ("", "check", "detail"):
            table.add_column(column, overflow="fold")
        for c in mine:
            fix = f"\n[dim]fix:[/] {escape(c.fix)}" if c.ok is False and c.fix else ""
            table.add_row(state(c), escape(c.check), escape(c.detail) + fix)
        console.print(table)


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgplat doctor", description=__doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("stack", nargs="?", help="stack name: also check the secrets Pulumi.<stack>.yaml needs")
    source.add_argument("--stack-file", type=Path, help="a stack file anywhere (its `secure:` entries are read)")
    parser.add_argument("--job", choices=list(JOBS), help="only this job (default: every job)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    chosen = None
    if args.stack or args.stack_file:
        chosen = load_chosen(args)
        if chosen is None:
            return COULD_NOT_RUN
    jobs = [args.job] if args.job else list(JOBS)
    checks = gather(jobs, dict(os.environ), chosen, from_cli=bool(args.stack))
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        print_tables(jobs, checks, Console(highlight=False))
    return FOUND_PROBLEMS if lacks(checks) else 0
