"""The old home of components/resources/sql_apply.py, kept for deployed stacks' state.

Pulumi stores each dynamic resource's provider pickled by reference (`postgres_platform.sql_apply.
SqlApplyProvider`) and deletes a resource with the provider from its state: without this name, removing an
app deployed before the move would fail at `pulumi up`. New resources record the new module.
"""

from components.resources.sql_apply import RoleRetirementProvider, SqlApplyProvider

__all__ = ["RoleRetirementProvider", "SqlApplyProvider"]
