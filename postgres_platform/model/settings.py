"""Server settings checked against the shipped PostgreSQL's own parameter table (pure).

pg_settings.json is that server's `pg_settings` (scripts/pg_settings.py regenerates it from the image
the stacks ship; a real-server test fails when it is stale): a setting the server would refuse to
start with (an unknown name, a wrong type, a value out of range or not in its enum, a newline) is a
config error here, one line each, before anything is declared.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

TABLE_FILE = Path(__file__).with_name("pg_settings.json")

# Units as PostgreSQL reads them (case-sensitive), in its base units: bytes and milliseconds.
MEMORY: dict[str, float] = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
TIME: dict[str, float] = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_NUMBER_WITH_UNIT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_BOOL = {"on", "off", "true", "false", "yes", "no", "1", "0"}


@cache
def table() -> dict[str, dict[str, Any]]:
    settings: dict[str, dict[str, Any]] = json.loads(TABLE_FILE.read_text())["settings"]
    return settings


def restart_settings() -> frozenset[str]:
    """Read at server start only (context `postmaster`): on the command line, not in the reloadable file."""
    return frozenset(name for name, spec in table().items() if spec["context"] == "postmaster")


def _scale(unit: str | None) -> tuple[dict[str, float], float] | None:
    """The unit family of a parameter and the size of its unit in base units (8kB -> 8192 bytes)."""
    if not unit:
        return None
    match = re.fullmatch(r"(\d*)(\w+)", unit)
    if match is None:
        return None
    count, name = int(match.group(1) or 1), match.group(2)
    for family in (MEMORY, TIME):
        if name in family:
            return family, count * family[name]
    return None


def _number(spec: dict[str, Any], value: Any) -> float | str:
    """The value in the parameter's own unit, or why it is not a number of this parameter."""
    if isinstance(value, bool):
        return "must be a number, not a boolean"
    if isinstance(value, int | float):
        return float(value)
    match = _NUMBER_WITH_UNIT.match(str(value))
    if match is None:
        return "must be a number" + (f" (with a unit such as {spec['unit']})" if spec.get("unit") else "")
    number, unit = float(match.group(1)), match.group(2)
    if not unit:
        return number
    scale = _scale(spec.get("unit"))
    if scale is None or unit not in scale[0]:
        return f"has no unit {unit!r}" + (f" (its unit is {spec['unit']})" if spec.get("unit") else "")
    return number * scale[0][unit] / scale[1]


def setting_problem(name: str, value: Any) -> str | None:
    """Why the shipped server would refuse `name = value`, or None."""
    spec = table().get(name)
    if spec is None:
        close = difflib.get_close_matches(name, table(), n=1)
        return "is not a PostgreSQL setting" + (f" (did you mean {close[0]}?)" if close else "")
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text:
        return "must be one line"
    kind = spec["type"]
    if kind == "bool":
        if isinstance(value, bool) or text.lower() in _BOOL:
            return None
        return "must be on or off"
    if kind == "enum":
        allowed = spec.get("enum") or []
        return None if text.lower() in {v.lower() for v in allowed} else f"must be one of {', '.join(allowed)}"
    if kind in ("integer", "real"):
        number = _number(spec, value)
        if isinstance(number, str):
            return number
        if kind == "integer" and not number.is_integer() and not spec.get("unit"):
            return "must be a whole number"
        low, high = float(spec["min"]), float(spec["max"])
        if not low <= number <= high:
            unit = f" {spec['unit']}" if spec.get("unit") else ""
            return f"must be between {spec['min']} and {spec['max']}{unit}"
    return None
