"""The etcd and Patroni member specs as `docker run` argv (what the failover drill starts) and the env-file
loader the member's command runs, run here for real: the file's lines taken literally, PATRONI_* only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from postgres_platform.render.containers import CONFIG, DATA, MountSource
from postgres_platform.render.patroni import ENV_LOADER, etcd_args, etcd_container, patroni_container, patroni_env


def test_the_loader_puts_the_env_files_passwords_literally_into_the_commands_environment(tmp_path: Path) -> None:
    env = tmp_path / "patroni.env"
    tricky = "a=b'c\"d $HOME `x` \\n"  # what a shell would expand or unquote: kept as it is
    env.write_text(patroni_env(superuser=tricky, replication="r", rewind="w", restapi="a") + "OTHER=nope\n")
    done = subprocess.run(
        [sys.executable, "-c", ENV_LOADER, str(env), "env"], capture_output=True, text=True, check=True, timeout=30
    )
    lines = done.stdout.splitlines()
    assert f"PATRONI_SUPERUSER_PASSWORD={tricky}" in lines
    assert {"PATRONI_REPLICATION_PASSWORD=r", "PATRONI_REWIND_PASSWORD=w", "PATRONI_RESTAPI_PASSWORD=a"} <= set(lines)
    assert not any(line.startswith("OTHER=") for line in lines)  # only Patroni's variables
    assert tricky not in " ".join([sys.executable, "-c", ENV_LOADER, str(env), "env"])  # never an argv


def test_the_member_and_etcd_specs_run_as_docker_run_on_the_host_network() -> None:
    spec = patroni_container(name="m", image="img", label="postgres")
    argv = spec.docker_run({CONFIG: MountSource("/srv/m"), DATA: MountSource("/srv/m-data")})
    assert argv[:6] == ["docker", "run", "-d", "--name", "m", "--network"] and "host" in argv
    assert "type=bind,source=/srv/m,target=/etc/postgresql,readonly" in argv
    assert "type=bind,source=/srv/m-data,target=/var/lib/postgresql/data" in argv
    assert "--env" not in argv and "--env-file" not in argv
    assert argv[argv.index("img") + 1 :] == list(spec.command)
    members = {
        "a": ("127.0.0.1:1", "127.0.0.1:2"),
        "b": ("127.0.0.1:3", "127.0.0.1:4"),
        "c": ("127.0.0.1:5", "127.0.0.1:6"),
    }
    flags = etcd_args(name="a", members=members, data_dir="/var/lib/etcd-member/data", token="t")
    etcd = etcd_container(name="e", image="etcd-img", label="etcd", flags=flags)
    argv = etcd.docker_run({"etcd-data": MountSource("/srv/e")})
    assert argv[argv.index("etcd-img") + 1 :] == flags  # the image's own entrypoint: etcd
    assert "type=bind,source=/srv/e,target=/var/lib/etcd-member" in argv
