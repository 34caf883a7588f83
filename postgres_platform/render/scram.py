"""SCRAM-SHA-256 verifiers (RFC 5802/7677) as pg_authid stores them (pure)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 secret Postgres stores for a password."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


@functools.cache  # 4,096 PBKDF2 rounds each; a process running the program many times (the tests) asks again
def stable_verifier(role: str, password: str) -> str:
    """A verifier whose salt is derived from the role and password: the same inputs, the same text.

    So a rendered file (or the SQL that sets it) only changes when the password does. The salt only
    has to differ between passwords; it needs no secrecy beyond the verifier's own.
    """
    salt = hashlib.sha256(f"postgres-platform:{role}:{password}".encode()).digest()[:16]
    return scram_verifier(password, salt)
