"""Stack outputs: per-app DSNs (secret), the budget table (plain), admin DSNs (secret), addresses."""

from __future__ import annotations

from typing import Any

import pulumi

from postgres_platform.model import budget
from postgres_platform.model.config import BackupConfig, PlatformConfig
from postgres_platform.model.names import PGBOUNCER_ADMIN, PGBOUNCER_CONSOLE_DB
from postgres_platform.program.deploy import Deployed
from postgres_platform.program.monitoring import monitoring_outputs
from postgres_platform.render import dsn
from postgres_platform.render.backup import CIPHER, STANZA


def _app_dsns(config: PlatformConfig, deployed: Deployed, app: str) -> pulumi.Output[dict[str, Any]]:
    spec = config.apps[app]
    user = config.active_login(app).role  # with alternating logins, the one made active last

    def forms(password: str) -> dict[str, Any]:
        out = {"direct": dsn.all_forms(user, password, spec.database, deployed.direct)}
        if spec.pooled and deployed.pooled is not None:
            # In PgBouncer each app has its own pool database, named after the app (render.pgbouncer.pools).
            out["pooled"] = dsn.all_forms(user, password, app, deployed.pooled)
        if deployed.replica is not None and spec.access == "read":
            out["replica"] = dsn.all_forms(user, password, spec.database, deployed.replica)
        return out

    return pulumi.Output.secret(deployed.passwords[user].apply(forms))


def backup_output(backup: BackupConfig) -> dict[str, Any]:
    """Where backups go and when: plain (the passphrase and keys are in no output)."""
    where: dict[str, Any] = (
        {"endpoint": backup.s3.endpoint, "bucket": backup.s3.bucket, "region": backup.s3.region, "path": backup.s3.path}
        if backup.s3 is not None and backup.repo == "s3"
        else {"volume": f"postgres-platform-{pulumi.get_stack()}-pgbackrest"}
    )
    return {
        "repo": backup.repo,
        **where,
        "stanza": STANZA,
        "encryption": CIPHER,
        "retention": {"full": backup.retention_full, "diff": backup.retention_diff},
        "schedule": {"full": backup.schedule.full, "diff": backup.schedule.diff, "check": "hourly"},
    }


def stack_outputs(config: PlatformConfig, deployed: Deployed) -> dict[str, Any]:
    admin_dsn = pulumi.Output.all(deployed.admin_password, deployed.admin).apply(
        lambda v: dsn.uri(deployed.admin_user, v[0], "postgres", v[1])
    )
    hosts = {"postgres": f"{deployed.direct.host}:{deployed.direct.port}"}
    outputs: dict[str, Any] = {
        "apps": {app: _app_dsns(config, deployed, app) for app in config.apps},
        "budget": [server.as_dict() for server in budget.compute(config)],
        "adminDsn": pulumi.Output.secret(admin_dsn),
        "hosts": hosts,
    }
    pooled, console_password = deployed.pooled, deployed.pgbouncer_admin_password
    if pooled is not None and console_password is not None:
        outputs["pgbouncerAdminDsn"] = pulumi.Output.secret(
            console_password.apply(lambda pw: dsn.uri(PGBOUNCER_ADMIN, pw, PGBOUNCER_CONSOLE_DB, pooled))
        )
        hosts["pgbouncer"] = f"{pooled.host}:{pooled.port}"
    if deployed.replica:
        hosts["replica"] = f"{deployed.replica.host}:{deployed.replica.port}"
    if config.backup is not None:
        outputs["backup"] = backup_output(config.backup)
    outputs |= monitoring_outputs(config, deployed.scrape_targets)  # plain: rules and addresses, no secret
    if deployed.ca_cert_pem is not None:
        outputs["caCertPem"] = deployed.ca_cert_pem  # public: apps verify the servers with it
        outputs["adminHost"] = deployed.admin.apply(lambda endpoint: endpoint.host)
    return outputs
