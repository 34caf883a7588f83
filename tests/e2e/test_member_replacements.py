"""The order MemberReplacements relies on, under the real engine (tests/e2e/programs/member_replacements:
the members' and the leads' wiring with stand-in resources, as the engine build has no Docker or
pulumi-command plugin): a first up creates each member after the lead before it; a new image replaces
db-2 while db-1 leads, then db-1 while db-2 leads, then db-1 leads again, and nothing else runs; a step
that fails stops the up before the next member, and the next up runs it again."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.cli import Engine

PROGRAM = Path(__file__).parent / "programs" / "member_replacements"
OLD, NEW, NEWER = "pg:17.11", "pg:17.12", "pg:17.13"


def test_a_new_image_replaces_each_member_while_the_other_leads(engine: Engine) -> None:
    project = engine.project("member-replacements", PROGRAM)
    log = engine.home / "replacements.log"
    engine.new_stack(project, "e2e", {"e2e:image": OLD, "e2e:log": str(log)}, {})

    def ran() -> list[str]:
        lines = log.read_text().splitlines()
        log.write_text("")
        return lines

    engine.run(project, "up", "--yes")
    assert ran() == [
        "lead db-1 (before-replica)",
        f"create db-2 {OLD}",
        "lead db-2 (before-primary)",
        f"create db-1 {OLD}",
        "lead db-1 (after)",
        "patch",
    ]
    engine.run(project, "preview", "--expect-no-changes")

    engine.run(project, "config", "set", "e2e:image", NEW)
    engine.run(project, "up", "--yes")
    assert ran() == [
        "lead db-1 (before-replica)",
        f"delete db-2 {OLD}",
        f"create db-2 {NEW}",
        "lead db-2 (before-primary)",
        f"delete db-1 {OLD}",
        f"create db-1 {NEW}",
        "lead db-1 (after)",
    ]  # the patch waited and did not run again

    engine.run(project, "config", "set", "e2e:image", NEWER)
    engine.run(project, "config", "set", "e2e:fail", "before-primary")
    done = engine.run(project, "up", "--yes", check=False)
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "db-2 did not take the lead (asked to fail)" in text, text
    assert ran() == ["lead db-1 (before-replica)", f"delete db-2 {NEW}", f"create db-2 {NEWER}"]  # db-1 untouched
    engine.run(project, "config", "rm", "e2e:fail")
    engine.run(project, "up", "--yes")
    assert ran() == [
        "lead db-2 (before-primary)",
        f"delete db-1 {NEW}",
        f"create db-1 {NEWER}",
        "lead db-1 (after)",
    ]
    engine.run(project, "preview", "--expect-no-changes")
    engine.run(project, "destroy", "--yes")
