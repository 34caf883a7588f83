"""Backups under mocks: what every stack declares for them, what the policy requires, where secrets never go."""

from __future__ import annotations

import json

import pytest

from policy import data
from policy.resources import BACKUPS, COMMANDS, CONTAINER, HCLOUD_SERVER, RANDOM_PASSWORD
from postgres_platform.cli import restore
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import COMPONENT_LABEL, PRIMARY
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.program import ProgramRun, fake_secret
from tests.helpers import BUILT_STACKS, config_files, run_of
from tests.program.policy_helpers import check_stack, resource


def commands(run: ProgramRun) -> dict[str, str]:
    return {r.name: r.inputs["create"] for r in run.resources if r.type in COMMANDS}


@pytest.mark.parametrize("stack", BUILT_STACKS)
def test_every_stack_archives_into_an_encrypted_stanza(stack: str) -> None:
    run = run_of(stack)
    (postgres,) = [r for r in run.of_type(CONTAINER) if r.name == "postgres-container"]
    assert "archive_mode=on" in postgres.inputs["command"]  # read at start: on from the first boot
    settings = config_files(run, "postgres-config")["postgresql.conf"].content
    assert "archive_command = 'pgbackrest --stanza=main archive-push %p'" in settings
    assert any(m["target"] == "/etc/pgbackrest" and m["readOnly"] for m in postgres.inputs["mounts"])
    conf = config_files(run, "backups-config")["pgbackrest.conf"]
    assert conf.mode == "0600" and "repo1-cipher-type=aes-256-cbc" in conf.content
    assert "repo1-cipher-pass=" + fake_secret("backups-passphrase") in conf.content
    (passphrase,) = [r for r in run.of_type(RANDOM_PASSWORD) if r.name == "backups-passphrase"]
    assert passphrase.protect and passphrase.inputs["length"] == 64  # backups made with it must stay readable
    stanza = commands(run)["backups-stanza"]
    assert "pgbackrest --stanza=main --repo1-cipher-type=aes-256-cbc stanza-create" in stanza and " check" in stanza


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_hetzner_stacks_back_up_to_s3_on_schedules_with_retention(stack: str) -> None:
    run, config = run_of(stack), load_stack_values(read_stack_values(stack_file(stack)))
    assert config.backup is not None and config.backup.s3 is not None
    timers = commands(run)["backups-timers"]
    assert f"OnCalendar={config.backup.schedule.full}" in timers and "OnCalendar=hourly" in timers
    assert f"--repo1-type=s3 --repo1-retention-full={config.backup.retention_full}" in timers
    assert "systemctl enable --now" in timers and "--type=diff backup" in timers
    # After every backup and hourly check the repository's state per type is recorded (render/backup.py),
    # by the script beside pgbackrest.conf (the config directory is the container's /etc/pgbackrest).
    record = "ExecStartPost=/usr/bin/docker exec -u postgres postgres-platform-{}-postgres bash /etc/pgbackrest/record-backups.sh"
    assert timers.count(record.format(stack)) == 3, timers
    script = config_files(run, "backups-config")["record-backups.sh"]
    assert (
        script.mode == "0755"
        and "pgbackrest --stanza=main" in script.content
        and "info --output=json" in script.content
    )
    assert "record-backups.sh" in commands(run)["backups-stanza"]
    conf = config_files(run, "backups-config")["pgbackrest.conf"].content
    assert "repo1-s3-uri-style=path" in conf and f"repo1-s3-bucket={config.backup.s3.bucket}" in conf
    assert f"repo1-path=/{stack}" in conf
    assert run.outputs["backup"]["path"] == f"/{stack}" and run.outputs["backup"]["encryption"] == "aes-256-cbc"


@pytest.mark.parametrize("stack", BUILT_STACKS)
def test_no_plain_output_or_file_holds_the_passphrase_or_the_s3_secret(stack: str) -> None:
    run = run_of(stack)
    secrets = [fake_secret("backups-passphrase"), "offline-backupS3KeySecret", "offline-backupS3Key"]
    plain = {k: v for k, v in run.outputs.items() if k not in run.secret_outputs}
    text = json.dumps(plain)
    assert "backup" in plain and not [s for s in secrets if s in text]
    for declared in run.resources:
        for key, value in declared.inputs.items():
            if any(s in json.dumps(value) for s in secrets):
                assert key in declared.secret_inputs, (declared.name, key)


def test_the_policy_refuses_a_hetzner_stack_without_backups() -> None:
    server = resource(HCLOUD_SERVER, "primary-server", {"serverType": "ccx13"})
    labels = [{"label": COMPONENT_LABEL, "value": PRIMARY}]
    postgres = resource(
        CONTAINER, "postgres-container", {"command": ["postgres", "-c", "max_connections=100"], "labels": labels}
    )
    found = check_stack(data.backups_configured, [server, postgres])
    assert any("archive_mode is not on" in v for v in found)
    assert any("no pgBackRest stanza" in v for v in found)
    assert any("no scheduled full backup" in v for v in found)
    posix = resource(
        "command:remote:Command", "t", {"create": "pgbackrest --repo1-type=posix --type=full backup"}, parent=BACKUPS
    )
    found = check_stack(data.backups_configured, [server, postgres, posix])
    assert any("off the host (--repo1-type=s3)" in v for v in found) and any("no retention" in v for v in found)


def test_the_stanzas_first_full_backup_is_no_schedule() -> None:
    server = resource(HCLOUD_SERVER, "primary-server", {"serverType": "ccx13"})
    first = "pgbackrest --repo1-cipher-type=aes-256-cbc stanza-create\npgbackrest --repo1-type=s3 --repo1-retention-full=4 --type=full backup"
    stanza = resource("command:remote:Command", "backups-stanza", {"create": first}, parent=BACKUPS)
    (missing,) = check_stack(data.backups_configured, [server, stanza])
    assert missing == "no scheduled full backup on the host (the backup timers)"
    elsewhere = resource("command:remote:Command", "other-stanza", {"create": first})  # not the Backups component's
    assert "no pgBackRest stanza is created: backups are not configured" in check_stack(
        data.backups_configured, [server, elsewhere]
    )


def test_restores_never_archive_into_production_and_standbys_follow_it() -> None:
    config = load_stack_values(read_stack_values(stack_file("prod")))
    copy, start = restore.commands(
        "prod", config, "/mnt/pgdata/restored", target="2026-01-01 00:00:00+00", lsn=None, standby=False
    )
    assert "--archive-mode=off" in copy and "--type=time" in copy and "--target-action=promote" in copy
    assert (
        "archive_mode=off" in start and "-v" in copy and "/etc/postgres-platform/pgbackrest:/etc/pgbackrest:ro" in copy
    )
    assert start[start.index("--network") + 1] == "host" and "port=5433" in start  # reachable on the host
    (standby,) = restore.commands("prod", config, "/mnt/pgdata/data", target=None, lsn=None, standby=True)
    assert "--type=standby" in standby and "--archive-mode=off" not in standby
