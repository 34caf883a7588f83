"""The TLS material of a tls=True run: a stack CA and a server certificate for the loopback address
(EC P-256), as pulumi-tls issues them for a Hetzner stack."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from postgres_platform.model.names import LOOPBACK
from postgres_platform.render.files import File


@dataclass(frozen=True)
class Certificates:
    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def cert_file(self) -> Path:
        return self.directory / "server.crt"

    @property
    def key_file(self) -> Path:
        return self.directory / "server.key"

    def files(self, *, ca: str, cert: str, key: str) -> list[File[str]]:
        """The CA, the certificate and its key as config files named as these container paths name them."""
        return [
            File(Path(ca).name, "0644", self.ca_file.read_text()),
            File(Path(cert).name, "0644", self.cert_file.read_text()),
            File(Path(key).name, "0600", self.key_file.read_text()),
        ]

    def issue(self) -> Certificates:
        self.directory.mkdir(exist_ok=True)

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.directory, timeout=60)

        new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        ca, cert, key = self.ca_file.name, self.cert_file.name, self.key_file.name
        usage = ("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        ca_subject = ("-subj", "/CN=postgres-platform test CA")
        openssl("req", "-x509", *new_key, "-days", "2", *ca_subject, "-keyout", "ca.key", "-out", ca, *usage)
        openssl("req", *new_key, "-subj", f"/CN={LOOPBACK}", "-keyout", key, "-out", "server.csr")
        (self.directory / "server.ext").write_text(f"subjectAltName=IP:{LOOPBACK}\nextendedKeyUsage=serverAuth\n")
        signing = ("-CA", ca, "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "server.ext")
        openssl("x509", "-req", "-in", "server.csr", *signing, "-out", cert)
        return self
