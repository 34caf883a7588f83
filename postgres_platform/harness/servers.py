"""A real PostgreSQL and PgBouncer on loopback, in containers from the images the stacks ship, configured
from a stack: for benchmarks, drills and tests.

Product code, not a test helper: scripts/bench_pool.py and scripts/backup_drill.py run it. The containers
are the ones `pulumi up` declares (render.containers: image, entrypoint, command, environment, user,
mounts, stop signal, file limit), on the host network with loopback ports of their own; their config
directories are written by the program's install script and reloaded as the program does (SIGHUP
through `docker kill`); the access plan is applied with the script scripts/render_sql.py prints.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from postgres_platform.model import access
from postgres_platform.model.config import PlatformConfig, SettingValue
from postgres_platform.model.images import BUILDS, POSTGRES_17
from postgres_platform.model.names import (
    AUTH_ROLE,
    PGBOUNCER_ADMIN,
    PGBOUNCER_CONSOLE_DB,
    PGBOUNCER_UID,
    PGDATA,
    POSTGRES_UID,
    SUPERUSER,
    owner_role,
)
from postgres_platform.render import sql
from postgres_platform.render.backup import RepoSecrets, archive_settings, render_conf, restore_command
from postgres_platform.render.containers import (
    BACKUP_CONFIG,
    BACKUP_REPO,
    CONFIG,
    DATA,
    ContainerSpec,
    MountSource,
    exec_argv,
    pgbouncer_container,
    postgres_container,
)
from postgres_platform.render.files import File, install_input, install_script, reload_if_running
from postgres_platform.render.pg_hba import HbaSources, render_pg_hba
from postgres_platform.render.pgbouncer import (
    AUTH_FILE,
    CONTAINER_TLS,
    HBA_FILE,
    Endpoints,
    render_auth_file,
    render_hba,
    render_ini,
)
from postgres_platform.render.postgres import (
    CERT_FILE,
    KEY_FILE,
    PASSWORD_FILE,
    render_config_file,
    server_arguments,
    tls_and_hba_settings,
)
from postgres_platform.render.scram import stable_verifier

LOOPBACK = "127.0.0.1"
CONTAINER_CA = "/etc/postgresql/client-ca.crt"  # the stack CA, for psql run inside the container


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {args[0]} failed: {(done.stderr or done.stdout).strip()}")
    return done


def missing_for_real_servers() -> list[str]:
    """What a real-server run needs and this machine lacks: a Docker engine with the stacks' images
    (scripts/test.sh starts one and builds them: scripts/build_images.py)."""
    if shutil.which("docker") is None:
        return ["docker (the client)"]
    try:
        if docker("version", "--format", "{{.Server.Version}}", timeout=20, check=False).returncode != 0:
            return ["a running Docker engine (scripts/dockerd.sh start; DOCKER_HOST)"]
        absent = [ref for ref in BUILDS if docker("image", "inspect", ref, timeout=20, check=False).returncode != 0]
    except subprocess.TimeoutExpired:
        return ["a Docker engine that answers"]
    return [f"the image {ref} (scripts/build_images.py)" for ref in absent]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {LOOPBACK}:{port} after {seconds}s")


@dataclass
class Servers:
    """Postgres + PgBouncer containers for one stack config, with the access plan applied."""

    config: PlatformConfig
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgplat-")))
    pg_port: int = field(default_factory=free_port)
    bouncer_port: int = field(default_factory=free_port)
    superuser_password: str = field(default_factory=lambda: secrets.token_hex(16))
    passwords: dict[str, str] = field(default_factory=dict)
    admin_password: str = field(default_factory=lambda: secrets.token_hex(16))
    # As on a Hetzner host: a CA-signed certificate, ssl on, our pg_hba.conf, PgBouncer TLS both ways.
    tls: bool = False
    # With config.backup: pgBackRest with these secrets, a posix repository in this dir (or the config's S3).
    backup_secrets: RepoSecrets | None = None
    # Each instance its own container names (the stack part of names.container_name).
    name: str = field(default_factory=lambda: f"test-{secrets.token_hex(4)}")

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.crt"

    @property
    def _server_config(self) -> PlatformConfig:
        """The config the Postgres container runs: an adopted server's image is not the stack's to name,
        so the "legacy" server of the adoption tests runs the image the other stacks ship."""
        if self.config.postgres.image is not None:
            return self.config
        postgres = self.config.postgres.model_copy(update={"image": POSTGRES_17.reference})
        return self.config.model_copy(update={"postgres": postgres})

    def _spec(self) -> ContainerSpec:
        return postgres_container(self.name, self._server_config, "postgres", self._arguments(), initdb_password=True)

    @property
    def postgres_container(self) -> str:
        return self._spec().name

    @property
    def pgbouncer_container(self) -> str:
        return pgbouncer_container(self.name, self.config).name

    def start(self) -> Servers:
        plan = access.plan(self.config)
        self.passwords = {role.name: secrets.token_hex(16) for role in plan.logins}
        for directory in (self.data, self.root / "postgres"):
            directory.mkdir()
        if self.tls:
            self.issue_certificates()
        if self.config.backup is not None:
            self.repo.mkdir()
            shutil.chown(self.repo, int(POSTGRES_UID), int(POSTGRES_UID))
        self.install_config()
        self.start_postgres()
        if not self.config.adopted:  # an adopted server's state is the caller's to build, its plan to apply
            self.apply_plan()
            self.start_pgbouncer()
        return self

    def config_dirs(self) -> dict[str, tuple[str, str, list[File[str]]]]:
        """What the program writes into each config directory, by directory: (owner uid, container, files)."""
        postgres = [
            File("postgresql.conf", "0644", render_config_file(self.config, self._server_extra())),
            File(Path(PASSWORD_FILE).name, "0600", stable_verifier(SUPERUSER, self.superuser_password)),
        ]
        if self.tls:
            hba = render_pg_hba(self.config, HbaSources(app_cidrs=("127.0.0.0/8",), admin_cidrs=(f"{LOOPBACK}/32",)))
            postgres += [File("pg_hba.conf", "0644", hba), File(Path(CONTAINER_CA).name, "0644", self._read("ca.crt")),
                         File(Path(CERT_FILE).name, "0644", self._read("server.crt")),
                         File(Path(KEY_FILE).name, "0600", self._read("server.key"))]  # fmt: skip
        dirs = {"postgres": (POSTGRES_UID, self.postgres_container, postgres)}
        if self.config.backup is not None:
            conf = render_conf(self.config.backup, PGDATA, self.backup_secrets or RepoSecrets(cipher_pass="drill"))
            dirs["pgbackrest"] = (POSTGRES_UID, "", [File("pgbackrest.conf", "0600", conf)])
        if self.config.pgbouncer is None:
            return dirs
        ini = render_ini(
            self.config,
            Endpoints(LOOPBACK, self.bouncer_port, LOOPBACK, self.pg_port, AUTH_FILE, HBA_FILE,
                      tls=CONTAINER_TLS if self.tls else None),
        )  # fmt: skip
        bouncer = [
            File("pgbouncer.ini", "0644", ini),
            File("pgbouncer_hba.conf", "0644", render_hba(self.config)),
            File("userlist.txt", "0600", render_auth_file(self.passwords[AUTH_ROLE], self.admin_password)),
        ]
        if self.tls:
            bouncer += [File(Path(path).name, mode, self._read(source)) for path, mode, source in (
                (CONTAINER_TLS.ca_file, "0644", "ca.crt"), (CONTAINER_TLS.cert_file, "0644", "server.crt"),
                (CONTAINER_TLS.key_file, "0600", "server.key"))]  # fmt: skip
        dirs["pgbouncer"] = (PGBOUNCER_UID, self.pgbouncer_container, bouncer)
        return dirs

    def _read(self, name: str) -> str:
        return (self.root / "tls" / name).read_text()

    def install_config(self) -> None:
        """Install the files with the program's own script (render.files) and its reload: a running
        container gets SIGHUP through `docker kill`, as on a host after `pulumi up`."""
        for directory, (owner, container, files) in self.config_dirs().items():
            reload = reload_if_running(container) if container else "true"
            script = install_script(str(self.root / directory), owner, reload)
            subprocess.run(["sh", "-c", script], input=install_input(files), text=True, check=True,
                           capture_output=True, timeout=60)  # fmt: skip

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

    def issue_certificates(self) -> None:
        """A stack CA and a server certificate for 127.0.0.1 (EC P-256), as pulumi-tls issues them."""
        tls = self.root / "tls"
        tls.mkdir()

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tls, timeout=60)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=postgres-platform test CA", "-keyout", "ca.key",
                "-out", "ca.crt", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
        openssl("req", *ec, "-subj", f"/CN={LOOPBACK}", "-keyout", "server.key", "-out", "server.csr")
        (tls / "server.ext").write_text(f"subjectAltName=IP:{LOOPBACK}\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "server.ext", "-out", "server.crt")  # fmt: skip
        shutil.copy(tls / "ca.crt", self.ca_file)

    def _server_extra(self) -> dict[str, SettingValue]:
        """With TLS: the Hetzner container's settings; with backups, archiving."""
        extra: dict[str, SettingValue] = {}
        if self.tls:
            extra |= tls_and_hba_settings()
        if self.config.backup is not None:
            extra |= archive_settings(self.config.backup)
        return extra

    def _arguments(self) -> list[str]:
        """The container's own command, plus what a loopback test server on the host network needs."""
        return [*server_arguments(self.config, self._server_extra()),
                "-c", f"port={self.pg_port}", "-c", f"listen_addresses={LOOPBACK}", "-c", "fsync=off",
                "-c", "shared_buffers=128MB", "-c", "effective_cache_size=512MB"]  # fmt: skip

    def _sources(self, data: Path) -> dict[str, MountSource[str]]:
        sources = {DATA: MountSource(str(data)), CONFIG: MountSource(str(self.root / "postgres"))}
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

    def start_postgres(self) -> None:
        docker(*self._spec().docker_run(self._sources(self.data), extra_args=self._test_mounts())[1:])
        self._wait_for_postgres(self.pg_port)

    def _wait_for_postgres(self, port: int, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                psycopg.connect(self.superuser_dsn().replace(f"port={self.pg_port}", f"port={port}")).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def restart_postgres(self) -> None:
        """As a container restart on a host: its stop signal (SIGINT, a fast shutdown), then the same container."""
        docker("restart", "-t", "60", self.postgres_container)
        self._wait_for_postgres(self.pg_port)

    def pgbackrest(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """A rendered pgBackRest command line (render.backup) inside the Postgres container, as the
        Backups component runs it there; the test server's port is not 5432, so it is told."""
        port = ["env", f"PGBACKREST_PG1_PORT={self.pg_port}"]
        return subprocess.run(exec_argv(self.postgres_container, [*port, *argv]), capture_output=True, text=True,
                              errors="replace", timeout=300)  # fmt: skip

    def restore_copy(self, *, target: str) -> tuple[str, int]:
        """Restore to `target` (a timestamp) into a fresh data directory, as scripts/restore.py does
        (pgBackRest in a container of the image), and start it as a container on a port of its own;
        returns (its container, its port) once it has promoted."""
        copy, port = self.root / f"restored-{secrets.token_hex(4)}", free_port()
        copy.mkdir()
        shutil.chown(copy, int(POSTGRES_UID), int(POSTGRES_UID))
        copy.chmod(0o700)
        sources = self._sources(copy)
        command = ["postgres", "-c", f"port={port}", "-c", f"listen_addresses={LOOPBACK}"]
        spec = postgres_container(f"{self.name}-{copy.name}", self._server_config, "postgres", command,
                                  initdb_password=False)  # fmt: skip
        restore = docker("run", "--rm", "--network", "host", "-u", "postgres", *spec.mount_args(sources),
                         *self._test_mounts(), spec.image, *restore_command(PGDATA, target=target), timeout=300,
                         check=False)  # fmt: skip
        if restore.returncode != 0:
            raise RuntimeError(f"pgbackrest restore failed: {restore.stderr or restore.stdout}")
        docker(*spec.docker_run(sources, extra_args=self._test_mounts())[1:])
        self._wait_for_postgres(port)
        dsn = self.superuser_dsn().replace(f"port={self.pg_port}", f"port={port}")
        with psycopg.connect(dsn, autocommit=True) as c:
            for _ in range(600):
                if c.execute("SELECT pg_is_in_recovery()").fetchone() == (False,):
                    return spec.name, port
                time.sleep(0.1)
        raise TimeoutError("the restored copy did not promote")

    def stop_copy(self, copy: str) -> None:
        docker("rm", "-f", copy, check=False)

    def psql(
        self,
        script: str,
        variables: dict[str, str] | None = None,
        database: str = "postgres",
        login: tuple[str, str] | None = None,  # (user, password); None: the superuser
    ) -> str:
        """psql of the shipped image, inside the Postgres container, over TCP as `login`; the password
        reaches it through the environment (`docker exec -e NAME`) and variables on standard input,
        never an argument."""
        user, password = login or (SUPERUSER, self.superuser_password)
        command = ["psql", "-X", "-q", "-h", LOOPBACK, "-p", str(self.pg_port), "-U", user, "-d", database,
                   "-v", "ON_ERROR_STOP=1"]  # fmt: skip
        # Variables (SCRAM verifiers) as \set lines on standard input, never in an argument list.
        script = "".join(f"\\set {name} {sql.literal(value)}\n" for name, value in (variables or {}).items()) + script
        env = {"PGPASSWORD": password}
        if self.tls:
            env |= {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": CONTAINER_CA}
        result = subprocess.run(
            exec_argv(self.postgres_container, [*command, "-f", "-"], env_from_caller=list(env)), input=script,
            capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr}")
        return result.stdout

    def apply_plan(self, login: tuple[str, str] | None = None) -> None:
        """The access plan as SQL, each password as its stable SCRAM verifier (as the program sets it)."""
        script = sql.render_script(access.plan(self.config))
        verifiers = {sql.password_variable(role): stable_verifier(role, pw) for role, pw in self.passwords.items()}
        self.psql(script, verifiers, login=login)

    def start_pgbouncer(self) -> None:
        spec = pgbouncer_container(self.name, self.config)
        docker(*spec.docker_run({CONFIG: MountSource(str(self.root / "pgbouncer"))})[1:])
        try:
            wait_for_port(self.bouncer_port, 30)
        except TimeoutError:
            raise RuntimeError(f"PgBouncer did not start: {docker('logs', spec.name, check=False).stderr}") from None

    def container_state(self, container: str) -> tuple[str, str]:
        """(id, start time) of a container: a replaced container has a new id, a restarted one a new time."""
        shown = docker("inspect", "-f", "{{.Id}} {{.State.StartedAt}}", container).stdout.split()
        return shown[0], shown[1]

    def logs(self, container: str) -> str:
        done = docker("logs", "--tail", "200", container, check=False)
        return done.stdout + done.stderr

    def rendered_files(self) -> dict[str, str]:
        return {
            name: (self.root / "pgbouncer" / name).read_text()
            for name in ("pgbouncer.ini", "pgbouncer_hba.conf", "userlist.txt")
        }

    def versions(self) -> dict[str, str]:
        """What the running servers report: SHOW server_version, PgBouncer's SHOW VERSION, pgbackrest version."""
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        versions = {"postgres": str(row[0]).split()[0] if row else ""}
        if self.config.pgbouncer is not None:
            with psycopg.connect(self.console_dsn(), autocommit=True, prepare_threshold=None) as console:
                shown = console.execute("SHOW VERSION").fetchone()
            versions["pgbouncer"] = str(shown[0]).split()[-1] if shown else ""
        done = subprocess.run(exec_argv(self.postgres_container, ["pgbackrest", "version"]), capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        if done.returncode == 0:
            versions["pgbackrest"] = done.stdout.split()[-1]
        return versions

    def dsn(
        self, user: str, database: str, *, pooled: bool, password: str | None = None, sslmode: str | None = None
    ) -> str:
        """Pooled: `database` is the PgBouncer pool database (an app's own name). TLS: verify-full by default."""
        port = self.bouncer_port if pooled else self.pg_port
        secret = password if password is not None else self.passwords[user]
        dsn = f"host={LOOPBACK} port={port} dbname={database} user={user} password={secret} connect_timeout=10"
        if self.tls:
            dsn += f" sslmode={sslmode or 'verify-full'} sslrootcert={self.ca_file}"
        elif sslmode:
            dsn += f" sslmode={sslmode}"
        return dsn

    def superuser_dsn(self, database: str = "postgres") -> str:
        return self.dsn(SUPERUSER, database, pooled=False, password=self.superuser_password)

    def console_dsn(self) -> str:
        return self.dsn(PGBOUNCER_ADMIN, PGBOUNCER_CONSOLE_DB, pooled=True, password=self.admin_password)

    def stop(self) -> None:
        """Remove every container this instance started (by its name prefix), then its directory."""
        names = docker("ps", "-aq", "--filter", f"name=postgres-platform-{self.name}", check=False).stdout.split()
        if names:
            docker("rm", "-f", *names, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
