"""Backups proven by restoring, in containers of the shipped image (PostgreSQL 17, pgBackRest 2.55) (and a loopback S3).

The rendered pgBackRest config, archiving settings and command lines (render.backup) run unchanged.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from postgres_platform.cli import backup_drill
from postgres_platform.harness import s3 as local_s3
from postgres_platform.harness.servers import Servers
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render.backup import STANZA, RepoSecrets, command, repo_precheck

PROD = load_stack_values(read_stack_values(stack_file("prod")))


def info(servers: Servers) -> dict[str, Any]:
    done = servers.pgbackrest(command("info", "--output=json"))
    assert done.returncode == 0, done.stderr
    (stanza,) = json.loads(done.stdout)
    result: dict[str, Any] = stanza
    return result


def must(servers: Servers, argv: list[str]) -> str:
    done = servers.pgbackrest(argv)
    assert done.returncode == 0, (argv, done.stderr or done.stdout)
    return done.stdout


@pytest.fixture(scope="module")
def posix() -> Iterator[Servers]:
    config = backup_drill.drill_config(PROD, "posix", None)
    with Servers(config, backup_secrets=RepoSecrets(cipher_pass="module-passphrase")) as started:
        must(started, command("stanza-create"))
        yield started


def test_point_in_time_restore_brings_back_exactly_the_rows_before_the_target(posix: Servers) -> None:
    result = backup_drill.drill(posix)  # what scripts/backup_drill.py does, on this module's server
    assert result["restore"]["rowsFound"] == result["restore"]["rowsExpected"] == backup_drill.ROWS_BEFORE
    assert result["verify"]["ok"], result["verify"]["output"]  # every table read, pg_amcheck clean
    assert result["backup"]["type"] == "full" and result["backup"]["seconds"] > 0


def test_check_full_then_differential_backup(posix: Servers) -> None:
    must(posix, command("check"))
    must(posix, command("--type=full", "backup", backup=posix.config.backup))
    with psycopg.connect(posix.superuser_dsn("fleet_platform"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS later (id int); INSERT INTO later SELECT generate_series(1, 100)")
    must(posix, command("--type=diff", "backup", backup=posix.config.backup))
    types = [b["type"] for b in info(posix)["backup"]]
    assert types[-2:] == ["full", "diff"]
    assert info(posix)["cipher"] == "aes-256-cbc"  # encrypted, always


def test_retention_expires_the_oldest_full_backup(posix: Servers) -> None:
    backup = posix.config.backup
    assert backup is not None
    keep_one = backup.model_copy(update={"retention_full": 1})  # two fulls show it, faster than prod's 4 + 1
    for _ in range(2):
        must(posix, command("--type=full", "backup", backup=keep_one))
    fulls = [b for b in info(posix)["backup"] if b["type"] == "full"]
    assert len(fulls) == 1  # the backup command expired the older full past --repo1-retention-full=1


def test_check_fails_clearly_when_archiving_is_broken(posix: Servers) -> None:
    """The repository cannot be written (a full disk, a lost mount, revoked access): archiving fails."""
    must(posix, command("check"))  # archiving works: the cluster's WAL directory exists
    (archive,) = (posix.repo / "archive" / "main").glob("17-*")  # the WAL of this cluster (its info stays readable)
    archive.chmod(0o000)
    try:
        done = posix.pgbackrest(command("check", "--archive-timeout=5"))
        text = done.stdout + done.stderr
        # It fails, and says where: pgBackRest error [053], the archive path, "Permission denied".
        assert done.returncode != 0 and "ERROR: [053]" in text and "Permission denied" in text, text
        with psycopg.connect(
            posix.superuser_dsn(), autocommit=True
        ) as conn:  # what docs/operations/backups-and-restore.md says to watch
            conn.execute("SELECT pg_switch_wal()")
            for _ in range(100):
                row = conn.execute("SELECT failed_count, last_failed_wal FROM pg_stat_archiver").fetchone()
                if row and row[0]:
                    break
                time.sleep(0.1)
        assert row is not None and row[0] > 0 and row[1]  # archive-push failed too, and Postgres counts it
    finally:
        archive.chmod(0o750)


@pytest.fixture(scope="module")
def s3() -> Iterator[local_s3.LocalS3]:
    if local_s3.missing():
        pytest.skip(f"the S3 drill needs {', '.join(local_s3.missing())}")
    with local_s3.LocalS3() as started:
        yield started


def test_s3_point_in_time_restore_with_encryption_and_a_wrong_passphrase_reads_nothing(s3: local_s3.LocalS3) -> None:
    config = backup_drill.drill_config(PROD, "s3", s3)
    keys = (local_s3.ACCESS_KEY, local_s3.SECRET_KEY)
    with Servers(config, backup_secrets=RepoSecrets("the-right-one", *keys)) as servers:
        result = backup_drill.drill(servers)
        assert result["repo"] == "s3"
        assert result["restore"]["rowsFound"] == result["restore"]["rowsExpected"] == backup_drill.ROWS_BEFORE
        assert info(servers)["cipher"] == "aes-256-cbc"
        servers.backup_secrets = RepoSecrets("not-the-passphrase", *keys)
        servers.install_config()
        done = servers.pgbackrest(command("info"))
        text = done.stdout + done.stderr
        # The repository's info files do not decrypt: pgBackRest says so, and lists no backup.
        assert "status: error" in text and "unable to load info file" in text, text


def test_a_repository_it_cannot_write_is_named_before_pgbackrest_runs(posix: Servers) -> None:
    """The stanza step's first line (render.backup.repo_precheck), in the server's container."""
    backup = posix.config.backup
    assert backup is not None
    (precheck,) = repo_precheck(posix.postgres_container, backup)
    posix.repo.chmod(0o555)
    try:
        started = time.monotonic()
        done = subprocess.run(["sh", "-c", precheck], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and time.monotonic() - started < 10
        assert done.stderr.strip() == (
            "pgBackRest repository /var/lib/pgbackrest: not writable by postgres (a "
            "read-only mount, its owner or its mode)"
        )
    finally:
        posix.repo.chmod(0o750)
    assert subprocess.run(["sh", "-c", precheck], capture_output=True, timeout=60).returncode == 0


def test_a_verification_passes_on_a_good_backup_and_fails_on_a_corrupted_repository(posix: Servers) -> None:
    """What a scheduled verification does (backup_drill.verify_latest): the latest backup restored into a
    scratch copy, every table read, pg_amcheck; then one file of that backup corrupted in the repository."""
    must(posix, command("--type=full", "backup", backup=posix.config.backup))
    with psycopg.connect(posix.superuser_dsn(next(iter(posix.config.databases))), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS verified (id int PRIMARY KEY, note text)")
        conn.execute(
            "INSERT INTO verified SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g ON CONFLICT DO NOTHING"
        )
    must(posix, command("--type=full", "backup", backup=posix.config.backup))
    good = backup_drill.verify_latest(posix)
    assert good["ok"], good["output"]
    assert good["output"][-1] == "verified"

    newest = sorted(d for d in (posix.repo / "backup" / STANZA).iterdir() if d.name.endswith("F"))[-1]
    largest = max((f for f in (newest / "pg_data").rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)
    data = bytearray(largest.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    largest.write_bytes(bytes(data))
    bad = backup_drill.verify_latest(posix)
    assert not bad["ok"] and bad["output"], bad
