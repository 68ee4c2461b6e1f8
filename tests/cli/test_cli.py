"""The ``tokenid`` command line on a journal filled by real calls."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tokenid import Journal
from tokenid.cli import app

from conftest import make_client

runner = CliRunner(env={"COLUMNS": "220"})
REQUIRED_FIELDS = {"session_id", "provider", "endpoint", "deployment", "model_served", "input_tokens",
                   "cached_input_tokens", "output_tokens", "reasoning_tokens", "audio_input_tokens",
                   "audio_output_tokens", "usage_source", "cost_usd", "status", "http_status", "stream",
                   "latency_ms", "tags"}


@pytest.fixture
def filled(sim: Any, tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    j = Journal(path)
    client = make_client("azure", sim, j, session_id="alpha", tags={"team": "a"})
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "one"}])
    list(client.chat.completions.create(model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "x"}]))
    client.with_options(session_id="beta").embeddings.create(model="text-embedding-3-small", input="y")
    client.close()
    j.close()
    return path


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False, terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_export_jsonl_uses_the_schema_names(filled: Path) -> None:
    lines = run("export", "--journal", str(filled), "--format", "jsonl").splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == 3
    assert all(e.keys() >= REQUIRED_FIELDS for e in events)
    assert {e["session_id"] for e in events} == {"alpha", "beta"}
    assert all(e["provider"] == "azure_openai" and e["usage_source"] == "reported" for e in events)
    assert all(Decimal(e["cost_usd"]) > 0 for e in events)
    assert "cost_nanousd" not in events[0]


def test_export_csv(filled: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    run("export", "--journal", str(filled), "--format", "csv", "--output", str(out), "--session", "alpha")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 2 and {r["endpoint"] for r in rows} == {"chat.completions"}
    assert json.loads(rows[0]["tags"]) == {"team": "a"}


def test_report_groups_and_total(filled: Path) -> None:
    events = [json.loads(x) for x in run("export", "-j", str(filled)).splitlines()]
    total = sum(Decimal(e["cost_usd"]) for e in events)
    out = run("report", "--journal", str(filled))
    for title in ("Spend by session", "Spend by model", "Spend by deployment", "Spend by day"):
        assert title in out
    assert "alpha" in out and "beta" in out and "gpt-4o-mini" in out
    assert re.search(r"Total:.*3 calls", out)
    assert f"{total:.6f}".rstrip("0") in out


def test_sessions_and_session_show(filled: Path) -> None:
    out = run("sessions", "--journal", str(filled))
    assert "alpha" in out and "beta" in out
    show = run("session", "show", "alpha", "--journal", str(filled))
    assert "chat.completions" in show and "2 calls" in show


def test_tail(filled: Path) -> None:
    out = run("tail", "--journal", str(filled), "-n", "2")
    assert "embeddings" in out and out.count("chat.completions") == 1


def test_bad_input_is_a_clear_error(filled: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--journal", str(tmp_path / "missing.db")])
    assert result.exit_code != 0 and "no journal at" in result.output
    result = runner.invoke(app, ["report", "--journal", str(filled), "--by", "colour"])
    assert result.exit_code != 0 and "unknown grouping 'colour'" in result.output
    result = runner.invoke(app, ["export", "--journal", str(filled), "--format", "xml"])
    assert result.exit_code != 0 and "unknown format 'xml'" in result.output
    result = runner.invoke(app, ["session", "show", "nope", "--journal", str(filled)])
    assert result.exit_code != 0 and "no calls journaled for session 'nope'" in result.output


def test_every_command_is_documented() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    import typer.main

    group = typer.main.get_command(app)
    names = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        names += [f"{name} {s}" for s in subs] if subs else [name]
    missing = [n for n in names if f"tokenid {n}" not in readme]
    assert not missing, f"commands missing from README: {missing}"


def test_budgets_and_rewritten_calls(sim: Any, tmp_path: Path) -> None:
    rules = {"counters": "sqlite",
             "budgets": [{"name": "daily", "scope": "session", "limit_usd": "5", "window": "day"}],
             "model_ceiling": {"max_model": "gpt-4o-mini", "target": "gpt-4o-mini"}}
    config = tmp_path / "rules.json"
    config.write_text(json.dumps(rules))
    path = tmp_path / "budgets.db"
    j = Journal(path)
    client = make_client("azure", sim, j, session_id="capped", enforcement_config=str(config))
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    client.close()
    j.close()
    spent = Decimal(json.loads(run("export", "-j", str(path)).splitlines()[0])["cost_usd"])
    out = run("budgets", "--journal", str(path), "--config", str(config))
    assert "daily" in out and "session:capped" in out and "$5.00" in out and "UTC" in out
    assert f"{spent:.6f}".rstrip("0") in out
    assert "1 rewritten" in run("report", "--journal", str(path), "--by", "session")
    raw = run("budgets", "--journal", str(path))
    assert "pass --config for limits" in raw
