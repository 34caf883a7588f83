"""The docs a user finds their way in: generated pages current, every key and policy documented, links that
lead somewhere, a short README, and nothing that points outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from policy.policies import POLICIES
from postgres_platform.docs import DOCS_DIR, PAGES, stale, write
from postgres_platform.docs.__main__ import main
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.stackfile import ROOT

README = ROOT / "README.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)


def run_docs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "postgres_platform.docs", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_the_committed_pages_are_current() -> None:
    done = run_docs("--check")
    assert (done.returncode, done.stderr) == (0, "")


def test_check_names_an_edited_page_and_the_command_that_fixes_it(tmp_path: Path) -> None:
    write(tmp_path)
    assert stale(tmp_path) == []
    page = tmp_path / "policies.md"
    page.write_text(page.read_text().replace("## connection-budget", "## connection budget"))
    done = run_docs("--check", "--docs-dir", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr == (
        f"{page}: stale, regenerate it with `python3 -m postgres_platform.docs --docs-dir {tmp_path}`\n"
    )


def test_check_sees_a_missing_page_and_writing_makes_it_current(tmp_path: Path) -> None:
    assert main(["--check", "--docs-dir", str(tmp_path)]) == 1
    assert main(["--docs-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PAGES)
    assert main(["--check", "--docs-dir", str(tmp_path)]) == 0


def models_of(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from models_of(arg)


def schema_keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[str]:
    """Every key a stack file may hold, as it spells it, at any depth."""
    seen.add(model)
    for name, field in model.model_fields.items():
        yield field.alias or name
        for nested in models_of(field.annotation):
            if nested not in seen:
                yield from schema_keys(nested, seen)


def test_every_key_of_the_schema_is_in_the_configuration_reference() -> None:
    page = (DOCS_DIR / "configuration.md").read_text()
    keys = set(schema_keys(PlatformConfig, set()))
    assert {"target", "externalRoles", "connectionLimit", "pgbouncerHost", "retentionFull"} <= keys
    assert [key for key in sorted(keys) if f"| `{key}` |" not in page] == []


def test_every_policy_has_its_section() -> None:
    page = (DOCS_DIR / "policies.md").read_text()
    assert [p.name for p in POLICIES if f"\n## {p.name}\n" not in page] == []


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS_DIR.rglob("*.md"))]


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(h) for h in HEADING.findall(text)} | set(ANCHOR.findall(text))


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Relative links of a page whose file, or heading in it, does not exist (code blocks aside)."""
    broken = []
    name = path.relative_to(root)
    for target in LINK.findall(FENCE.sub("", path.read_text())):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{name}: {target} (no such file)")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{name}: {target} (no such heading)")
    return broken


def test_every_relative_link_leads_to_a_file_and_heading_that_exist() -> None:
    files = doc_files()
    assert len(files) > 15
    assert [line for path in files for line in broken_links(path)] == []


def test_the_link_check_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# There\n")
    page.write_text("[a](there.md#there) [b](gone.md) [c](there.md#nowhere) `x`\n```\n[d](in-code.md)\n```\n")
    assert broken_links(page, tmp_path) == [
        "page.md: gone.md (no such file)",
        "page.md: there.md#nowhere (no such heading)",
    ]


def test_the_readme_is_short_and_names_the_test_command() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 160
    assert "bash scripts/test.sh" in text
    assert "python3 scripts/preflight.py local" in text


def test_no_doc_points_at_documents_outside_the_repository() -> None:
    words = re.compile(r"runbook|seed|design\.md", re.IGNORECASE)
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in doc_files() for m in words.finditer(p.read_text())]
    assert found == []
