"""cli/progress.py: a bar on stderr when it is a terminal (a real pseudo-terminal here), nothing otherwise."""

from __future__ import annotations

import os
import pty
import select
import sys
import time

import pytest

from postgres_platform.cli.progress import no_progress, steps


def test_without_a_terminal_nothing_is_drawn_and_advance_does_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with steps("building images", total=2) as advance:
        assert advance is no_progress
        advance(0, "building postgres")
        advance()
        print("postgres-platform/postgres:17")
    assert capsys.readouterr() == ("postgres-platform/postgres:17\n", "")


def drawn(master: int) -> str:
    """What the terminal got within half a second (the bar redraws itself ten times a second)."""
    out = b""
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.05)[0]:
            out += os.read(master, 65536)
    return out.decode(errors="replace")


def test_on_a_terminal_the_bar_shows_each_step_and_goes_away(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w", buffering=1)
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("COLUMNS", "100")
    try:
        with steps("backup drill: starting the servers", total=4) as advance:
            assert advance is not no_progress
            advance(1, "full backup")
            advance(2, "restoring to the target")
            terminal.flush()
            during = drawn(master)
            advance()
        terminal.flush()
        after = drawn(master)
    finally:
        terminal.close()
        os.close(master)
    assert "restoring to the target" in during and "75%" in during
    assert after.endswith("\x1b[?25h\r\x1b[1A\x1b[2K")  # the cursor back, the bar's line erased (transient)
