#!/usr/bin/env python3
"""Entry point of postgres_platform.cli.hba_lines (the project must be installed: `pip install -e .`)."""

import sys

from postgres_platform.cli.hba_lines import main

if __name__ == "__main__":
    sys.exit(main())
