"""``tokenid health`` reads each target's health back from the journal, in any process."""

from __future__ import annotations

import json
from pathlib import Path

from regions import MSG, azure_target, fault, routed
from regions import regions as regions_fixture
from typer.testing import CliRunner

from tokenid import Journal
from tokenid.cli import app
from tokenid.simulator import Simulator

regions = regions_fixture
runner = CliRunner(env={"COLUMNS": "220"})


def test_health_from_the_journal(regions: dict[str, Simulator], tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal(path)
    config = {"strategy": "fallback", "targets": [
        azure_target("sweden", regions["swedencentral"], headers=fault("503")),
        azure_target("eastus2", regions["eastus2"]),
    ], "breaker": {"failures": 2, "cooldown_s": 600}, "retry": {"attempts": 1}}
    client = routed(journal, config)
    for _ in range(4):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    journal.close()
    result = runner.invoke(app, ["health", "--journal", str(path), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["target"]: r for r in map(json.loads, result.output.splitlines())}
    assert rows["sweden"] == {**rows["sweden"], "sends": 2, "ok": 0, "failed": 2, "skipped": 2, "served": 0,
                              "fallbacks_from": 4, "success_rate": 0.0, "failures": {"status 503": 2},
                              "last_failure": "status 503", "breaker": "open"}
    assert rows["eastus2"] == {**rows["eastus2"], "sends": 4, "ok": 4, "failed": 0, "served": 4,
                               "success_rate": 1.0, "breaker": "closed"}
    assert rows["eastus2"]["p50_ms"] > 0

    config_file = tmp_path / "routing.json"
    config_file.write_text(json.dumps({"routing": {"targets": [
        *config["targets"], azure_target("france", regions["francecentral"])]}}))
    table = runner.invoke(app, ["health", "--journal", str(path), "--config", str(config_file), "--since", "1h"])
    assert table.exit_code == 0, table.output
    lines = {line.split("│")[1].strip(): line for line in table.output.splitlines() if line.count("│") > 5}
    assert "open" in lines["sweden"] and "status 503 at" in lines["sweden"]
    assert "closed" in lines["eastus2"]
    assert "france" in lines  # configured, no traffic yet
    old = runner.invoke(app, ["health", "--journal", str(path), "--since", "2999-01-01", "--json"])
    assert old.exit_code == 0 and old.output == ""
