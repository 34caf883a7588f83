"""`--patroni-ca`: Patroni's REST API over https, its certificate checked against the stack CA (as on a
Hetzner host), with an https server on loopback standing where the REST API does."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from postgres_platform.cli import live_budget, switchover
from postgres_platform.harness.certificates import Certificates
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import LOOPBACK
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.ops.patroni import Patroni, PatroniError

CLUSTER = {
    "members": [
        {"name": "db-1", "role": "leader", "state": "running", "host": "10.0.1.10", "port": 5432, "timeline": 2},
        {"name": "db-2", "role": "sync_standby", "state": "streaming", "host": "10.0.1.11", "port": 5432, "lag": 0},
    ]
}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("tls")).issue()


@pytest.fixture(scope="module")
def rest_api(certificates: Certificates) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(CLUSTER).encode()
            self.send_response(200 if self.path == "/cluster" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_stack_ca_verifies_the_rest_api(rest_api: str, certificates: Certificates) -> None:
    found = Patroni(rest_api, ca_file=certificates.ca_file).cluster()
    assert [(m.name, m.role, m.lag) for m in found] == [("db-1", "leader", None), ("db-2", "sync_standby", 0)]


def test_without_the_ca_the_certificate_is_refused_in_one_line(rest_api: str, tmp_path: Path) -> None:
    with pytest.raises(PatroniError) as refused:
        Patroni(rest_api).cluster()  # the system's CAs do not know the stack CA
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value) and "\n" not in str(refused.value)
    other = Certificates(tmp_path).issue()  # another CA: refused the same way
    with pytest.raises(PatroniError, match="CERTIFICATE_VERIFY_FAILED"):
        Patroni(rest_api, ca_file=other.ca_file).cluster()


def test_a_ca_file_that_does_not_exist_is_one_line_exit_2(
    rest_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.crt"
    argv = ["--patroni-url", rest_api, "--patroni-ca", str(missing), "--endpoint-dsn", "host=127.0.0.1 port=1"]
    assert switchover.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --patroni-ca: cannot use {missing}: No such file or directory"


def test_live_reports_the_members_through_the_ca(rest_api: str, certificates: Certificates) -> None:
    prod = load_stack_values(read_stack_values(stack_file("prod")))
    members, problems = live_budget.members_report(prod, rest_api, certificates.ca_file)
    assert [m["name"] for m in members] == ["db-1", "db-2"] and problems == []
