"""Identifiers, literals and text arrays as SQL."""

from __future__ import annotations

from collections.abc import Iterable


def ident(name: str) -> str:
    """Quote an identifier (config already restricts names to ^[a-z_][a-z0-9_]*$)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def text_array(values: Iterable[str]) -> str:
    return f"ARRAY[{', '.join(literal(v) for v in values)}]::pg_catalog.text[]"
