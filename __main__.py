"""postgres-platform: one typed stack config -> Postgres, PgBouncer, bounded app roles, secret DSNs."""

import pulumi

from postgres_platform.program.deploy import deploy, load_config
from postgres_platform.program.outputs import stack_outputs

config = load_config()  # every config problem, one line each, before any resource is declared
for name, value in stack_outputs(config, deploy(config)).items():
    pulumi.export(name, value)
