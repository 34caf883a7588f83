"""A real PostgreSQL and PgBouncer on loopback, in containers from the images the stacks ship, configured
from a stack: for benchmarks, drills and tests.

Product code, not a test helper: scripts/bench_pool.py and scripts/backup_drill.py run it. The containers
are the ones `pulumi up` declares (render.containers: image, entrypoint, command, environment, user,
mounts, stop signal, file limit), on the host network with loopback ports of their own; their config
directories are written by the program's install script and reloaded as the program does (SIGHUP
through `docker kill`); the access plan is applied with the script scripts/render_sql.py prints.

    with Servers(config, tls=True) as servers:
        ...  # started; stopped at the end, as is what started before a failed start
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from postgres_platform.harness import pgbouncer
from postgres_platform.harness.certificates import Certificates
from postgres_platform.harness.docker import Containers, container_state, logs, missing_for_real_servers
from postgres_platform.harness.pgbouncer import PgBouncerServer
from postgres_platform.harness.ports import free_port
from postgres_platform.harness.postgres import PostgresServer, loopback_dsn
from postgres_platform.model import access
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import (
    AUTH_ROLE,
    LOOPBACK,
    MONITORING_ROLE,
    PGBOUNCER,
    PGBOUNCER_ADMIN,
    PGBOUNCER_CONSOLE_DB,
    PGBOUNCER_UID,
    PGDATA,
    POSTGRES_UID,
    PRIMARY,
    SUPERUSER,
    owner_role,
)
from postgres_platform.render import restore_check, sql
from postgres_platform.render.backup import RepoSecrets, render_conf
from postgres_platform.render.containers import MountSource
from postgres_platform.render.files import File, install_input, install_script, reload_if_running
from postgres_platform.render.postgres import copy_arguments
from postgres_platform.render.scram import stable_verifier

__all__ = ["LOOPBACK", "Servers", "missing_for_real_servers"]  # what tests and scripts import from here


@dataclass
class Servers:
    """Postgres + PgBouncer containers for one stack config, with the access plan applied."""

    config: PlatformConfig
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgplat-")))
    pg_port: int = field(default_factory=free_port)
    pgbouncer_port: int = field(default_factory=free_port)
    superuser_password: str = field(default_factory=lambda: secrets.token_hex(16))
    passwords: dict[str, str] = field(default_factory=dict)
    admin_password: str = field(default_factory=lambda: secrets.token_hex(16))
    # As on a Hetzner host: a CA-signed certificate, ssl on, our pg_hba.conf, PgBouncer TLS both ways.
    tls: bool = False
    # With config.backup: pgBackRest with these secrets, a posix repository in this dir (or the config's S3).
    backup_secrets: RepoSecrets | None = None
    # Each instance its own container names (the stack part of names.container_name).
    name: str = field(default_factory=lambda: f"test-{secrets.token_hex(4)}")
    _containers: Containers = field(default_factory=Containers, init=False, repr=False)

    def __enter__(self) -> Servers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def _certificates(self) -> Certificates | None:
        return Certificates(self.root / "tls") if self.tls else None

    @property
    def _postgres(self) -> PostgresServer:
        return PostgresServer(
            self.name, self.config, self.root, self.pg_port, self.superuser_password, self._certificates
        )

    @property
    def _pgbouncer(self) -> PgBouncerServer:
        return PgBouncerServer(
            self.name, self.config, self.root / PGBOUNCER, self.pgbouncer_port, self.pg_port, self._certificates
        )

    @property
    def repo(self) -> Path:
        return self._postgres.repo

    @property
    def ca_file(self) -> Path:
        return Certificates(self.root / "tls").ca_file

    @property
    def postgres_container(self) -> str:
        return self._postgres.container

    @property
    def pgbouncer_container(self) -> str:
        return self._pgbouncer.spec.name

    def start(self) -> Servers:
        """Start the servers; on a failure on the way, stop what started and raise it."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.passwords = {role.name: secrets.token_hex(16) for role in access.plan(self.config).logins}
        postgres = self._postgres
        for directory in (postgres.data, postgres.config_dir):
            directory.mkdir()
        if self._certificates is not None:
            self._certificates.issue()
        if self.config.backup is not None:
            postgres.repo.mkdir()
            shutil.chown(postgres.repo, int(POSTGRES_UID), int(POSTGRES_UID))
        self.install_config()
        postgres.start(self._containers)
        if not self.config.adopted:  # an adopted server's state is the caller's to build, its plan to apply
            self.apply_plan()
            self._pgbouncer.start(self._containers)

    def stop(self) -> None:
        """Remove every container this instance started (by its id), then its directory."""
        self._containers.remove_all()
        shutil.rmtree(self.root, ignore_errors=True)

    def config_dirs(self) -> dict[str, tuple[str, str, list[File[str]]]]:
        """What the program writes into each config directory, by directory: (owner uid, container, files)."""
        dirs = {PRIMARY: (POSTGRES_UID, self.postgres_container, self._postgres.files())}
        if self.config.backup is not None:
            conf = render_conf(self.config.backup, PGDATA, self.backup_secrets or RepoSecrets(cipher_pass="drill"))
            dirs["pgbackrest"] = (POSTGRES_UID, "", [File("pgbackrest.conf", "0600", conf)])
        if self.config.pgbouncer is not None:
            files = self._pgbouncer.files(
                auth_password=self.passwords[AUTH_ROLE],
                admin_password=self.admin_password,
                monitor_password=self.passwords.get(MONITORING_ROLE),
            )
            dirs[PGBOUNCER] = (PGBOUNCER_UID, self.pgbouncer_container, files)
        return dirs

    def install_config(self) -> None:
        """Install the files with the program's own script (render.files) and its reload: a running
        container gets SIGHUP through `docker kill`, as on a host after `pulumi up`."""
        for directory, (owner, container, files) in self.config_dirs().items():
            reload = reload_if_running(container) if container else "true"
            script = install_script(str(self.root / directory), owner, reload)
            subprocess.run(
                ["sh", "-c", script], input=install_input(files), text=True, check=True, capture_output=True, timeout=60
            )

    def reconfigure(self, config: PlatformConfig, passwords: dict[str, str]) -> None:
        """Go from this config to `config` as `pulumi up` does on a live server: roles and grants (the
        access plan as SQL), removed apps retired, then the files installed and reloaded. No restart."""
        old = {r.name: r for r in access.plan(self.config).logins}
        before = set(old)
        self.config = config
        plan = access.plan(config)
        self.passwords = {
            **{role: pw for role, pw in self.passwords.items() if role in before},
            **{r.name: secrets.token_hex(16) for r in plan.logins if r.name not in self.passwords},
            **passwords,
        }
        self.apply_plan()
        for login in sorted(before - {r.name for r in plan.logins}):
            database = old[login].database
            if database is not None:  # as the program's RoleRetirement: in the app's own database
                self.psql(sql.retire_role(login, owner_role(database)), database=database)
            self.psql(f"DROP ROLE {sql.ident(login)};")
        self.install_config()

    def apply_plan(self, login: tuple[str, str] | None = None) -> None:
        """The access plan as SQL, each password as its stable SCRAM verifier (as the program sets it)."""
        script = sql.render_script(access.plan(self.config))
        verifiers = {sql.password_variable(role): stable_verifier(role, pw) for role, pw in self.passwords.items()}
        self.psql(script, verifiers, login=login)

    def psql(
        self,
        script: str,
        variables: dict[str, str] | None = None,
        database: str = "postgres",
        login: tuple[str, str] | None = None,  # (user, password); None: the superuser
    ) -> str:
        """psql of the shipped image inside the Postgres container (PostgresServer.psql)."""
        return self._postgres.psql(script, variables, database, login)

    def pgbackrest(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """A rendered pgBackRest command line inside the Postgres container (PostgresServer.pgbackrest)."""
        return self._postgres.pgbackrest(argv)

    def pgbench(
        self, argv: list[str], user: str, database: str, *, pooled: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """pgbench of the Postgres image, inside its container (on the host network, so PgBouncer's loopback
        port is in reach) as `user`: pooled, `database` is the PgBouncer pool database."""
        port = self.pgbouncer_port if pooled else self.pg_port
        password = self.superuser_password if user == SUPERUSER else self.passwords[user]
        command = ["pgbench", "-h", LOOPBACK, "-p", str(port), "-U", user, *argv, database]
        return self._postgres.client(command, password, timeout=timeout)

    def restart_postgres(self) -> None:
        self._postgres.restart()

    def restore_copy(self, *, target: str | None) -> tuple[str, int]:
        """A copy restored to `target` (None: the end of the archive) and promoted (PostgresServer.restore_copy):
        (its container, its port)."""
        return self._postgres.restore_copy(self._containers, target=target)

    def stop_copy(self, copy: str) -> None:
        self._containers.remove(copy)

    def verify_job(self, timeout: int = restore_check.JOB_TIMEOUT) -> restore_check.VerifyJob:
        """The scheduled verified restore of this server: render/restore_check.job_of's job with this run's
        paths (its pgBackRest config directory, its posix repository as a bind mount, its port). A posix
        repository only: the job's bridge network does not reach a loopback S3."""
        postgres = self._postgres
        return restore_check.VerifyJob(
            server=self.postgres_container,
            databases=tuple(self.config.databases),
            repo="posix",
            config_dir=str(self.root / "pgbackrest"),
            repo_source=MountSource(str(postgres.repo)),
            copy_settings=tuple(copy_arguments(self.config)),
            server_port=self.pg_port,
            timeout=timeout,
        )

    def container_state(self, container: str) -> tuple[str, str]:
        return container_state(container)

    def logs(self, container: str) -> str:
        return logs(container)

    def rendered_files(self) -> dict[str, str]:
        return self._pgbouncer.rendered_files()

    def versions(self) -> dict[str, str]:
        """What the running servers report: SHOW server_version, PgBouncer's SHOW VERSION, pgbackrest and
        patroni --version."""
        versions = {"postgres": self._postgres.server_version()}
        if self.config.pgbouncer is not None:
            versions["pgbouncer"] = pgbouncer.server_version(self.console_dsn())
        for name, found in (
            ("pgbackrest", self._postgres.pgbackrest_version()),
            ("patroni", self._postgres.patroni_version()),
        ):
            if found is not None:
                versions[name] = found
        return versions

    def dsn(
        self, user: str, database: str, *, pooled: bool, password: str | None = None, sslmode: str | None = None
    ) -> str:
        """Pooled: `database` is the PgBouncer pool database (an app's own name). TLS: verify-full by default."""
        port = self.pgbouncer_port if pooled else self.pg_port
        secret = password if password is not None else self.passwords[user]
        return loopback_dsn(port, database, user, secret, ca_file=self.ca_file if self.tls else None, sslmode=sslmode)

    def superuser_dsn(self, database: str = "postgres") -> str:
        return self.dsn(SUPERUSER, database, pooled=False, password=self.superuser_password)

    def console_dsn(self) -> str:
        return self.dsn(PGBOUNCER_ADMIN, PGBOUNCER_CONSOLE_DB, pooled=True, password=self.admin_password)
