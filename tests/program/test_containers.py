"""One container spec (render.containers) for what `pulumi up` declares and what the tests start."""

from __future__ import annotations

from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render.containers import CONFIG, MountSource, pgbouncer_container
from tests.helpers import run_of

PROD = load_stack_values(read_stack_values(stack_file("prod")))


def test_the_declared_pgbouncer_container_is_the_one_the_tests_run() -> None:
    (declared,) = [
        c.inputs
        for c in run_of("prod").of_type("docker:index/container:Container")
        if c.inputs["labels"][0]["value"] == "pgbouncer"
    ]
    spec = pgbouncer_container("prod", PROD)
    argv = spec.docker_run({CONFIG: MountSource("/srv/pgbouncer")})
    assert (declared["name"], declared["image"]) == (spec.name, spec.image) and spec.image in argv
    assert declared["entrypoints"] == ["pgbouncer"] and argv[argv.index("--entrypoint") + 1] == "pgbouncer"
    assert declared["command"] == list(spec.command) == argv[-1:] == ["/etc/pgbouncer/pgbouncer.ini"]
    assert declared["user"] == argv[argv.index("--user") + 1] == "70"
    # maxClientConn 4,000 + 2 x 100 + 64 rounded up: the 2,000-client storm has its descriptors.
    assert declared["ulimits"] == [{"name": "nofile", "soft": 8192, "hard": 8192}]
    assert "nofile=8192:8192" in argv
    assert (declared["stopSignal"], declared["stopTimeout"]) == ("SIGINT", 60)
    assert argv[argv.index("--stop-signal") + 1 : argv.index("--stop-timeout") + 2] == [
        "SIGINT",
        "--stop-timeout",
        "60",
    ]
    assert declared["mounts"][0]["target"] == "/etc/pgbouncer" and declared["mounts"][0]["readOnly"] is True
    assert "type=bind,source=/srv/pgbouncer,target=/etc/pgbouncer,readonly" in argv
