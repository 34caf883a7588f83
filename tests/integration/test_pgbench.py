"""The pgbench mode of bench_pool.py, run briefly on real servers with the prod images: its JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys

from postgres_platform.cli.bench_pool import PGBENCH_APP, pgbench_config
from postgres_platform.model.images import versions_of
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import ROOT, read_stack_values, stack_file
from postgres_platform.render.pgbouncer import pools

PROD = load_stack_values(read_stack_values(stack_file("prod")))


def test_pgbench_mode_reports_direct_and_pooled_tps() -> None:
    argv = ["--pgbench", "--clients", "4", "--seconds", "2", "--protocol", "extended", "--json"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_pool.py"), *argv],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"mode", "clients", "seconds", "direct", "pooled", "ratio", "versions"}
    assert (report["mode"], report["clients"], report["seconds"]) == ("pgbench", 4, 2.0)
    assert report["versions"] == versions_of(PROD.postgres.image, PROD.required_pgbouncer().image)
    for path in ("direct", "pooled"):
        assert set(report[path]) == {"tps"}
        assert report[path]["tps"] > 0
    assert report["ratio"] == round(report["pooled"]["tps"] / report["direct"]["tps"], 3)


def test_pgbench_config_gives_each_client_a_server_connection_both_ways() -> None:
    config = pgbench_config(read_stack_values(stack_file("prod")), 32)
    [pool] = pools(config)
    assert (pool.app, pool.max_server_connections, config.apps[PGBENCH_APP].connection_limit) == (PGBENCH_APP, 32, 32)
    assert (config.postgres, config.required_pgbouncer().image) == (PROD.postgres, PROD.required_pgbouncer().image)
