"""The real-server tests' job: the docker client, an engine answering on its socket (the Docker API over
HTTP, so no client is needed to ask), the images model/images.py builds, debootstrap to build their base."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import quote

from postgres_platform.cli.doctor.checks import Check, which
from postgres_platform.model.images import BUILDS

DEFAULT_SOCKETS = ("/run/postgres-platform-docker/docker.sock", "/var/run/docker.sock")
DOCKER_FIX = (
    "bash scripts/dockerd.sh start (as root), then export DOCKER_HOST=unix:///run/postgres-platform-docker/docker.sock"
)


def docker_socket(env: Mapping[str, str]) -> str | None:
    host = env.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host.removeprefix("unix://")
    return next((s for s in DEFAULT_SOCKETS if Path(s).exists()), None)


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over the engine's unix socket (the Docker API), so that no client binary is needed to ask."""

    def __init__(self, path: str, timeout: float = 5) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def docker_get(socket_path: str, url: str) -> tuple[int, str]:
    """GET on the Docker API: (status, body); OSError when nothing answers there."""
    connection = _UnixConnection(socket_path)
    try:
        connection.request("GET", url)
        response = connection.getresponse()
        return response.status, response.read(4096).decode(errors="replace")
    finally:
        connection.close()


CLIENT_DEFAULT = "/var/run/docker.sock"  # where the docker client (and so the harness) looks without DOCKER_HOST


def engine(ok: bool | None, detail: str, fix: str | None = DOCKER_FIX) -> Check:
    return Check("real-servers", "docker engine", ok, detail, fix)


def docker_check(env: Mapping[str, str], get: Callable[[str, str], tuple[int, str]] = docker_get) -> tuple[Check, bool]:
    """The engine answers `/_ping` with OK on the socket DOCKER_HOST names (or a default one), and the
    docker client the tests run finds it there. The flag: an engine answered (its images can be asked)."""
    host = env.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return engine(None, f"not checked: DOCKER_HOST={host} is not a unix socket"), False
    path = docker_socket(env)
    if path is None:
        return engine(False, "no DOCKER_HOST and no socket at " + ", ".join(DEFAULT_SOCKETS)), False
    try:
        status, body = get(path, "/_ping")
    except PermissionError as exc:
        return engine(False, f"{path}: {exc.strerror}", "run as root, or in the socket's group (docker)"), False
    except OSError as exc:
        return engine(False, f"{path}: {exc.strerror or exc}"), False
    if status != 200 or body.strip() != "OK":
        return engine(False, f"{path}: ping answered {status}"), False
    if not host and path != CLIENT_DEFAULT:
        unseen = f"{path} answers, but DOCKER_HOST is not set: the docker client looks at {CLIENT_DEFAULT}"
        return engine(False, unseen, f"export DOCKER_HOST=unix://{path}"), True
    return engine(True, f"{path}: answers"), True


def image_checks(socket_path: str, get: Callable[[str, str], tuple[int, str]] = docker_get) -> list[Check]:
    """The images model/images.py BUILDS names, by reference, in that engine."""
    checks = []
    for reference, build in BUILDS.items():
        try:
            status, _ = get(socket_path, f"/images/{quote(reference, safe='/:')}/json")
        except OSError as exc:
            status, reason = 0, str(exc.strerror or exc)
        else:
            reason = "present" if status == 200 else "absent" if status == 404 else f"the engine answered {status}"
        checks.append(
            Check(
                "real-servers",
                f"image {reference}",
                status == 200,
                f"{reason} (from images/{build.context})",
                "python3 scripts/build_images.py (base image: bash scripts/base_image.sh, with DOCKER_HOST exported)",
            )
        )
    return checks


def real_server_checks(env: Mapping[str, str]) -> list[Check]:
    path = env.get("PATH", "")
    client = which("docker", path)
    checks = [
        Check(
            "real-servers",
            "docker client",
            client is not None,
            client or "docker is not on PATH",
            "apt-get install docker.io",
        ),
    ]
    ping, answers = docker_check(env)
    checks.append(ping)
    images = image_checks(str(docker_socket(env))) if answers else []  # asked only of an engine that answers
    # debootstrap builds the images' Debian base where no registry serves it: needed only to build them.
    debootstrap = which("debootstrap", f"{path}:/usr/sbin:/sbin")
    checks.append(
        Check(
            "real-servers",
            "debootstrap",
            debootstrap is not None,
            (debootstrap or "not installed") + " (builds the images' base: scripts/base_image.sh)",
            "apt-get install debootstrap",
            required=not images or any(not c.ok for c in images),
        )
    )
    return checks + images
