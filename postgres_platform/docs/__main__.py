"""`python3 -m postgres_platform.docs [--check] [--docs-dir DIR]`: write or check the generated pages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from postgres_platform.docs import COMMAND, DOCS_DIR, stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m postgres_platform.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when a page differs from what the code renders")
    parser.add_argument("--docs-dir", type=Path, default=DOCS_DIR, help=f"where the pages are (default {DOCS_DIR})")
    args = parser.parse_args(argv)
    if not args.check:
        for path in write(args.docs_dir):
            print(path)
        return 0
    outdated = stale(args.docs_dir)
    fix = COMMAND if args.docs_dir == DOCS_DIR else f"{COMMAND} --docs-dir {args.docs_dir}"
    for path in outdated:
        print(f"{path}: stale, regenerate it with `{fix}`", file=sys.stderr)
    return 1 if outdated else 0


if __name__ == "__main__":
    sys.exit(main())
