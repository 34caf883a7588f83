"""A real PostgreSQL and PgBouncer on loopback, configured from a stack: for benchmarks, drills and tests.

Product code, not a test helper: scripts/bench_pool.py (and any drill that starts a real server) runs it.
Postgres gets the same `-c` settings the container gets; PgBouncer runs the pgbouncer.ini and auth
file the program renders; the access plan is applied with the script scripts/render_sql.py prints.
As root (CI) the servers run as the `postgres` OS user: initdb and PgBouncer refuse root.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from postgres_platform.model import access
from postgres_platform.model.config import PlatformConfig, SettingValue
from postgres_platform.model.names import AUTH_ROLE, PGBOUNCER_ADMIN, PGBOUNCER_CONSOLE_DB, SUPERUSER, owner_role
from postgres_platform.render import sql
from postgres_platform.render.backup import RepoSecrets, archive_settings, render_conf, restore_command
from postgres_platform.render.files import File, install_input, install_script
from postgres_platform.render.pg_hba import HbaSources, render_pg_hba
from postgres_platform.render.pgbouncer import Endpoints, PgBouncerTls, render_auth_file, render_hba, render_ini
from postgres_platform.render.postgres import CONFIG_FILE, render_config_file, server_arguments, tls_and_hba_settings
from postgres_platform.render.scram import stable_verifier

PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/local/bin", "/usr/bin")
LOOPBACK = "127.0.0.1"


def _find(binary: str, extra: tuple[str, ...] = ()) -> str | None:
    for directory in (*PG_BIN_DIRS, *extra):
        candidate = Path(directory) / binary
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(binary)


def pgbouncer_version() -> tuple[int, ...]:
    """This machine's PgBouncer, e.g. (1, 18, 0): some behaviours the tests show depend on it."""
    binary = _find("pgbouncer", ("/usr/sbin",)) or "pgbouncer"
    first = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout.split("\n")[0]
    return tuple(int(part) for part in first.split()[-1].split("."))


def missing_binaries() -> list[str]:
    """What a real-server run needs and this machine lacks."""
    wanted = {
        "initdb": _find("initdb"),
        "pg_ctl": _find("pg_ctl"),
        "postgres": _find("postgres"),
        "psql": _find("psql"),
        "pgbouncer": _find("pgbouncer", ("/usr/sbin",)),
    }
    missing = [name for name, path in wanted.items() if path is None]
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser (to run the servers as the postgres OS user)")
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {LOOPBACK}:{port} after {seconds}s")


def _wait_for_file(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear after {seconds}s")
        time.sleep(0.05)


@dataclass
class Servers:
    """Postgres + PgBouncer for one stack config, with the access plan applied."""

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

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    def _env(self) -> dict[str, str]:
        """pgBackRest finds this dir's config, port and socket through its PGBACKREST_* variables, so the
        commands the program renders run here unchanged."""
        if self.config.backup is None:
            return {}
        return {
            "PGBACKREST_CONFIG": str(self.root / "pgbackrest.conf"),
            "PGBACKREST_PG1_PORT": str(self.pg_port),
            "PGBACKREST_PG1_SOCKET_PATH": str(self.root),
            "PGBACKREST_LOCK_PATH": str(self.root / "lock"),
        }

    def pgbackrest(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """A rendered pgBackRest command line (render.backup), as the server's OS user, in this dir's setup."""
        env_prefix = ["env", *(f"{k}={v}" for k, v in self._env().items())]
        return subprocess.run(
            _as_server_user([*env_prefix, *argv]), capture_output=True, text=True, errors="replace", timeout=300
        )

    def start(self) -> Servers:
        plan = access.plan(self.config)
        self.passwords = {role.name: secrets.token_hex(16) for role in plan.logins}
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._write(self.root / "pwfile", self.superuser_password + "\n")
        self._run_as_server(
            [_find("initdb") or "initdb", "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8", "--auth-local=trust",
             "--auth-host=scram-sha-256", f"--pwfile={self.root / 'pwfile'}", "--no-instructions"]
        )  # fmt: skip
        if self.tls:
            self.issue_certificates()
        if self.config.backup is not None:
            self.repo.mkdir()
            if os.geteuid() == 0:
                shutil.chown(self.repo, "postgres", "postgres")
        self.install_config()
        self.start_postgres()
        if not self.config.adopted:  # an adopted server's state is the caller's to build, its plan to apply
            self.apply_plan()
            self.start_pgbouncer()
        return self

    def config_files(self) -> list[File]:
        """What the program writes into the Postgres and PgBouncer config directories, with this dir's paths."""
        files = [File("postgresql.conf", "0600", render_config_file(self.config, self._server_extra()))]
        if self.tls:
            hba = render_pg_hba(self.config, HbaSources(app_cidrs=("127.0.0.0/8",), admin_cidrs=(f"{LOOPBACK}/32",)))
            files.append(File("pg_hba.conf", "0600", hba))
        if self.config.pgbouncer is None:
            return files
        ini = render_ini(
            self.config,
            Endpoints(LOOPBACK, self.bouncer_port, LOOPBACK, self.pg_port, str(self.root / "userlist.txt"),
                      str(self.root / "pgbouncer_hba.conf"), unix_socket_dir=str(self.root),
                      tls=PgBouncerTls(str(self.ca_file), str(self.root / "server.crt"), str(self.root / "server.key"))
                      if self.tls else None),
        )  # fmt: skip
        ini += f"logfile = {self.root / 'pgbouncer.log'}\npidfile = {self.root / 'pgbouncer.pid'}\n"
        if self.config.backup is not None:
            secrets_ = self.backup_secrets or RepoSecrets(cipher_pass="drill")
            conf = render_conf(self.config.backup, str(self.data), secrets_, repo_path=str(self.repo))
            files.append(File("pgbackrest.conf", "0600", conf))
        return [
            *files,
            File("pgbouncer.ini", "0600", ini),
            File("pgbouncer_hba.conf", "0600", render_hba(self.config)),
            File("userlist.txt", "0600", render_auth_file(self.passwords[AUTH_ROLE], self.admin_password)),
        ]

    def install_config(self) -> None:
        """Install the files with the program's own script (render.files); running servers reload (SIGHUP)."""
        postmaster, bouncer = self.data / "postmaster.pid", self.root / "pgbouncer.pid"
        reload = (
            f'[ -f {postmaster} ] && kill -HUP "$(head -n 1 {postmaster})"\n'
            f'[ -f {bouncer} ] && kill -HUP "$(cat {bouncer})"\n'
            "true"
        )
        script = install_script(str(self.root), "postgres", reload, mode_when_not_root=None)
        subprocess.run(["sh", "-c", script], input=install_input(self.config_files()), text=True, check=True,
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

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.crt"

    def issue_certificates(self) -> None:
        """A stack CA and a server certificate for 127.0.0.1 (EC P-256), as pulumi-tls issues them."""

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.root, timeout=60)

        openssl(
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=postgres-platform test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )
        openssl(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            f"/CN={LOOPBACK}",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        )
        (self.root / "server.ext").write_text(f"subjectAltName=IP:{LOOPBACK}\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "server.ext", "-out", "server.crt")  # fmt: skip
        for name in ("ca.crt", "server.crt", "server.key"):
            self._write(self.root / name, (self.root / name).read_text())

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def _run_as_server(self, command: list[str]) -> None:
        env_prefix = ["env", *(f"{k}={v}" for k, v in self._env().items())]  # archive_command inherits it
        subprocess.run(_as_server_user([*env_prefix, *command]), check=True, capture_output=True, timeout=120)

    def _pg_ctl(self, *args: str, data: Path | None = None) -> None:
        self._run_as_server([_find("pg_ctl") or "pg_ctl", "-D", str(data or self.data), *args])

    def restore_copy(self, *, target: str) -> tuple[Path, int]:
        """Restore to `target` (a timestamp) into a fresh data directory, as scripts/restore.py does, and
        start it on a port of its own; returns (its data dir, its port) once it has promoted."""
        copy, port = self.root / f"restored-{secrets.token_hex(4)}", free_port()
        done = self.pgbackrest(restore_command(str(copy), target=target))
        if done.returncode != 0:
            raise RuntimeError(f"pgbackrest restore failed: {done.stderr or done.stdout}")
        options = f"-c port={port} -c listen_addresses={LOOPBACK} -c unix_socket_directories={self.root}"
        self._pg_ctl("-l", str(copy) + ".log", "-w", "-t", "120", "-o", options, "start", data=copy)
        with psycopg.connect(
            self.superuser_dsn().replace(f"port={self.pg_port}", f"port={port}"), autocommit=True
        ) as c:
            for _ in range(600):
                if c.execute("SELECT pg_is_in_recovery()").fetchone() == (False,):
                    return copy, port
                time.sleep(0.1)
        raise TimeoutError("the restored copy did not promote")

    def stop_copy(self, copy: Path) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("-m", "immediate", "-w", "stop", data=copy)

    def _server_extra(self) -> dict[str, SettingValue]:
        """With TLS: the Hetzner container's settings, with this temp dir's file paths; with backups, archiving."""
        extra: dict[str, SettingValue] = {}
        if self.tls:
            files = {name: str(self.root / Path(str(path)).name) for name, path in tls_and_hba_settings().items()
                     if name.endswith("_file")}  # fmt: skip
            extra |= {**tls_and_hba_settings(), **files}
        if self.config.backup is not None:
            extra |= archive_settings(self.config.backup)
        return extra

    def start_postgres(self) -> None:
        # The container's own arguments and file, plus what a loopback test server needs.
        settings = server_arguments(self.config, self._server_extra())[1:]
        settings[settings.index(f"config_file={CONFIG_FILE}")] = f"config_file={self.root / 'postgresql.conf'}"
        settings += ["-c", f"port={self.pg_port}", "-c", f"listen_addresses={LOOPBACK}",
                     "-c", f"unix_socket_directories={self.root}", "-c", "fsync=off",
                     "-c", "shared_buffers=128MB", "-c", "effective_cache_size=512MB"]  # fmt: skip
        self._pg_ctl("-l", str(self.root / "postgres.log"), "-w", "-t", "60", "-o", " ".join(settings), "start")

    def restart_postgres(self) -> None:
        # -l again: without it the new postmaster keeps our stdout pipe open and run() never returns.
        self._pg_ctl("-l", str(self.root / "postgres.log"), "-w", "-t", "60", "-m", "fast", "restart")

    def psql(
        self,
        script: str,
        variables: dict[str, str] | None = None,
        database: str = "postgres",
        login: tuple[str, str] | None = None,  # (user, password); None: the superuser
    ) -> str:
        user, password = login or (SUPERUSER, self.superuser_password)
        command = [_find("psql") or "psql", "-X", "-q", "-h", LOOPBACK, "-p", str(self.pg_port), "-U", user,
                   "-d", database, "-v", "ON_ERROR_STOP=1"]  # fmt: skip
        for name, value in (variables or {}).items():
            command += ["-v", f"{name}={value}"]
        env = {**os.environ, "PGPASSWORD": password}
        if self.tls:
            env |= {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(self.ca_file)}
        result = subprocess.run(
            [*command, "-f", "-"], input=script, capture_output=True, text=True, env=env, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr}")
        return result.stdout

    def apply_plan(self, login: tuple[str, str] | None = None) -> None:
        """The access plan as SQL, each password as its stable SCRAM verifier (as the program sets it)."""
        script = sql.render_script(access.plan(self.config))
        verifiers = {sql.password_variable(role): stable_verifier(role, pw) for role, pw in self.passwords.items()}
        self.psql(script, verifiers, login=login)

    def start_pgbouncer(self) -> None:
        # Room for max_client_conn clients plus server connections (the default soft limit is 1024).
        fds = self.config.bouncer().max_client_conn + 2 * self.config.postgres.max_connections + 64
        pgbouncer = _find("pgbouncer", ("/usr/sbin",)) or "pgbouncer"
        raise_fds = f'ulimit -n {fds} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"'
        self._run_as_server(["sh", "-c", raise_fds, pgbouncer, "-d", str(self.root / "pgbouncer.ini")])
        wait_for_port(self.bouncer_port, 30)
        _wait_for_file(self.root / "pgbouncer.pid", 10)

    def rendered_files(self) -> dict[str, str]:
        return {
            name: (self.root / name).read_text() for name in ("pgbouncer.ini", "pgbouncer_hba.conf", "userlist.txt")
        }

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
        pid_file = self.root / "pgbouncer.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGINT)
        for data in [self.data, *self.root.glob("restored-*")]:
            if (data / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.CalledProcessError):
                    self._pg_ctl("-m", "immediate", "-w", "stop", data=data)
        shutil.rmtree(self.root, ignore_errors=True)
