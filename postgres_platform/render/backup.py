"""pgBackRest (pure): its config, Postgres' archive settings, the backup commands, timers and restores.

One stanza per stack's repository path. Encryption is always on (aes-256-cbc); the passphrase, the S3
keys and nothing else secret live in pgbackrest.conf (a 0600 file of the config directory). Retention
and the cipher type are on the command lines too, where a reviewer and the backups policy can read them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from postgres_platform.model.config import BackupConfig, SettingValue
from postgres_platform.model.names import MONITORING_ROLE, POSTGRES_PORT

STANZA = "main"
CONFIG_DIR = "/etc/pgbackrest"  # pgBackRest's default: pgbackrest.conf there needs no --config
POSIX_REPO = "/var/lib/pgbackrest"  # a Docker volume (local stacks)
CIPHER = "aes-256-cbc"


@dataclass(frozen=True)
class RepoSecrets:
    cipher_pass: str
    s3_key: str | None = None
    s3_key_secret: str | None = None


def render_conf(backup: BackupConfig, pg_path: str, secrets: RepoSecrets, *, repo_path: str | None = None) -> str:
    """pgbackrest.conf. `repo_path` overrides where a posix repository lives (tests, the drill)."""
    lines = [
        "[global]",
        f"repo1-type={backup.repo}",
        f"repo1-cipher-type={CIPHER}",
        f"repo1-cipher-pass={secrets.cipher_pass}",
    ]
    if backup.s3 is not None and backup.repo == "s3":
        s3 = backup.s3
        lines += [
            f"repo1-path={s3.path}",
            *_endpoint(s3.endpoint),
            f"repo1-s3-bucket={s3.bucket}",
            f"repo1-s3-region={s3.region}",
            "repo1-s3-uri-style=path",
            f"repo1-s3-key={secrets.s3_key or ''}",
            f"repo1-s3-key-secret={secrets.s3_key_secret or ''}",
        ]
        if s3.ca_file:
            lines.append(f"repo1-storage-ca-file={s3.ca_file}")
    else:
        lines.append(f"repo1-path={repo_path or POSIX_REPO}")
    # Bundling packs small files into few objects: one S3 request per bundle, not per file (fast and cheap).
    lines += ["repo1-bundle=y", "process-max=2", "start-fast=y", "log-level-console=info", "log-level-file=off"]
    lines += ["", f"[{STANZA}]", f"pg1-path={pg_path}"]
    return "\n".join(lines) + "\n"


def _endpoint(endpoint: str) -> list[str]:
    """`host` or `host:port` (pgBackRest takes the port apart)."""
    host, _, port = endpoint.partition(":")
    return [f"repo1-s3-endpoint={host}", *([f"repo1-s3-port={port}"] if port else [])]


def archive_settings(backup: BackupConfig) -> dict[str, SettingValue]:
    """Postgres' WAL archiving into the repository (archive_mode needs a restart: it is on from the start)."""
    return {
        "archive_mode": "on",
        "archive_command": f"pgbackrest --stanza={STANZA} archive-push %p",
        "archive_timeout": backup.archive_timeout,
    }


def command(*args: str, backup: BackupConfig | None = None) -> list[str]:
    """`pgbackrest --stanza=main <args>`; with `backup`, its repo type and retention on the line too."""
    line = ["pgbackrest", f"--stanza={STANZA}", f"--repo1-cipher-type={CIPHER}"]
    if backup is not None:
        line += [
            f"--repo1-type={backup.repo}",
            f"--repo1-retention-full={backup.retention_full}",
            f"--repo1-retention-diff={backup.retention_diff}",
        ]
    return [*line, *args]


def in_container(container: str, argv: list[str]) -> str:
    """Run as the postgres user inside the server's container (its binary, config and PGDATA)."""
    return shlex.join(["docker", "exec", "-u", "postgres", container, *argv])


MIN_FREE_KB = 1024 * 1024  # a posix repository with less than this free fails before pgBackRest starts


def repo_precheck(container: str, backup: BackupConfig) -> list[str]:
    """A posix repository writable by the server's user and with room, said in those words (pgBackRest
    itself reports a read-only repository only as WAL "not archived before the timeout", a minute
    later). An S3 repository's own errors already name the bucket and the refusal."""
    if backup.repo != "posix":
        return []
    repo = shlex.quote(POSIX_REPO)
    probe = (
        f'test -w {repo} || {{ echo "pgBackRest repository {POSIX_REPO}: not writable by $(id -un) (a read-only '
        f"mount, its owner or its mode)\" >&2; exit 1; }}; free=$(df -Pk {repo} | awk 'NR == 2 {{print $4}}'); "
        f'[ "$free" -ge {MIN_FREE_KB} ] || {{ echo "pgBackRest repository {POSIX_REPO}: only $free kB free '
        f'(needs {MIN_FREE_KB} kB)" >&2; exit 1; }}'
    )
    return [in_container(container, ["sh", "-c", probe])]


# The repository's latest backup of each type, kept in the primary's `postgres` database for the exporter
# (render/monitoring's pgplatform_backup_by_type query): pgBackRest's own state, refreshed after every
# backup, every hourly check and every `pulumi up` by RECORD_SCRIPT (in the config directory, so the
# units name a file, not a script systemd would have to quote).
LAST_BACKUPS = "pgplatform.last_backups"
RECORD_SCRIPT = "record-backups.sh"
# `pgbackrest info --output=json` -> one "type<TAB>stop epoch<TAB>label" line per type (the image's python3).
# A stanza pgBackRest cannot read (status other than ok or "no valid backups") fails it: the table keeps
# the last good state rather than emptying, which would silence the per-type alerts.
_LATEST_PER_TYPE = """import json, sys
latest = {}
for stanza in json.load(sys.stdin):
    status = stanza.get("status", {})
    if status.get("code") not in (0, 2):
        sys.exit(f"pgbackrest info: stanza {stanza.get('name')}: {status.get('message')}")
    for b in stanza.get("backup", []):
        stop = int(b["timestamp"]["stop"])
        if stop >= latest.get(b["type"], (0, ""))[0]:
            latest[b["type"]] = (stop, b["label"])
for kind, (stop, label) in sorted(latest.items()):
    print(f"{kind}\\t{stop}\\t{label}")
"""


def record_script(port: int = POSTGRES_PORT) -> str:
    """Run inside the Postgres container as postgres: the repository's latest backup per type replaces
    LAST_BACKUPS' rows, over the local socket (peer); a failing `info` fails it, the table as it was."""
    grant = (
        f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{MONITORING_ROLE}') THEN "
        f"GRANT USAGE ON SCHEMA pgplatform TO {MONITORING_ROLE}; "
        f"GRANT SELECT ON {LAST_BACKUPS} TO {MONITORING_ROLE}; END IF; END $$;"
    )
    return f"""#!/bin/bash
# postgres-platform: the latest backup of each type, for the exporter (render/backup.py).
set -euo pipefail
# read whole first: a failing info (or parse) stops here, before psql replaces any row
latest=$({shlex.join(command("info", "--output=json"))} | python3 -c {shlex.quote(_LATEST_PER_TYPE)})
{{ if [ -n "$latest" ]; then printf '%s\\n' "$latest"; fi; }} \\
  | psql -X -q -v ON_ERROR_STOP=1 -p {port} -d postgres -f <(cat <<'SQL'
CREATE SCHEMA IF NOT EXISTS pgplatform;
CREATE TABLE IF NOT EXISTS {LAST_BACKUPS} (type text PRIMARY KEY, stopped_at timestamptz NOT NULL, label text NOT NULL);
{grant}
CREATE TEMP TABLE info (type text, stop bigint, label text);
\\copy info FROM pstdin
BEGIN;
DELETE FROM {LAST_BACKUPS};
INSERT INTO {LAST_BACKUPS} SELECT type, to_timestamp(stop), label FROM info;
COMMIT;
SQL
)
"""


def record_command(container: str) -> str:
    return in_container(container, ["bash", f"{CONFIG_DIR}/{RECORD_SCRIPT}"])


# hetzner.failover: every database host has the backup units, and each runs only where Postgres is the
# leader (ExecCondition: an exit of 1 skips the run without failing the unit; so does a stopped server).
LEADS_SCRIPT = "leads.sh"


def leads_script(port: int = POSTGRES_PORT) -> str:
    """Run inside the Postgres container as postgres: exit 0 where the server is a primary, 1 elsewhere."""
    return f"""#!/bin/sh
# postgres-platform: is this host's Postgres the leader? (render/backup.py; the backup units' ExecCondition)
[ "$(psql -X -A -t -q -p {port} -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]
"""


def leads_condition(container: str) -> str:
    """A unit's `ExecCondition=` line: the backup or verification runs on the leader's host only."""
    return f"ExecCondition=/usr/bin/{in_container(container, ['sh', f'{CONFIG_DIR}/{LEADS_SCRIPT}'])}\n"


def stanza_script(container: str, backup: BackupConfig) -> str:
    """Idempotent: stanza-create accepts an existing matching stanza; check proves archiving works; a
    first full backup when there is none (a base for point-in-time recovery and for new standbys)."""
    steps = [
        *repo_precheck(container, backup),
        in_container(container, command("stanza-create")),
        in_container(container, command("check")),
        f'if ! {in_container(container, command("info", "--output=json"))} | grep -q \'"type":"full"\'; then',
        f"  {in_container(container, command('--type=full', 'backup', backup=backup))}",
        "fi",
        record_command(container),
    ]
    return "set -eu\n" + "\n".join(steps) + "\n"


def timer_units(container: str, backup: BackupConfig, *, leader_only: bool = False) -> dict[str, str]:
    """systemd units on the host: a full and a differential backup on their schedules, an hourly check;
    `leader_only` (hetzner.failover: the units are on every database host), each on the leader only."""
    condition = leads_condition(container) if leader_only else ""
    units: dict[str, str] = {}
    jobs = {
        "full": (backup.schedule.full, command("--type=full", "backup", backup=backup)),
        "diff": (backup.schedule.diff, command("--type=diff", "backup", backup=backup)),
        "check": ("hourly", command("check")),
    }
    for name, (calendar, argv) in jobs.items():
        unit = f"postgres-platform-backup-{name}"
        units[f"{unit}.service"] = (
            f"[Unit]\nDescription=pgBackRest {name} ({STANZA})\nAfter=docker.service\n\n"
            f"[Service]\nType=oneshot\n{condition}ExecStart=/usr/bin/{in_container(container, argv)}\n"
            f"ExecStartPost=/usr/bin/{record_command(container)}\n"
        )
        units[f"{unit}.timer"] = (
            f"[Unit]\nDescription=pgBackRest {name} schedule\n\n[Timer]\nOnCalendar={calendar}\nPersistent=true\n"
            "RandomizedDelaySec=300\n\n[Install]\nWantedBy=timers.target\n"
        )
    return units


def timers_script(units: dict[str, str]) -> str:
    """Write the units and enable their timers (literal: no secret is in a unit)."""
    lines = ["set -eu"]
    for name, text in units.items():
        lines.append(f"cat > /etc/systemd/system/{name} <<'UNIT'\n{text}UNIT")
    timers = " ".join(name for name in units if name.endswith(".timer"))
    lines += ["systemctl daemon-reload", f"systemctl enable --now {timers}"]
    return "\n".join(lines) + "\n"


def restore_command(
    pg_path: str, *, target: str | None = None, lsn: str | None = None, standby: bool = False
) -> list[str]:
    """A restore into an empty data directory. A copy never archives into the production stanza
    (--archive-mode=off); a standby (--type=standby) keeps following the primary's archive."""
    args = [f"--pg1-path={pg_path}"]
    if standby:
        args += ["--type=standby"]
    elif target is not None:
        args += ["--type=time", f"--target={target}", "--target-action=promote", "--archive-mode=off"]
    elif lsn is not None:
        args += ["--type=lsn", f"--target={lsn}", "--target-action=promote", "--archive-mode=off"]
    else:
        args += ["--archive-mode=off"]
    return command(*args, "restore")
