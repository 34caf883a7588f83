"""What a statement does to data, from its text: DDL (a migration), a write, or a read."""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal["read", "write", "ddl"]
# Writes, and what needs a write privilege: SELECT ... FOR UPDATE/SHARE takes UPDATE. (COPY (query) TO reads.)
_WRITE = re.compile(
    r"\b(insert\s+into|update\s+\S+\s+set|delete\s+from|merge\s+into|copy\s+[^\s(][^;]*\bfrom|"
    r"truncate|for\s+(no\s+key\s+)?update|for\s+(key\s+)?share)\b",
    re.IGNORECASE | re.DOTALL,
)
_DDL = re.compile(r"^\s*(create|alter|drop|comment\s+on|grant|revoke)\b", re.IGNORECASE)
_COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*", re.DOTALL)


def statement_kind(query: str) -> Kind:
    """What a statement does to data: DDL (a migration), a write, or (anything else) a read."""
    text = _COMMENT.sub(" ", query)
    if _DDL.match(text):
        return "ddl"
    return "write" if _WRITE.search(text) else "read"
