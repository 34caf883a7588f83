"""The scale benchmark, run small: its generated stacks are valid, and what it measures adds up."""

from __future__ import annotations

from postgres_platform.cli import bench_scale
from postgres_platform.model import access
from postgres_platform.model.load import parse
from postgres_platform.model.stackfile import ROOT


def config_of(stack: dict[str, object]) -> object:
    values = stack["config"]
    assert isinstance(values, dict)
    return parse({key.removeprefix("postgres-platform:"): value for key, value in values.items()})


def test_generated_stacks_fit_their_budget_with_every_level() -> None:
    for apps in (10, 50, 500):
        config = config_of(bench_scale.generated_stack(apps))
        assert len(config.apps) == apps and len(config.databases) == max(1, apps // 10)  # type: ignore[attr-defined]
        assert {spec.access for spec in config.apps.values()} == {"read", "write", "migrate"}  # type: ignore[attr-defined]
        bigger = config_of(bench_scale.plus_one_app(bench_scale.generated_stack(apps)))
        assert len(access.plan(bigger).logins) == len(access.plan(config).logins) + 1  # type: ignore[arg-type]


def test_a_small_run_measures_resources_and_the_marginal_app() -> None:
    result = bench_scale.run([10], ROOT)
    (small,) = result["runs"]
    assert small["apps"] == 10 and small["databases"] == 1
    assert small["resourcesPerApp"] == round(small["resources"] / 10, 2)
    # A write app on its database's schemas: its role, its password and its retirement step.
    assert small["marginalResourcesPerApp"] == 3
    assert result["prod"]["resources"] > 100 and small["seconds"] > 0 and small["peakMb"] > 10
    # --against, the stack of one app more against this one: its time as a multiple of that stack's preflight.
    assert small["againstSeconds"] > 0 and small["againstPeakMb"] > 10
    assert 0 < small["againstTimesPreflight"] < 5
