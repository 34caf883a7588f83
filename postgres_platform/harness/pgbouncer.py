"""The PgBouncer container of a harness run: the files the program renders for it, and its start as
`pulumi up` declares it (render.containers), in front of the run's Postgres on loopback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg

from postgres_platform.harness.certificates import Certificates
from postgres_platform.harness.docker import Containers, docker
from postgres_platform.harness.ports import wait_for_port
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import LOOPBACK
from postgres_platform.render.containers import CONFIG, ContainerSpec, MountSource, pgbouncer_container
from postgres_platform.render.files import File
from postgres_platform.render.pgbouncer import (
    AUTH_FILE,
    CONTAINER_TLS,
    HBA_FILE,
    INI_FILE,
    Endpoints,
    render_auth_file,
    render_hba,
    render_ini,
)

RENDERED = tuple(Path(path).name for path in (INI_FILE, HBA_FILE, AUTH_FILE))


@dataclass(frozen=True)
class PgBouncerServer:
    """One stack config's PgBouncer on a loopback port of its own; with TLS both ways."""

    name: str  # the stack part of its container name
    config: PlatformConfig
    config_dir: Path
    port: int
    postgres_port: int
    certificates: Certificates | None  # None: no TLS

    @property
    def spec(self) -> ContainerSpec:
        return pgbouncer_container(self.name, self.config)

    def files(self, *, auth_password: str, admin_password: str, monitor_password: str | None = None) -> list[File[str]]:
        tls = CONTAINER_TLS if self.certificates is not None else None
        endpoints = Endpoints(LOOPBACK, self.port, LOOPBACK, self.postgres_port, AUTH_FILE, HBA_FILE, tls=tls)
        ini, hba, auth = RENDERED
        files = [
            File(ini, "0644", render_ini(self.config, endpoints)),
            File(hba, "0644", render_hba(self.config)),
            File(auth, "0600", render_auth_file(auth_password, admin_password, monitor_password)),
        ]
        if self.certificates is not None:
            files += self.certificates.files(
                ca=CONTAINER_TLS.ca_file, cert=CONTAINER_TLS.cert_file, key=CONTAINER_TLS.key_file
            )
        return files

    def start(self, containers: Containers) -> None:
        containers.start(self.spec, {CONFIG: MountSource(str(self.config_dir))})
        try:
            wait_for_port(self.port, 30)
        except TimeoutError:
            logs = docker("logs", self.spec.name, check=False).stderr
            raise RuntimeError(f"PgBouncer did not start: {logs}") from None

    def rendered_files(self) -> dict[str, str]:
        return {name: (self.config_dir / name).read_text() for name in RENDERED}


def server_version(console_dsn: str) -> str:
    """PgBouncer's SHOW VERSION, its number."""
    with psycopg.connect(console_dsn, autocommit=True, prepare_threshold=None) as console:
        shown = console.execute("SHOW VERSION").fetchone()
    return str(shown[0]).split()[-1] if shown else ""
