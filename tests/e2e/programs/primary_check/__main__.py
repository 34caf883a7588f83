"""The PrimaryCheck the Patroni plan puts before the postgresql provider (components/patroni.py), under the
real engine, against a member of a real Patroni cluster the test runs.

Config (namespace e2e): port (the member's), password (secret: the superuser's).
"""

import pulumi

from components.resources.sql_apply import PrimaryCheck
from postgres_platform.model.names import LOOPBACK, SUPERUSER

config = pulumi.Config("e2e")
PrimaryCheck(
    "postgres-primary-check",
    connection={
        "host": LOOPBACK,
        "port": config.require_int("port"),
        "user": SUPERUSER,
        "password": config.require_secret("password"),
        "sslmode": "disable",
        "sslrootcert": None,
    },
)
