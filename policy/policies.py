"""postgres-platform's CrossGuard policies: they check the resources the program declares.

Importing this module starts nothing (policy/__main__.py builds the PolicyPack, which blocks).
It checks what the program declares, not a report the program makes about itself; the budget's
arithmetic is the config check's own (postgres_platform.model.budget), so the two cannot disagree.
Each policy lives with the others of its domain (budget, network, images, data, passwords, sql), its
fix in its own `remediation_steps`; policy/resources.py holds the resource types they read.

Preview trap: a policy that reads an unknown value is turned ADVISORY by the SDK without a word. So
every policy here reads only literal inputs (limits, flags, `-c` arguments, labels, ports, image
names); passwords and other computed values are never read, only their dependencies.
"""

from __future__ import annotations

from pulumi_policy import Policy

from policy.budget import bounded_roles, connection_budget, role_memberships
from policy.data import backups_configured, protected_data, protected_databases
from policy.images import pinned_images
from policy.network import host_network_listeners, no_public_database_ports
from policy.passwords import secret_outputs
from policy.sql import ESCALATING, sql_steps

__all__ = ["ESCALATING", "POLICIES"]  # ESCALATING: tests/unit/test_grant_drift_sql.py reads it from here

# The pack's contract: these names, levels and this order (tests/program/test_policies.py).
POLICIES: list[Policy] = [
    connection_budget,
    bounded_roles,
    no_public_database_ports,
    pinned_images,
    protected_data,
    protected_databases,
    secret_outputs,
    role_memberships,
    sql_steps,
    host_network_listeners,
    backups_configured,
]
