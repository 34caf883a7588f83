"""The generated pages of docs/: the configuration reference and the policies, from the code itself.

    python3 -m postgres_platform.docs            # write them
    python3 -m postgres_platform.docs --check    # exit 1 naming each page that differs from its source

Only the pure core and the policy pack are read (tests/unit/test_layout.py keeps it so): the pages
change when the config models or the policies do, and `--check` in scripts/test.sh says when.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from postgres_platform.docs import configuration, policies

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
PAGES: dict[str, Callable[[], str]] = {
    "configuration.md": configuration.render,
    "policies.md": policies.render,
}
COMMAND = "python3 -m postgres_platform.docs"


def write(docs_dir: Path = DOCS_DIR) -> list[Path]:
    """Write every generated page into docs_dir; the paths written."""
    written = []
    for name, render in PAGES.items():
        path = docs_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render())
        written.append(path)
    return written


def stale(docs_dir: Path = DOCS_DIR) -> list[Path]:
    """The generated pages whose file in docs_dir differs from what the code renders now (or is missing)."""
    return [
        docs_dir / name
        for name, render in PAGES.items()
        if not (docs_dir / name).is_file() or (docs_dir / name).read_text() != render()
    ]
