"""The etcd and Patroni member specs as `docker run` argv (what the failover drill starts)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from postgres_platform.render.containers import CONFIG, DATA, MountSource
from postgres_platform.render.patroni import ETCD_DATA_DIR, etcd_args, etcd_container, patroni_container
from tests.helpers import fake_commands


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
    etcd = etcd_container(name="e", image="etcd-img", label="etcd", flags=flags, peers=["127.0.0.1:3", "127.0.0.1:5"])
    argv = etcd.docker_run({"etcd-data": MountSource("/srv/e")})
    assert etcd.entrypoint is not None and argv[argv.index("--entrypoint") + 1] == "sh"
    assert argv[argv.index("etcd-img") + 1 :] == ["-c", etcd.entrypoint[2], "etcd-member", *flags]  # $@: the flags
    assert "type=bind,source=/srv/e,target=/var/lib/etcd-member" in argv


FAKE_ETCDCTL = """#!/bin/sh
echo "etcdctl $*" >> "$CALLS"
case "$*" in
  *"member list"*) [ -n "$LISTED" ] || exit 1; printf '%b' "$LISTED" ;;
esac
"""
FAKE_ETCD = """#!/bin/sh
echo "etcd $*" >> "$CALLS"
"""


B = "8e9e05c52164694d, started, b, http://127.0.0.1:4, http://127.0.0.1:3, false\\n"


@pytest.mark.parametrize(
    ("listed", "calls"),
    [
        # A first create: no peer answers, so the member starts `new` as its flags say.
        ("", ["member list", "etcd --initial-cluster-state=new"]),
        # Its host replaced: the peers still list it, started, under its old ID (by its peer URL).
        (
            B + "91bc3c398fb3c146, started, a, http://127.0.0.1:2, http://127.0.0.1:1, false\\n",
            [
                "member list",
                "member remove 91bc3c398fb3c146",
                "member add a --peer-urls=http://127.0.0.1:2",
                "etcd --initial-cluster-state=existing",
            ],
        ),
        # Its ID was removed by hand already: it is added and joins.
        (B, ["member list", "member add a --peer-urls=http://127.0.0.1:2", "etcd --initial-cluster-state=existing"]),
        # A first create whose other two members formed the cluster first: listed (by the initial cluster)
        # with no client URLs, never run; it joins.
        (
            B + "91bc3c398fb3c146, started, a, http://127.0.0.1:2, , false\\n",
            ["member list", "etcd --initial-cluster-state=existing"],
        ),
    ],
)
def test_a_member_with_no_data_rejoins_where_its_peers_answer_and_starts_new_where_none_does(
    tmp_path: Path, listed: str, calls: list[str]
) -> None:
    members = {
        "a": ("127.0.0.1:1", "127.0.0.1:2"),
        "b": ("127.0.0.1:3", "127.0.0.1:4"),
        "c": ("127.0.0.1:5", "127.0.0.1:6"),
    }
    flags = etcd_args(name="a", members=members, data_dir=ETCD_DATA_DIR, token="t")
    spec = etcd_container(name="e", image="i", label="etcd", flags=flags, peers=["127.0.0.1:3", "127.0.0.1:5"])
    assert not Path(ETCD_DATA_DIR).exists()  # this machine has no member data where the script looks
    log = tmp_path / "calls"
    env = fake_commands(tmp_path / "bin", {"etcdctl": FAKE_ETCDCTL, "etcd": FAKE_ETCD}, CALLS=str(log), LISTED=listed)
    _, _, script, argv0 = spec.entrypoint or ()
    subprocess.run(["sh", "-c", script, argv0, *flags], env=env, check=True, timeout=30, capture_output=True)
    ran = log.read_text().splitlines()
    asked = "etcdctl --endpoints=http://127.0.0.1:3,http://127.0.0.1:5 --dial-timeout=3s --command-timeout=5s "
    assert [line.removeprefix(asked) for line in ran[:-1]] == calls[:-1]
    started = ran[-1].split()
    state = calls[-1].split()[1]
    assert started[0] == "etcd" and state in started
    assert started[1:] == [state if flag.startswith("--initial-cluster-state=") else flag for flag in flags]
