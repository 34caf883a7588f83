"""Reading stack files: every bad file is one line naming file, line and problem; nothing is silently dropped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from postgres_platform.cli import policy_config, preflight, render_sql
from postgres_platform.stackfile import ROOT

LOCAL = (ROOT / "Pulumi.local.yaml").read_text()

BAD_FILES = [
    ("not YAML", "config:\n  postgres-platform:target: [local\n", "Pulumi.bad.yaml:3: not valid YAML"),
    ("tab indentation", "config:\n\tpostgres-platform:target: local\n", "Pulumi.bad.yaml:2: not valid YAML"),
    ("config is a list", "config:\n  - postgres-platform:target\n", "Pulumi.bad.yaml: `config` must be a mapping of stack settings, got list"),
    ("no config", "encryptionsalt: x\n", "Pulumi.bad.yaml: `config` must be a mapping of stack settings, got nothing"),
    ("a document that is a string", "just text\n", "Pulumi.bad.yaml: `config` must be a mapping of stack settings"),
    ("duplicate top-level key", LOCAL + "  postgres-platform:target: hetzner\n", "not valid YAML: key 'postgres-platform:target' is given twice"),
    ("duplicate nested key", LOCAL.replace("maxConnections: 100", "maxConnections: 100\n    maxConnections: 500"),
     "not valid YAML: key 'maxConnections' is given twice"),
    ("near-miss namespace", LOCAL + "  postgres-platfrom:externalRoles: {grafana_ro: {connectionLimit: 40}}\n",
     "postgres-platfrom:externalRoles: its namespace is not postgres-platform, so nothing reads it (a typo?)"),
    ("underscore namespace", LOCAL + "  postgres_platform:apps: {}\n", "postgres_platform:apps: its namespace is not"),
    ("unknown key in our namespace", LOCAL + "  postgres-platform:externalRole: {}\n", "externalRole: is not a known setting"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "expected"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_stack_file_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, text: str, expected: str
) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text)
    for main in (preflight.main, render_sql.main, policy_config.main):  # an exception would fail the test
        assert main(["--stack-file", str(path)]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (main.__module__, lines)


def test_as_a_script_too_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(BAD_FILES[0][1])
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "preflight.py"), "--stack-file", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_other_namespaces_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.local.yaml"
    path.write_text(LOCAL + "  hcloud:token:\n    secure: AAABAxyz\n  aws:region: eu-central-1\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_sql.py"), "--stack-file", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
