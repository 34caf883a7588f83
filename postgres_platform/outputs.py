"""Stack outputs: per-app DSNs (secret), the budget table (plain), admin DSNs (secret), addresses."""

from __future__ import annotations

from typing import Any

import pulumi

from postgres_platform.deploy import Deployed
from postgres_platform.model import budget
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import PGBOUNCER_ADMIN, PGBOUNCER_CONSOLE_DB, SUPERUSER
from postgres_platform.render import dsn


def _app_dsns(config: PlatformConfig, deployed: Deployed, app: str) -> pulumi.Output[dict[str, Any]]:
    spec = config.apps[app]
    user = config.active_login(app).role  # with alternating logins, the one made active last

    def forms(password: str) -> dict[str, Any]:
        out = {"direct": dsn.all_forms(user, password, spec.database, deployed.direct)}
        if spec.pooled:
            # In PgBouncer each app has its own pool database, named after the app (render.pgbouncer.pools).
            out["pooled"] = dsn.all_forms(user, password, app, deployed.pooled)
        if deployed.replica is not None and spec.access == "read":
            out["replica"] = dsn.all_forms(user, password, spec.database, deployed.replica)
        return out

    return pulumi.Output.secret(deployed.passwords[user].apply(forms))


def stack_outputs(config: PlatformConfig, deployed: Deployed) -> dict[str, Any]:
    admin_dsn = pulumi.Output.all(deployed.superuser_password, deployed.admin).apply(
        lambda v: dsn.uri(SUPERUSER, v[0], "postgres", v[1])
    )
    outputs: dict[str, Any] = {
        "apps": {app: _app_dsns(config, deployed, app) for app in config.apps},
        "budget": [server.as_dict() for server in budget.compute(config)],
        "adminDsn": pulumi.Output.secret(admin_dsn),
        "pgbouncerAdminDsn": pulumi.Output.secret(
            deployed.pgbouncer_admin_password.apply(
                lambda pw: dsn.uri(PGBOUNCER_ADMIN, pw, PGBOUNCER_CONSOLE_DB, deployed.pooled)
            )
        ),
        "hosts": {
            "postgres": f"{deployed.direct.host}:{deployed.direct.port}",
            "pgbouncer": f"{deployed.pooled.host}:{deployed.pooled.port}",
            **({"replica": f"{deployed.replica.host}:{deployed.replica.port}"} if deployed.replica else {}),
        },
    }
    if deployed.ca_cert_pem is not None:
        outputs["caCertPem"] = deployed.ca_cert_pem  # public: apps verify the servers with it
        outputs["adminHost"] = deployed.admin.apply(lambda endpoint: endpoint.host)
    return outputs
