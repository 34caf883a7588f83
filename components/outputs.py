"""Stack outputs: per-app DSNs (secret), the budget table (plain), admin DSNs (secret), addresses."""

from __future__ import annotations

from typing import Any

import pulumi

from components import budget, dsn
from components.config import PlatformConfig
from components.names import PGBOUNCER_ADMIN, PGBOUNCER_CONSOLE_DB, SUPERUSER
from components.program import Deployed


def _app_dsns(config: PlatformConfig, deployed: Deployed, app: str) -> pulumi.Output[dict[str, Any]]:
    spec = config.apps[app]

    def forms(password: str) -> dict[str, Any]:
        out = {"direct": dsn.all_forms(app, password, spec.database, deployed.direct)}
        if spec.pooled:
            # In PgBouncer each app has its own pool database, named after the app (pgbouncer_config.pools).
            out["pooled"] = dsn.all_forms(app, password, app, deployed.pooled)
        return out

    return pulumi.Output.secret(deployed.passwords[app].apply(forms))


def stack_outputs(config: PlatformConfig, deployed: Deployed) -> dict[str, Any]:
    outputs: dict[str, Any] = {
        "apps": {app: _app_dsns(config, deployed, app) for app in config.apps},
        "budget": [server.as_dict() for server in budget.compute(config)],
        "adminDsn": pulumi.Output.secret(
            deployed.superuser_password.apply(lambda pw: dsn.uri(SUPERUSER, pw, "postgres", deployed.admin))
        ),
        "hosts": {
            "postgres": f"{deployed.direct.host}:{deployed.direct.port}",
            "pgbouncer": f"{deployed.pooled.host}:{deployed.pooled.port}",
        },
    }
    if deployed.pgbouncer_admin_password is not None:
        outputs["pgbouncerAdminDsn"] = pulumi.Output.secret(
            deployed.pgbouncer_admin_password.apply(
                lambda pw: dsn.uri(PGBOUNCER_ADMIN, pw, PGBOUNCER_CONSOLE_DB, deployed.pooled)
            )
        )
    return outputs
