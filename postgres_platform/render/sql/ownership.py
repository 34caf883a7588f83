"""The ownership move: an app schema's objects to its database's owner role, one short transaction each."""

from __future__ import annotations

from postgres_platform.model.access import OwnershipMove
from postgres_platform.render.sql.locks import LOCK_TIMEOUT
from postgres_platform.render.sql.quoting import ident, literal, text_array


def ownership_candidates(move: OwnershipMove) -> str:
    """Objects still to move (kind, identity): the app schemas and their tables, partitioned tables,
    views, materialized views, free-standing sequences and functions not yet owned by the owner role,
    less an extension's members and the kept ones. (A serial's sequence moves with its table.)"""
    schemas, keep = text_array(move.schemas), text_array(move.keep)
    extension_member = (
        "EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = {cls}::pg_catalog.regclass "
        "AND d.objid = {oid} AND d.deptype = 'e')"
    )
    return f"""SELECT o.kind, o.identity FROM (
  SELECT 'SCHEMA' AS kind, pg_catalog.quote_ident(n.nspname) AS identity, n.nspowner AS owner, n.nspname AS path,
    false AS extension  -- an extension's schema: left out below, with everything in it
  FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY ({schemas})
  UNION ALL
  SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
    ELSE 'TABLE' END, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), c.relowner,
    n.nspname || '.' || c.relname, {extension_member.format(cls="'pg_catalog.pg_class'", oid="c.oid")}
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY ({schemas}) AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
    AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
        AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')))
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
    pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '(' ||
      pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', p.proowner,
    n.nspname || '.' || p.proname, {extension_member.format(cls="'pg_catalog.pg_proc'", oid="p.oid")}
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = ANY ({schemas})
) o
WHERE o.owner <> {literal(move.owner)}::pg_catalog.regrole AND NOT o.extension
  AND (o.kind = 'SCHEMA' OR NOT o.path = ANY ({keep}))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_namespace e ON e.oid = d.objid
    WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.deptype = 'e'
      AND e.nspname = pg_catalog.split_part(o.path, '.', 1))
ORDER BY o.kind <> 'SCHEMA', o.identity"""


def ownership_script(move: OwnershipMove, superuser: bool = True) -> str:
    """Move the app schemas' objects to the owner role, one short transaction per object.

    One statement (a DO block that commits per object): runs outside a transaction block, in psql or
    the SqlApply step. Idempotent: what is moved is no candidate any more. Objects whose lock is not
    granted within LOCK_TIMEOUT are left and named in the error; run it again.
    """
    join = "" if superuser else f"  GRANT {ident(move.owner)} TO CURRENT_USER;\n  COMMIT;\n"
    candidates = ownership_candidates(move).replace("\n", "\n    ")
    return f"""DO $ownership$
DECLARE
  r record;
  busy pg_catalog.text[] := '{{}}';
BEGIN
{join}  PERFORM pg_catalog.set_config('lock_timeout', {literal(LOCK_TIMEOUT)}, false);
  FOR r IN
    {candidates}
  LOOP
    BEGIN
      EXECUTE pg_catalog.format('ALTER %s %s OWNER TO %I', r.kind, r.identity, {literal(move.owner)});
    EXCEPTION WHEN lock_not_available THEN
      busy := busy || r.identity;
    END;
    COMMIT;
  END LOOP;
  PERFORM pg_catalog.set_config('lock_timeout', '0', false);
  IF pg_catalog.cardinality(busy) > 0 THEN
    RAISE EXCEPTION 'ownership of % not moved to {move.owner}: busy (no lock in {LOCK_TIMEOUT}), run again',
      pg_catalog.array_to_string(busy, ', ');
  END IF;
END
$ownership$;"""


def ownership_check(move: OwnershipMove) -> str:
    """True when nothing is left to move."""
    return f"SELECT NOT EXISTS (\n{ownership_candidates(move)}\n)"
