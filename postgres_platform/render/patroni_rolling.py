"""Rolling operations on the Patroni members of a Hetzner stack, so clients wait instead of failing:

- `restart`: the members that a restart-only setting left `pending_restart`, replicas first, then the
  leader in place, each with its host's PgBouncer paused (components/patroni.py PatroniRestarts, after
  the dynamic configuration's PATCH);
- `lead MEMBER`: a planned switchover to MEMBER with every PgBouncer paused, when another member leads
  and MEMBER streams (components/patroni.py MemberReplacements: before a member's container is replaced,
  the other one leads; afterwards db-1 leads again). No leader (a first create) or MEMBER leading
  already: nothing to do.

The stacks run this file's text with the Patroni container's python3 (`python3 -c`), so it imports the
standard library only. argv: the mode, a member's REST URL, the CA file the REST API is checked against,
a JSON object of member name -> its host's PgBouncer console conninfo (no password), the seconds the
load balancer needs to see a member healthy, and for `lead` the member. stdin: a JSON object {"rest":
"user:password", "poolers": {member name: console password}}.

Why the leader restarts in place rather than by switchover: a paused pooler makes the restart a wait,
not an error, and db-1 keeps leading (every `pulumi up` needs it to: docs/operations/failover.md).
Why more than one round: a replica started with a lower value than its primary's (a decrease) keeps the
primary's, and stays pending until the primary has restarted (Patroni reads pg_controldata).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

LEADER_ROLES = ("leader", "primary", "standby_leader")
ROUNDS = 3
RESTART_SECONDS = 300  # Patroni's POST /restart returns once Postgres runs again (or gave up)
CATCH_UP_SECONDS = 600  # a replaced member's Postgres starts, replays and streams again
PAUSE_SECONDS = 60  # PgBouncer's PAUSE returns once every server connection is released


class Failed(Exception):
    pass


def restart_order(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The members of GET /cluster that are pending a restart: replicas first, then the leader."""
    pending = [m for m in members if m.get("pending_restart")]
    return sorted(pending, key=lambda m: (m.get("role") in LEADER_ROLES, str(m.get("name"))))


class Api:
    def __init__(self, cafile: str, auth: str) -> None:
        self.cafile = cafile
        token = base64.b64encode(auth.encode()).decode()
        self.headers = {"Authorization": "Basic " + token, "Content-Type": "application/json"}

    def call(self, url: str, method: str = "GET", body: Any = None, timeout: float = 10) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        context = ssl.create_default_context(cafile=self.cafile) if url.startswith("https://") else None
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as err:  # 503 from a health check is an answer, not an error
            status, text = err.code, err.read().decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


def wait(what: str, seconds: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except OSError:  # the REST API restarting with Postgres: not yet
            pass
        if time.monotonic() > deadline:
            raise Failed(f"{what} within {seconds:g} s")
        time.sleep(0.5)


def console(conninfo: str, password: str, statement: str) -> None:
    """One statement on a PgBouncer console, by the container's psql (the password in its environment)."""
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}
    try:
        done = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", statement, conninfo],
            env=env,
            capture_output=True,
            text=True,
            timeout=PAUSE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise Failed(
            f"PgBouncer's {statement} did not return in {PAUSE_SECONDS} s: a client holds its server connection"
            " (a long transaction, or a session-mode pool): find it with live, then run this again"
        ) from err
    if done.returncode != 0:
        raise Failed(f"PgBouncer's {statement} failed: {done.stderr.strip()}")


def restart(api: Api, member: dict[str, Any], grace: float) -> None:
    name, url = member["name"], member["api_url"].rsplit("/", 1)[0]
    check = "/primary" if member.get("role") in LEADER_ROLES else "/replica"
    status, answer = api.call(url + "/restart", "POST", {"restart_pending": True}, timeout=RESTART_SECONDS)
    if status == 503 and "conditions are not satisfied" in str(answer):
        return  # no longer pending (its HA loop got there first): nothing to restart
    if status != 200:
        raise Failed(f"Patroni POST /restart on {name}: HTTP {status}: {answer}")
    # What the load balancer asks: then one more of its checks before the pooler lets clients through.
    wait(f"{name} answering 200 on {check} after its restart", RESTART_SECONDS, lambda: api.call(url + check)[0] == 200)
    time.sleep(grace)
    print(f"{name}: restarted ({check[1:]})", flush=True)


def restart_paused(api: Api, member: dict[str, Any], pooler: tuple[str, str] | None, grace: float) -> None:
    """restart() with the member's PgBouncer paused; resumed whatever happens (a PAUSE that timed out
    leaves it pausing)."""
    if pooler is None:
        restart(api, member, grace)
        return
    try:
        console(*pooler, "PAUSE")
        restart(api, member, grace)
    except BaseException:
        with contextlib.suppress(Failed):  # after a PAUSE that failed there is nothing to resume
            console(*pooler, "RESUME")
        raise
    console(*pooler, "RESUME")


def not_ready(cluster: dict[str, Any], to: str, synchronous: bool) -> str | None:
    """Why `to` cannot take the lead by switchover now (None when it can): it streams, and under
    synchronous mode it is the synchronous standby (Patroni refuses any other candidate)."""
    member = next((m for m in cluster.get("members", []) if m.get("name") == to), None)
    if member is None:
        return f"{to} is not in the cluster"
    if member.get("state") not in ("streaming", "running") or member.get("role") in LEADER_ROLES:
        return f"{to} is {member.get('role')}, {member.get('state')}"
    if synchronous and member.get("role") != "sync_standby":
        return f"{to} is not the synchronous standby yet"
    return None


def lead(api: Api, url: str, to: str, poolers: dict[str, str], grace: float, secrets: dict[str, Any]) -> None:
    def cluster() -> dict[str, Any]:
        status, answer = api.call(url + "/cluster")
        if status != 200:
            raise Failed(f"Patroni GET /cluster: HTTP {status}: {answer}")
        return dict(answer)

    # A container started a moment ago: its REST API comes up with Patroni.
    wait("Patroni's REST API answering", RESTART_SECONDS, lambda: api.call(url + "/cluster")[0] == 200)
    leaders = [m for m in cluster().get("members", []) if m.get("role") in LEADER_ROLES]
    if not leaders:
        print(f"no leader yet (a first start): nothing to switch to {to}", flush=True)
        return
    leader = leaders[0]
    if leader["name"] == to:
        print(f"{to} leads already", flush=True)
        return
    status, config = api.call(url + "/config")
    synchronous = status == 200 and bool(config.get("synchronous_mode"))
    wait(f"{to} ready to lead", CATCH_UP_SECONDS, lambda: not_ready(cluster(), to, synchronous) is None)
    paused: list[tuple[str, str]] = []
    try:
        for name, conninfo in sorted(poolers.items()):
            paused.append((conninfo, secrets["poolers"][name]))
            console(*paused[-1], "PAUSE")
        status, answer = api.call(url + "/switchover", "POST", {"leader": leader["name"], "candidate": to}, 60)
        if status != 200:
            raise Failed(f"Patroni POST /switchover to {to}: HTTP {status}: {answer}")
        new = next(m for m in cluster()["members"] if m["name"] == to)["api_url"].rsplit("/", 1)[0]
        wait(f"{to} answering 200 on /primary", RESTART_SECONDS, lambda: api.call(new + "/primary")[0] == 200)
        time.sleep(grace)  # one more load-balancer check: it routes to the new leader
    finally:
        for pooler in paused:  # no pooled connection to the old leader is reused; the queued clients go on
            for statement in ("RECONNECT", "RESUME"):
                with contextlib.suppress(Failed):
                    console(*pooler, statement)
    print(f"{to}: leads (switched over from {leader['name']})", flush=True)


def restart_all(url: str, cafile: str, poolers: dict[str, str], grace: float, secrets: dict[str, Any]) -> None:
    api = Api(cafile, secrets["rest"])
    status, config = api.call(url + "/config")
    if status != 200:
        raise Failed(f"Patroni GET /config: HTTP {status}: {config}")
    # Every member's HA loop reads the configuration from etcd once per loop_wait: after two, each has
    # reloaded Postgres with the PATCHed settings and flagged what needs a restart.
    time.sleep(2 * int(config.get("loop_wait", 10)) + 1)
    for round_ in range(ROUNDS + 1):
        status, cluster = api.call(url + "/cluster")
        if status != 200:
            raise Failed(f"Patroni GET /cluster: HTTP {status}: {cluster}")
        pending = restart_order(cluster.get("members", []))
        if not pending:
            print("no member is pending a restart", flush=True)
            return
        if round_ == ROUNDS:
            names = ", ".join(str(m["name"]) for m in pending)
            raise Failed(f"{names} still pending a restart after {ROUNDS} rounds: read their Patroni logs")
        for member in pending:
            conninfo = poolers.get(member["name"])
            pooler = None if conninfo is None else (conninfo, secrets["poolers"][member["name"]])
            restart_paused(api, member, pooler, grace)
        time.sleep(int(config.get("loop_wait", 10)) + 1)  # the restarted members' keys in etcd updated


def main(argv: list[str]) -> int:
    mode, url, cafile, poolers, grace = argv[0], argv[1].rstrip("/"), argv[2], json.loads(argv[3]), float(argv[4])
    secrets = json.load(sys.stdin)
    what = {"lead": "switchover", "restart": "ordered restart"}[mode]
    try:
        if mode == "lead":
            lead(Api(cafile, secrets["rest"]), url, argv[5], poolers, grace, secrets)
        else:
            restart_all(url, cafile, poolers, grace, secrets)
    except (Failed, OSError, ValueError) as err:  # ValueError: an answer that is not the JSON expected
        print(f"{what}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
