#!/usr/bin/env python3
"""Entry point of postgres_platform.cli.failover_drill (the project must be installed: `pip install -e .`)."""

import sys

from postgres_platform.cli.failover_drill import main

if __name__ == "__main__":
    sys.exit(main())
