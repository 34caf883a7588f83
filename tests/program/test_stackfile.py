"""Reading stack files: every bad file is one line naming file, line and problem; nothing is silently dropped."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from postgres_platform.cli import policy_config, preflight, render_sql
from postgres_platform.model import stackfile
from postgres_platform.model.config import ConfigError
from postgres_platform.model.stackfile import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NUMBER_CHARS,
    MAX_VALUES,
    ROOT,
    read_stack_values,
)

LOCAL = (ROOT / "Pulumi.local.yaml").read_text()
# What each command exits with for a stack file it cannot read: 2, could not run (cli/errors.py).
COULD_NOT_RUN = {preflight.main: 2, render_sql.main: 2, policy_config.main: 2}

BAD_FILES = [
    ("not YAML", "config:\n  postgres-platform:target: [local\n", "Pulumi.bad.yaml:3: not valid YAML"),
    ("tab indentation", "config:\n\tpostgres-platform:target: local\n", "Pulumi.bad.yaml:2: not valid YAML"),
    (
        "config is a list",
        "config:\n  - postgres-platform:target\n",
        "Pulumi.bad.yaml: `config` must be a mapping of stack settings, got list",
    ),
    ("no config", "encryptionsalt: x\n", "Pulumi.bad.yaml: `config` must be a mapping of stack settings, got nothing"),
    ("a document that is a string", "just text\n", "Pulumi.bad.yaml: `config` must be a mapping of stack settings"),
    (
        "duplicate top-level key",
        LOCAL + "  postgres-platform:target: hetzner\n",
        "not valid YAML: key 'postgres-platform:target' is given twice",
    ),
    (
        "duplicate nested key",
        LOCAL.replace("maxConnections: 100", "maxConnections: 100\n    maxConnections: 500"),
        "not valid YAML: key 'maxConnections' is given twice",
    ),
    (
        "near-miss namespace",
        LOCAL + "  postgres-platfrom:externalRoles: {grafana_ro: {connectionLimit: 40}}\n",
        "postgres-platfrom:externalRoles: its namespace is not postgres-platform, so nothing reads it (a typo?)",
    ),
    ("underscore namespace", LOCAL + "  postgres_platform:apps: {}\n", "postgres_platform:apps: its namespace is not"),
    (
        "unknown key in our namespace",
        LOCAL + "  postgres-platform:externalRole: {}\n",
        "externalRole: is not a known setting",
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_stack_file_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, text: str, expected: str
) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text)
    for main in (preflight.main, render_sql.main, policy_config.main):  # an exception would fail the test
        assert main(["--stack-file", str(path)]) == COULD_NOT_RUN[main]
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (main.__module__, lines)


def test_as_a_script_too_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(BAD_FILES[0][1])
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "preflight.py"), "--stack-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_other_namespaces_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.local.yaml"
    path.write_text(LOCAL + "  hcloud:token:\n    secure: AAABAxyz\n  aws:region: eu-central-1\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_sql.py"), "--stack-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


# --- bounds: a file is refused, in one line naming file and line, before anything is expanded into memory -------

HEAD = b"config:\n  postgres-platform:target: local\n"


def alias_bomb(levels: int) -> bytes:
    """A "billion laughs": each level 9 aliases of the one before, 9**levels strings once expanded (9 levels: 387
    million, gigabytes as JSON) from a file of a few hundred bytes."""
    lines = [HEAD.decode() + '  postgres-platform:x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  postgres-platform:x{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines).encode() + b"\n"


BOUNDS = [  # (case, file, line or None, expected in the message)
    # 6 levels here: should the bound ever go, 9 (below, in a process with a memory limit) would take gigabytes.
    ("alias bomb, 6 levels", alias_bomb(6), 8, "expands to more than 100000 values (each alias counts as the whole"),
    (
        "alias bomb of text",
        HEAD
        + b'  postgres-platform:a: &a "'
        + b"x" * 500_000
        + b'"\n  postgres-platform:b: ['
        + b",".join([b"*a"] * 9)
        + b"]\n",
        4,
        "expands to more than 4194304 characters of text",
    ),
    (
        "an alias inside its anchor",
        HEAD + b"  postgres-platform:a: &a [1, *a]\n",
        3,
        "alias *a is used inside the value it names (a recursive structure)",
    ),
    (
        "an alias inside its anchor's mapping",
        HEAD + b"  postgres-platform:a: &a {b: {c: *a}}\n",
        3,
        "alias *a is used inside",
    ),
    ("an undefined alias", HEAD + b"  postgres-platform:a: *b\n", 3, "not valid YAML: found undefined alias 'b'"),
    (
        "an anchor given twice",
        HEAD + b"  postgres-platform:a: &a 1\n  postgres-platform:b: &a 2\n",
        4,
        "not valid YAML: second occurrence (found duplicate anchor 'a'; first occurrence at line 3)",
    ),
    (
        "5,000 deep in flow style",
        HEAD + b"  postgres-platform:a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        3,
        "nests more than 64 levels deep",
    ),
    (
        "5,000 deep in block style",
        HEAD + b"  postgres-platform:a:\n    " + b"- " * 5000 + b"x\n",
        4,
        "nests more than 64 levels deep",
    ),
    (
        "5,000 deep in mappings",
        HEAD + b"  postgres-platform:a: " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n",
        3,
        "nests more than 64 levels deep",
    ),
    (
        "deep only with its alias expanded",
        HEAD
        + b"  postgres-platform:a: &a "
        + b"[" * 40
        + b"]" * 40
        + b"\n  postgres-platform:b: "
        + b"[" * 30
        + b"*a"
        + b"]" * 30
        + b"\n",
        4,
        "nests more than 64 levels deep (aliases expanded)",
    ),
    (
        "a non-UTF-8 byte",
        LOCAL.replace("maxConnections: 100", "maxConnections: 1\xff00").encode("latin-1"),
        6,
        "not UTF-8 text: byte 0xff (invalid start byte)",
    ),
    (
        "a UTF-8 sequence cut short",
        HEAD + b"  postgres-platform:a: caf\xc3",
        3,
        "not UTF-8 text: byte 0xc3 (unexpected end of data)",
    ),
    ("Latin-1 text", HEAD + b"  postgres-platform:a: caf\xe9 au lait\n", 3, "not UTF-8 text: byte 0xe9"),
    (
        "a control character",
        HEAD + b"  postgres-platform:a: b\x01c\n",
        3,
        "not valid YAML: control character U+0001 is not allowed",
    ),
    ("a NUL byte", HEAD + b"\n\n  postgres-platform:a: b\x00c\n", 5, "control character U+0000 is not allowed"),
    (
        "larger than 1 MiB",
        HEAD + b"#" * (1 << 20),
        None,
        "is larger than 1048576 bytes (1 MiB), the most a stack file may be",
    ),
    ("a sequence as a key", HEAD + b"  ? [a]\n  : b\n", 3, "a key must be a plain value, found a sequence"),
    (
        "a mapping as a key",
        HEAD + b"  postgres-platform:a: {? {x: 1} : 2}\n",
        3,
        "a key must be a plain value, found a mapping",
    ),
    (
        "a key with a line break",
        HEAD + b'  "postgres-platform:a\\nb": 1\n',
        3,
        "holds a line break or control character",
    ),
    ("a key that is a number", b"config:\n  1: x\n", None, "`config` keys must be strings (namespace:key), got 1"),
    (
        "a !!binary value",
        HEAD + b"  postgres-platform:a: !!binary aGVsbG8=\n",
        3,
        "a !!binary value is no stack setting",
    ),
    ("a !!set value", HEAD + b"  postgres-platform:a: !!set {x, y}\n", 3, "a !!set value is no stack setting"),
    ("!!int on a word", HEAD + b"  postgres-platform:a: !!int abc\n", 3, "cannot read this value as int"),
    ("!!bool on a word", HEAD + b"  postgres-platform:a: !!bool maybe\n", 3, "cannot read this value as bool"),
    ("!!map on a scalar", HEAD + b"  postgres-platform:a: !!map foo\n", 3, "expected a mapping, found a scalar"),
    (
        "a 20,000-digit binary number",
        HEAD + b"  postgres-platform:a: 0b" + b"1" * 20000 + b"\n",
        3,
        "a number of more than 100 characters",
    ),  # json could not even write it (4,300 digits at most)
    (
        "a sexagesimal number of 200,000 parts",
        HEAD + b"  postgres-platform:a: 1" + b":1" * 200_000 + b"\n",
        3,
        "a number of more than 100 characters",
    ),  # its int() would take quadratic time
    ("two documents", HEAD + b"---\nconfig: {}\n", 3, "not valid YAML: but found another document"),
]


@pytest.fixture(params=["_LibyamlLoader", "_PythonLoader"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each case through libyaml's parser (what runs where PyYAML has it) and through PyYAML's own."""
    if not hasattr(stackfile, request.param):
        pytest.skip(f"{request.param}: PyYAML without libyaml here")
    monkeypatch.setattr(stackfile, "_Loader", getattr(stackfile, request.param))
    return str(request.param)


@pytest.mark.parametrize(("case", "data", "line", "expected"), BOUNDS, ids=[c[0] for c in BOUNDS])
def test_a_file_past_a_bound_or_not_text_is_one_line_naming_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    loader: str,
    case: str,
    data: bytes,
    line: int | None,
    expected: str,
) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_bytes(data)
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    for main in (preflight.main, render_sql.main, policy_config.main):  # an exception would fail the test
        assert main(["--stack-file", str(path)]) == COULD_NOT_RUN[main]
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(where) and expected in lines[0], (main.__module__, lines)


def read(tmp_path: Path, data: bytes) -> dict[str, Any]:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_bytes(data)
    return read_stack_values(path)


def test_the_bounds_are_exact(tmp_path: Path, loader: str) -> None:
    levels = MAX_DEPTH - 2  # the document and `config` are the first two
    assert read(tmp_path, HEAD + b"  postgres-platform:a: " + b"[" * levels + b"]" * levels + b"\n")
    with pytest.raises(ConfigError, match=f"nests more than {MAX_DEPTH} levels deep"):
        read(tmp_path, HEAD + b"  postgres-platform:a: " + b"[" * (levels + 1) + b"]" * (levels + 1) + b"\n")
    # 1,000 values (999 scalars and their sequence), then aliases to them, each counting 1,000 more.
    anchor = HEAD + b"  postgres-platform:a: &a [" + b",".join([b"1"] * 999) + b"]\n  postgres-platform:b: ["
    values = read(tmp_path, anchor + b",".join([b"*a"] * (MAX_VALUES // 1000 - 2)) + b"]\n")
    assert len(json.loads(values["postgres-platform:b"])) == MAX_VALUES // 1000 - 2
    with pytest.raises(ConfigError, match=f"expands to more than {MAX_VALUES} values"):
        read(tmp_path, anchor + b",".join([b"*a"] * (MAX_VALUES // 1000)) + b"]\n")
    assert read(tmp_path, HEAD + b"#" * (MAX_FILE_BYTES - len(HEAD)))  # a file of exactly 1 MiB is read
    assert read(tmp_path, HEAD + b"  postgres-platform:a: " + b"1" * MAX_NUMBER_CHARS + b"\n")


def test_aliases_within_the_bounds_read_as_written_out(tmp_path: Path, loader: str) -> None:
    aliased = LOCAL.replace(
        "  postgres-platform:apps:\n",
        "  postgres-platform:apps:\n    first_app: &first {database: fleet_platform, access: write, connectionLimit: 5}\n"
        "    other_app: *first\n",
        1,
    )
    assert aliased != LOCAL
    values = read(tmp_path, aliased.encode())
    apps = json.loads(values["postgres-platform:apps"])
    assert (
        apps["other_app"]
        == apps["first_app"]
        == {"database": "fleet_platform", "access": "write", "connectionLimit": 5}
    )


def test_dates_read_as_the_strings_pulumi_passes_on(tmp_path: Path, loader: str) -> None:
    values = read(
        tmp_path, HEAD + b"  postgres-platform:a: 2026-11-21\n  postgres-platform:b: {at: 2026-11-21 09:30:00}\n"
    )
    assert values["postgres-platform:a"] == "2026-11-21" and json.loads(values["postgres-platform:b"]) == {
        "at": "2026-11-21 09:30:00"
    }


def test_a_byte_order_mark_is_no_problem(tmp_path: Path, loader: str) -> None:
    assert read(tmp_path, b"\xef\xbb\xbf" + LOCAL.encode())["postgres-platform:target"] == "local"


ADDRESS_SPACE = 3 << 29  # 1.5 GiB: the old loader needed 24 GB for the 9-level bomb


def limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


SCRIPT_CASES = [
    ("alias bomb, 9 levels", alias_bomb(9), 8, "expands to more than 100000 values (each alias counts as the whole"),
    *(
        case
        for case in BOUNDS
        if case[0] in ("5,000 deep in block style", "5,000 deep in mappings", "a non-UTF-8 byte")
    ),
]


@pytest.mark.parametrize(("case", "data", "line", "expected"), SCRIPT_CASES, ids=[c[0] for c in SCRIPT_CASES])
def test_as_a_script_under_an_address_space_limit_one_line_and_exit_2(
    tmp_path: Path, case: str, data: bytes, line: int, expected: str
) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_bytes(data)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "preflight.py"), "--stack-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_address_space,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.monotonic() - started  # about 1 s here, the interpreter's start included; the timeout is the bound
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(lines) == 1, (seconds, done.stderr[-2000:])
    assert lines[0].startswith(f"{path}:{line}: ") and expected in lines[0]


def test_40000_unknown_keys_are_40000_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each problem once, in the file's order; the de-duplication is linear (it took 12 s and more when it was not)."""
    keys = "".join(f"    k{i:05d}: 1\n" for i in range(40_000))
    path = tmp_path / "Pulumi.wide.yaml"
    path.write_text(LOCAL.replace("  postgres-platform:postgres:\n", "  postgres-platform:postgres:\n" + keys, 1))
    assert preflight.main(["--stack-file", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"postgres.k{i:05d}: is not a known setting, got 1" for i in range(40_000)]
