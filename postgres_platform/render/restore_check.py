"""What a verified restore checks in the restored copy (pure): one shell script, the same for the drill,
`restore.py --verify` and a host's scheduled job, run inside the copy's container as postgres.

It fails (non-zero, the reason on stderr) unless every declared database exists, every table and
materialized view of each can be read to its last column (each row rendered as text: the heap and
its TOAST are read), and pg_amcheck finds nothing wrong in the tables and B-tree indexes (with
`--heapallindexed`: every heap tuple has its index entries). pg_amcheck's extension is installed in the
copy only (`--install-missing`): the copy is thrown away afterwards.
"""

from __future__ import annotations

import shlex

# Every user relation with rows of its own (tables, partitions, matviews), read whole.
READ_ALL = """DO $check$
DECLARE rel regclass; relations int := 0;
BEGIN
  FOR rel IN SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname !~ '^pg_toast' ORDER BY 1
  LOOP
    EXECUTE format('SELECT sum(length(t::text)) FROM %s t', rel);
    relations := relations + 1;
  END LOOP;
  RAISE NOTICE 'read % relations of %', relations, current_database();
END
$check$;
"""
AMCHECK = ["pg_amcheck", "--install-missing", "--heapallindexed", "--all", "--no-strict-names"]


def check_script(databases: list[str], port: int) -> str:
    """The shell script for the copy listening on `port`: each database read whole (psql stops at the
    first error), then pg_amcheck."""
    lines = ["set -eu", f"export PGPORT={int(port)}"]
    for database in databases:
        # \connect fails for a database the copy does not have (the names are config identifiers: no quoting).
        script = f"\\set ON_ERROR_STOP on\n\\connect {database}\n{READ_ALL}"
        lines.append(f"psql -X -q -d postgres <<'CHECK'\n{script}CHECK")
    lines.append(shlex.join(AMCHECK))
    lines.append("echo verified")
    return "\n".join(lines) + "\n"
