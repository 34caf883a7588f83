"""Scale benchmark: preflight on generated stacks of N apps over N/10 databases, against the prod stack.

    python scripts/bench_scale.py [--apps 50 500] [--json] [--project DIR]

Per N: resources declared, resources per app, the marginal resources of one more app that uses its
database's default schemas, preflight seconds and peak memory (each preflight in its own process,
measured with wait4), and the time as a multiple of the prod stack's preflight in the same run. And
`--against` as a PR adding that app runs it (the N+1 stack against the N one): its seconds, as a multiple
of the N+1 stack's plain preflight, and its peak memory (the larger of its two processes).
--project runs another checkout's scripts/preflight.py (e.g. an older commit, for before/after).
A benchmark, not a test: tests/unit/test_bench_scale.py runs it small and checks its arithmetic.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from postgres_platform.cli.errors import command
from postgres_platform.model.budget import MONITORING_CONNECTIONS
from postgres_platform.model.images import PGBOUNCER_124, POSTGRES_17
from postgres_platform.model.stackfile import ROOT, stack_file

LEVELS = ("read", "write", "write", "write", "read", "write", "read", "write", "read", "migrate")


def generated_stack(apps: int) -> dict[str, Any]:
    """N apps, ten per database (the tenth migrates), limit 2 each; max_connections sized to fit."""
    databases = max(1, apps // 10)
    app_config = {
        f"app_{i:04d}": {
            "database": f"db_{i % databases:03d}",
            "access": LEVELS[(i // databases) % 10],
            "connectionLimit": 2,
        }
        for i in range(apps)
    }
    # apps, the auth role (a pool each, plus one), the monitoring role, headroom, reserved
    max_connections = 2 * apps + (apps + 1) + MONITORING_CONNECTIONS + 5 + 3
    return {
        "config": {
            "postgres-platform:target": "local",
            "postgres-platform:postgres": {"image": POSTGRES_17.reference, "maxConnections": max_connections},
            "postgres-platform:pgbouncer": {"image": PGBOUNCER_124.reference, "maxClientConn": 10 * apps},
            "postgres-platform:databases": {f"db_{d:03d}": {"schemas": ["public"]} for d in range(databases)},
            "postgres-platform:apps": app_config,
        }
    }


def plus_one_app(stack: dict[str, Any]) -> dict[str, Any]:
    """The same stack with one more write app in its first database, on the default schemas."""
    config = {**stack["config"]}
    config["postgres-platform:apps"] = {
        **config["postgres-platform:apps"],
        "app_extra": {"database": "db_000", "access": "write", "connectionLimit": 2},
    }
    pg = config["postgres-platform:postgres"]
    config["postgres-platform:postgres"] = {**pg, "maxConnections": pg["maxConnections"] + 3}
    return {"config": config}


def preflight(project: Path, path: Path, *options: str) -> dict[str, Any]:
    """One preflight in its own process: its JSON report, wall seconds and peak resident memory (wait4)."""
    command = [sys.executable, str(project / "scripts" / "preflight.py"), "--stack-file", str(path), "--json"]
    command += options
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=project)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"preflight {path.name} failed ({process.returncode}): {err.read().decode()[-2000:]}")
        report = json.loads(out.read())
    # ru_maxrss is in kilobytes on Linux.
    return {
        "resources": _resources(report["resources"]),
        "seconds": seconds,
        "peakMb": round(usage.ru_maxrss / 1024, 1),
    }


def _resources(counted: list[dict[str, Any]] | dict[str, int]) -> int:
    """How many resources preflight's --json counted: [{"type", "count"}], or {type: count} up to 0.3.0
    (--project may be an older checkout)."""
    return sum(counted.values()) if isinstance(counted, dict) else sum(int(r["count"]) for r in counted)


def run(apps_counts: list[int], project: Path) -> dict[str, Any]:
    prod = preflight(project, stack_file("prod") if project == ROOT else project / "Pulumi.prod.yaml")
    runs = []
    with tempfile.TemporaryDirectory(prefix="pgplat-scale-") as tmp:
        for apps in apps_counts:
            stack = generated_stack(apps)
            path = Path(tmp) / f"Pulumi.scale{apps}.yaml"
            path.write_text(yaml.safe_dump(stack))
            measured = preflight(project, path)
            bigger = Path(tmp) / f"Pulumi.scale{apps}plus1.yaml"
            bigger.write_text(yaml.safe_dump(plus_one_app(stack)))
            plus_one = preflight(project, bigger)
            against = preflight(project, bigger, "--against", str(path))
            runs.append(
                {
                    "apps": apps,
                    "databases": max(1, apps // 10),
                    "resources": measured["resources"],
                    "resourcesPerApp": round(measured["resources"] / apps, 2),
                    "marginalResourcesPerApp": plus_one["resources"] - measured["resources"],
                    "seconds": round(measured["seconds"], 2),
                    "peakMb": measured["peakMb"],
                    "timesProd": round(measured["seconds"] / prod["seconds"], 1),
                    "againstSeconds": round(against["seconds"], 2),
                    "againstTimesPreflight": round(against["seconds"] / plus_one["seconds"], 2),
                    "againstPeakMb": against["peakMb"],
                }
            )
    return {
        "prod": {"resources": prod["resources"], "seconds": round(prod["seconds"], 2), "peakMb": prod["peakMb"]},
        "runs": runs,
    }


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, nargs="+", default=[50, 500], help="app counts (default 50 500)")
    parser.add_argument("--project", type=Path, default=ROOT, help="checkout whose preflight to measure")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    result = run(args.apps, args.project.resolve())
    if args.json:
        print(json.dumps(result))
        return 0
    prod = result["prod"]
    print(f"prod stack: {prod['resources']} resources, preflight {prod['seconds']} s, peak {prod['peakMb']} MB")
    print(
        f"{'apps':>5} {'dbs':>4} {'resources':>9} {'per app':>8} {'marginal':>8} {'seconds':>8} {'x prod':>6} "
        f"{'MB':>7} {'against':>8} {'x plain':>7} {'MB':>7}"
    )
    for r in result["runs"]:
        print(
            f"{r['apps']:>5} {r['databases']:>4} {r['resources']:>9} {r['resourcesPerApp']:>8} "
            f"{r['marginalResourcesPerApp']:>8} {r['seconds']:>8} {r['timesProd']:>6} {r['peakMb']:>7} "
            f"{r['againstSeconds']:>8} {r['againstTimesPreflight']:>7} {r['againstPeakMb']:>7}"
        )
    return 0
