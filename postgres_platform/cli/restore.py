"""Restore from the stack's pgBackRest repository: point in time into a new data directory, or a standby.

    python scripts/restore.py prod --to-time "2026-11-21 09:30:00+00" --pg-path /mnt/pgdata/restored [--run]
    python scripts/restore.py prod --to-lsn 0/3000060 --pg-path /mnt/pgdata/restored
    python scripts/restore.py prod --standby --pg-path /mnt/pgdata/data          # rebuild the replica

Prints the commands to run on a database host (the stack's image with pgBackRest and its config
directory, as `pulumi up` left them there); --run runs them on this machine (its Docker engine). A
restored copy never archives into the production stanza (--archive-mode=off) and starts with
archive_mode=off; promote it, check it, then point apps at it. A standby keeps restoring WAL from
the repository (--type=standby) and streams from the primary once caught up.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from postgres_platform.cli.errors import COULD_NOT_RUN, command
from postgres_platform.cli.stacks import add_stack_arguments, load_chosen
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import PGDATA, PRIMARY
from postgres_platform.render import backup as render
from postgres_platform.render.containers import BACKUP_CONFIG, BACKUP_REPO, DATA, MountSource, postgres_container
from postgres_platform.render.hetzner import CONFIG_ROOT
from postgres_platform.render.postgres import copy_arguments

# A point in time with its zone: ISO 8601 (`T` or a space), seconds and a fraction optional, `Z` or an offset.
# Without a zone pgBackRest and Postgres would each read it in their own local time.
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}([.,]\d{1,6})?)?(Z|[+-]\d{2}(:?[0-5]\d)?)", re.ASCII)
LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}", re.ASCII)  # a WAL position as Postgres prints it


def target_time(value: str) -> str:
    """`--to-time` as pgBackRest reads it whole (it picks the backup set by it): `YYYY-MM-DD HH:MM:SS+00:00`, in UTC.

    Anything else is a ValueError naming the flag and the value: "yesterday" or a time without a zone would
    restore to a moment nobody chose.
    """
    shape = "must be a timestamp with its zone, e.g. '2026-11-21 09:30:00+00' or '2026-11-21T09:30:00Z'"
    if not TIMESTAMP.fullmatch(value):
        raise ValueError(f"--to-time: {shape}, got {value!r}")
    try:
        moment = datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # month 13, hour 24, an offset of a day or more, before year 1 in UTC
        raise ValueError(f"--to-time: {shape} ({exc}), got {value!r}") from None
    return moment.isoformat(sep=" ")


def target_lsn(value: str) -> str:
    if not LSN.fullmatch(value):
        raise ValueError(
            f"--to-lsn: must be a WAL position such as 0/3000060 (hex/hex, 8 digits each at most), got {value!r}"
        )
    return value


def commands(
    stack: str, config: PlatformConfig, pg_path: str, *, target: str | None, lsn: str | None, standby: bool
) -> list[list[str]]:
    """`docker run` of pgBackRest's restore into `pg_path`, then (a copy) a server started from it; both
    with the primary container's data and backup mounts (render.containers), `pg_path` as its data."""
    restore = render.restore_command(PGDATA, target=target, lsn=lsn, standby=standby)
    copy = ["postgres", "-c", "archive_mode=off", "-c", "port=5433", *copy_arguments(config)]
    spec = postgres_container(stack, config, PRIMARY, copy, initdb_password=False)
    # Where `pulumi up` left pgbackrest.conf (targets.py): a Hetzner host, or this machine's home.
    root = CONFIG_ROOT if config.target == "hetzner" else str(Path.home() / ".postgres-platform" / stack)
    sources = {
        DATA: MountSource(pg_path),
        BACKUP_CONFIG: MountSource(f"{root}/pgbackrest"),
        BACKUP_REPO: MountSource(f"postgres-platform-{stack}-pgbackrest", type="volume"),
    }
    mounts = spec.volume_args(sources)  # the repository volume only where the spec mounts one (posix)
    run = ["docker", "run", "--rm", "--network", "host", "-u", "postgres", *mounts, spec.image, *restore]
    if standby:
        return [run]  # then start the replica's container again: it follows the primary
    # On the host's network as the primary runs, so the copy is reachable on the host at port 5433.
    start = ["docker", "run", "-d", "--name", f"{spec.name}-restored", "--network", "host", "-u", "postgres"]
    start += [*mounts, spec.image, *copy]
    return [run, start]


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    goal = parser.add_mutually_exclusive_group(required=True)
    goal.add_argument("--to-time", help="a timestamp with its zone (ISO 8601), e.g. '2026-11-21 09:30:00+00'")
    goal.add_argument("--to-lsn", help="a WAL position, e.g. 0/3000060")
    goal.add_argument("--standby", action="store_true", help="rebuild a replica's data directory")
    parser.add_argument("--pg-path", required=True, help="the (empty) data directory on the host")
    parser.add_argument("--run", action="store_true", help="run the commands here instead of printing them")
    args = parser.parse_args(argv)
    try:
        to_time = target_time(args.to_time) if args.to_time is not None else None
        lsn = target_lsn(args.to_lsn) if args.to_lsn is not None else None
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return COULD_NOT_RUN
    chosen = load_chosen(args)
    if chosen is None:
        return COULD_NOT_RUN
    stack, path, config = chosen.name, chosen.path, chosen.config
    if config.backup is None:
        print(f"{path}: the stack has no backup section", file=sys.stderr)
        return COULD_NOT_RUN
    steps = commands(stack, config, args.pg_path, target=to_time, lsn=lsn, standby=args.standby)
    for step in steps:
        print(shlex.join(step))
        if args.run:
            subprocess.run(step, check=True)
    return 0
