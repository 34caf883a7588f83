"""Alert rules and the exporter's custom queries, from the stack config and its budget (pure, no pulumi).

One source: model.budget.compute() gives every role's CONNECTION LIMIT and each server's usable slots,
so a budget change (an app's connectionLimit) changes that role's thresholds. The rules use metrics
postgres_exporter 0.17.1 and pgbouncer_exporter 0.10.2 expose by themselves (`pg_up`,
`pg_stat_archiver_failed_count`, `pg_replication_lag_seconds`, `pg_replication_is_replica`,
`pgbouncer_up`, `pgbouncer_pools_client_waiting_connections`, `pgbouncer_pools_client_maxwait_seconds`)
and those of the custom queries below (`pgplatform_*`), which postgres_exporter runs as the
monitoring role (a member of pg_monitor).

Scrape jobs the rules expect: `postgres-primary`, `postgres-replica` (with replicas), `pgbouncer`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from postgres_platform.model import budget
from postgres_platform.model.config import BackupConfig, PlatformConfig
from postgres_platform.model.names import AUTH_ROLE, MONITORING_ROLE, REPLICATION_ROLE, SUPERUSER
from postgres_platform.render.backup import LAST_BACKUPS

LEVELS = ((0.75, "warning"), (0.90, "critical"))
WRAPAROUND = 2**31  # transaction IDs before wraparound
XID_LEVELS = ((0.50, "warning"), (0.75, "critical"))
BACKUP_MARGIN_HOURS = 6  # a backup may run late or long this much past its schedule's longest gap
PGBOUNCER_MAXWAIT_SECONDS = 5
REPLICATION_LAG_SECONDS = 60
LIVE_BUDGET = "python3 scripts/live_budget.py {stack}"
DAY_HOURS = 24
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def job(server: str) -> str:
    return f"postgres-{server}"


def _rule(name: str, expr: str, severity: str, summary: str, *, wait: str = "0m", **labels: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity, **labels},
        "annotations": {"summary": summary},
    }


def _percent(level: float) -> str:
    return f"{round(level * 100)}"


def role_rules(server: budget.ServerBudget, stack: str) -> list[dict[str, Any]]:
    """One rule per declared role (app or external) and level: each role's limit is a constant here, so
    the rule reads plainly, names the role's database and key, and promtool can test it role by role."""
    rules = []
    for entry in server.entries:
        if entry.kind == "system":
            continue
        for level, severity in LEVELS:
            threshold = level * entry.limit
            selector = f'job="{job(server.name)}",usename="{entry.role}"'
            rules.append(
                _rule(
                    f"PostgresRoleConnections{_percent(level)}",
                    f"pgplatform_role_backends_count{{{selector}}} >= {threshold:g}",
                    severity,
                    f"{entry.role} holds {{{{ $value }}}} of its CONNECTION LIMIT {entry.limit} on {server.name}"
                    f" (database {entry.database or '-'}): find what holds them ({LIVE_BUDGET.format(stack=stack)})"
                    f" or raise {entry.key} (the budget must still fit)",
                    role=entry.role,
                    database=entry.database or "",
                    server=server.name,
                )
            )
    return rules


def server_rules(server: budget.ServerBudget, stack: str) -> list[dict[str, Any]]:
    total = f'sum(pgplatform_role_backends_count{{job="{job(server.name)}"}})'
    return [
        _rule(
            f"PostgresServerConnections{_percent(level)}",
            f"{total} >= {level * server.usable:g}",
            severity,
            f"{server.name} has {{{{ $value }}}} client backends of {server.usable} usable: find who holds them"
            f" ({LIVE_BUDGET.format(stack=stack)}), lower a connectionLimit or raise postgres.maxConnections",
            server=server.name,
        )
        for level, severity in LEVELS
    ]


def excluded_roles(config: PlatformConfig, server: budget.ServerBudget) -> list[str]:
    """Roles that may hold slots without being an app or external entry of the budget."""
    admin = [config.existing.admin_user] if config.existing is not None else []
    declared = [entry.role for entry in server.entries]
    return sorted({*declared, SUPERUSER, AUTH_ROLE, REPLICATION_ROLE, MONITORING_ROLE, *admin})


def undeclared_rule(config: PlatformConfig, server: budget.ServerBudget, stack: str) -> dict[str, Any]:
    selector = f'job="{job(server.name)}",usename!~"{"|".join(re.escape(r) for r in excluded_roles(config, server))}"'
    superusers = f'pgplatform_role_backends_superuser{{job="{job(server.name)}"}} == 1'
    return _rule(
        "PostgresUndeclaredRoleConnections",
        f"pgplatform_role_backends_count{{{selector}}} > 0 unless on(job, usename) {superusers}",
        "warning",
        f"{{{{ $labels.usename }}}} holds {{{{ $value }}}} slots on {server.name} and is in no budget: declare it"
        f" under externalRoles with a connectionLimit, or drop it ({LIVE_BUDGET.format(stack=stack)})",
        wait="5m",
        role="{{ $labels.usename }}",
        server=server.name,
    )


def admin_cidrs(config: PlatformConfig) -> list[str]:
    if config.hetzner is not None:
        return [str(c) for c in config.hetzner.admin_cidrs]
    if config.existing is not None and config.existing.admin_cidrs:
        return [str(c) for c in config.existing.admin_cidrs]
    return []


def superuser_rule(stack: str) -> dict[str, Any]:
    return _rule(
        "PostgresSuperuserOutsideAdmin",
        "pgplatform_superuser_outside_count > 0",
        "critical",
        "superuser {{ $labels.usename }} has {{ $value }} sessions from {{ $labels.client_addr }}, outside the admin"
        f" addresses: end them (pg_terminate_backend), check pg_hba.conf ({LIVE_BUDGET.format(stack=stack)})",
        role="{{ $labels.usename }}",
    )


def pgbouncer_rules() -> list[dict[str, Any]]:
    pools = 'database!="pgbouncer"'
    return [
        _rule(
            "PgBouncerClientsWaiting",
            f"pgbouncer_pools_client_waiting_connections{{{pools}}} > 0",
            "warning",
            "{{ $value }} clients of {{ $labels.user }} wait for a server connection in pool {{ $labels.database }}:"
            " the app's pool is full (raise its poolSize within its connectionLimit, or find slow transactions)",
            wait="2m",
            role="{{ $labels.user }}",
            database="{{ $labels.database }}",
        ),
        _rule(
            "PgBouncerMaxWait",
            f"pgbouncer_pools_client_maxwait_seconds{{{pools}}} > {PGBOUNCER_MAXWAIT_SECONDS}",
            "critical",
            "a client of {{ $labels.user }} has waited {{ $value }}s in pool {{ $labels.database }}: the pool is"
            " exhausted (raise its poolSize within its connectionLimit, or end long transactions)",
            role="{{ $labels.user }}",
            database="{{ $labels.database }}",
        ),
    ]


def replica_rules() -> list[dict[str, Any]]:
    replica = f'job="{job("replica")}"'
    return [
        _rule(
            "PostgresReplicationLag",
            f"pg_replication_lag_seconds{{{replica}}} > {REPLICATION_LAG_SECONDS}",
            "warning",
            "the replica replays {{ $value }}s behind the primary: check the private network, the replica's"
            " disk and long queries on it (docs/operations/alerts.md)",
            wait="5m",
        ),
        _rule(
            "PostgresReplicaDown",
            f"pg_up{{{replica}}} == 0 or pg_replication_is_replica{{{replica}}} == 0",
            "critical",
            "the replica is down or no longer in recovery: read apps lose their replica DSN; start it or rebuild"
            " it from the primary (docs/operations/alerts.md)",
            wait="2m",
        ),
    ]


def _weekdays(spec: str) -> set[int]:
    days: set[int] = set()
    for part in spec.lower().split(","):
        first, _, last = part.partition("..")
        start, end = WEEKDAYS.index(first[:3]), WEEKDAYS.index((last or first)[:3])
        days |= {d % 7 for d in range(start, end + 1 if end >= start else end + 8)}
    return days


def schedule_gap_hours(calendar: str) -> int:
    """The longest gap between two runs of a systemd OnCalendar expression, in hours: `daily`, `weekly`,
    or `[weekdays] *-*-* HH:MM:SS` (one run a chosen day). Other forms count as weekly (the longest
    schedule a backup should have)."""
    words = calendar.split()
    named = {"daily": DAY_HOURS, "weekly": 7 * DAY_HOURS, "hourly": 1}
    if len(words) == 1 and words[0].lower() in named:
        return named[words[0].lower()]
    if len(words) == 3 and words[1] == "*-*-*":
        try:
            days = sorted(_weekdays(words[0]))
        except ValueError:
            return 7 * DAY_HOURS
        gaps = [((days[(i + 1) % len(days)] - d - 1) % 7 + 1) for i, d in enumerate(days)]
        return max(gaps) * DAY_HOURS
    if len(words) == 2 and words[0] == "*-*-*":
        return DAY_HOURS
    return 7 * DAY_HOURS


def backup_rules(config: PlatformConfig) -> list[dict[str, Any]]:
    backup = config.backup
    if backup is None:
        return []
    primary = f'job="{job("primary")}"'
    # Either type resets pg_wal's backup history file: the shorter schedule bounds the age of the latest
    # backup (it needs no timer: a local stack's backups by hand count too); typed_backup_rules read the
    # repository's own state per type.
    hours = min(schedule_gap_hours(backup.schedule.full), schedule_gap_hours(backup.schedule.diff))
    limit = (hours + BACKUP_MARGIN_HOURS) * 3600
    return [
        _rule(
            "PostgresWalArchivingFailing",
            f"rate(pg_stat_archiver_failed_count{{{primary}}}[5m]) > 0",
            "critical",
            "WAL archiving to the pgBackRest repository keeps failing: point-in-time recovery stops here and"
            " pg_wal fills; read the Postgres log and run pgbackrest check (docs/operations/backups-and-restore.md)",
            wait="10m",
        ),
        *typed_backup_rules(backup),
        _rule(
            "PostgresBackupTooOld",
            f"time() - pgplatform_backup_last_time_seconds{{{primary}}} > {limit}",
            "critical",
            f"no pgBackRest backup (full or diff) for more than {hours}h + {BACKUP_MARGIN_HOURS}h (schedules"
            f" full `{backup.schedule.full}`, diff `{backup.schedule.diff}`): check the host's pgbackrest timers"
            " and run pgbackrest info (docs/operations/backups-and-restore.md)",
            type="any",
        ),
    ]


def typed_backup_rules(backup: BackupConfig) -> list[dict[str, Any]]:
    """Per type, from the repository's own state (pgplatform_backup_by_type): the last full older than the
    full schedule's longest gap plus the margin; the last diff (or full: it counts as one) older than the
    diff schedule's. Quiet until the first timer has recorded the repository (render/backup.record_script)."""
    primary = f'job="{job("primary")}"'
    latest = "pgplatform_backup_by_type_time_seconds"
    rules = []
    for kind, calendar, selector in (
        ("full", backup.schedule.full, f'{latest}{{{primary},type="full"}}'),
        ("diff", backup.schedule.diff, f'max by (job) ({latest}{{{primary},type=~"full|diff"}})'),
    ):
        hours = schedule_gap_hours(calendar)
        rules.append(
            _rule(
                f"PostgresBackup{kind.capitalize()}TooOld",
                f"time() - {selector} > {(hours + BACKUP_MARGIN_HOURS) * 3600}",
                "critical",
                f"the repository's latest {kind} backup ended more than {hours}h + {BACKUP_MARGIN_HOURS}h ago"
                f" (backup.schedule.{kind} `{calendar}`): check its timer (systemctl status"
                f" postgres-platform-backup-{kind}.timer) and pgbackrest info (docs/operations/backups-and-restore.md)",
                type=kind,
            )
        )
    return rules


def verify_fix(config: PlatformConfig, stack: str) -> str:
    """Where the job's output is: the host's journal (Hetzner's timer), or a run by hand (local)."""
    where = (
        "journalctl -u postgres-platform-verify-restore.service on the database host"
        if config.target == "hetzner"
        else f"run bash ~/.postgres-platform/{stack}/verify-restore.sh"
    )
    return f"read the job's output ({where}) and docs/operations/backups-and-restore.md"


def verify_rules(config: PlatformConfig, stack: str) -> list[dict[str, Any]]:
    """The scheduled verified restore (render/restore_check.py): its last success too old, its latest
    attempt failed (the metrics of the pgplatform_restore_verification query)."""
    backup = config.backup
    if backup is None:
        return []
    primary = f'job="{job("primary")}"'
    days = backup.verify.max_age_days
    fix = verify_fix(config, stack)
    return [
        _rule(
            "PostgresRestoreNotVerified",
            f"time() - pgplatform_restore_verification_last_success_time_seconds{{{primary}}} > {days * 86400}",
            "warning",
            f"no restore of the latest backup verified for more than {days} days (schedule"
            f" `{backup.verify.schedule}`): the job has not run or not passed; {fix}",
        ),
        _rule(
            "PostgresRestoreVerificationFailed",
            f"pgplatform_restore_verification_latest_ok{{{primary}}} == 0",
            "critical",
            "the latest verified restore failed: the backup could not be restored, did not recover, or a table or"
            f" index of the copy is damaged; {fix}",
        ),
    ]


def xid_rules() -> list[dict[str, Any]]:
    return [
        _rule(
            f"PostgresXidAge{_percent(level)}",
            f"pgplatform_database_xid_age > {level * WRAPAROUND:.0f}",
            severity,
            f"database {{{{ $labels.datname }}}} is {_percent(level)}% of the way to transaction ID wraparound"
            " ({{ $value }}): VACUUM FREEZE it, and end long transactions and stale replication slots",
            database="{{ $labels.datname }}",
        )
        for level, severity in XID_LEVELS
    ]


def jobs(config: PlatformConfig) -> list[str]:
    servers = [job(server.name) for server in budget.compute(config)]
    return servers + (["pgbouncer"] if config.pgbouncer is not None else [])


def exporter_rules(config: PlatformConfig) -> list[dict[str, Any]]:
    rules = []
    for name in jobs(config):
        rules.append(
            _rule(
                "ExporterAbsent",
                f'absent(up{{job="{name}"}})',
                "critical",
                f"Prometheus has no target for job {name}: its exporter is not scraped (check the scrape config)",
                wait="5m",
                job=name,
            )
        )
        rules.append(
            _rule(
                "ExporterDown",
                f'up{{job="{name}"}} == 0',
                "critical",
                f"the {name} exporter does not answer: start its container, check the host is up",
                wait="2m",
                job=name,
            )
        )
        up = "pgbouncer_up" if name == "pgbouncer" else "pg_up"
        rules.append(
            _rule(
                "ServerDown",
                f'{up}{{job="{name}"}} == 0',
                "critical",
                f"the {name} exporter runs but cannot connect to its server: the server is down or refuses"
                " the monitoring role (read the server's log)",
                wait="1m",
                job=name,
            )
        )
    return rules


PATRONI_JOB = "patroni"  # Patroni's REST API /metrics on each database host (hetzner.failover)
PATRONI_PAUSED_HOURS = 1  # maintenance mode left on this long: no automatic failover meanwhile
FAILOVER_DOC = "docs/operations/failover.md"


def patroni_rules(config: PlatformConfig) -> list[dict[str, Any]]:
    """Where Patroni manages Postgres: the cluster's state from its own metrics (Patroni 4.0 /metrics), so a
    cluster without a leader, two leaders, a replica too far behind to be promoted or no synchronous
    standby alert before the failover they would spoil."""
    failover = config.hetzner.failover if config.hetzner is not None else None
    if failover is None or not failover.enabled:
        return []
    patroni = f'job="{PATRONI_JOB}"'
    lag = (
        f"max(patroni_xlog_location{{{patroni}}}) - on() group_right()"
        f" (patroni_xlog_replayed_location{{{patroni}}} and on(name) patroni_replica{{{patroni}}} == 1)"
    )
    rules = [
        _rule(
            "PatroniNoLeader",
            f"max(patroni_cluster_unlocked{{{patroni}}}) == 1",
            "critical",
            "no Patroni member holds the leader lock: writes fail until one is promoted; check etcd's quorum"
            f" and the members (pgplat live STACK --patroni-url URL, {FAILOVER_DOC})",
            wait="1m",
        ),
        _rule(
            "PatroniTwoPrimaries",
            f"sum(patroni_primary{{{patroni}}}) > 1",
            "critical",
            "{{ $value }} members call themselves the primary: stop the one without the leader lock"
            f" (patronictl list) before apps write to both ({FAILOVER_DOC})",
        ),
        _rule(
            "PatroniPostgresDown",
            f"patroni_postgres_running{{{patroni}}} == 0",
            "critical",
            "Postgres is not running under Patroni on {{ $labels.name }}: read that member's container log;"
            f" a replica is rebuilt from the repository by Patroni once it starts ({FAILOVER_DOC})",
            wait="2m",
            member="{{ $labels.name }}",
        ),
        _rule(
            "PatroniReplicaTooFarBehind",
            f"{lag} > {failover.maximum_lag_on_failover}",
            "warning",
            "replica {{ $labels.name }} is {{ $value | humanize1024 }}B behind the primary, more than"
            f" hetzner.failover.maximumLagOnFailover ({failover.maximum_lag_on_failover}): it would not be"
            " promoted if the primary failed now; check its disk, network and long queries on it",
            wait="5m",
            member="{{ $labels.name }}",
        ),
        _rule(
            "PatroniFailoverHappened",
            f"changes(patroni_postgres_timeline{{{patroni}}}[15m]) > 0",
            "warning",
            "the timeline of {{ $labels.name }} changed: a failover or switchover took place; check that the"
            f" old primary rejoined as a replica and why it happened ({FAILOVER_DOC})",
            member="{{ $labels.name }}",
        ),
        _rule(
            "PatroniPaused",
            f"max(patroni_is_paused{{{patroni}}}) == 1",
            "warning",
            "Patroni is in maintenance mode: nothing fails over by itself; `patronictl resume` when done",
            wait=f"{PATRONI_PAUSED_HOURS}h",
        ),
        _rule(
            "PatroniAbsent",
            f"absent(up{{{patroni}}})",
            "critical",
            f"Prometheus has no target for job {PATRONI_JOB}: Patroni's REST API (/metrics) is not scraped",
            wait="5m",
            job=PATRONI_JOB,
        ),
        _rule(
            "PatroniDown",
            f"up{{{patroni}}} == 0",
            "critical",
            "Patroni's REST API on {{ $labels.instance }} does not answer: its container or host is down, so"
            " that member takes no part in a failover",
            wait="2m",
            job=PATRONI_JOB,
        ),
    ]
    if failover.synchronous:
        rules.append(
            _rule(
                "PatroniNoSynchronousStandby",
                f"sum(patroni_sync_standby{{{patroni}}}) == 0 and on() sum(patroni_primary{{{patroni}}}) == 1",
                "critical",
                "no replica is synchronous: commits are acknowledged unreplicated and a failover now could"
                " lose them; start the replica or rebuild it",
                wait="2m",
            )
        )
    return rules


def watchdog() -> dict[str, Any]:
    return _rule(
        "Watchdog",
        "vector(1)",
        "none",
        "always firing: the receiver's dead man's switch alerts when this stops arriving (Prometheus or"
        " Alertmanager down, or the whole host)",
    )


def rules(config: PlatformConfig, stack: str) -> dict[str, Any]:
    """The rules file as data: one group per concern."""
    servers = budget.compute(config)
    failover = patroni_rules(config)
    connections = [r for s in servers for r in role_rules(s, stack) + server_rules(s, stack)]
    connections += [undeclared_rule(config, s, stack) for s in servers]
    if admin_cidrs(config):
        connections.append(superuser_rule(stack))
    groups = [
        ("connections", connections),
        ("pgbouncer", pgbouncer_rules() if config.pgbouncer is not None else []),
        # With Patroni either host may be the replica: its own metrics say which (patroni_rules).
        ("replication", replica_rules() if len(servers) > 1 and not failover else []),
        ("failover", failover),
        ("backups", backup_rules(config) + verify_rules(config, stack)),
        ("vacuum", xid_rules()),
        ("exporters", [*exporter_rules(config), watchdog()]),
    ]
    return {"groups": [{"name": f"postgres-platform-{stack}-{name}", "rules": r} for name, r in groups if r]}


def rules_yaml(config: PlatformConfig, stack: str) -> str:
    return yaml.safe_dump(rules(config, stack), sort_keys=False, width=1000)


ROLE_BACKENDS = """\
SELECT r.rolname AS usename, count(a.pid) AS count, r.rolconnlimit AS connlimit,
       CASE WHEN r.rolsuper THEN 1 ELSE 0 END AS superuser
FROM pg_roles r LEFT JOIN pg_stat_activity a ON a.usename = r.rolname AND a.backend_type = 'client backend'
WHERE r.rolcanlogin
GROUP BY r.rolname, r.rolconnlimit, r.rolsuper"""
XID_AGE = "SELECT datname, age(datfrozenxid) AS xid_age FROM pg_database WHERE datallowconn"
# pg_backup_stop leaves the latest backup's history file (*.backup) in pg_wal until the next backup:
# its time is the end of the last backup of any type (pg_ls_waldir: granted to pg_monitor). 0: none yet.
LAST_BACKUP = """\
SELECT COALESCE(max(extract(epoch FROM modification)), 0)::float8 AS time_seconds
FROM pg_ls_waldir() WHERE name LIKE '%.backup'"""

# render/backup.record_script's table, filled from the repository's own state (pgbackrest info) after each
# backup and hourly; read through query_to_xml so that no table yet gives no rows instead of an error.
_BY_TYPE = f"SELECT type, extract(epoch FROM stopped_at)::float8 AS time_seconds FROM {LAST_BACKUPS}"
_BY_TYPE_NONE = "SELECT NULL::text AS type, NULL::float8 AS time_seconds WHERE false"
BACKUP_BY_TYPE = f"""\
SELECT (xpath('/row/type/text()', r))[1]::text AS type,
       (xpath('/row/time_seconds/text()', r))[1]::text::float8 AS time_seconds
FROM unnest(xpath('/table/row', query_to_xml(
  CASE WHEN EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'pgplatform' AND c.relname = 'last_backups')
       THEN '{_BY_TYPE}' ELSE '{_BY_TYPE_NONE}' END, false, false, ''))) AS r"""

# The verification job's table (render/restore_check.TABLE) exists only once the job has run: the query
# reads it through query_to_xml, so a missing table gives the "none yet" row instead of an error.
_VERIFIED = """\
SELECT COALESCE(extract(epoch FROM max(finished_at) FILTER (WHERE ok)), 0)::float8 AS last_success_time_seconds,
       COALESCE(extract(epoch FROM max(finished_at)), 0)::float8 AS latest_time_seconds,
       COALESCE((SELECT ok::int FROM pgplatform.restore_verifications ORDER BY finished_at DESC LIMIT 1), -1)
         AS latest_ok
FROM pgplatform.restore_verifications"""
_NONE_YET = "SELECT 0::float8 AS last_success_time_seconds, 0::float8 AS latest_time_seconds, -1 AS latest_ok"
RESTORE_VERIFIED = f"""\
SELECT (xpath('/row/last_success_time_seconds/text()', x))[1]::text::float8 AS last_success_time_seconds,
       (xpath('/row/latest_time_seconds/text()', x))[1]::text::float8 AS latest_time_seconds,
       (xpath('/row/latest_ok/text()', x))[1]::text::int AS latest_ok
FROM query_to_xml(CASE WHEN EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                    WHERE n.nspname = 'pgplatform' AND c.relname = 'restore_verifications')
                       THEN '{_VERIFIED.replace("'", "''")}'
                       ELSE '{_NONE_YET}' END, false, true, '') AS x"""


def superuser_outside(cidrs: list[str]) -> str:
    listed = ", ".join(f"'{c}'" for c in cidrs)
    return f"""\
SELECT a.usename, host(a.client_addr) AS client_addr, count(*) AS count
FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename
WHERE r.rolsuper AND a.backend_type = 'client backend' AND a.client_addr IS NOT NULL
  AND NOT a.client_addr <<= ANY (ARRAY[{listed}]::inet[])
GROUP BY a.usename, a.client_addr"""


def _gauge(description: str) -> dict[str, str]:
    return {"usage": "GAUGE", "description": description}


def _label(description: str) -> dict[str, str]:
    return {"usage": "LABEL", "description": description}


def queries(config: PlatformConfig) -> dict[str, Any]:
    """postgres_exporter's --extend.query-path file: metric prefix -> query and its columns."""
    found: dict[str, Any] = {
        "pgplatform_role_backends": {
            "query": ROLE_BACKENDS,
            "metrics": [
                {"usename": _label("login role")},
                {"count": _gauge("client backends of the role")},
                {"connlimit": _gauge("the role's CONNECTION LIMIT (-1: none)")},
                {"superuser": _gauge("1 when the role is a superuser")},
            ],
        },
        "pgplatform_database": {
            "query": XID_AGE,
            "metrics": [{"datname": _label("database")}, {"xid_age": _gauge("age(datfrozenxid)")}],
        },
    }
    cidrs = admin_cidrs(config)
    if cidrs:
        found["pgplatform_superuser_outside"] = {
            "query": superuser_outside(cidrs),
            "metrics": [
                {"usename": _label("superuser")},
                {"client_addr": _label("client address outside the admin CIDRs")},
                {"count": _gauge("sessions")},
            ],
        }
    if config.backup is not None:
        found["pgplatform_backup_last"] = {
            "query": LAST_BACKUP,
            "master": True,
            "metrics": [{"time_seconds": _gauge("end of the last pgBackRest backup (any type), unix time")}],
        }
        found["pgplatform_backup_by_type"] = {
            "query": BACKUP_BY_TYPE,
            "master": True,
            "metrics": [
                {"type": _label("pgBackRest backup type: full, diff (incr)")},
                {"time_seconds": _gauge("end of the repository's latest backup of the type, unix time")},
            ],
        }
        found["pgplatform_restore_verification"] = {
            "query": RESTORE_VERIFIED,
            "master": True,
            "metrics": [
                {
                    "last_success_time_seconds": _gauge(
                        "end of the last successful verified restore, unix time (0: none)"
                    )
                },
                {"latest_time_seconds": _gauge("end of the latest verified restore attempt, unix time (0: none)")},
                {"latest_ok": _gauge("1: the latest attempt verified, 0: it failed, -1: none yet")},
            ],
        }
    return found


def queries_yaml(config: PlatformConfig) -> str:
    return yaml.safe_dump(queries(config), sort_keys=False, width=1000)
