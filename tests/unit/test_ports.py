"""The harness's loopback ports: a run that needs many gets distinct ones."""

from __future__ import annotations

import socket

from postgres_platform.harness.ports import free_ports
from postgres_platform.model.names import LOOPBACK


def test_free_ports_are_distinct_and_free_once_returned() -> None:
    ports = free_ports(200)
    assert len(set(ports)) == 200
    with socket.socket() as s:
        s.bind((LOOPBACK, ports[0]))  # released: a server can take it
