"""The end of a cutover on an adopted server, against the live server: the lockdown and the superuser.

- `lockdown_problems(config, dsn)`: under `existing.lockdown`, each role the lockdown would cut off now
  (render.sql.cut_off_query, the query `pulumi up`'s guard refuses on); with `existing.adminCidrs`, each
  line of the server's pg_hba.conf (through pg_hba_file_rules, a superuser's view) that is missing or
  admits the admin from elsewhere. Problems as `{"problem", "fix"}`.
- `hba_lines(config)`: the exact pg_hba.conf lines to add above every other line for the admin: hostssl
  from each of adminCidrs, and a reject from everywhere else.

The checks on rows are pure (`cut_off_problems`, `hba_problems`); only `lockdown_problems` connects.
`python3 scripts/hba_lines.py STACK` prints hba_lines (cli/hba_lines.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from postgres_platform.model import access
from postgres_platform.model.config import PlatformConfig
from postgres_platform.render import sql

TCP_TYPES = ("host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")
EVERYWHERE = ("0.0.0.0/0", "::/0")
RELOAD = "SELECT pg_catalog.pg_reload_conf();"
# Every rule as pg_hba_file_rules shows it (the file on disk, which a reload loads), in the order the
# server matches them: rule_number (PostgreSQL 16, across included files) or line_number.
HBA_RULES = "SELECT pg_catalog.to_jsonb(h) FROM pg_catalog.pg_hba_file_rules h"
# The roles the admin is a member of: a `+role` user entry matches its members (superusers included only
# as members: hba does not count superuser as membership).
ADMIN_GROUPS = """
SELECT g.rolname::pg_catalog.text FROM pg_catalog.pg_roles g
WHERE pg_catalog.pg_has_role(%s, g.oid, 'MEMBER') AND g.rolname <> %s
"""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class HbaRule:
    """One line of pg_hba.conf as pg_hba_file_rules reads it."""

    order: int
    line: int
    type: str | None
    databases: tuple[str, ...]
    users: tuple[str, ...]
    address: str | None  # an IP, all, samehost, samenet or a host name
    netmask: str | None
    method: str | None
    error: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> HbaRule:
        line = int(row.get("line_number") or 0)
        return cls(
            order=int(row.get("rule_number") or line),
            line=line,
            type=row.get("type"),
            databases=tuple(row.get("database") or ()),
            users=tuple(row.get("user_name") or ()),
            address=row.get("address"),
            netmask=row.get("netmask"),
            method=row.get("auth_method"),
            error=row.get("error"),
        )

    def network(self) -> Network | None:
        """The addresses the line admits, where it names them by IP (None: all, samehost, a host name)."""
        if self.address is None or self.netmask is None:
            return None
        try:
            bits = bin(int(ipaddress.ip_address(self.netmask))).count("1")
            return ipaddress.ip_network(f"{self.address}/{bits}", strict=False)
        except ValueError:
            return None

    def text(self) -> str:
        where = str(self.network() or self.address or "")
        return " ".join(x for x in (self.type, ",".join(self.databases), ",".join(self.users), where, self.method) if x)


@dataclass(frozen=True)
class Expected:
    """A line the admin's rules need: hostssl from an admin CIDR, or a reject from everywhere."""

    type: str
    user: str
    cidr: str
    method: str

    def text(self) -> str:
        return f"{self.type} all {self.user} {self.cidr} {self.method}"

    def found_in(self, rule: HbaRule) -> bool:
        """The rule is this line or covers it: the same type, method and addresses, for all databases and
        for the admin by name or all users (the program's own pg_hba.conf rejects all that way)."""
        return (
            rule.error is None
            and (rule.type, rule.method) == (self.type, self.method)
            and "all" in rule.databases
            and (self.user in rule.users or "all" in rule.users)
            and rule.network() == ipaddress.ip_network(self.cidr, strict=False)
        )


def _expected(config: PlatformConfig) -> list[Expected]:
    existing = config.existing
    if existing is None or not existing.admin_cidrs or not existing.admin_superuser:
        return []
    admin = existing.admin_user
    return [
        *(Expected("hostssl", admin, cidr, "scram-sha-256") for cidr in existing.admin_cidrs),
        *(Expected("host", admin, cidr, "reject") for cidr in EVERYWHERE),
    ]


def hba_lines(config: PlatformConfig) -> str:
    """The pg_hba.conf lines that admit the admin from existing.adminCidrs only (empty without them), to
    add above every other line that matches the admin (first match wins), then reload."""
    rows = [(e.type, "all", e.user, e.cidr, e.method) for e in _expected(config)]
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + f"  {row[4]}\n" for row in rows
    )


def _may_match(rule: HbaRule, admin: str, groups: Iterable[str]) -> bool:
    """Whether a TCP line may match the admin's logins (by name, `all` or a group it is a member of)."""
    names = {admin, "all", *(f"+{g}" for g in groups)}
    return rule.error is None and rule.type in TCP_TYPES and any(u in names for u in rule.users)


def _within(rule: HbaRule, cidrs: Sequence[str]) -> bool:
    network = rule.network()
    return network is not None and any(
        network.version == (c := ipaddress.ip_network(cidr, strict=False)).version and network.subnet_of(c)  # type: ignore[arg-type]
        for cidr in cidrs
    )


def hba_problems(config: PlatformConfig, rules: Sequence[HbaRule], groups: Iterable[str] = ()) -> list[dict[str, str]]:
    """pg_hba.conf against hba_lines: lines that do not load, expected lines missing, and lines that admit
    the admin from outside existing.adminCidrs before its reject lines."""
    existing, expected = config.existing, _expected(config)
    if existing is None or existing.admin_cidrs is None or not expected:
        return []
    ordered = sorted(rules, key=lambda r: r.order)
    problems = [
        {"problem": f"pg_hba.conf line {r.line} does not load: {r.error}", "fix": f"correct it, then {RELOAD}"}
        for r in ordered
        if r.error is not None
    ]
    found = {e: next((r for r in ordered if e.found_in(r)), None) for e in expected}
    for line, match in found.items():
        if match is None:
            where = f"above every other line for {line.user} or all (ops.lockdown.hba_lines)"
            problems.append({"problem": f"pg_hba.conf lacks `{line.text()}`", "fix": f"add it {where}, then {RELOAD}"})
    last = max((r.order for e, r in found.items() if r is not None and e.method == "reject"), default=None)
    admin, groups = existing.admin_user, tuple(groups)
    for rule in ordered:
        if last is not None and rule.order > last:
            break
        if _may_match(rule, admin, groups) and rule.method != "reject" and not _within(rule, existing.admin_cidrs):
            problem = f"pg_hba.conf line {rule.line} (`{rule.text()}`) admits {admin} from outside existing.adminCidrs"
            fix = f"put the lines of ops.lockdown.hba_lines above line {rule.line}, then {RELOAD}"
            problems.append({"problem": problem, "fix": fix})
    return problems


def cut_off_problems(rows: Iterable[Sequence[Any]]) -> list[dict[str, str]]:
    """render.sql.cut_off_query's rows (role, database, sessions) as problems: the lockdown is refused."""
    return [
        {
            "problem": f"lockdown refused: role {role} ({sessions} session(s) on {database}) connects only through "
            "PUBLIC's CONNECT, which the lockdown revokes, and the stack does not declare it",
            "fix": f"declare {role} under postgres-platform:externalRoles (with its connectionLimit), or move its "
            "client to an app and end its sessions; then run `pulumi up`",
        }
        for role, database, sessions in rows
    ]


def read_hba(conn: psycopg.Connection[Any], admin: str) -> tuple[list[HbaRule], list[str]]:
    """pg_hba_file_rules' rules and the admin's groups (reading the rules takes a superuser)."""
    rules = [HbaRule.of(row) for (row,) in conn.execute(HBA_RULES).fetchall()]
    groups = [str(g) for (g,) in conn.execute(ADMIN_GROUPS, (admin, admin)).fetchall()]
    return rules, groups


def lockdown_problems(config: PlatformConfig, dsn: str) -> list[dict[str, str]]:
    """What stands between an adopted server and its lockdown, or what the lockdown left open: the roles it
    would cut off (under existing.lockdown) and the pg_hba.conf lines for the admin (with adminCidrs).
    Nothing for a server the program built (its pg_hba.conf is the program's)."""
    existing = config.existing
    if existing is None:
        return []
    plan = access.plan(config)
    problems: list[dict[str, str]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        if plan.lockdown:
            problems += cut_off_problems(conn.execute(sql.cut_off_query(plan)).fetchall())
        if _expected(config):
            try:
                rules, groups = read_hba(conn, existing.admin_user)
            except psycopg.errors.InsufficientPrivilege:
                user = conn.info.user
                problem = f"cannot read pg_hba_file_rules as {user} (a superuser's view): pg_hba.conf not checked"
                return [*problems, {"problem": problem, "fix": f"run the check with {existing.admin_user}'s DSN"}]
            problems += hba_problems(config, rules, groups)
    return problems
