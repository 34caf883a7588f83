"""Text as Markdown shows it: `<...>` outside code spans kept visible instead of read as HTML."""

from __future__ import annotations

import re

CODE_SPAN = re.compile(r"(`[^`]*`)")


def inline(text: str) -> str:
    """One line of text, `<` and `>` outside code spans escaped."""
    parts = CODE_SPAN.split(" ".join(text.split()))
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;") for p in parts)


def cell(text: str | None) -> str:
    """Text for a table cell: one line, pipes escaped (an empty cell for no text)."""
    return inline(text or "").replace("|", "\\|")
