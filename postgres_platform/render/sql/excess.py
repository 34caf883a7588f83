"""Beyond the plan: what the roles the plan manages (owners, groups, logins) and PUBLIC hold that the plan
does not give them, read from the catalogs' ACLs: one query per database, each row a problem and the SQL
that takes it away. The same query is the check (ops.grants.check_grants), the re-apply step's condition
and, in a DO block, its revokes: they cannot disagree. No fix names a privilege the plan gives, so run
after the plan's grants, in their transaction, the fixes take nothing a live app uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from postgres_platform.model.access import AccessPlan
from postgres_platform.model.names import AUTH_ROLE, AUTH_SCHEMA
from postgres_platform.render.sql.quoting import literal, text_array

# "revoke": the fixes that are a plain REVOKE (all the SqlApply step may run: policy sql-steps); "rest":
# the others (the option to pass a planned privilege on; what another grantor gave, revoked as that
# grantor); "all": both, as the check reports them.
ExcessMode = Literal["revoke", "rest", "all"]
BOOTSTRAP_SUPERUSER_OID = 10  # PostgreSQL 16+ records a superuser's role grants as this role's
SHOWN_OBJECTS = 5  # how many objects a problem names (its fix names them all)
_USER_SCHEMA = "n.nspname <> 'information_schema' AND pg_catalog.left(n.nspname, 3) <> 'pg_'"
_WHY = {
    "owner": "an owner role holds only what it owns",
    "login": "a login holds nothing directly, only its memberships",
    "auth": "the auth role may only connect and run the lookup function",
    "public": "every role holds what PUBLIC holds",
}
# An ACL item of an object (each source below yields these columns).
_ACL = "keyword, schema, name, object, grantee, grantee_sql, why, grantor, chained, privilege, grantable"
_GRANTEE = "g.grantee, g.grantee_sql, g.why, a.grantor"
_NOUN = (
    "CASE keyword WHEN 'ROUTINE' THEN 'function' WHEN 'TABLE' THEN 'table' WHEN 'SEQUENCE' THEN 'sequence' "
    "WHEN 'SCHEMA' THEN 'schema' ELSE 'database' END"
)
_DEFAULT_OBJECTS = (
    "CASE objtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' "
    "WHEN 'n' THEN 'SCHEMAS' ELSE 'LARGE OBJECTS' END"
)
_EXTENSION_MEMBER = (
    "EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
    "AND e.objid = c.oid AND e.deptype = 'e')"
)
_PRIVILEGES = "pg_catalog.array_to_string(privileges, ', ')"
_NO_PROBLEM = "NULL::pg_catalog.text"
_PLANNED_COLUMNS = ("kind", "db", "schema", "object", "grantee", "privilege")


def _rows(columns: tuple[str, ...], rows: Iterable[tuple[str | None, ...]]) -> str:
    """A literal relation of text columns (no rows: an empty one)."""
    values = ", ".join("(" + ", ".join("NULL" if v is None else literal(v) for v in row) + ")" for row in rows)
    if not values:
        return "SELECT " + ", ".join(f"NULL::pg_catalog.text AS {c}" for c in columns) + " WHERE false"
    return f"SELECT * FROM (VALUES {values}) AS v ({', '.join(columns)})"


def _managed(plan: AccessPlan, why: bool) -> str:
    """A relation (rolname, kind, why it may hold no more: only with `why`) of every role the plan manages,
    an array of names per kind: every database's query lists them all, so they are kept short."""
    levels = {g.name: g.level for db in plan.databases for g in db.groups}
    groups = [r.name for r in plan.groups]
    kinds = {
        "owner": [r.name for r in plan.owners],
        "group": groups,
        "auth": [r.name for r in plan.logins if r.name == AUTH_ROLE],
        "login": [r.name for r in plan.logins if r.name != AUTH_ROLE],
    }
    selects = []
    for kind, names in kinds.items():
        if not names:
            continue
        source, reason = f"pg_catalog.unnest({text_array(names)}) AS m (rolname)", _NO_PROBLEM
        if why and kind == "group":  # each group with its level, side by side
            both = f"pg_catalog.unnest({text_array(names)}), pg_catalog.unnest({text_array(levels[g] for g in groups)})"
            source = f"ROWS FROM ({both}) AS m (rolname, level)"
            reason = "'its level is ' || m.level"
        elif why:
            reason = literal(_WHY[kind])
        selects.append(f"SELECT m.rolname, {literal(kind)}, {reason} FROM {source}")
    return "\n  UNION ALL ".join(selects) or _rows(("rolname", "kind", "why"), ())


def _planned(plan: AccessPlan, database: str | None, cluster: bool) -> list[tuple[str | None, ...]]:
    """(kind, database, schema, object, grantee, privilege) the plan grants in `database`, and with
    `cluster` every database's database privileges (only that query checks them)."""
    return [
        (g.object_type, g.database, g.schema, obj, "PUBLIC" if g.role == "public" else g.role, privilege)
        for g in plan.grants
        if (cluster and g.object_type == "database") or (g.object_type != "database" and g.database == database)
        for privilege in g.privileges
        for obj in g.objects or (None,)
    ]


def _listed(array: str) -> str:
    """SQL: an array's first elements as a list, and how many more."""
    n = SHOWN_OBJECTS
    return (
        f"CASE WHEN pg_catalog.cardinality({array}) > {n} THEN pg_catalog.array_to_string({array}[1:{n}], ', ') || "
        f"pg_catalog.format(' and %s more', pg_catalog.cardinality({array}) - {n}) "
        f"ELSE pg_catalog.array_to_string({array}, ', ') END"
    )


def _fix(mode: ExcessMode, privileges: str, target: str) -> str:
    """SQL: a unit's REVOKE `privileges` ON `target` FROM its grantee; outside mode "revoke" also the
    option to pass a planned privilege on, and what another grantor gave (revoked as that grantor)."""
    revoke = f"pg_catalog.format('%s ON %s FROM %s CASCADE;', {privileges}, {target}, grantee_sql)"
    if mode == "revoke":
        return f"'REVOKE ' || {revoke}"
    return (
        "CASE WHEN chained THEN pg_catalog.format('SET ROLE %I; ', pg_catalog.pg_get_userbyid(grantor)) ELSE '' END\n"
        "    || CASE WHEN action = 'option' THEN 'REVOKE GRANT OPTION FOR ' ELSE 'REVOKE ' END\n"
        f"    || {revoke}\n    || CASE WHEN chained THEN ' RESET ROLE;' ELSE '' END"
    )


def _problem(mode: ExcessMode, where: str, privileges: str, what: str) -> str:
    """SQL: "<where><grantee> holds <privileges> on <what>, beyond the plan (<why>)"."""
    if mode == "revoke":
        return _NO_PROBLEM
    return (
        f"pg_catalog.format('%s%s holds %s%s on %s%s, beyond the plan (%s)', {where}, grantee, {privileges},\n"
        f"    CASE WHEN action = 'option' THEN ' WITH GRANT OPTION' ELSE '' END, {what},\n"
        "    CASE WHEN chained THEN ' (given by ' || pg_catalog.pg_get_userbyid(grantor) || ')' ELSE '' END, why)"
    )


def _planned_when(*matches: str) -> str:
    """SQL: whether the plan grants an ACL item s, one EXISTS per alternative match: each all equalities,
    which the planner hashes (an OR inside one EXISTS scans the plan's rows once per ACL item)."""
    return " OR ".join(f"EXISTS (SELECT 1 FROM planned p WHERE {match})" for match in matches)


def _units(name: str, source: str, planned: str, mode: ExcessMode) -> str:
    """CTE: the ACL items of `source` beyond the plan (to revoke) or planned but passable on (option),
    per grantee, grantor and action their privileges, and the objects with the same ones together."""
    where = {
        "revoke": "NOT chained AND NOT planned",
        "rest": "chained OR (planned AND grantable)",
        "all": "chained OR NOT planned OR grantable",
    }[mode]
    return (
        f"{name} AS (\n  SELECT keyword, schema, grantee, grantee_sql, why, grantor, chained, action, privileges, "
        "pg_catalog.array_agg(object ORDER BY object) AS objects\n"
        "  FROM (SELECT keyword, schema, object, grantee, grantee_sql, why, grantor, chained, action,\n"
        "      pg_catalog.array_agg(privilege ORDER BY privilege) AS privileges\n"
        "    FROM (SELECT *, CASE WHEN chained OR NOT planned THEN 'revoke' ELSE 'option' END AS action\n"
        f"      FROM (SELECT s.*, ({planned}) AS planned\n"
        f"        FROM ({source}) AS s ({_ACL})) x\n"
        f"      WHERE {where}) u\n"
        "    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9) o\n"
        "  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9)"
    )


def _object_units(name: str, source: str, planned: str, mode: ExcessMode, where: str) -> tuple[str, str]:
    """(CTE, SELECT) of the problems and fixes for the ACL items of `source`."""
    target = "keyword || ' ' || pg_catalog.array_to_string(objects, ', ')"
    what = f"{_NOUN} || CASE WHEN pg_catalog.cardinality(objects) > 1 THEN 's ' ELSE ' ' END || {_listed('objects')}"
    select = f"SELECT {_problem(mode, where, _PRIVILEGES, what)},\n  {_fix(mode, _PRIVILEGES, target)}\nFROM {name}"
    return _units(name, source, planned, mode), select


def _relations(public: str) -> str:
    """ACL items of tables, views and sequences (PUBLIC's in `public` schemas, an extension's objects aside)."""
    return (
        "SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, n.nspname::pg_catalog.text, "
        "c.relname::pg_catalog.text,\n"
        "          pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),\n"
        f"          {_GRANTEE}, a.grantor <> c.relowner, a.privilege_type, a.is_grantable\n"
        "        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
        "        CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a JOIN grantee g ON g.oid = a.grantee\n"
        f"        WHERE c.relacl IS NOT NULL AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {_USER_SCHEMA}\n"
        "          AND a.grantee <> c.relowner\n"
        f"          AND (a.grantee <> 0 OR (n.nspname = ANY ({public}) AND NOT {_EXTENSION_MEMBER}))"
    )


def _schemas(public: str) -> str:
    return (
        "SELECT 'SCHEMA', NULL::pg_catalog.text, n.nspname::pg_catalog.text, pg_catalog.quote_ident(n.nspname),\n"
        f"          {_GRANTEE}, a.grantor <> n.nspowner, a.privilege_type, a.is_grantable\n"
        "        FROM pg_catalog.pg_namespace n\n"
        "        CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner)))\n"
        "          AS a JOIN grantee g ON g.oid = a.grantee\n"
        f"        WHERE {_USER_SCHEMA} AND a.grantee <> n.nspowner AND (a.grantee <> 0 OR n.nspname = ANY ({public}))"
    )


def _functions(auth: str) -> str:
    """ACL items of functions: in the lookup function's schema everyone's, elsewhere only a login's
    (EXECUTE is PUBLIC's by default, and a group's there is the apps' own design)."""
    return (
        "SELECT 'ROUTINE', n.nspname::pg_catalog.text, p.proname::pg_catalog.text,\n"
        "          pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '(' || "
        "pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',\n"
        f"          {_GRANTEE}, a.grantor <> p.proowner, a.privilege_type, a.is_grantable\n"
        "        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace\n"
        "        CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner)))\n"
        "          AS a JOIN grantee g ON g.oid = a.grantee\n"
        f"        WHERE {_USER_SCHEMA} AND a.grantee <> p.proowner\n"
        f"          AND (p.proacl IS NOT NULL OR n.nspname = ANY ({auth}))\n"
        f"          AND (n.nspname = ANY ({auth}) OR g.kind IN ('login', 'auth'))"
    )


def _databases(public: str, locked: str) -> str:
    """ACL items of databases: PUBLIC's where the plan owns PUBLIC, and PUBLIC's CONNECT where the lockdown
    takes it (an adopted server's: PUBLIC keeps TEMPORARY there, which admits no one without CONNECT)."""
    return (
        "SELECT 'DATABASE', NULL::pg_catalog.text, d.datname::pg_catalog.text, pg_catalog.quote_ident(d.datname),\n"
        f"          {_GRANTEE}, a.grantor <> d.datdba, a.privilege_type, a.is_grantable\n"
        "        FROM pg_catalog.pg_database d\n"
        "        CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba))) a\n"
        "        JOIN grantee g ON g.oid = a.grantee\n"
        f"        WHERE a.grantee <> d.datdba AND (a.grantee <> 0 OR d.datname = ANY ({public})\n"
        f"          OR (a.privilege_type = 'CONNECT' AND d.datname = ANY ({locked})))"
    )


def _columns(mode: ExcessMode, public: str, where: str) -> tuple[str, str]:
    """Column privileges: the plan gives none (and a REVOKE on a table takes its columns' along)."""
    chained = {"revoke": "NOT chained", "rest": "chained", "all": "true"}[mode]
    cte = (
        "column_units AS (\n  SELECT object, grantee, grantee_sql, why, grantor, chained, 'revoke'::pg_catalog.text "
        "AS action, privilege,\n    pg_catalog.array_agg(col ORDER BY attnum) AS columns\n"
        "  FROM (SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS object,\n"
        f"      {_GRANTEE}, a.grantor <> c.relowner AS chained, a.privilege_type AS privilege,\n"
        "      pg_catalog.quote_ident(att.attname) AS col, att.attnum\n"
        "    FROM pg_catalog.pg_attribute att JOIN pg_catalog.pg_class c ON c.oid = att.attrelid\n"
        "    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
        "    CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) a JOIN grantee g ON g.oid = a.grantee\n"
        f"    WHERE att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped AND {_USER_SCHEMA}\n"
        "      AND a.grantee <> c.relowner\n"
        f"      AND (a.grantee <> 0 OR (n.nspname = ANY ({public}) AND NOT {_EXTENSION_MEMBER}))) x\n"
        f"  WHERE {chained}\n  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8)"
    )
    privileges = "privilege || ' (' || pg_catalog.array_to_string(columns, ', ') || ')'"
    what = (
        "'column' || CASE WHEN pg_catalog.cardinality(columns) > 1 THEN 's ' ELSE ' ' END || "
        "pg_catalog.array_to_string(columns, ', ') || ' of ' || object"
    )
    fix = _fix(mode, privileges, "'TABLE ' || object")
    return cte, f"SELECT {_problem(mode, where, 'privilege', what)},\n  {fix}\nFROM column_units"


def _defaults(plan: AccessPlan, database: str, mode: ExcessMode, where: str) -> tuple[str, str]:
    """Default privileges: the plan's (owner or creator, schema, tables or sequences, group) and no others;
    of functions and types only a login's are beyond it (as for the objects)."""
    planned = [
        (d.owner, d.schema, "r" if d.object_type == "table" else "S", d.role, privilege)
        for d in plan.default_privileges
        if d.database == database
        for privilege in d.privileges
    ]
    units = {"revoke": "NOT planned", "rest": "planned AND grantable", "all": "NOT planned OR grantable"}[mode]
    cte = (
        f"planned_default AS ({_rows(('creator', 'schema', 'objtype', 'grantee', 'privilege'), planned)}),\n"
        "default_units AS (\n  SELECT creator, schema, objtype, grantee, grantee_sql, why, action,\n"
        "    pg_catalog.array_agg(privilege ORDER BY privilege) AS privileges\n"
        "  FROM (SELECT *, CASE WHEN planned THEN 'option' ELSE 'revoke' END AS action\n"
        "    FROM (SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::pg_catalog.text AS creator,\n"
        "        n.nspname::pg_catalog.text AS schema, d.defaclobjtype::pg_catalog.text AS objtype, g.grantee,\n"
        "        g.grantee_sql, g.why, a.privilege_type AS privilege, a.is_grantable AS grantable,\n"
        "        EXISTS (SELECT 1 FROM planned_default p WHERE p.creator = pg_catalog.pg_get_userbyid(d.defaclrole)\n"
        "          AND p.schema = n.nspname AND p.objtype = d.defaclobjtype::pg_catalog.text\n"
        "          AND p.grantee = g.grantee AND p.privilege = a.privilege_type) AS planned\n"
        "      FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace\n"
        "      CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a JOIN grantee g ON g.oid = a.grantee\n"
        "      WHERE a.grantee <> d.defaclrole\n"
        "        AND (d.defaclobjtype IN ('r', 'S', 'n') OR g.kind IN ('login', 'auth'))\n"
        f"        AND (a.grantee <> 0 OR {'false' if plan.adopted else 'true'})) x\n"
        f"    WHERE {units}) u\n  GROUP BY 1, 2, 3, 4, 5, 6, 7)"
    )
    if mode == "revoke":
        problem, revoke = _NO_PROBLEM, "'REVOKE '"
    else:
        problem = (
            f"pg_catalog.format('%s%s gets %s%s on new %s of %s%s, beyond the plan (%s)', {where}, grantee,\n"
            f"    {_PRIVILEGES}, CASE WHEN action = 'option' THEN ' WITH GRANT OPTION' ELSE '' END,\n"
            f"    pg_catalog.lower({_DEFAULT_OBJECTS}), creator,\n"
            "    CASE WHEN schema IS NULL THEN '' ELSE ' in ' || schema END, why)"
        )
        revoke = "CASE WHEN action = 'option' THEN 'REVOKE GRANT OPTION FOR ' ELSE 'REVOKE ' END"
    select = (
        f"SELECT {problem},\n"
        "  pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I', creator)\n"
        "    || CASE WHEN schema IS NULL THEN '' ELSE pg_catalog.format(' IN SCHEMA %I', schema) END || ' '\n"
        f"    || {revoke}\n"
        f"    || pg_catalog.format('%s ON %s FROM %s;', {_PRIVILEGES}, {_DEFAULT_OBJECTS}, grantee_sql)\n"
        "FROM default_units"
    )
    return cte, select


def _memberships(plan: AccessPlan, mode: ExcessMode) -> tuple[str, str]:
    """A managed role's memberships beyond its own; anyone's in an owner role (DDL) or a login (acting as
    the app); the option to hand a managed role on. A role from elsewhere in a group is the business of
    whoever manages it (e.g. GRANT <db>_read TO grafana_ro); the plan's admin is left as it is."""
    planned = [(group, role.name) for role in plan.roles for group in role.member_of]
    cte = f"planned_member AS ({_rows(('role', 'member'), planned)})"
    given_by = f"m.grantor <> {BOOTSTRAP_SUPERUSER_OID}"
    problem = (
        _NO_PROBLEM
        if mode == "revoke"
        else "pg_catalog.format('role %s is a member of %s%s%s, beyond the plan', m.member, m.role,\n"
        "    CASE WHEN p.role IS NULL THEN '' ELSE ' WITH ADMIN OPTION' END,\n"
        f"    CASE WHEN {given_by} THEN ' (given by ' || pg_catalog.pg_get_userbyid(m.grantor) || ')' ELSE '' END)"
    )
    owners_and_logins = text_array([r.name for r in (*plan.owners, *plan.logins)])
    select = (
        f"SELECT {problem},\n"
        "  'REVOKE ' || CASE WHEN p.role IS NULL THEN '' ELSE 'ADMIN OPTION FOR ' END\n"
        "    || pg_catalog.format('%I FROM %I', m.role, m.member)\n"
        f"    || CASE WHEN {given_by} THEN pg_catalog.format(' GRANTED BY %I', pg_catalog.pg_get_userbyid(m.grantor))"
        " ELSE '' END\n"
        "    || ' CASCADE;'\n"
        "FROM (SELECT pg_catalog.pg_get_userbyid(a.roleid)::pg_catalog.text AS role,\n"
        "    pg_catalog.pg_get_userbyid(a.member)::pg_catalog.text AS member, a.grantor, a.admin_option\n"
        "  FROM pg_catalog.pg_auth_members a) m\n"
        "LEFT JOIN planned_member p ON p.role = m.role AND p.member = m.member\n"
        f"WHERE m.member <> {literal(plan.admin)} AND (p.role IS NULL OR m.admin_option)\n"
        f"  AND (m.member IN (SELECT rolname FROM managed) OR m.role = ANY ({owners_and_logins})\n"
        "    OR (m.admin_option AND m.role IN (SELECT rolname FROM managed)))"
    )
    return cte, select


def excess_query(plan: AccessPlan, database: str | None, *, cluster: bool, mode: ExcessMode = "all") -> str:
    """One read-only query, rows (problem, fix): what the plan's roles and PUBLIC hold beyond the plan.

    In `database` (None: in none): on its tables, views, sequences and their columns (in every schema
    but the system's), its schemas, functions and default privileges. With `cluster`: on every
    database, and the memberships. Never reported: what a role holds as an object's owner; PUBLIC where
    the plan leaves it alone (an adopted server's databases and app schemas, functions outside the
    lookup function's schema, an extension's objects). In mode "revoke" the problems are NULL.
    """
    auth = [AUTH_SCHEMA] if plan.has_pgbouncer else []
    app_schemas = [s for db in plan.databases if db.name == database for s in db.schemas]
    # Where PUBLIC is the plan's: on an adopted server only in the lookup function's schema (its own).
    public_relations = text_array(auth + ([] if plan.adopted else app_schemas))
    public_schemas = text_array(auth + ([] if plan.adopted else [*app_schemas, "public"]))
    public_databases = text_array([] if plan.adopted else [db.name for db in plan.databases])
    # Locked down, PUBLIC's CONNECT on the adopted databases is beyond the plan too.
    locked_databases = text_array([db.name for db in plan.databases] if plan.lockdown else [])
    ctes = [
        f"managed (rolname, kind, why) AS (\n  {_managed(plan, why=mode != 'revoke')})",
        "grantee AS (\n  SELECT r.oid, m.rolname AS grantee, pg_catalog.quote_ident(m.rolname) AS grantee_sql, "
        "m.kind, m.why\n  FROM managed m JOIN pg_catalog.pg_roles r ON r.rolname = m.rolname\n"
        f"  UNION ALL SELECT 0::pg_catalog.oid, 'PUBLIC', 'PUBLIC', 'public', {literal(_WHY['public'])})",
        f"planned AS ({_rows(_PLANNED_COLUMNS, _planned(plan, database, cluster))})",
    ]
    same = "p.grantee = s.grantee AND p.privilege = s.privilege"
    # Granted on the whole schema (object NULL) or on the object itself.
    in_schema = (
        f"p.schema = s.schema AND p.object IS NULL AND {same}",
        f"p.schema = s.schema AND p.object = s.name AND {same}",
    )
    parts: list[tuple[str, str]] = []
    if database is not None:
        where = literal(f"{database}: ")
        relations = _relations(public_relations)
        in_relations = _planned_when(*(f"p.kind = pg_catalog.lower(s.keyword) AND {m}" for m in in_schema))
        parts.append(_object_units("relation_units", relations, in_relations, mode, where))
        schemas = _schemas(public_schemas)
        in_schemas = _planned_when(f"p.kind = 'schema' AND p.schema = s.name AND {same}")
        parts.append(_object_units("schema_units", schemas, in_schemas, mode, where))
        functions = _functions(text_array(auth))
        in_functions = _planned_when(*(f"p.kind = 'function' AND {m}" for m in in_schema))
        parts.append(_object_units("function_units", functions, in_functions, mode, where))
        parts += [_columns(mode, public_relations, where), _defaults(plan, database, mode, where)]
    if cluster:
        databases = _databases(public_databases, locked_databases)
        in_databases = _planned_when(f"p.kind = 'database' AND p.db = s.name AND {same}")
        parts.append(_object_units("database_units", databases, in_databases, mode, "''"))
        if mode != "rest":  # a membership's fixes are all plain revokes
            parts.append(_memberships(plan, mode))
    if not parts:
        return f"SELECT {_NO_PROBLEM} AS problem, {_NO_PROBLEM} AS fix WHERE false"
    ctes += [cte for cte, _ in parts]
    with_ctes = "WITH " + ",\n".join(ctes)
    union = "\nUNION ALL\n".join(select for _, select in parts)
    return f"{with_ctes}\nSELECT problem, fix FROM (\n{union}\n) AS beyond (problem, fix)\nORDER BY 1, 2"


def revoke_excess(plan: AccessPlan, database: str, mode: ExcessMode = "revoke") -> str:
    """A DO block that runs each fix of excess_query in `database`; the database privileges and the
    memberships with the plan's first database only (holds_cluster).

    A fix the admin may not run (a managed server's admin, an object it has no rights on) is skipped with
    a WARNING that names it; the check keeps reporting it.
    """
    query = excess_query(plan, database, cluster=holds_cluster(plan, database), mode=mode).replace("\n", "\n    ")
    return (
        f"DO $beyond$\nDECLARE\n  excess record;\nBEGIN\n  FOR excess IN\n    {query}\n  LOOP\n    BEGIN\n"
        "      EXECUTE excess.fix;\n    EXCEPTION WHEN insufficient_privilege THEN\n"
        "      RAISE WARNING 'not revoked (%): %', SQLERRM, excess.fix;\n    END;\n  END LOOP;\nEND\n$beyond$;"
    )


def holds_cluster(plan: AccessPlan, database: str) -> bool:
    """Whether `database`'s revokes also take the database privileges and memberships beyond the plan:
    the plan's first database only (one step: no two re-apply steps revoke them at once)."""
    return database == plan.databases[0].name
