"""``tokenid reconcile`` on a real journal and a real export file: summary, report files, stored run, errors."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokenid import Journal
from tokenid.cli import app
from tokenid.pricing.retail import RetailPrices
from tokenid.simulator import Simulator

from conftest import make_client

# the export and invoice generators live beside the reconciliation tests
sys.path.insert(0, str(Path(__file__).parents[1] / "azure"))
from export_gen import ACCOUNTS, write_csv
from invoice_gen import bill

runner = CliRunner(env={"COLUMNS": "200"})
ACCOUNT = ACCOUNTS[0]  # Contoso-OAI-EastUS2


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default report lands in the working directory


@pytest.fixture
def setup(sim: Simulator, tmp_path: Path) -> tuple[Path, Path, int]:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    client = make_client("azure", sim, journal, session_id="nightly")
    for i in range(3):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"report {i}"}])
    client.close()
    journal.flush()
    lines = bill(journal.events(), account=ACCOUNT, region=sim.region, prices=RetailPrices.bundled(),
                 types={"gpt-4o": "global"})
    # one line Azure billed for a model nobody journaled
    extra = bill([{"provider": "azure_openai", "input_tokens": 4000, "cached_input_tokens": 0, "output_tokens": 0,
                   "status": "ok", "deployment": "x", "canonical_model": "gpt-4o-mini-2024-07-18",
                   "started_at": f"{lines[0].day.isoformat()}T01:00:00Z"}],
                 account=ACCOUNT, region=sim.region, prices=RetailPrices.bundled(), types={"x": "global"})
    export = tmp_path / "export.csv"
    write_csv(export, [b.row for b in lines + extra], "ea")
    journal.close()
    return path, export, len(lines)


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_summary_report_and_stored_run(setup: tuple[Path, Path, int], tmp_path: Path) -> None:
    journal, export, matched = setup
    report = tmp_path / "out" / "report.csv"
    out = run("reconcile", str(export), "--journal", str(journal), "--account-map", f"127.0.0.1={ACCOUNT.name}",
              "--output", str(report), "--by", "session,tag:team")
    assert f"{matched} matched" in out and "1 invoice_only" in out
    assert "List vs invoice cost by session" in out and "nightly" in out
    assert "List vs invoice cost by tag:team" in out and "(none)" in out
    assert "invoice_only" in out.split("Lines")[1].splitlines()[4]  # lines needing a look come first
    with report.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["status"] for r in rows) == sorted(["matched"] * matched + ["invoice_only"])
    assert all(json.loads(r["allocations"]) for r in rows if r["status"] == "matched")
    j = Journal(journal)
    try:
        runs = j.store.query("SELECT id FROM reconcile_runs")
        assert len(runs) == 1
        assert j.store.query("SELECT COUNT(*) FROM reconcile_lines")[0][0] == matched + 1
        assert all(e["invoice_cost_usd"] is not None for e in j.events())
    finally:
        j.close()


def test_json_summary_no_store_and_fail_on_variance(setup: tuple[Path, Path, int], tmp_path: Path) -> None:
    journal, export, matched = setup
    report = tmp_path / "r.json"
    out = run("reconcile", str(export), "-j", str(journal), "--account-map", f"127.0.0.1={ACCOUNT.name}",
              "-o", str(report), "--json", "--no-store", "--fail-on-variance", code=1)
    summary = json.loads(out)
    assert summary["by_status"]["matched"] == matched and summary["events_recosted"] == 0
    assert summary["read"]["rows_kept"] == matched + 1
    doc = json.loads(report.read_text())
    assert len(doc["lines"]) == matched + 1 and doc["summary"]["run_id"] == summary["run_id"]
    j = Journal(journal)
    try:
        assert j.store.query("SELECT COUNT(*) FROM reconcile_runs")[0][0] == 0
    finally:
        j.close()


@pytest.mark.parametrize(("args", "message"), [
    ([], "give an export path or --query SCOPE"),
    (["--from", "2025-13-01"], "expected a date such as 2025-03-01"),
    (["--account-map", "no-equals-sign"], "expected KEY=VALUE"),
    (["--tolerance", "abc"], "tolerance_pct must be a number"),
    (["--focus-cost", "list"], "expected 'billed' or 'effective'"),
    (["--query", "subscriptions/x"], "give an export path or --query SCOPE"),
    (["--by", "colour"], "unknown grouping 'colour'"),
])
def test_bad_arguments_are_named(setup: tuple[Path, Path, int], args: list[str], message: str,
                                 tmp_path: Path) -> None:
    journal, export, _ = setup
    target = [] if not args else [str(export)]
    out = run("reconcile", *target, "-j", str(journal), *args, code=2)
    assert message in " ".join(out.split())
    assert not list(tmp_path.glob("reconcile-*"))  # refused before any work: no report written


def test_query_needs_a_period_and_a_valid_scope(setup: tuple[Path, Path, int]) -> None:
    journal, _, _ = setup
    out = run("reconcile", "--query", "subscriptions/x", "-j", str(journal), code=2)
    assert "--query needs --from and --to" in " ".join(out.split())
    out = run("reconcile", "--query", "not/a/scope", "--from", "2025-03-01", "--to", "2025-03-02", "-j", str(journal),
              code=2)
    assert "scope" in out


def test_a_missing_account_map_is_pointed_out(setup: tuple[Path, Path, int]) -> None:
    journal, export, matched = setup
    out = " ".join(run("reconcile", str(export), "-j", str(journal), "--no-store").split())
    assert f"{matched + 1} invoice_only" in out
    assert "contoso-oai-eastus2) have nothing journaled, and the journal's (127.0.0.1)" in out
    assert "--account-map HOST=ACCOUNT" in out
    (report,) = Path.cwd().glob("reconcile-*.csv")  # the default report: here, named after the run
    assert report.read_text(encoding="utf-8").startswith("day,account_name")


def test_missing_export_is_a_clear_error(setup: tuple[Path, Path, int], tmp_path: Path) -> None:
    journal, _, _ = setup
    out = run("reconcile", str(tmp_path / "nope.csv"), "-j", str(journal), code=2)
    assert "no export at" in " ".join(out.split())


def test_a_deployment_billed_as_another_type_prints_the_map_to_use(sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    client = make_client("azure", sim, journal)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "data zone really"}])
    client.close()
    journal.flush()
    lines = bill(journal.events(), account=ACCOUNT, region=sim.region, prices=RetailPrices.bundled(),
                 types={"gpt-4o": "data_zone"})
    journal.close()
    export = tmp_path / "export.csv"
    write_csv(export, [b.row for b in lines], "ea")
    out = run("reconcile", str(export), "-j", str(path), "--account-map", f"127.0.0.1={ACCOUNT.name}", "-o",
              str(tmp_path / "r.csv"))
    snippet = out.split("deployments=", 1)[1].split("\n", 1)[0]
    assert json.loads(snippet) == {"gpt-4o": {"model": "gpt-4o", "version": "2024-08-06", "type": "data_zone"}}
