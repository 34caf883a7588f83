"""A new image for Patroni's members is refused under the real engine: preview and up stop in the
engine's one line naming postgres.image and both images; the member waiting for the check (as
components/patroni.py's do) is not touched, and the recorded image stays the old one."""

from __future__ import annotations

from pathlib import Path

from components.resources.member_image import IMAGE_CHANGE_REFUSED
from tests.e2e.cli import Engine

PROGRAM = Path(__file__).parent / "programs" / "member_image"
OLD, NEW = (
    "postgres-platform/postgres:17.11-deb13u1-patroni4.0.7",
    "postgres-platform/postgres:17.12-deb13u1-patroni4.0.7",
)


def test_a_new_member_image_stops_preview_and_up_and_the_old_one_stays(engine: Engine) -> None:
    project = engine.project("member-image", PROGRAM)
    log = engine.home / "member.log"  # what reached the member: an image a line
    engine.new_stack(project, "e2e", {"e2e:image": OLD, "e2e:log": str(log)}, {})
    engine.run(project, "up", "--yes")
    engine.run(project, "preview", "--expect-no-changes")

    engine.run(project, "config", "set", "e2e:image", NEW)
    expected = IMAGE_CHANGE_REFUSED.format(new=NEW, old=OLD)
    for command in (("preview",), ("up", "--yes")):
        done = engine.run(project, *command, check=False)
        text = done.stdout + done.stderr
        assert done.returncode != 0 and expected in text and "Traceback" not in text, text
    assert log.read_text().splitlines() == [OLD]  # created once; the refused image never reached it
    engine.run(project, "config", "set", "e2e:image", OLD)
    engine.run(project, "preview", "--expect-no-changes")  # the up above recorded nothing
    engine.run(project, "destroy", "--yes")
