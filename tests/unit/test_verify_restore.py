"""The scheduled verified restore, rendered: backup.verify.maxAgeDays sets the alert's threshold, the
exporter query and rules exist only with backups, and the job script never writes where it must not."""

from __future__ import annotations

import re
import subprocess
from typing import Any

from postgres_platform.model.load import parse
from postgres_platform.render import monitoring, restore_check
from postgres_platform.render.containers import MountSource
from tests.helpers import valid_config


def with_backup(verify: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = valid_config()
    raw["backup"] = {"repo": "posix", **({"verify": verify} if verify is not None else {})}
    return raw


def rule(raw: dict[str, Any], name: str) -> dict[str, Any]:
    rules = monitoring.rules(parse(raw), "test")
    (found,) = [r for group in rules["groups"] for r in group["rules"] if r["alert"] == name]
    result: dict[str, Any] = found
    return result


def test_max_age_days_sets_the_not_verified_threshold() -> None:
    default = rule(with_backup(), "PostgresRestoreNotVerified")
    assert default["expr"].endswith(f"> {8 * 86400}") and "8 days" in default["annotations"]["summary"]
    three = rule(with_backup({"maxAgeDays": 3}), "PostgresRestoreNotVerified")
    assert float(re.findall(r"> (\d+)$", three["expr"])[0]) == 3 * 86400
    assert "3 days" in three["annotations"]["summary"]
    assert "verify-restore" in three["annotations"]["summary"]  # where to look: the job
    assert (
        "backups-and-restore.md" in rule(with_backup(), "PostgresRestoreVerificationFailed")["annotations"]["summary"]
    )


def test_without_backups_there_is_no_verification_query_or_rule() -> None:
    raw = valid_config()
    raw.pop("backup", None)
    config = parse(raw)
    names = {r["alert"] for g in monitoring.rules(config, "test")["groups"] for r in g["rules"]}
    assert not names & {"PostgresRestoreNotVerified", "PostgresRestoreVerificationFailed"}
    assert "pgplatform_restore_verification" not in monitoring.queries(config)
    assert "pgplatform_restore_verification" in monitoring.queries(parse(with_backup()))


def job(repo: str = "posix") -> restore_check.VerifyJob:
    return restore_check.VerifyJob(
        server="postgres-platform-test-postgres",
        databases=("app_db",),
        repo=repo,
        config_dir="/etc/postgres-platform/pgbackrest",
        repo_source=MountSource("postgres-platform-test-pgbackrest", "volume") if repo == "posix" else None,
    )


def test_the_job_script_is_valid_bash_and_mounts_the_repository_read_only() -> None:
    for repo in ("posix", "s3"):
        script = restore_check.job_script(job(repo))
        assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
        (run,) = [line for line in script.splitlines() if "docker run" in line]
        mounts = re.findall(r"--mount (\S+)", run)
        assert mounts and all(m.endswith(",readonly") for m in mounts), mounts
        assert ("--network none" in run) == (repo == "posix") and ("--network bridge" in run) == (repo == "s3")
        # The copy restores into its own layer, never PGDATA, and never archives.
        assert f"--pg1-path={restore_check.COPY_DATA} --archive-mode=off restore" in script
        assert "/var/lib/postgresql/data" not in script and "archive_mode=off" in script
        assert "trap remove_copy EXIT" in script and "timeout --kill-after=60" in script
        assert "password" not in script.lower() and "cipher-pass" not in script
