"""What a verified restore checks in the restored copy (pure): one shell script, the same for the drill,
`restore.py --verify` and a host's scheduled job, run inside the copy's container as postgres.

It fails (non-zero, the reason on stderr) unless every declared database exists, every table and
materialized view of each can be read to its last column (each row rendered as text: the heap and
its TOAST are read), and pg_amcheck finds nothing wrong in the tables and B-tree indexes (with
`--heapallindexed`: every heap tuple has its index entries). pg_amcheck's extension is installed in the
copy only (`--install-missing`): the copy is thrown away afterwards.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import (
    COMPONENT_LABEL,
    LOOPBACK,
    MONITORING_ROLE,
    POSTGRES_PORT,
    PRIMARY,
    container_name,
)
from postgres_platform.render.backup import CONFIG_DIR as BACKUP_CONFIG_DIR
from postgres_platform.render.backup import POSIX_REPO, restore_command, timers_script
from postgres_platform.render.containers import MountSource
from postgres_platform.render.postgres import copy_arguments

# Every user relation with rows of its own (tables, partitions, matviews), read whole.
READ_ALL = """DO $check$
DECLARE rel regclass; relations int := 0;
BEGIN
  FOR rel IN SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname !~ '^pg_toast' ORDER BY 1
  LOOP
    EXECUTE format('SELECT sum(length(t::text)) FROM %s t', rel);
    relations := relations + 1;
  END LOOP;
  RAISE NOTICE 'read % relations of %', relations, current_database();
END
$check$;
"""
AMCHECK = ["pg_amcheck", "--install-missing", "--heapallindexed", "--all", "--no-strict-names"]


def check_script(databases: list[str], port: int) -> str:
    """The shell script for the copy listening on `port`: each database read whole (psql stops at the
    first error), then pg_amcheck."""
    lines = ["set -eu", f"export PGPORT={int(port)}"]
    for database in databases:
        # \connect fails for a database the copy does not have (the names are config identifiers: no quoting).
        script = f"\\set ON_ERROR_STOP on\n\\connect {database}\n{READ_ALL}"
        lines.append(f"psql -X -q -d postgres <<'CHECK'\n{script}CHECK")
    lines.append(shlex.join(AMCHECK))
    lines.append("echo verified")
    return "\n".join(lines) + "\n"


# The scheduled job (the host's systemd timer, or run by hand on a local stack): one bash script.
JOB_UNIT = "postgres-platform-verify-restore"
JOB_SCRIPT = "verify-restore.sh"  # in the stack's config directory on the database host
TABLE = "pgplatform.restore_verifications"  # in the primary's `postgres` database
KEEP = 100  # rows of the table kept: the latest attempts
JOB_TIMEOUT = 3 * 3600  # seconds a whole run may take (restore, recovery, every table read, pg_amcheck)
COPY_DATA = "/var/lib/postgresql/verify"  # inside the scratch container: its own layer, gone with it
COPY_PORT = 5499  # the copy's, on the scratch container's own loopback (its network namespace)
DETAIL_LINES = 20


@dataclass(frozen=True)
class VerifyJob:
    """What the job needs to know about the host: the primary's container and where its pgBackRest
    config and (posix) repository are, as the Postgres container mounts them."""

    server: str  # the primary's container: its image is the copy's, the result is recorded in it
    databases: tuple[str, ...]  # the declared databases: each must exist in the copy
    repo: str  # "posix" or "s3"
    config_dir: str  # the host directory holding pgbackrest.conf (mounted read-only)
    repo_source: MountSource[str] | None = None  # a posix repository: a volume or host path (read-only)
    copy_settings: tuple[str, ...] = ()  # `-c name=value`: the server's recovery minimums
    server_port: int = POSTGRES_PORT  # the primary's port inside its container (its socket's name)
    extra_mounts: tuple[str, ...] = ()  # more `docker run` options (a test S3's CA file)
    timeout: int = JOB_TIMEOUT


def job_of(stack: str, config: PlatformConfig, config_root: str) -> VerifyJob:
    """The job of a stack's primary, with the mounts `pulumi up` gives its Postgres container."""
    assert config.backup is not None, "no backup section"
    posix = config.backup.repo == "posix"
    return VerifyJob(
        server=container_name(stack, PRIMARY),
        databases=tuple(config.databases),
        repo=config.backup.repo,
        config_dir=f"{config_root}/pgbackrest",
        repo_source=MountSource(f"postgres-platform-{stack}-pgbackrest", "volume") if posix else None,
        copy_settings=tuple(copy_arguments(config)),
    )


def copy_script(job: VerifyJob) -> str:
    """Run inside the scratch container as postgres: restore the latest backup into COPY_DATA, start it
    (socket and its own loopback only), wait for the end of recovery, check it, stop it."""
    start = shlex.join(
        [
            *("-c", f"port={COPY_PORT}", "-c", f"listen_addresses={LOOPBACK}", "-c", "archive_mode=off"),
            *job.copy_settings,
        ]
    )
    log = f"{COPY_DATA}.log"
    return f"""set -eu
mkdir -m 0700 {COPY_DATA}
echo "$(date -u +%T) restoring the latest backup"
{shlex.join(restore_command(COPY_DATA))}
echo "$(date -u +%T) starting the copy"
if ! pg_ctl start -D {COPY_DATA} -w -t {job.timeout} -l {log} -o {shlex.quote(start)} >/dev/null; then
  tail -n {DETAIL_LINES} {log}; echo "the restored copy did not start" >&2; exit 1
fi
until [ "$(psql -X -A -t -q -p {COPY_PORT} -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
  if ! pg_ctl status -D {COPY_DATA} >/dev/null; then
    tail -n {DETAIL_LINES} {log}; echo "the restored copy stopped during recovery" >&2; exit 1
  fi
  sleep 1
done
echo "$(date -u +%T) recovered; checking"
(
{check_script(list(job.databases), COPY_PORT).rstrip()}
)
pg_ctl stop -D {COPY_DATA} -m fast >/dev/null
"""


def record_sql(keep: int = KEEP) -> str:
    """psql input recording one attempt (values from the environment: \\getenv), the table created on
    first use, readable by the monitoring role (its exporter query), only the latest `keep` rows kept."""
    return f"""\\set ON_ERROR_STOP on
\\getenv ok VERIFY_OK
\\getenv seconds VERIFY_SECONDS
\\getenv detail VERIFY_DETAIL
CREATE SCHEMA IF NOT EXISTS pgplatform;
CREATE TABLE IF NOT EXISTS {TABLE} (
  finished_at timestamptz NOT NULL DEFAULT now(),
  ok boolean NOT NULL,
  seconds float8 NOT NULL,
  detail text NOT NULL
);
SELECT format('GRANT USAGE ON SCHEMA pgplatform TO %I', rolname), format('GRANT SELECT ON {TABLE} TO %I', rolname)
FROM pg_roles WHERE rolname = '{MONITORING_ROLE}' \\gexec
INSERT INTO {TABLE} (ok, seconds, detail) VALUES (:'ok', :'seconds', :'detail');
DELETE FROM {TABLE}
WHERE finished_at < (SELECT finished_at FROM {TABLE} ORDER BY finished_at DESC OFFSET {keep - 1} LIMIT 1);
"""


def job_script(job: VerifyJob) -> str:
    """The whole job, run as root on the database host (or by a developer with Docker, locally): a
    scratch container of the server's own image (by image ID) restores and checks the latest backup,
    with the pgBackRest config and a posix repository mounted read-only, no network but for an S3
    repository (then the default bridge, no published port); a trap removes it whatever happens, a
    timeout bounds it; the result goes into the primary's {TABLE} over its local socket (peer). Exits
    non-zero when the verification failed. No secret here: pgbackrest.conf holds them."""
    copy = f"{job.server}-verify-restore"
    mounts = ["--mount", f"type=bind,source={job.config_dir},target={BACKUP_CONFIG_DIR},readonly"]
    if job.repo == "posix":
        assert job.repo_source is not None, "a posix repository needs its source"
        source = job.repo_source
        mounts += ["--mount", f"type={source.type},source={source.source},target={POSIX_REPO},readonly"]
    network = "none" if job.repo == "posix" else "bridge"
    run = [
        *("docker", "run", "--rm", "-i", "--name", copy, "--network", network, "-u", "postgres"),
        *("--label", f"{COMPONENT_LABEL}=verify-restore", *mounts, *job.extra_mounts),
        *("--entrypoint", "bash"),
    ]
    record = [
        *("docker", "exec", "-i", "-u", "postgres", "-e", "VERIFY_OK", "-e", "VERIFY_SECONDS", "-e", "VERIFY_DETAIL"),
        *(job.server, "psql", "-X", "-q", "-p", str(job.server_port), "-d", "postgres"),
    ]
    return f"""#!/bin/bash
# postgres-platform: a verified restore of the latest pgBackRest backup (render/restore_check.py).
# docs/operations/backups-and-restore.md, "Verified restores".
set -euo pipefail
server={shlex.quote(job.server)}
copy={shlex.quote(copy)}
image=$(docker inspect --format '{{{{.Image}}}}' "$server")  # the server's own image, by ID
remove_copy() {{ docker rm -f -v "$copy" >/dev/null 2>&1 || true; }}
trap remove_copy EXIT
remove_copy  # a copy left by a run that was killed
copy_script() {{
  cat <<'COPY'
{copy_script(job)}COPY
}}
started=$(date +%s.%N)
status=0
output=$(copy_script | timeout --kill-after=60 {job.timeout} {shlex.join(run)} "$image" -s 2>&1) || status=$?
seconds=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {{ printf "%.1f", b - a }}')
remove_copy
if [ "$status" = 124 ] || [ "$status" = 137 ]; then output="$output
timed out after {job.timeout} s"; fi
printf '%s\\n' "$output"
ok=false
if [ "$status" = 0 ] && [ "$(printf '%s\\n' "$output" | tail -n 1)" = verified ]; then ok=true; fi
detail=$(printf '%s\\n' "$output" | grep -v '^[[:space:]]*$' | tail -n {DETAIL_LINES} | cut -c 1-500 || true)
echo "verified restore: ok=$ok in $seconds s (exit $status)"
VERIFY_OK=$ok VERIFY_SECONDS=$seconds VERIFY_DETAIL=$detail timeout 300 {shlex.join(record)} <<'SQL'
{record_sql()}SQL
[ "$ok" = true ]
"""


def job_units(script_path: str, schedule: str, timeout: int = JOB_TIMEOUT, condition: str = "") -> dict[str, str]:
    """The host's systemd service (the script, bounded) and its timer on the configured schedule;
    `condition` an ExecCondition line (backup.leads_condition: the leader's host only)."""
    return {
        f"{JOB_UNIT}.service": (
            "[Unit]\nDescription=Verified restore of the latest pgBackRest backup\nAfter=docker.service\n\n"
            f"[Service]\nType=oneshot\n{condition}ExecStart=/bin/bash {script_path}\n"
            f"TimeoutStartSec={timeout + 600}\n"
        ),
        f"{JOB_UNIT}.timer": (
            f"[Unit]\nDescription=Verified restore schedule\n\n[Timer]\nOnCalendar={schedule}\nPersistent=true\n"
            "RandomizedDelaySec=300\n\n[Install]\nWantedBy=timers.target\n"
        ),
    }


def install_job_script(script_path: str, script: str, units: dict[str, str] | None) -> str:
    """Write the job script (0700, literal: no secret in it); with `units` (a host with systemd), write
    them and enable the timer."""
    path = shlex.quote(script_path)
    lines = [
        "set -eu",
        f'mkdir -p "$(dirname {path})"',
        f"cat > {path}.new <<'JOB'\n{script}JOB",
        f"chmod 0700 {path}.new",
        f"mv -f {path}.new {path}",
    ]
    script = "\n".join(lines) + "\n"
    return script + timers_script(units) if units is not None else script
