"""The etcd and Patroni member specs as `docker run` argv (what the failover drill starts)."""

from __future__ import annotations

from postgres_platform.render.containers import CONFIG, DATA, MountSource
from postgres_platform.render.patroni import etcd_args, etcd_container, patroni_container


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
