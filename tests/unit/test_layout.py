"""The layout the project promises: imports in one direction, a pure core, components that are only components."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pulumi

import components
import postgres_platform.model
import postgres_platform.render
from postgres_platform import harness, ops
from postgres_platform.model.stackfile import ROOT

# Who may import whom, by package. The pure core (model, render) at the bottom; components declare
# resources from it; the program composes components; the offline runner runs the program and the policy
# pack under mocks; ops (tools against a live server) and the harness (real servers for tests and drills)
# stand on the core only; the command line may use everything. A package may import itself.
CORE = {"postgres_platform.model", "postgres_platform.render"}
MAY_IMPORT: dict[str, set[str]] = {
    "postgres_platform.model": set(),
    "postgres_platform.render": {"postgres_platform.model"},
    "policy": CORE,
    "components": CORE,
    "postgres_platform.program": CORE | {"components"},
    "postgres_platform.offline": CORE | {"components", "postgres_platform.program", "policy"},
    "postgres_platform.ops": CORE,
    "postgres_platform.harness": CORE,
    "postgres_platform.docs": CORE | {"policy"},
    "postgres_platform.cli": CORE | {"postgres_platform." + p for p in ("offline", "ops", "harness", "docs")},
    "postgres_platform.sql_apply": {"components"},  # the old module name, kept for deployed state
    "__main__": {"postgres_platform.program"},
}
OURS = ("postgres_platform", "components", "policy")


def package_of(module: str) -> str | None:
    """The MAY_IMPORT package a module belongs to (the longest matching prefix)."""
    matches = [p for p in MAY_IMPORT if module == p or module.startswith(p + ".")]
    return max(matches, key=len) if matches else None


def imports_of(source: str) -> list[str]:
    """Every absolute import of our packages in a module, at any depth (imports inside functions too)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += (
                [node.module]
                if node.module != "postgres_platform"
                else [f"postgres_platform.{a.name}" for a in node.names]
            )
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name.split(".")[0] in OURS]


def wrong_way(module: str, source: str) -> list[str]:
    own = package_of(module)
    assert own is not None, f"{module} belongs to no package of the layout: add it to MAY_IMPORT"
    return [
        f"{module} imports {target}"
        for target in imports_of(source)
        if (to := package_of(target)) != own and to not in MAY_IMPORT[own]
    ]


def product_modules() -> dict[str, Path]:
    paths = [ROOT / "__main__.py", *(p for top in OURS for p in (ROOT / top).rglob("*.py") if p.stat().st_size)]
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in paths}


def test_imports_go_one_way() -> None:
    modules = product_modules()
    assert len(modules) > 40
    offenders = [line for module, path in modules.items() for line in wrong_way(module, path.read_text())]
    assert offenders == []


def test_the_direction_check_sees_an_import_against_it() -> None:
    assert wrong_way("components.access", "from postgres_platform.program import deploy") == [
        "components.access imports postgres_platform.program"
    ]
    assert wrong_way("postgres_platform.model.config", "def f():\n    import postgres_platform.render.sql") == [
        "postgres_platform.model.config imports postgres_platform.render.sql"
    ]
    assert wrong_way("postgres_platform.ops.grants", "from postgres_platform import harness") == [
        "postgres_platform.ops.grants imports postgres_platform.harness"
    ]
    assert wrong_way("postgres_platform.cli.preflight", "from postgres_platform.offline import program") == []


PROVIDER_SDKS = (
    "pulumi",
    "pulumi_postgresql",
    "pulumi_docker",
    "pulumi_hcloud",
    "pulumi_random",
    "pulumi_tls",
    "pulumi_command",
    "pulumi_policy",
)


def modules_of(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    name = package.__name__  # type: ignore[attr-defined]
    return [f"{name}.{m.name}" for m in pkgutil.iter_modules(path)]


def test_the_core_the_tools_and_the_harness_import_no_pulumi_sdk() -> None:
    """In a fresh interpreter: importing them must not pull in pulumi or a provider SDK."""
    pure = [m for p in (postgres_platform.model, postgres_platform.render, ops, harness) for m in modules_of(p)]
    assert len(pure) >= 15
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
    for name in [m for m in modules_of(components) if m != "components.resources"]:
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
    assert [p.name for p in (ROOT / "tests").rglob("*.py") if needle in p.read_text()] == []
