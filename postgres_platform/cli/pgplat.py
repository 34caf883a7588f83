"""`pgplat`: one command for the platform's tools. Each subcommand hands its arguments, unchanged, to the
command it stands for (the same command line and --json as `scripts/*.py`), so `pgplat check prod --json`
is `python3 scripts/preflight.py prod --json`.

Examples:
    pgplat check prod                 # preflight a stack offline
    pgplat diff prod --against OLD    # what changes from OLD to prod
    pgplat live prod --dsn-file admin.dsn --watch 5
    pgplat doctor prod                # what this machine has and lacks
    pgplat versions --json

Completion (bash): eval "$(_PGPLAT_COMPLETE=bash_source pgplat)"  (zsh: zsh_source, fish: fish_source)
"""

from __future__ import annotations

import importlib
import json
import sys
from importlib.metadata import PackageNotFoundError, version

import click

from postgres_platform.cli.errors import command
from postgres_platform.model.images import BUILDS

# subcommand -> (module under postgres_platform.cli, arguments put before the user's, help)
DELEGATES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "check": ("preflight", (), "preflight a stack offline (scripts/preflight.py)"),
    "diff": ("preflight", (), "preflight NEW --against OLD: what changes (scripts/preflight.py --against)"),
    "sql": ("render_sql", (), "the SQL the stack applies (scripts/render_sql.py)"),
    "live": ("live_budget", (), "connections against the budget on a live server (scripts/live_budget.py)"),
    "grants": ("live_budget", ("--check-grants",), "grant drift on a live server (live_budget --check-grants)"),
    "discover": ("discover", (), "suggest apps from a running server (scripts/discover.py)"),
    "drill": ("backup_drill", (), "backup and restore drill (scripts/backup_drill.py)"),
    "restore": ("restore", (), "restore from a backup (scripts/restore.py)"),
    "policy-config": ("policy_config", (), "the policy pack's config (scripts/policy_config.py)"),
    "build-images": ("build_images", (), "build the stacks' images (scripts/build_images.py)"),
    "pg-settings": ("pg_settings", (), "the server settings a stack gets (scripts/pg_settings.py)"),
    "alert-rules": ("alert_rules", (), "Prometheus alert rules from the budget (scripts/alert_rules.py)"),
    "hba-lines": ("hba_lines", (), "pg_hba lines for an adopted server (scripts/hba_lines.py)"),
    "doctor": ("doctor", (), "what this machine has and lacks for each job"),
    "switchover": ("switchover", (), "a planned Patroni switchover, PgBouncer paused (scripts/switchover.py)"),
}
BENCHES = {"scale": "bench_scale", "pool": "bench_pool", "grants": "bench_grants"}
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def package_version() -> str:
    try:
        return version("postgres-platform")
    except PackageNotFoundError:
        return "unknown (not installed: python3 -m pip install -e .)"


def delegate(module: str, argv: list[str]) -> int:
    """Run postgres_platform.cli.<module>.main(argv) and return its exit code."""
    main = importlib.import_module(f"postgres_platform.cli.{module}").main
    return int(main(argv))


def _subcommand(name: str, module: str, before: tuple[str, ...], text: str) -> click.Command:
    @click.pass_context
    def run(ctx: click.Context) -> None:
        ctx.exit(delegate(module, [*before, *ctx.args]))

    return click.Command(name, callback=run, help=text, context_settings=PASS_THROUGH, add_help_option=False)


@click.group(help=__doc__, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_version(), "--version", prog_name="pgplat", message="%(prog)s %(version)s")
def cli() -> None:
    pass


for _name, (_module, _before, _text) in DELEGATES.items():
    cli.add_command(_subcommand(_name, _module, _before, _text))


@cli.command("bench", context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("which", type=click.Choice(sorted(BENCHES)))
@click.pass_context
def bench(ctx: click.Context, which: str) -> None:
    """benchmarks: scale (preflight), pool (PgBouncer), grants (the grant check)."""
    ctx.exit(delegate(BENCHES[which], list(ctx.args)))


def versions_table() -> list[dict[str, str]]:
    """The images the stacks ship and what each carries."""
    return [
        {"image": reference, "component": component, "version": carried}
        for reference, build in BUILDS.items()
        for component, carried in build.versions.items()
    ]


@cli.command("versions")
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of {image, component, version}")
def versions(as_json: bool) -> None:
    """the versions the stacks' images carry."""
    rows = versions_table()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("image", "component", "version")
    for row in rows:
        table.add_row(row["image"], row["component"], row["version"])
    Console().print(table)


@command
def main(argv: list[str] | None = None) -> int:
    try:
        done = cli.main(args=sys.argv[1:] if argv is None else argv, prog_name="pgplat", standalone_mode=False)
    except click.exceptions.Exit as stop:
        return int(stop.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        return 130
    return int(done) if isinstance(done, int) else 0


if __name__ == "__main__":
    sys.exit(main())
