"""Backup drill: a real PostgreSQL with the stack's backup config, a full backup, a point-in-time restore.

    python scripts/backup_drill.py [--repo posix|s3] [--stack prod] [--json]

Starts PostgreSQL (and, for s3, an S3-compatible server on loopback: moto behind stunnel) with the
stack's rendered pgBackRest config and archiving, the repository moved to this machine. Makes a full
backup, writes rows, notes a target time, writes more rows, restores to the target into a fresh data
directory, starts it and counts; on a terminal, a progress bar of those phases on stderr. --json
prints only {"repo", "backup": {"type", "seconds"}, "restore": {"target", "rowsExpected", "rowsFound",
"seconds"}, "verify": {"ok", "seconds", "output"}} (`verify`: the restored copy checked as a scheduled
verification checks it: ops/restore_check.py). Exit 1 when the counts differ or the verification fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import time
from typing import Any, Literal

import psycopg

from postgres_platform.cli import errors
from postgres_platform.cli.progress import Advance, no_progress, steps
from postgres_platform.harness.s3 import ACCESS_KEY, SECRET_KEY, LocalS3
from postgres_platform.harness.servers import Servers
from postgres_platform.model.config import BackupConfig, PlatformConfig, S3RepoConfig
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.ops import restore_check
from postgres_platform.render.backup import RepoSecrets, command

Repo = Literal["posix", "s3"]
ROWS_BEFORE, ROWS_AFTER = 1000, 500


def drill_config(config: PlatformConfig, repo: Repo, s3: LocalS3 | None) -> PlatformConfig:
    """The stack's config with its repository on this machine (posix: a temp dir; s3: the local server)."""
    backup = config.backup or BackupConfig(repo=repo)
    target = (
        S3RepoConfig(endpoint=s3.endpoint, bucket=s3.bucket, region=s3.region, path="/drill", ca_file=str(s3.ca_file))
        if s3
        else None
    )
    return config.model_copy(update={"backup": backup.model_copy(update={"repo": repo, "s3": target})})


PHASES = 8  # starting the servers, then drill()'s seven


def run(config: PlatformConfig, repo: Repo, cipher_pass: str | None = None) -> dict[str, Any]:
    repo_secrets = RepoSecrets(cipher_pass or secrets.token_hex(32), ACCESS_KEY, SECRET_KEY)
    with steps("starting the servers", total=PHASES) as advance, contextlib.ExitStack() as started:
        s3 = started.enter_context(LocalS3()) if repo == "s3" else None
        servers = started.enter_context(Servers(drill_config(config, repo, s3), backup_secrets=repo_secrets))
        advance()
        result = drill(servers, advance)
        advance(0, "stopping the servers")
        return result


def _must(servers: Servers, argv: list[str]) -> None:
    done = servers.pgbackrest(argv)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[3:])} failed: {(done.stderr or done.stdout)[-2000:]}")


def drill(servers: Servers, advance: Advance = no_progress) -> dict[str, Any]:
    """Full backup, rows, a target, more rows, a restore to the target into a fresh directory, a count.
    `advance` is told each phase as it starts and ends (a progress bar's; by default nothing)."""
    backup = servers.config.backup
    assert backup is not None
    advance(0, "stanza-create")
    _must(servers, command("stanza-create"))
    advance(1, "full backup")
    started = time.monotonic()
    _must(servers, command("--type=full", "backup", backup=backup))
    backup_seconds = time.monotonic() - started
    advance(1, "rows before and after a target time")
    database = next(iter(servers.config.databases))
    with psycopg.connect(servers.superuser_dsn(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE drill (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
        conn.execute("INSERT INTO drill (at) SELECT clock_timestamp() FROM generate_series(1, %s)", (ROWS_BEFORE,))
        time.sleep(1.1)  # the target, to the second, falls after every row above and before every row below
        row = conn.execute("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00'").fetchone()
        target = str(row[0]) if row else ""
        time.sleep(1.1)
        conn.execute("INSERT INTO drill (at) SELECT clock_timestamp() FROM generate_series(1, %s)", (ROWS_AFTER,))
    advance(1, "archiving the WAL (pgbackrest check)")
    _must(servers, command("check"))  # switches WAL and waits until it is archived
    advance(1, "restoring to the target")
    started = time.monotonic()
    copy, port = servers.restore_copy(target=target)
    restore_seconds = time.monotonic() - started
    advance(1, "counting the restored rows")
    dsn = servers.superuser_dsn(database).replace(f"port={servers.pg_port}", f"port={port}")
    with psycopg.connect(dsn) as conn:
        found = conn.execute("SELECT count(*) FROM drill").fetchone()
    advance(1, "verifying the restored copy (every table read, pg_amcheck)")
    verified = restore_check.verify(copy, port, list(servers.config.databases))
    servers.stop_copy(copy)
    advance()
    return {
        "repo": backup.repo,
        "backup": {"type": "full", "seconds": round(backup_seconds, 2)},
        "restore": {
            "target": target,
            "rowsExpected": ROWS_BEFORE,
            "rowsFound": int(found[0]) if found else 0,
            "seconds": round(restore_seconds, 2),
        },
        "verify": {"ok": verified["ok"], "seconds": verified["seconds"], "output": verified["output"]},
    }


def verify_latest(servers: Servers) -> dict[str, Any]:
    """The latest backup restored into a scratch copy (never archiving into the repository), verified and
    removed: what a scheduled verification does. A restore that fails is a failed verification."""
    try:
        copy, port = servers.restore_copy(target=None)
    except (RuntimeError, TimeoutError) as exc:
        lines = str(exc).splitlines()[-restore_check.OUTPUT_LINES :]
        return {"ok": False, "checkedAt": None, "seconds": None, "output": lines}
    try:
        return restore_check.verify(copy, port, list(servers.config.databases))
    finally:
        servers.stop_copy(copy)


@errors.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", choices=["posix", "s3"], default="posix")
    parser.add_argument("--stack", default="prod", help="stack whose backup config the drill uses (default prod)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    result = run(load_stack_values(read_stack_values(stack_file(args.stack))), args.repo)
    restore = result["restore"]
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['repo']}: full backup {result['backup']['seconds']} s; restore to {restore['target']} "
            f"in {restore['seconds']} s: {restore['rowsFound']} of {restore['rowsExpected']} rows; verified: "
            f"{'yes' if result['verify']['ok'] else 'NO: ' + ' / '.join(result['verify']['output'][-3:])}"
        )
    return 0 if restore["rowsFound"] == restore["rowsExpected"] and result["verify"]["ok"] else 1
