"""Verify a restored copy: the check script of render/restore_check.py run in the copy's container.

The drill and `restore.py --verify` call `verify()` on the copy they started; the result is the same
shape either way: {"ok", "checkedAt", "seconds", "output"} (`output`: the script's last lines, where
a failure names the database, the relation or what pg_amcheck found). `run_job()` runs the scheduled
job (render/restore_check.job_script) on this machine, as a host's timer runs it.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from postgres_platform.render.containers import exec_argv
from postgres_platform.render.restore_check import JOB_SCRIPT, VerifyJob, check_script, job_script

TIMEOUT = 3600  # seconds: reading every table of a large database takes a while
OUTPUT_LINES = 20


def verify(container: str, port: int, databases: list[str], timeout: float = TIMEOUT) -> dict[str, Any]:
    """Run the checks in `container` (the restored copy, running, on `port`); ok when every one passed."""
    started = time.monotonic()
    done = subprocess.run(
        exec_argv(container, ["sh"]),
        input=check_script(databases, port),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
    )
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return {
        "ok": done.returncode == 0 and "verified" in done.stdout.splitlines(),
        "checkedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 2),
        "output": lines[-OUTPUT_LINES:],
    }


def run_job(job: VerifyJob, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """`bash verify-restore.sh` of this job (its exit code: 0 verified and recorded; its output: the
    run's, then `verified restore: ok=... in ... s`)."""
    with tempfile.TemporaryDirectory(prefix="pgplat-verify-") as directory:
        script = f"{directory}/{JOB_SCRIPT}"
        with open(script, "w", encoding="utf-8") as file:
            file.write(job_script(job))
        return subprocess.run(
            ["bash", script], capture_output=True, text=True, errors="replace", timeout=timeout or job.timeout + 600
        )
