"""A real `tokenid reconcile` run, stored in a journal of real calls, as the dashboard shows it."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

from starlette.testclient import TestClient

from tokenid import Journal
from tokenid.azure.exports import read_export
from tokenid.azure.reconcile import reconcile
from tokenid.azure.reconcile_store import store_run
from tokenid.dashboard import create_app
from tokenid.pricing.retail import RetailPrices
from tokenid.simulator import Simulator

from conftest import make_client

sys.path.insert(0, str(Path(__file__).parents[1] / "azure"))  # the export and invoice generators
from export_gen import ACCOUNTS, write_csv
from invoice_gen import bill


def test_the_dashboard_shows_a_stored_run_and_the_recosted_calls(sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    client = make_client("azure", sim, journal, session_id="billing", tags={"team": "finance"})
    for i in range(4):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"invoice {i}"}])
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"line {i}"}])
    client.close()
    journal.flush()
    # Azure bills gpt-4o on Data Zone meters (10% over the Global list price the journal used)
    lines = bill(journal.events(), account=ACCOUNTS[1], region=sim.region, prices=RetailPrices.bundled(),
                 types={"gpt-4o": "data_zone", "gpt-4o-mini": "global"})
    export = tmp_path / "export.csv"
    write_csv(export, [b.row for b in lines], "ea")
    cost_lines, summary = read_export(export)
    result = reconcile(cost_lines, journal, accounts={"127.0.0.1": ACCOUNTS[1].name}, read=summary,
                       source=str(export))
    recosted = store_run(journal, result)
    events = journal.events()
    journal.close()

    with TestClient(create_app(path), base_url="http://127.0.0.1") as api:
        data = api.get("/api/reconciliation", params={"range": "all"}).json()
        assert data["run"]["id"] == result.run_id and data["lines_total"] == len(result.lines)
        statuses = {r["key"]: r["lines"] for r in data["by_status"]}
        assert statuses == {k: v for k, v in result.counts().items() if v}
        invoice = sum(Decimal(line["invoice_cost_usd"]) for line in data["lines"])
        assert invoice == result.totals()["invoice_usd"]
        # the rollups follow the re-costed calls: list vs invoice per day adds up to the events' own figures
        repriced = data["repriced_calls"]
        assert sum(r["calls"] for r in repriced) == recosted == len(events)
        assert sum(Decimal(r["invoice_cost_usd"]) for r in repriced) == sum(
            Decimal(e["invoice_cost_usd"]) for e in events)
        assert sum(Decimal(r["list_cost_usd"]) for r in repriced) == sum(Decimal(e["cost_usd"]) for e in events)
        totals = api.get("/api/summary", params={"range": "all", "tag": "team:finance"}).json()["totals"]
        assert Decimal(totals["invoice_cost_usd"]) == sum(Decimal(e["invoice_cost_usd"]) for e in events)
        assert Decimal(totals["invoice_cost_usd"]) > Decimal(totals["invoiced_list_cost_usd"])  # Data Zone costs more
