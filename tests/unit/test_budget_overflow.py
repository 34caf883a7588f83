"""An over-budget config says by how much and what pushed it over; the secrets `pulumi up` will ask for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from postgres_platform.model import budget
from postgres_platform.model.config import ConfigError
from postgres_platform.model.load import load_stack_values, parse
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline import secrets
from tests.helpers import valid_config


def over_budget_lines(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    return caught.value.lines


def fits() -> budget.ServerBudget:
    return budget.compute(parse(valid_config()))[0]


def test_an_over_budget_line_says_by_how_much_and_names_the_largest_roles() -> None:
    raw = valid_config()
    raw["apps"]["gateway_app"]["connectionLimit"] = 70  # 41 - 15 + 70 = 96 roles + 5 headroom > 97 usable
    (line,) = over_budget_lines(raw)
    assert isinstance(line, budget.OverBudget)
    server = line.server
    assert server.over == -server.free == 96 + 5 - 97
    assert line.startswith("postgres.maxConnections: ") and line.endswith(", got 100") and "\n" not in line
    assert f"{server.over} over" in line
    assert "the largest: gateway_app 70, webhook_app 10, grafana_ro 5" in line


def test_roles_that_grew_or_are_new_are_named_with_what_they_added() -> None:
    old = fits()
    raw = valid_config()
    raw["apps"]["webhook_app"]["connectionLimit"] = 30  # +20
    raw["apps"]["worker_app"]["connectionLimit"] = 4  # shrank: not a cause
    raw["externalRoles"]["metabase_ro"] = {"connectionLimit": 40}  # new: +40
    (line,) = over_budget_lines(raw)
    assert isinstance(line, budget.OverBudget)
    grown = budget.growth(old, line.server)
    assert [(g.entry.role, g.before, g.added) for g in grown] == [("metabase_ro", None, 40), ("webhook_app", 10, 20)]
    against = budget.overflow_line(line.server, old, "Pulumi.old.yaml")
    assert (
        "against Pulumi.old.yaml: metabase_ro is new (+40, externalRoles.metabase_ro.connectionLimit), "
        "webhook_app grew 10 -> 30 (+20, apps.webhook_app.connectionLimit)"
    ) in against
    assert f", {line.server.over} over;" in against and "worker_app" not in against
    assert grown[1].as_dict() == {
        "role": "webhook_app",
        "key": "apps.webhook_app.connectionLimit",
        "limit": 30,
        "before": 10,
    }


def test_nothing_grew_falls_back_to_the_largest() -> None:
    old = fits()
    raw = valid_config()
    raw["postgres"]["maxConnections"] = 40  # fewer slots, no role grew
    (line,) = over_budget_lines(raw)
    assert isinstance(line, budget.OverBudget)
    assert budget.growth(old, line.server) == []
    line_against = budget.overflow_line(line.server, old, "old.yaml")
    assert "against old.yaml no role grew (maxConnections 100 -> 40); the largest: gateway_app 15" in line_against


def test_the_table_shows_the_overflow_row_only_when_over() -> None:
    table = budget.render_table(fits())
    assert budget.OVERFLOW_ROW not in table and table.splitlines()[0].endswith(" free")
    raw = valid_config()
    raw["postgres"]["adminHeadroom"] = 60
    (line,) = over_budget_lines(raw)
    assert isinstance(line, budget.OverBudget)
    lines = budget.render_table(line.server).splitlines()
    assert lines[0].endswith(f"{line.server.over} OVER")
    assert lines[-1].split() == ["OVER", "BUDGET", "-", "overflow", str(line.server.over), "-"]


def test_a_config_that_fits_has_no_budget_problem() -> None:
    assert budget.problems(parse(valid_config())) == []
    assert fits().over == 0


# --- secrets -----------------------------------------------------------------------------------------------------


def stack(name: str, **extra: Any) -> tuple[dict[str, Any], Any]:
    values = read_stack_values(stack_file(name))
    values.update({k: json.dumps(v) for k, v in extra.items()})
    return values, load_stack_values(values)


def test_a_local_posix_stack_needs_no_secret() -> None:
    values, config = stack("local")
    assert secrets.needed(config, values, environ={}) == []
    assert "none needed" in secrets.render([])


def test_a_hetzner_stack_with_an_s3_repo_needs_the_token_and_both_keys() -> None:
    values, config = stack("prod")
    found = secrets.needed(config, values, environ={})
    assert [(s.key, s.present) for s in found] == [
        ("hcloud:token", False),
        ("postgres-platform:backupS3Key", False),
        ("postgres-platform:backupS3KeySecret", False),
    ]
    assert found[0].problem()["fix"] == "pulumi config set --secret hcloud:token, or set HCLOUD_TOKEN"
    assert "MISSING" in secrets.render(found)


def test_secure_values_in_the_stack_file_and_the_token_in_the_environment_count() -> None:
    secure = {"secure": "AAABAMadeUpCipherText"}
    values, config = stack("prod", **{"postgres-platform:backupS3Key": secure, "hcloud:token": secure})
    found = {s.key: s for s in secrets.needed(config, values, environ={})}
    assert (found["hcloud:token"].present, found["postgres-platform:backupS3Key"].present) == (True, True)
    assert found["postgres-platform:backupS3KeySecret"].present is False
    values, config = stack("prod")
    token = secrets.needed(config, values, environ={"HCLOUD_TOKEN": "x"})[0]
    assert (token.key, token.present, token.where) == ("hcloud:token", True, "HCLOUD_TOKEN")
    assert token.as_dict() == {"key": "hcloud:token", "present": True, "neededFor": "the Hetzner provider"}


def test_an_adopted_server_needs_its_admin_password() -> None:
    values, config = stack("legacy")
    (secret,) = secrets.needed(config, values, environ={"HCLOUD_TOKEN": "x"})
    assert (secret.key, secret.present) == ("postgres-platform:existingAdminPassword", False)
