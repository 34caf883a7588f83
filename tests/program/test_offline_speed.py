"""What keeps a run under mocks fast leaves the process as it found it: the collector, the SDK, the cache."""

from __future__ import annotations

import gc
import hashlib

import pulumi
import pytest
from pulumi.runtime import resource

from postgres_platform.offline.program import run_program
from postgres_platform.render.scram import scram_verifier, stable_verifier


def one_resource() -> dict[str, object]:
    """Runs a program of one resource; what the collector and the SDK's stack trace were meanwhile."""
    seen: dict[str, object] = {}

    def program() -> None:
        seen["collecting"] = gc.isenabled()
        seen["stack_trace"] = resource._get_stack_trace
        pulumi.CustomResource("test:index:Thing", "thing", {"size": 1})

    run = run_program("local", {}, program=program)
    assert [r.name for r in run.resources] == ["thing"]
    return seen


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_rests_during_a_run_and_is_restored_after(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        assert one_resource()["collecting"] is False
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_the_collector_and_the_sdk_are_restored_when_the_program_raises() -> None:
    assert gc.isenabled()
    sdks = resource._get_stack_trace

    def program() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_program("local", {}, program=program)
    assert gc.isenabled() and resource._get_stack_trace is sdks


def test_a_run_records_no_stack_traces_and_gives_the_sdk_its_own_back() -> None:
    sdks = resource._get_stack_trace
    during = one_resource()["stack_trace"]
    assert during is not sdks and callable(during) and list(during().frames) == []
    assert resource._get_stack_trace is sdks


def test_a_stable_verifier_is_computed_once_and_is_the_same_text() -> None:
    role, password = "cache_probe_app", "a password for the cache test"
    salt = hashlib.sha256(f"postgres-platform:{role}:{password}".encode()).digest()[:16]
    before = stable_verifier.cache_info()
    first = stable_verifier(role, password)
    again = stable_verifier(role, password)
    assert first is again and first == scram_verifier(password, salt)
    assert stable_verifier.cache_info().hits == before.hits + 1
    assert stable_verifier(role, password + "!") != first
