"""Patroni's view of a cluster: its REST API, the members of GET /cluster, and what is wrong with them.

`members()` and `member_problems()` are pure (Patroni's GET /cluster document); `Patroni` is the API.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEADER_ROLES = ("leader", "standby_leader")
PATRONI_CA_HELP = "the CA file Patroni's https certificate is checked against (a Hetzner stack's caCertPem)"
# Replicas Patroni would promote: streaming (Patroni 3+) or running (older), not a paused or starting one.
READY_STATES = ("streaming", "running")


class PatroniError(Exception):
    """Patroni could not be asked, or refused (one line)."""


@dataclass(frozen=True)
class Member:
    name: str
    role: str  # leader, sync_standby, replica, standby_leader
    state: str  # running, streaming, stopped, starting, ...
    host: str
    port: int
    lag: int | None  # bytes behind the leader (None for the leader or when unknown)
    timeline: int | None
    pending_restart: tuple[str, ...] = ()  # the settings a restart would apply (Patroni's pending_restart_reason)


def members(cluster: dict[str, Any]) -> list[Member]:
    """The members of Patroni's GET /cluster."""
    found = []
    for m in cluster.get("members", []):
        lag = m.get("lag")
        found.append(
            Member(
                name=str(m["name"]),
                role=str(m.get("role", "")),
                state=str(m.get("state", "")),
                host=str(m.get("host", "")),
                port=int(m.get("port", 5432)),
                lag=lag if isinstance(lag, int) else None,  # "unknown" while a replica is not streaming
                timeline=m.get("timeline") if isinstance(m.get("timeline"), int) else None,
                pending_restart=_pending(m),
            )
        )
    return found


def _pending(member: dict[str, Any]) -> tuple[str, ...]:
    reasons = member.get("pending_restart_reason")
    if isinstance(reasons, dict) and reasons:
        return tuple(sorted(reasons))
    return ("unknown",) if member.get("pending_restart") else ()  # Patroni before 3.3 names no setting


class Patroni:
    """Patroni's REST API at `url` (http(s)://host:8008), with basic auth where it asks for it; over https
    its certificate is checked against `ca_file` (a Hetzner stack's CA: `pulumi stack output caCertPem`),
    else against the system's CAs."""

    def __init__(
        self, url: str, auth: tuple[str, str] | None = None, timeout: float = 10.0, ca_file: Path | None = None
    ) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        try:
            self.context = ssl.create_default_context(cafile=ca_file) if ca_file is not None else None
        except (OSError, ssl.SSLError) as exc:
            raise PatroniError(f"--patroni-ca: cannot use {ca_file}: {getattr(exc, 'strerror', None) or exc}") from exc
        self.headers = {"Content-Type": "application/json"}
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float | None = None) -> str:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout, context=self.context) as response:
                return str(response.read().decode())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            raise PatroniError(f"Patroni {method} {path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise PatroniError(f"Patroni {self.url}: {getattr(exc, 'reason', exc)} (check the URL)") from exc

    def cluster(self) -> list[Member]:
        return members(json.loads(self._call("GET", "/cluster")))

    def switchover(self, leader: str, candidate: str, timeout: float) -> str:
        """POST /switchover: Patroni answers once the candidate has taken over (or it gave up)."""
        return self._call("POST", "/switchover", {"leader": leader, "candidate": candidate}, timeout=timeout)


def member_problems(found: list[Member], maximum_lag: int | None = None) -> list[dict[str, str]]:
    """Not exactly one leader running, a member pending a restart, a replica not streaming, one further
    behind than a failover may take (`maximum_lag`: hetzner.failover.maximumLagOnFailover); {problem,
    fix} each."""
    problems = []
    leaders = [m for m in found if m.role in LEADER_ROLES and m.state == "running"]
    if len(leaders) != 1:
        problems.append(
            {
                "problem": f"{len(leaders)} running leaders in the cluster ({', '.join(m.name for m in leaders)})",
                "fix": "patronictl list on a database host; docs/operations/failover.md",
            }
        )
    for m in found:
        if m.pending_restart:
            problems.append(
                {
                    "problem": f"{m.name} is pending a restart ({', '.join(m.pending_restart)} not applied yet)",
                    "fix": "pulumi up restarts the members in order (docs/operations/failover.md"
                    "#restart-only-settings-ordered-restarts); if it failed, read its output and run it again",
                }
            )
        if m.role in LEADER_ROLES:
            continue
        if m.state not in READY_STATES:
            problems.append(
                {
                    "problem": f"replica {m.name} is {m.state}: no failover to it",
                    "fix": f"read its Patroni log (docker logs on {m.host}); it rejoins by itself once Postgres runs",
                }
            )
        elif maximum_lag is not None and (m.lag is None or m.lag > maximum_lag):
            lag = "unknown" if m.lag is None else f"{m.lag} bytes"
            problems.append(
                {
                    "problem": f"replica {m.name} is {lag} behind, more than maximumLagOnFailover {maximum_lag}",
                    "fix": "Patroni would not promote it: find what holds it back (network, I/O, a long query)",
                }
            )
    return problems
