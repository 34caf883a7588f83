"""The Postgres container of a harness run: its config files, its start as `pulumi up` declares it
(render.containers), and psql and pgBackRest inside it; a point-in-time restored copy beside it."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from postgres_platform.harness.certificates import Certificates
from postgres_platform.harness.docker import Containers, docker, run_once
from postgres_platform.harness.ports import free_port
from postgres_platform.model.config import PlatformConfig, SettingValue
from postgres_platform.model.images import POSTGRES_17
from postgres_platform.model.names import LOOPBACK, PGDATA, POSTGRES_UID, PRIMARY, SUPERUSER
from postgres_platform.render import sql
from postgres_platform.render.backup import archive_settings, restore_command
from postgres_platform.render.containers import (
    BACKUP_CONFIG,
    BACKUP_REPO,
    CONFIG,
    DATA,
    ContainerSpec,
    MountSource,
    exec_argv,
    postgres_container,
)
from postgres_platform.render.files import File
from postgres_platform.render.pg_hba import HbaSources, render_pg_hba
from postgres_platform.render.postgres import (
    CERT_FILE,
    CONFIG_FILE,
    HBA_FILE,
    KEY_FILE,
    PASSWORD_FILE,
    copy_arguments,
    render_config_file,
    server_arguments,
    tls_and_hba_settings,
)
from postgres_platform.render.scram import stable_verifier

CONTAINER_CA = "/etc/postgresql/client-ca.crt"  # the stack CA, for psql run inside the container


def loopback_dsn(
    port: int, database: str, user: str, password: str, *, ca_file: Path | None, sslmode: str | None = None
) -> str:
    """To Postgres or PgBouncer on loopback; with `ca_file` (TLS) verify-full unless `sslmode` says otherwise."""
    dsn = f"host={LOOPBACK} port={port} dbname={database} user={user} password={password} connect_timeout=10"
    if ca_file is not None:
        dsn += f" sslmode={sslmode or 'verify-full'} sslrootcert={ca_file}"
    elif sslmode:
        dsn += f" sslmode={sslmode}"
    return dsn


@dataclass(frozen=True)
class PostgresServer:
    """One stack config's Postgres in a container on the host network, on a loopback port of its own."""

    name: str  # the stack part of its container name
    config: PlatformConfig
    root: Path  # its config directory, data directory and posix repository are under it
    port: int
    superuser_password: str
    certificates: Certificates | None  # None: no TLS

    @property
    def config_dir(self) -> Path:
        return self.root / PRIMARY

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def server_config(self) -> PlatformConfig:
        """The config the container runs: an adopted server's image is not the stack's to name, so the
        "legacy" server of the adoption tests runs the image the other stacks ship."""
        if self.config.postgres.image is not None:
            return self.config
        postgres = self.config.postgres.model_copy(update={"image": POSTGRES_17.reference})
        return self.config.model_copy(update={"postgres": postgres})

    @property
    def spec(self) -> ContainerSpec:
        return postgres_container(self.name, self.server_config, PRIMARY, self._arguments(), initdb_password=True)

    @property
    def container(self) -> str:
        return self.spec.name

    def _extra(self) -> dict[str, SettingValue]:
        """With TLS: the Hetzner container's settings; with backups, archiving."""
        extra: dict[str, SettingValue] = {}
        if self.certificates is not None:
            extra |= tls_and_hba_settings()
        if self.config.backup is not None:
            extra |= archive_settings(self.config.backup)
        return extra

    def _arguments(self) -> list[str]:
        """The container's own command, plus what a loopback test server on the host network needs."""
        return [
            *server_arguments(self.config, self._extra()),
            *("-c", f"port={self.port}", "-c", f"listen_addresses={LOOPBACK}", "-c", "fsync=off"),
            *("-c", "shared_buffers=128MB", "-c", "effective_cache_size=512MB"),
        ]

    def files(self) -> list[File[str]]:
        """What the program writes into the container's config directory; with TLS as on a Hetzner host:
        a CA-signed certificate, ssl on, our pg_hba.conf."""
        files = [
            File(Path(CONFIG_FILE).name, "0644", render_config_file(self.config, self._extra())),
            File(Path(PASSWORD_FILE).name, "0600", stable_verifier(SUPERUSER, self.superuser_password)),
        ]
        if self.certificates is not None:
            hba = render_pg_hba(self.config, HbaSources(app_cidrs=("127.0.0.0/8",), admin_cidrs=(f"{LOOPBACK}/32",)))
            files.append(File(Path(HBA_FILE).name, "0644", hba))
            files += self.certificates.files(ca=CONTAINER_CA, cert=CERT_FILE, key=KEY_FILE)
        return files

    def sources(self, data: Path) -> dict[str, MountSource[str]]:
        sources = {DATA: MountSource(str(data)), CONFIG: MountSource(str(self.config_dir))}
        if self.config.backup is not None:
            sources[BACKUP_CONFIG] = MountSource(str(self.root / "pgbackrest"))
            if self.config.backup.repo == "posix":
                sources[BACKUP_REPO] = MountSource(str(self.repo))
        return sources

    def _test_mounts(self) -> list[str]:
        """Beyond the spec: an S3 repository's CA (a file of the loopback S3) at the path the config names."""
        s3 = self.config.backup.s3 if self.config.backup else None
        if s3 is None or not s3.ca_file:
            return []
        return ["--mount", f"type=bind,source={s3.ca_file},target={s3.ca_file},readonly"]

    def start(self, containers: Containers) -> None:
        containers.start(self.spec, self.sources(self.data), extra_args=self._test_mounts())
        self._wait_for_connections(self.port)

    def restart(self) -> None:
        """As a container restart on a host: its stop signal (SIGINT, a fast shutdown), then the same container."""
        docker("restart", "-t", "60", self.container)
        self._wait_for_connections(self.port)

    def superuser_dsn(self, port: int, database: str = "postgres") -> str:
        ca_file = self.certificates.ca_file if self.certificates else None
        return loopback_dsn(port, database, SUPERUSER, self.superuser_password, ca_file=ca_file)

    def _wait_for_connections(self, port: int, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                psycopg.connect(self.superuser_dsn(port)).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def psql(
        self,
        script: str,
        variables: dict[str, str] | None = None,
        database: str = "postgres",
        login: tuple[str, str] | None = None,  # (user, password); None: the superuser
    ) -> str:
        """psql of the shipped image, inside the container, over TCP as `login`; the password reaches it
        through the environment (`docker exec -e NAME`) and variables on standard input, never an argument."""
        user, password = login or (SUPERUSER, self.superuser_password)
        command = ["psql", "-X", "-q", "-h", LOOPBACK, "-p", str(self.port), "-U", user, "-d", database]
        # Variables (SCRAM verifiers) as \set lines on standard input, never in an argument list.
        script = "".join(f"\\set {name} {sql.literal(value)}\n" for name, value in (variables or {}).items()) + script
        env = {"PGPASSWORD": password}
        if self.certificates is not None:
            env |= {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": CONTAINER_CA}
        result = subprocess.run(
            exec_argv(self.container, [*command, "-v", "ON_ERROR_STOP=1", "-f", "-"], env_from_caller=list(env)),
            input=script,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr}")
        return result.stdout

    def client(self, argv: list[str], password: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
        """A client program of the image (pgbench) inside the container; the password reaches it through
        the environment, never an argument."""
        return subprocess.run(
            exec_argv(self.container, argv, env_from_caller=["PGPASSWORD"]),
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": password},
            timeout=timeout,
        )

    def pgbackrest(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """A rendered pgBackRest command line (render.backup) inside the container, as the Backups
        component runs it there; the server's port is not 5432, so it is told."""
        port = ["env", f"PGBACKREST_PG1_PORT={self.port}"]
        return subprocess.run(
            exec_argv(self.container, [*port, *argv]), capture_output=True, text=True, errors="replace", timeout=300
        )

    def restore_copy(self, containers: Containers, *, target: str | None) -> tuple[str, int]:
        """Restore to `target` (a timestamp; None: the latest, to the end of the archive) into a fresh data
        directory, as scripts/restore.py does
        (pgBackRest in a container of the image), and start it as a container on a port of its own;
        returns (its container, its port) once it has promoted."""
        copy, port = self.root / f"restored-{secrets.token_hex(4)}", free_port()
        copy.mkdir()
        shutil.chown(copy, int(POSTGRES_UID), int(POSTGRES_UID))
        copy.chmod(0o700)
        sources = self.sources(copy)
        command = ["postgres", "-c", f"port={port}", "-c", f"listen_addresses={LOOPBACK}", *copy_arguments(self.config)]
        spec = postgres_container(
            f"{self.name}-{copy.name}", self.server_config, PRIMARY, command, initdb_password=False
        )
        argv = [*spec.mount_args(sources), *self._test_mounts(), spec.image, *restore_command(PGDATA, target=target)]
        restore = run_once(f"{spec.name}-restore", ["--network", "host", "-u", "postgres", *argv], timeout=300)
        if restore.returncode != 0:
            raise RuntimeError(f"pgbackrest restore failed: {restore.stderr or restore.stdout}")
        containers.start(spec, sources, extra_args=self._test_mounts())
        self._wait_for_connections(port)
        with psycopg.connect(self.superuser_dsn(port), autocommit=True) as c:
            for _ in range(600):
                if c.execute("SELECT pg_is_in_recovery()").fetchone() == (False,):
                    return spec.name, port
                time.sleep(0.1)
        raise TimeoutError("the restored copy did not promote")

    def server_version(self) -> str:
        """SHOW server_version, its number."""
        with psycopg.connect(self.superuser_dsn(self.port), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else ""

    def patroni_version(self) -> str | None:
        """`patroni --version` in the container (`patroni 4.0.7`); None where the image has none."""
        done = subprocess.run(
            exec_argv(self.container, ["patroni", "--version"]), capture_output=True, text=True, timeout=60
        )
        return done.stdout.split()[-1] if done.returncode == 0 and done.stdout.split() else None

    def pgbackrest_version(self) -> str | None:
        """`pgbackrest version` in the container; None where the image has none."""
        done = subprocess.run(
            exec_argv(self.container, ["pgbackrest", "version"]), capture_output=True, text=True, timeout=60
        )
        return done.stdout.split()[-1] if done.returncode == 0 else None
