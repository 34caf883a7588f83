"""The scheduled verified restore under mocks: a Hetzner stack's Backups installs the job script and its
systemd timer on backup.verify.schedule; a local stack gets the script in its config directory and no timer."""

from __future__ import annotations

import json

import pytest

from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.program import ProgramRun, run_program
from postgres_platform.render import restore_check
from tests.helpers import run_of

TIMER = f"{restore_check.JOB_UNIT}.timer"


def config_of(stack: str) -> PlatformConfig:
    return load_stack_values(read_stack_values(stack_file(stack)))


def verify_command(run: ProgramRun) -> str:
    (found,) = [r for r in run.resources if r.name == "backups-verify"]
    script: str = found.inputs["create"]
    return script


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_hetzner_stack_installs_the_verify_timer_on_its_schedule(stack: str) -> None:
    config = config_of(stack)
    assert config.backup is not None
    script = verify_command(run_of(stack))
    path = f"/etc/postgres-platform/{restore_check.JOB_SCRIPT}"
    assert f"cat > /etc/systemd/system/{TIMER} <<'UNIT'" in script
    assert f"OnCalendar={config.backup.verify.schedule}\n" in script and "Persistent=true" in script
    assert f"ExecStart=/bin/bash {path}\n" in script and f"systemctl enable --now {TIMER}" in script
    # The job itself: a scratch copy of the server's image, the repository's config read-only, S3 over a
    # bridge network (no published port), never archiving, the result recorded in the primary.
    assert f"cat > {path}.new <<'JOB'" in script
    (run,) = [line for line in script.splitlines() if "docker run" in line]
    assert "--network bridge" in run and " -p " not in run and "--publish" not in run
    assert "target=/etc/pgbackrest,readonly" in script and "--archive-mode=off" in script
    assert f"INSERT INTO {restore_check.TABLE}" in script
    assert "repo1-cipher-pass" not in script and "offline-backupS3Key" not in script


def test_a_changed_schedule_changes_the_timer() -> None:
    values = read_stack_values(stack_file("prod"))
    backup = json.loads(values["postgres-platform:backup"])
    backup["verify"] = {"schedule": "Wed *-*-* 03:15:00", "maxAgeDays": 3}
    script = verify_command(run_program("prod", {**values, "postgres-platform:backup": json.dumps(backup)}))
    assert "OnCalendar=Wed *-*-* 03:15:00\n" in script and "Sun *-*-* 04:30:00" not in script


def test_a_local_stack_writes_the_script_and_installs_no_timer() -> None:
    config = config_of("local")
    assert config.backup is not None and config.backup.repo == "posix"
    script = verify_command(run_of("local"))
    assert "systemctl" not in script and "/etc/systemd" not in script and "OnCalendar" not in script
    assert f"/.postgres-platform/local/{restore_check.JOB_SCRIPT}.new <<'JOB'" in script
    # A posix repository: the volume read-only, no network at all.
    assert "--network none" in script
    assert "type=volume,source=postgres-platform-local-pgbackrest,target=/var/lib/pgbackrest,readonly" in script
