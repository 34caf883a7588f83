"""The Docker CLI as the harness uses it: what a real-server run needs, containers started from a spec
(render.containers) and removed by their ids, a one-off container, a container's state and logs."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence

from postgres_platform.model.images import BUILDS
from postgres_platform.render.containers import ContainerSpec, MountSource


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(["docker", *args], timeout=timeout, check=check)


def _run(argv: Sequence[str], *, timeout: float, check: bool) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {argv[1]} failed: {(done.stderr or done.stdout).strip()}")
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


def remove(*containers: str) -> None:
    """`docker rm -f` by id or name; a container already gone is no error."""
    if containers:
        docker("rm", "-f", *containers, check=False)


class Containers:
    """The containers one run started, by name, each removed by its id at the end, whatever failed after."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def start(
        self, spec: ContainerSpec, sources: Mapping[str, MountSource[str]], *, extra_args: Sequence[str] = ()
    ) -> None:
        """`docker run -d` of the spec (its docker_run). A failed run can leave the container created but
        not started, with no id printed: that one is removed by its name."""
        try:
            done = _run(spec.docker_run(sources, extra_args=extra_args), timeout=120, check=True)
        except (RuntimeError, subprocess.TimeoutExpired):
            remove(spec.name)
            raise
        self._ids[spec.name] = done.stdout.strip()

    def remove(self, name: str) -> None:
        remove(self._ids.pop(name, name))

    def remove_all(self) -> None:
        remove(*self._ids.values())
        self._ids.clear()


def run_once(name: str, args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    """`docker run --rm --name NAME ARGS`, to its end; when its time runs out the container is removed
    (the client's end does not end it)."""
    try:
        return docker("run", "--rm", "--name", name, *args, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        remove(name)
        raise


def container_state(container: str) -> tuple[str, str]:
    """(id, start time) of a container: a replaced container has a new id, a restarted one a new time."""
    shown = docker("inspect", "-f", "{{.Id}} {{.State.StartedAt}}", container).stdout.split()
    return shown[0], shown[1]


def logs(container: str) -> str:
    done = docker("logs", "--tail", "200", container, check=False)
    return done.stdout + done.stderr
