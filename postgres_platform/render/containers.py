"""The Postgres and PgBouncer containers' settings (pure): one definition for the components
(docker.Container) and for the real-container tests (`docker run`), so what the tests run is what
`pulumi up` declares: image, entrypoint, command, environment, user, mounts, stop signal, file limit.

Mount sources differ by where a container runs (a Docker volume, a host directory, a temp dir in a
test), so a spec names its mount points and the caller supplies the sources, by the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import (
    COMPONENT_LABEL,
    PGBOUNCER,
    PGBOUNCER_CONFIG_DIR,
    PGBOUNCER_UID,
    PGDATA,
    POSTGRES_CONFIG_DIR,
    SUPERUSER,
    container_name,
)
from postgres_platform.render.backup import CONFIG_DIR as BACKUP_CONFIG_DIR
from postgres_platform.render.backup import POSIX_REPO
from postgres_platform.render.pgbouncer import INI_FILE
from postgres_platform.render.postgres import PASSWORD_FILE

POSTGRES_STOP_SECONDS = 120  # a fast shutdown ends sessions and checkpoints; past this Docker kills
PGBOUNCER_STOP_SECONDS = 60  # SIGINT is PgBouncer's safe shutdown: running transactions finish

S = TypeVar("S")

# Mount keys: what a caller supplies a source for.
DATA, CONFIG, BACKUP_CONFIG, BACKUP_REPO = "data", "config", "backup-config", "backup-repo"


@dataclass(frozen=True)
class MountPoint:
    target: str
    read_only: bool


@dataclass(frozen=True)
class MountSource(Generic[S]):
    source: S  # a path or volume name (a Pulumi Input where a component declares it)
    type: str = "bind"  # or "volume"


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    label: str  # COMPONENT_LABEL's value: what the policies find the container by
    command: tuple[str, ...]
    mounts: Mapping[str, MountPoint]
    entrypoint: tuple[str, ...] | None = None  # None: the image's
    env: tuple[str, ...] = ()  # never a secret: files carry those
    user: str | None = None  # None: the image's (Postgres' entrypoint drops root itself)
    stop_signal: str = "SIGINT"
    stop_seconds: int = POSTGRES_STOP_SECONDS
    open_files: int | None = None  # RLIMIT_NOFILE, soft and hard

    def mount_args(self, sources: Mapping[str, MountSource[str]]) -> list[str]:
        """`--mount` options for these sources, by the spec's keys."""
        argv = []
        for key, point in self.mounts.items():
            source = sources[key]
            argv += [
                "--mount",
                f"type={source.type},source={source.source},target={point.target}"
                + (",readonly" if point.read_only else ""),
            ]
        return argv

    def volume_args(self, sources: Mapping[str, MountSource[str]]) -> list[str]:
        """`-v` options (the form scripts/restore.py prints) for those of the spec's mounts `sources` supplies:
        a one-off container of the image, such as a restore, may need fewer than the server."""
        argv = []
        for key, point in self.mounts.items():
            if key in sources:
                argv += ["-v", f"{sources[key].source}:{point.target}" + (":ro" if point.read_only else "")]
        return argv

    def docker_run(self, sources: Mapping[str, MountSource[str]], *, extra_args: Sequence[str] = ()) -> list[str]:
        """`docker run -d` of this container on the host network with these sources (the tests' and
        drills' way to start it)."""
        argv = [
            "docker",
            "run",
            "-d",
            "--name",
            self.name,
            "--network",
            "host",
            "--label",
            f"{COMPONENT_LABEL}={self.label}",
            "--stop-signal",
            self.stop_signal,
            "--stop-timeout",
            str(self.stop_seconds),
        ]
        argv += self.mount_args(sources)
        for variable in self.env:
            argv += ["--env", variable]
        if self.user is not None:
            argv += ["--user", self.user]
        if self.open_files is not None:
            argv += ["--ulimit", f"nofile={self.open_files}:{self.open_files}"]
        if self.entrypoint is not None:
            argv += ["--entrypoint", self.entrypoint[0]]
        return [*argv, *extra_args, self.image, *(self.entrypoint or ())[1:], *self.command]


def postgres_container(
    stack: str, config: PlatformConfig, label: str, command: Sequence[str], *, initdb_password: bool
) -> ContainerSpec:
    """A primary (`initdb_password`: initdb reads the superuser's verifier from its file) or a standby.
    With backups, pgBackRest (in the image) reads its config directory, and a posix repository."""
    mounts = {DATA: MountPoint(PGDATA, read_only=False), CONFIG: MountPoint(POSTGRES_CONFIG_DIR, read_only=True)}
    if config.backup is not None:
        mounts[BACKUP_CONFIG] = MountPoint(BACKUP_CONFIG_DIR, read_only=True)
        if config.backup.repo == "posix":
            mounts[BACKUP_REPO] = MountPoint(POSIX_REPO, read_only=False)
    return ContainerSpec(
        name=container_name(stack, label),
        image=config.server_image(),
        label=label,
        command=tuple(command),
        mounts=mounts,
        env=(f"POSTGRES_PASSWORD_FILE={PASSWORD_FILE}",) if initdb_password else (),
    )


def postgres_healthcheck() -> list[str]:
    return ["CMD-SHELL", f"pg_isready -U {SUPERUSER} -h 127.0.0.1"]


def pgbouncer_open_files(config: PlatformConfig) -> int:
    """A descriptor per client and per server connection, and some to spare: below it PgBouncer logs
    `accept() failed: Too many open files` and refuses clients under max_client_conn."""
    # Rounded up to a power of two (at least 4096), so that an ordinary change of max_connections or
    # maxClientConn (a reload) leaves the limit, a container setting whose change replaces it, alone.
    needed = config.required_pgbouncer().max_client_conn + 2 * config.postgres.max_connections + 64
    return max(4096, 1 << (needed - 1).bit_length())


def pgbouncer_container(stack: str, config: PlatformConfig) -> ContainerSpec:
    """PgBouncer on the files this program renders (the binary directly: an image's own entrypoint
    could write a config of its own), as its unprivileged user (it refuses root)."""
    return ContainerSpec(
        name=container_name(stack, PGBOUNCER),
        image=config.required_pgbouncer().image,
        label=PGBOUNCER,
        command=(INI_FILE,),
        mounts={CONFIG: MountPoint(PGBOUNCER_CONFIG_DIR, read_only=True)},
        entrypoint=("pgbouncer",),
        user=PGBOUNCER_UID,
        stop_seconds=PGBOUNCER_STOP_SECONDS,
        open_files=pgbouncer_open_files(config),
    )


def exec_argv(container: str, argv: Sequence[str], *, env_from_caller: Sequence[str] = ()) -> list[str]:
    """`docker exec` as the server's user in a running container; `env_from_caller` names variables
    handed over from the caller's environment (`-e NAME`, no value: a password never in an argv)."""
    env = [arg for name in env_from_caller for arg in ("-e", name)]
    return ["docker", "exec", "-i", "-u", "postgres", *env, container, *argv]
