"""The script that puts config files on a host, run for real with sh: atomic writes, modes, reload on change only."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from postgres_platform.render.files import RELOAD_PENDING, File, install_input, install_script, read_install_input


def install(directory: Path, files: list[File[str]], marker: Path) -> None:
    script = install_script(str(directory), str(os.getuid()), f"  echo reloaded >> {marker}", mode_when_not_root=None)
    subprocess.run(["sh", "-c", script], input=install_input(files), text=True, check=True, timeout=30)


def test_files_land_with_their_modes_and_a_reload_runs_only_when_one_changed(tmp_path: Path) -> None:
    directory, marker = tmp_path / "conf" / "pgbouncer", tmp_path / "reloads"
    files = [File("pgbouncer.ini", "0644", "[pgbouncer]\nx = 1\n"), File("userlist.txt", "0600", '"u" "p w"\n')]
    install(directory, files, marker)
    assert (directory / "pgbouncer.ini").read_text() == "[pgbouncer]\nx = 1\n"
    assert (directory / "userlist.txt").read_text() == '"u" "p w"\n'
    assert stat.S_IMODE((directory / "userlist.txt").stat().st_mode) == 0o600
    assert marker.read_text() == "reloaded\n"

    install(directory, files, marker)  # the same files: nothing to reload
    assert marker.read_text() == "reloaded\n"

    install(directory, [files[0], File("userlist.txt", "0600", '"u" "rotated"\n')], marker)
    assert (directory / "userlist.txt").read_text() == '"u" "rotated"\n'
    assert marker.read_text() == "reloaded\nreloaded\n"
    assert sorted(p.name for p in directory.iterdir()) == ["pgbouncer.ini", "userlist.txt"]  # no temp files left


def test_secrets_travel_on_stdin_and_read_back_exactly() -> None:
    files = [File("superuser.password", "0600", "s3cret with spaces\nand a newline"), File("e", "0644", "")]
    text = install_input(files)
    assert "s3cret" not in text and len(text.splitlines()) == 2
    assert read_install_input(text) == {f.name: f for f in files}
    assert "s3cret" not in install_script("/etc/x", "70", "true")


def test_a_reload_that_failed_runs_again_next_time_though_the_files_are_in_place(tmp_path: Path) -> None:
    directory, attempts = tmp_path / "conf", tmp_path / "attempts"
    files = [File("patroni.yml", "0644", "scope: x\n")]

    def run(reload_ok: bool) -> int:
        reload = f"  echo try >> {attempts}; {'true' if reload_ok else 'false'}"
        script = install_script(str(directory), str(os.getuid()), reload, mode_when_not_root=None)
        done = subprocess.run(["sh", "-c", script], input=install_input(files), text=True, timeout=30, check=False)
        return done.returncode

    assert run(reload_ok=False) != 0
    assert (directory / RELOAD_PENDING).exists()
    assert run(reload_ok=True) == 0  # the same files: reloaded all the same, because the last one failed
    assert attempts.read_text() == "try\ntry\n"
    assert not (directory / RELOAD_PENDING).exists()
    assert run(reload_ok=True) == 0  # now nothing changed and nothing is pending: no reload
    assert attempts.read_text() == "try\ntry\n"
