"""``tokenid meters explain`` on a local Typer app, as the main app will mount it (``meters`` sub-command)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from tokenid.cli.meters import meters_app

app = typer.Typer()
app.add_typer(meters_app, name="meters")
runner = CliRunner(env={"COLUMNS": "220"})

KNOWN = "gpt-4o-mini-0718-Inp-glbl Tokens"
BATCH = "gpt 4o mini0718 BatchOutp DataZone Tokens"
UNKNOWN = "5.6 luna LongCo Inp Std DZ 1M Tokens"


def invoke(*args: str, input: str | None = None, code: int = 0) -> str:
    result = runner.invoke(app, ["meters", "explain", *args], input=input, catch_exceptions=False,
                           terminal_width=220)
    assert result.exit_code == code, result.output
    return result.output


def test_json_one_object_per_name() -> None:
    lines = invoke(KNOWN, UNKNOWN, "--json").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"name": KNOWN, "model": "gpt-4o-mini", "version": "2024-07-18", "direction": "input",
         "deployment_type": "global", "billing_mode": "standard", "context_tier": None, "unit": "tokens_1k",
         "service": None, "qualifiers": [], "unknown": False},
        {"name": UNKNOWN, "unknown": True, "reason": "unrecognised token 'luna'"},
    ]


def test_names_from_stdin_with_dash() -> None:
    out = invoke(KNOWN, "-", "--json", input=f"{BATCH}\n\n  {UNKNOWN}  \n")
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["name"] for o in objs] == [KNOWN, BATCH, UNKNOWN]
    assert (objs[1]["billing_mode"], objs[1]["deployment_type"], objs[1]["direction"]) == ("batch", "data_zone",
                                                                                           "output")
    assert objs[2]["unknown"] is True


def test_unit_of_measure_option() -> None:
    obj = json.loads(invoke("gpt 4.1 Inp glbl Tokens", "--unit", "1M", "--json"))
    assert obj["unit"] == "tokens_1m"
    obj = json.loads(invoke("gpt 4.1 Inp glbl Tokens", "--unit", "1 Hour", "--json"))
    assert obj == {"name": "gpt 4.1 Inp glbl Tokens", "unknown": True,
                   "reason": "unitOfMeasure '1 Hour' does not fit a meter counting tokens"}


def test_human_table() -> None:
    out = invoke(KNOWN, UNKNOWN, "Provisioned Managed Data Zone Unit")
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 2}
    for word in ("gpt-4o-mini", "2024-07-18", "input", "global", "standard", "tokens_1k"):
        assert word in rows[KNOWN]
    assert "unknown" in rows[UNKNOWN] and "unrecognised token 'luna'" in rows[UNKNOWN]
    ptu = rows["Provisioned Managed Data Zone Unit"]
    assert "service: provisioned_throughput" in ptu and "provisioned" in ptu and "data_zone" in ptu


def test_strict_exit_code() -> None:
    invoke(KNOWN, "--strict")
    invoke(KNOWN, UNKNOWN, "--strict", "--json", code=1)


def test_aliases_option(tmp_path: Path) -> None:
    path = tmp_path / "aliases.toml"
    path.write_text('[models]\n"gpt 5.6 luna" = "gpt-5.6-luna"\n"5.6 luna" = "gpt-5.6-luna"\n', encoding="utf-8")
    obj = json.loads(invoke(UNKNOWN, "--aliases", str(path), "--json"))
    assert (obj["model"], obj["context_tier"], obj["billing_mode"]) == ("gpt-5.6-luna", "long", "standard")
    path.write_text("[models\n", encoding="utf-8")
    result = runner.invoke(app, ["meters", "explain", KNOWN, "--aliases", str(path)])
    assert result.exit_code != 0 and "not valid TOML" in result.output


def test_no_names_shows_usage() -> None:
    result = runner.invoke(app, ["meters", "explain"])
    assert result.exit_code != 0 and "Missing argument 'NAME'" in result.output
