"""The live tools' admin connection: a password in --dsn is named as visible; --dsn-file keeps it out."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from postgres_platform.cli.connection import WARNING, add_connection_arguments, chosen_dsn


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_connection_arguments(parser, "an admin connection")
    return parser.parse_args(argv)


@pytest.mark.parametrize("dsn", ["host=db user=postgres password=s3cret", "postgresql://postgres:s3cret@db/postgres"])
def test_a_password_in_dsn_is_said_to_be_visible(dsn: str, capsys: Any) -> None:
    assert chosen_dsn(parsed("--dsn", dsn)) == dsn
    assert capsys.readouterr().err.strip() == WARNING


def test_without_a_password_libpq_finds_it_and_nothing_is_said(capsys: Any) -> None:
    assert chosen_dsn(parsed("--dsn", "host=db user=postgres")) == "host=db user=postgres"
    assert capsys.readouterr().err == ""


def test_a_dsn_file_carries_the_password_silently(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "admin.dsn"
    path.write_text("postgresql://postgres:s3cret@db/postgres\n")
    assert chosen_dsn(parsed("--dsn-file", str(path))) == "postgresql://postgres:s3cret@db/postgres"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ("--dsn-file", "/nonexistent/admin.dsn"),
            "--dsn-file: cannot read /nonexistent/admin.dsn: No such file or directory",
        ),
        (("--dsn", "host=db port"), "--dsn: not a connection string: "),
    ],
)
def test_a_bad_connection_is_one_line(argv: tuple[str, ...], expected: str, capsys: Any) -> None:
    assert chosen_dsn(parsed(*argv)) is None
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1, err


def test_one_of_them_is_required() -> None:
    with pytest.raises(SystemExit):
        parsed()
    with pytest.raises(SystemExit):
        parsed("--dsn", "host=db", "--dsn-file", "x")
