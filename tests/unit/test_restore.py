"""scripts/restore.py: a point in time only with its zone, a WAL position only as Postgres writes one.

Without --run the script only prints the commands, so these need no Docker engine.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from postgres_platform.cli import restore
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import PGDATA, PRIMARY
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render.backup import CONFIG_DIR as BACKUP_CONFIG_DIR
from postgres_platform.render.backup import POSIX_REPO
from postgres_platform.render.containers import postgres_container

PG_PATH = "/mnt/pgdata/restored"

GOOD_TIMES = [
    ("2026-11-21 09:30:00+00", "2026-11-21 09:30:00+00:00"),
    ("2026-11-21T09:30:00Z", "2026-11-21 09:30:00+00:00"),
    ("2026-11-21T09:30:00+00:00", "2026-11-21 09:30:00+00:00"),
    ("2026-11-21 11:30:00+02:00", "2026-11-21 09:30:00+00:00"),  # in UTC: what pgBackRest picks the backup by
    ("2026-11-21 04:00:00-0530", "2026-11-21 09:30:00+00:00"),
    ("2026-11-21 09:30+00", "2026-11-21 09:30:00+00:00"),  # seconds optional
    ("2026-11-21 09:30:00.25Z", "2026-11-21 09:30:00.250000+00:00"),
    ("2026-11-21 09:30:00,5+00", "2026-11-21 09:30:00.500000+00:00"),
    ("2026-11-22 00:30:00+01", "2026-11-21 23:30:00+00:00"),  # the day changes with the zone
]

BAD_TIMES = [
    "yesterday",
    "now",
    "",
    "2026-11-21 09:30:00",  # no zone: whose local time?
    "2026-11-21T09:30:00",
    "2026-11-21",
    "2026-11-21 09:30:00 UTC",
    "2026-11-21 09:30:00z",
    "2026-11-21 09:30:00 +00",
    "20261121T093000Z",  # ISO 8601's basic form: not one pgBackRest reads
    "2026-W47-6 09:30:00Z",
    "2026-13-21 09:30:00+00",  # no such month
    "2026-02-30 09:30:00+00",
    "2026-11-21 24:00:00+00",
    "2026-11-21 09:30:60+00",
    "2026-11-21 09:30:00+24:00",  # no such offset
    "2026-11-21 09:30:00+00:60",
    "2026-11-21 09:30:00.1234567+00",  # pgBackRest reads 6 fraction digits at most
    "0001-01-01 00:30:00+01",  # before year 1 in UTC
    "2026-11-21 09:30:00+00\n",
    "2026-11-21 09:30:00+00; rm -rf /",
    "٢٠٢٦-11-21 09:30:00+00",  # Arabic-Indic digits: \d without re.ASCII would take them
]

GOOD_LSNS = ["0/3000060", "16/B374D848", "ffffffff/ffffffff", "0/0"]
BAD_LSNS = [
    "3000060",
    "0/",
    "/3000060",
    "0/3000060/1",
    "0/3000G60",
    "123456789/0",
    "0/123456789",
    "0/3000060\n",
    " 0/3000060",
    "0x0/3000060",
    "-1/0",
    "latest",
]


def printed(out: str) -> list[list[str]]:
    return [shlex.split(line) for line in out.strip().splitlines()]


@pytest.mark.parametrize(("given", "target"), GOOD_TIMES)
def test_a_time_with_its_zone_reaches_pgbackrest_in_utc(
    capsys: pytest.CaptureFixture[str], given: str, target: str
) -> None:
    assert restore.main(["prod", f"--to-time={given}", "--pg-path", PG_PATH]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    copy, start = printed(captured.out)
    assert f"--target={target}" in copy and "--type=time" in copy and "--archive-mode=off" in copy
    assert "archive_mode=off" in start


@pytest.mark.parametrize("given", BAD_TIMES)
def test_any_other_time_is_one_line_naming_the_flag_and_the_value(
    capsys: pytest.CaptureFixture[str], given: str
) -> None:
    assert restore.main(["prod", f"--to-time={given}", "--pg-path", PG_PATH]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no command printed, so none to copy and run
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("--to-time: must be a timestamp with its zone")
    assert lines[0].endswith(f"got {given!r}")


@pytest.mark.parametrize("given", GOOD_LSNS)
def test_a_wal_position_reaches_pgbackrest_as_given(capsys: pytest.CaptureFixture[str], given: str) -> None:
    assert restore.main(["prod", f"--to-lsn={given}", "--pg-path", PG_PATH]) == 0
    copy, _ = printed(capsys.readouterr().out)
    assert f"--target={given}" in copy and "--type=lsn" in copy


@pytest.mark.parametrize("given", BAD_LSNS)
def test_anything_else_as_a_wal_position_is_one_line(capsys: pytest.CaptureFixture[str], given: str) -> None:
    assert restore.main(["prod", f"--to-lsn={given}", "--pg-path", PG_PATH]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1
    assert lines[0].startswith("--to-lsn: must be a WAL position") and lines[0].endswith(f"got {given!r}")


def test_a_standby_needs_no_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert restore.main(["prod", "--standby", "--pg-path", "/mnt/pgdata/data"]) == 0
    (standby,) = printed(capsys.readouterr().out)
    assert "--type=standby" in standby and not any(arg.startswith("--target=") for arg in standby)


def test_the_time_is_checked_before_the_stack_is_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        restore.main(["--stack-file", "/nonexistent/Pulumi.x.yaml", "--to-time", "yesterday", "--pg-path", PG_PATH])
        == 2
    )
    assert capsys.readouterr().err.startswith("--to-time: ")


def test_a_stack_without_backups_is_still_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert restore.main(["legacy", "--to-time", "2026-11-21 09:30:00+00", "--pg-path", PG_PATH]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Pulumi.legacy.yaml" in lines[0]


def test_the_commands_mount_the_primary_containers_data_and_backup_paths(capsys: pytest.CaptureFixture[str]) -> None:
    assert restore.main(["local", "--to-time", "2026-11-21 09:30:00+00", "--pg-path", PG_PATH]) == 0
    copy, start = printed(capsys.readouterr().out)
    config = load_stack_values(read_stack_values(stack_file("local")))
    spec = postgres_container("local", config, PRIMARY, [], initdb_password=False)

    def mounted(argv: list[str]) -> list[str]:
        return [argv[i + 1] for i, arg in enumerate(argv) if arg == "-v"]

    expected = [
        f"{PG_PATH}:{PGDATA}",
        f"{Path.home()}/.postgres-platform/local/pgbackrest:{BACKUP_CONFIG_DIR}:ro",
        f"postgres-platform-local-pgbackrest:{POSIX_REPO}",  # the local stack's repository is posix
    ]
    assert mounted(copy) == expected and mounted(start) == expected
    assert {PGDATA, BACKUP_CONFIG_DIR, POSIX_REPO} < {point.target for point in spec.mounts.values()}
