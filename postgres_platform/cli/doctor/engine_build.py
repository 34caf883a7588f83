"""The end-to-end runs' job (scripts/e2e.sh): go, the build of scripts/engine.sh its cache holds (current:
the key engine.sh computes, else stale), and the providers it could not build."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from postgres_platform.cli.doctor.checks import ENGINE_FIX, Check, run, script_assignments, which
from postgres_platform.model.stackfile import ROOT

ENGINE_SOURCES = ROOT / "engine"


def cache_roots(env: Mapping[str, str]) -> list[Path]:
    """Where scripts/engine.sh caches its builds: PGPLAT_CACHE, or /var/cache/..., or the user's cache."""
    if env.get("PGPLAT_CACHE"):
        return [Path(env["PGPLAT_CACHE"])]
    user = Path(env.get("XDG_CACHE_HOME") or Path(env.get("HOME", "~")).expanduser() / ".cache")
    return [Path("/var/cache/postgres-platform"), user / "postgres-platform"]


def complete(build: Path) -> bool:
    return (build / ".complete").exists() and (build / "pulumi").exists()


def engine_build(roots: list[Path], cli_version: str) -> Path | None:
    """The newest complete build of that CLI version (engine.sh's `<root>/engine/pulumi-<version>-<key>`)."""
    builds = [d for root in roots for d in (root / "engine").glob(f"pulumi-{cli_version}-*") if complete(d)]
    return max(builds, key=lambda d: d.stat().st_mtime, default=None)


def engine_key(settings: Mapping[str, str], go_version: str, sources: Path = ENGINE_SOURCES) -> str:
    """The directory name scripts/engine.sh builds into, as it computes it: the versions, its recipe, the
    Go toolchain and the hashes of engine/'s go.mod, go.sum, .go and .tsv files."""
    files = sorted(
        (f"./{p.relative_to(sources).as_posix()}", p)
        for p in sources.rglob("*")
        if p.is_file() and (p.name in ("go.mod", "go.sum") or p.suffix in (".go", ".tsv"))
    )
    lines = [
        f"recipe={settings.get('RECIPE')} cli={settings.get('CLI_VERSION')} langhost={settings.get('LANGHOST_VERSION')}"
        f" exec={settings.get('EXEC_SDK_VERSION')} go={go_version}",
        *(f"{name} {hashlib.sha256(p.read_bytes()).hexdigest()}  -" for name, p in files),
    ]
    return f"pulumi-{settings.get('CLI_VERSION')}-{hashlib.sha256(chr(10).join(lines).encode()).hexdigest()[:12]}"


def go_version(go: str) -> str | None:
    """`go1.26.8 linux/amd64`, as engine.sh puts it in its key."""
    done = run([go, "env", "GOVERSION", "GOOS", "GOARCH"], timeout=30)
    words = done.stdout.split() if done and done.returncode == 0 else []
    return f"{words[0]} {words[1]}/{words[2]}" if len(words) == 3 else None


def build_check(roots: list[Path], settings: Mapping[str, str], key: str | None) -> tuple[Check, Path | None]:
    """The build engine.sh would take from its cache (current), else the newest of that CLI (stale: it rebuilds)."""
    cli = settings.get("CLI_VERSION", "v?")
    current = next((r / "engine" / key for r in roots if key and complete(r / "engine" / key)), None)
    if current:
        return Check("e2e", "engine build", True, f"{current} (current)"), current
    newest = engine_build(roots, cli)
    if newest is None:
        where = ", ".join(map(str, roots))
        return Check("e2e", "engine build", False, f"no complete build of pulumi {cli} under {where}", ENGINE_FIX), None
    if key is None:  # without go the key is unknown, and engine.sh cannot run anyway
        return Check("e2e", "engine build", True, f"{newest} (not known to be current: no go)"), newest
    stale = f"{newest} is stale: engine.sh builds {key} (engine/ sources, versions or Go changed)"
    return Check("e2e", "engine build", False, stale, "bash scripts/engine.sh (a rebuild takes minutes)"), newest


def providers_check(directory: Path) -> Check:
    missing = (directory / "MISSING").read_text().split() if (directory / "MISSING").exists() else []
    detail = f"not built: {', '.join(missing)} (the e2e runs that need one skip; {directory}/MANIFEST says why)"
    return Check(
        "e2e",
        "engine providers",
        not missing,
        detail if missing else "every provider built",
        "a served provider version in engine/providers.tsv (engine/README.md, Providers)",
        required=False,
    )


def e2e_checks(env: Mapping[str, str]) -> list[Check]:
    settings = script_assignments()
    go = which("go", env.get("PATH", ""))
    version = go_version(go) if go else None
    build, directory = build_check(cache_roots(env), settings, engine_key(settings, version) if version else None)
    # engine.sh stops at once without go, even where its build is cached (scripts/e2e.sh always runs it).
    found_go = f"{go} ({version})" if go else "not on PATH (scripts/engine.sh needs it)"
    checks = [build, Check("e2e", "go", go is not None, found_go, "install Go")]
    return checks + ([providers_check(directory)] if directory else [])
