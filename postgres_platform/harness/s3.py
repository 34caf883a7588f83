"""An S3-compatible server on loopback for backup drills and tests: moto over HTTP behind stunnel (TLS).

pgBackRest 2.45 needs TLS, a certificate for a DNS name (not an IP SAN) and path-style URIs; moto's own
TLS mode closes the connection after every response, so stunnel terminates TLS in front of it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from postgres_platform.harness.ports import free_port, wait_for_port
from postgres_platform.model.names import LOOPBACK

HOST = "localhost"  # the certificate's name: pgBackRest 2.45 does not match IP SANs
ACCESS_KEY, SECRET_KEY = "drill-access-key", "drill-secret-key"  # moto accepts any


def missing() -> list[str]:
    """What an S3 drill needs and this machine lacks."""
    return [name for name in ("stunnel4", "openssl") if shutil.which(name) is None] + (
        [] if _has_moto() else ["moto (pip install moto[server])"]
    )


def _has_moto() -> bool:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class LocalS3:
    """`with LocalS3() as s3:` starts it and always stops it (its processes, by their PIDs)."""

    bucket: str = "postgres-platform"
    region: str = "eu-central"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgplat-s3-")))
    http_port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate (also the CA pgBackRest verifies it with)."""
        return self.root / "s3.crt"

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LocalS3:
        """Start moto and stunnel and create the bucket; on a failure on the way, stop what started and raise it."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.root.chmod(0o755)  # the postgres OS user reads the certificate
        key = self.root / "s3.key"
        subject = ("-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}")
        self_signed = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *subject]
        files = ["-keyout", str(key), "-out", str(self.ca_file)]
        subprocess.run([*self_signed, *files], check=True, capture_output=True, timeout=60)
        self.ca_file.chmod(0o644)
        (self.root / "stunnel.conf").write_text(
            f"foreground = yes\npid =\n[s3]\naccept = {LOOPBACK}:{self.tls_port}\n"
            f"connect = {LOOPBACK}:{self.http_port}\ncert = {self.ca_file}\nkey = {key}\n"
        )
        moto = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.http_port)]
        with (self.root / "servers.log").open("wb") as log:  # the children write to their own copies
            for argv in (moto, ["stunnel4", str(self.root / "stunnel.conf")]):
                self._processes.append(subprocess.Popen(argv, stdout=log, stderr=log))
        wait_for_port(self.http_port, 30)
        wait_for_port(self.tls_port, 30)
        import boto3  # type: ignore[import-untyped]  # moto's dependency; no stubs installed

        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{LOOPBACK}:{self.http_port}",
            region_name=self.region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": self.region})

    def stop(self) -> None:
        for process in self._processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        shutil.rmtree(self.root, ignore_errors=True)
