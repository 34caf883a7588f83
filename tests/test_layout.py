"""The layout the project promises: pure model/render modules, components that are only components, no sys.path."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys

import pulumi

import components
import postgres_platform.model
import postgres_platform.render
from postgres_platform.stackfile import ROOT

PROVIDER_SDKS = ("pulumi", "pulumi_postgresql", "pulumi_docker", "pulumi_hcloud", "pulumi_random", "pulumi_tls",
                 "pulumi_command", "pulumi_policy")  # fmt: skip


def modules_of(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    name = package.__name__  # type: ignore[attr-defined]
    return [f"{name}.{m.name}" for m in pkgutil.iter_modules(path)]


def test_model_and_render_import_no_pulumi_sdk() -> None:
    """In a fresh interpreter: importing every pure module must not pull in pulumi or a provider SDK."""
    pure = modules_of(postgres_platform.model) + modules_of(postgres_platform.render)
    assert len(pure) >= 10
    probe = (
        f"import importlib, json, sys\nfor m in {pure!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in {PROVIDER_SDKS!r})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(result.stdout) == []


def test_the_probe_would_see_a_pulumi_import() -> None:
    probe = f"import json, sys, pulumi\nprint(json.dumps([k for k in sys.modules if k in {PROVIDER_SDKS!r}]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert "pulumi" in json.loads(result.stdout)


def test_components_hold_component_resources_and_their_args_only() -> None:
    for name in modules_of(components):
        tree = ast.parse((ROOT / (name.replace(".", "/") + ".py")).read_text())
        classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
        bases = {node.name: [ast.unparse(b) for b in node.bases] for node in classes}
        components_here = [c for c, b in bases.items() if "pulumi.ComponentResource" in b]
        assert components_here, name
        for cls, base in bases.items():
            assert "pulumi.ComponentResource" in base or not base, f"{name}.{cls} is neither a component nor args"
        module = __import__(name, fromlist=["_"])
        for cls in components_here:
            assert issubclass(getattr(module, cls), pulumi.ComponentResource)


def test_no_sys_path_edits_anywhere() -> None:
    needles = ("sys.path." + "insert", "sys.path." + "append")  # split, so this file does not match itself
    offenders = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if not {"venv", ".venv"} & set(path.parts) and any(n in path.read_text() for n in needles)
    ]
    assert offenders == []


def test_tests_share_helpers_by_fixture_or_helper_module_never_conftest() -> None:
    needle = "tests." + "conftest"
    assert [p.name for p in (ROOT / "tests").glob("*.py") if needle in p.read_text()] == []
