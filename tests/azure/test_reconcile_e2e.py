"""End to end: simulator traffic → journal → a synthetic invoice priced from Azure's retail list, written in every
export format → reconcile → every line within 0.5%, its cost split to deployments and sessions, calls re-costed."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from export_gen import ACCOUNTS, FORMATS, PTU_METER, GenRow, write_csv, write_parquet
from fake_costmanagement import FakeCostManagement, FakeCredential, Usage
from invoice_gen import Billed, bill

from tokenid import Journal
from tokenid.azure.costquery import query_cost_lines
from tokenid.azure.exports import ReadSummary, read_export
from tokenid.azure.reconcile import reconcile
from tokenid.azure.reconcile_store import latest_run, store_run
from tokenid.pricing.retail import RetailPrices
from tokenid.simulator import Simulator

from conftest import make_client

ACCOUNT = ACCOUNTS[1]  # contoso-oai-swc, swedencentral
LONG_PROMPT = "Summarise the quarterly figures for the board. " * 160  # > 1024 tokens: the simulator caches some


def _traffic(sim: Simulator, journal: Journal) -> None:
    for session, n in (("checkout", 3), ("search", 2)):
        client = make_client("azure", sim, journal, session_id=session)
        for i in range(n):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"hi {i}"}])
            client.chat.completions.create(model="gpt-4o-mini",
                                           messages=[{"role": "user", "content": f"question {i} " * (i + 1)}])
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": LONG_PROMPT}])
        client.embeddings.create(model="text-embedding-3-small", input=["a document", "another one"])
        stream = client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                messages=[{"role": "user", "content": "stream please"}])
        for _ in stream:
            pass
        client.close()
    journal.flush()


@pytest.fixture
def billed(sim: Simulator, journal: Journal) -> tuple[list[Billed], list[dict[str, object]]]:
    _traffic(sim, journal)
    events = journal.events()
    types = {"gpt-4o": "global", "gpt-4o-mini": "global", "text-embedding-3-small": "global"}
    lines = bill(events, account=ACCOUNT, region=sim.region, prices=RetailPrices.bundled(), types=types)
    return lines, events


def _write(path: Path, rows: list[GenRow], fmt: str) -> Path:
    if fmt.endswith("parquet"):
        write_parquet(path, rows, fmt.removesuffix("-parquet"))
    else:
        write_csv(path, rows, fmt, gzip=fmt == "focus-1.0")
    return path


@pytest.mark.parametrize("fmt", [*FORMATS, "focus-1.0-parquet", "focus-1.2-parquet"])
def test_invoice_derived_from_azure_prices_reconciles_within_half_a_percent(
        fmt: str, billed: tuple[list[Billed], list[dict[str, object]]], journal: Journal, tmp_path: Path) -> None:
    lines, events = billed
    assert {b.meter.name for b in lines} >= {"gpt-4o-0806-Inp-glbl Tokens", "gpt-4o-0806-Outp-glbl Tokens"}
    assert any("cached" in b.meter.name.lower() or "cchd" in b.meter.name.lower() for b in lines)
    # the traps of EXPORTS.md §6: one account spelled in mixed case and as a child /projects/ resource
    spellings = [ACCOUNT.resource_id, ACCOUNT.resource_id.upper().replace("/ACCOUNTS/", "/accounts/"),
                 ACCOUNT.resource_id + "/projects/Checkout-App"]
    rows = [GenRow(**{**b.row.__dict__, "resource_id": spellings[i % 3]}) for i, b in enumerate(lines)]
    if fmt == "mca":  # billed in euros: costs are converted back with the row's exchange rate
        rows = [GenRow(**{**r.__dict__, "currency": "EUR", "rate": Decimal("0.9231")}) for r in rows]
    suffix = ".parquet" if fmt.endswith("parquet") else ".csv.gz" if fmt == "focus-1.0" else ".csv"
    path = _write(tmp_path / f"export{suffix}", rows, fmt)

    cost_lines, summary = read_export(path)
    result = reconcile(cost_lines, journal, accounts={"127.0.0.1": ACCOUNT.name}, read=summary, source=str(path))

    assert summary.rows_malformed == 0 and summary.complete
    assert result.counts()["matched"] == len(lines), [(ln.meter_name, ln.status, ln.note) for ln in result.lines]
    assert result.counts()["journal_only"] == 0 and result.counts()["invoice_only"] == 0
    by_meter = {(ln.day, ln.meter_name): ln for ln in result.lines}
    for b in lines:
        line = by_meter[(b.day, b.meter.name)]
        assert line.journal_tokens == b.tokens
        assert line.invoice_cost_usd is not None and line.journal_cost_usd is not None
        assert abs(line.variance_pct or Decimal(0)) <= Decimal("0.5"), (b.meter.name, line.variance_pct)
        assert abs(line.invoice_cost_usd - b.row.billed_usd) < Decimal("1e-12")
        assert line.quantity_variance_pct is not None and abs(line.quantity_variance_pct) <= Decimal("0.5")
        # the line's cost is split over deployments and sessions by token share, exactly
        assert sum(a.tokens for a in line.allocations) == b.tokens
        assert abs(sum(a.cost_usd or 0 for a in line.allocations) - line.invoice_cost_usd) < Decimal("1e-12")
        assert {a.session_id for a in line.allocations} <= {"checkout", "search"}

    # what the journal says per session, derived from the events themselves
    journal_by_session: dict[str, int] = defaultdict(int)
    for e in events:
        if e["input_tokens"] is not None:
            journal_by_session[str(e["session_id"])] += int(e["input_tokens"]) + int(e["output_tokens"] or 0)
    allocated: dict[str, int] = defaultdict(int)
    for line in result.lines:
        for a in line.allocations:
            allocated[str(a.session_id)] += a.tokens
    assert allocated == journal_by_session

    updated = store_run(journal, result)
    priced_events = [e for e in events if e["input_tokens"] is not None]
    assert updated == len(priced_events)
    recosted = journal.events()
    invoice_total = sum((b.row.billed_usd for b in lines), Decimal(0))
    event_total = sum((Decimal(str(e["invoice_cost_usd"])) for e in recosted if e["invoice_cost_usd"]), Decimal(0))
    assert abs(event_total - invoice_total) <= invoice_total * Decimal("0.000001")
    assert all(e["invoice_run_id"] == result.run_id for e in recosted if e["input_tokens"] is not None)
    assert all(e["cost_usd"] is not None for e in priced_events)  # the list price is kept beside it
    run = latest_run(journal)
    assert run is not None and run["id"] == result.run_id
    assert run["summary"]["by_status"]["matched"] == len(lines)


def test_traffic_that_bypassed_tokenid_and_capacity_lines_are_reported_not_dropped(
        billed: tuple[list[Billed], list[dict[str, object]]], journal: Journal, tmp_path: Path) -> None:
    lines, _ = billed
    day = lines[0].day
    bypass = bill([{"provider": "azure_openai", "input_tokens": 5000, "cached_input_tokens": 0, "output_tokens": 700,
                    "status": "ok", "deployment": "shadow-it", "canonical_model": "gpt-4.1-2025-04-14",
                    "started_at": f"{day.isoformat()}T10:00:00Z"}],
                  account=ACCOUNT, region="swedencentral", prices=RetailPrices.bundled(), types={"shadow-it": "global"})
    ptu = GenRow(index=900, day=day, account=ACCOUNT, resource_id=ACCOUNT.resource_id, meter=PTU_METER,
                 quantity=Decimal(24), unit_price=Decimal(1), kind="usage", billed_usd=Decimal(24),
                 effective_usd=Decimal(24), currency="USD", rate=Decimal(1))
    rows = [b.row for b in lines] + [b.row for b in bypass] + [ptu]
    path = _write(tmp_path / "export.csv", rows, "ea")
    cost_lines, summary = read_export(path)
    result = reconcile(cost_lines, journal, accounts={"127.0.0.1": ACCOUNT.resource_id}, read=summary)

    counts = result.counts()
    assert counts["matched"] == len(lines)
    assert counts["invoice_only"] == len(bypass) == 2
    assert counts["capacity"] == 1
    capacity = next(ln for ln in result.lines if ln.status == "capacity")
    assert capacity.allocations[0].basis == "unallocated" and capacity.allocations[0].cost_usd == Decimal(24)
    totals = result.totals()
    assert totals["invoice_usd"] == sum((r.billed_usd for r in rows), Decimal(0))


def test_a_deployment_billed_as_another_type_is_learned(sim: Simulator, journal: Journal, tmp_path: Path) -> None:
    _traffic(sim, journal)
    events = journal.events()
    # the journal assumed Global for gpt-4o; the invoice bills it on Data Zone meters
    types = {"gpt-4o": "data_zone", "gpt-4o-mini": "global", "text-embedding-3-small": "global"}
    lines = bill(events, account=ACCOUNT, region=sim.region, prices=RetailPrices.bundled(), types=types)
    path = _write(tmp_path / "export.csv", [b.row for b in lines], "focus-1.2")
    cost_lines, _ = read_export(path)
    result = reconcile(cost_lines, journal, accounts={"127.0.0.1": ACCOUNT.name})

    changed = [m for m in result.mappings if m.changed]
    assert [(m.deployment, m.deployment_type, m.journal_deployment_type) for m in changed] == [
        ("gpt-4o", "data_zone", "global")]
    mini_lines = [ln for ln in result.lines if ln.meter is not None and ln.meter.model == "gpt-4o"]
    assert mini_lines and all(ln.journal_tokens > 0 for ln in mini_lines)
    assert all("Data Zone" in ln.note or "data_zone" in ln.note for ln in mini_lines)
    # Data Zone costs ~10% more than the Global price the journal used: a real variance, reported as such
    assert all(ln.status == "variance" and ln.variance_pct is not None and ln.variance_pct > 5 for ln in mini_lines)
    assert result.counts()["invoice_only"] == 0 and result.counts()["journal_only"] == 0
    store_run(journal, result)
    stored = journal.store.query("SELECT deployment, deployment_type FROM deployment_mappings ORDER BY deployment")
    assert dict((r[0], r[1]) for r in stored)["gpt-4o"] == "data_zone"
    rates = journal.store.query("SELECT usd_per_million, list_usd_per_million FROM calibrated_rates "
                                "WHERE deployment = 'gpt-4o' AND direction = 'input'")
    assert rates and all(Decimal(r[0]) > Decimal(r[1]) for r in rates)


def test_journal_tokens_with_no_invoice_line_are_journal_only(
        billed: tuple[list[Billed], list[dict[str, object]]], journal: Journal, tmp_path: Path) -> None:
    lines, events = billed
    kept = [b for b in lines if "embedding" not in b.meter.name]
    path = _write(tmp_path / "export.csv", [b.row for b in kept], "ea")
    cost_lines, _ = read_export(path)
    result = reconcile(cost_lines, journal, accounts={"127.0.0.1": ACCOUNT.name})
    only = [ln for ln in result.lines if ln.status == "journal_only"]
    embedded = sum(int(e["input_tokens"] or 0) for e in events if e["deployment"] == "text-embedding-3-small")
    assert len(only) == 1 and only[0].journal_tokens == embedded
    assert only[0].meter is not None and only[0].meter.model == "text-embedding-3-small"


def test_days_outside_the_invoice_are_not_compared(
        billed: tuple[list[Billed], list[dict[str, object]]], journal: Journal, tmp_path: Path) -> None:
    lines, _ = billed
    path = _write(tmp_path / "export.csv", [b.row for b in lines], "ea")
    cost_lines, _ = read_export(path)
    result = reconcile(cost_lines, journal, accounts={"127.0.0.1": ACCOUNT.name}, start=date(2020, 1, 1),
                       end=date(2020, 1, 2))
    assert result.counts()["matched"] == 0
    assert result.counts()["invoice_only"] == len(lines)  # the invoice's days are outside the journal range asked


def test_query_api_lines_reconcile_like_an_export(
        billed: tuple[list[Billed], list[dict[str, object]]], journal: Journal) -> None:
    lines, _ = billed
    records = [Usage(day=b.day, resource_id=ACCOUNT.resource_id, meter=b.meter.name, cost=b.row.billed_usd,
                     quantity=b.row.quantity) for b in lines]
    day = lines[0].day
    summary = ReadSummary(path="query")
    with FakeCostManagement(records, page_size=2) as fake:
        cost_lines = query_cost_lines(f"subscriptions/{ACCOUNT.subscription}", day, day, base_url=fake.url,
                                      credential=FakeCredential(), summary=summary, cost_type="ActualCost")
        result = reconcile(cost_lines, journal, accounts={"127.0.0.1": ACCOUNT.name}, read=summary)
        pages = len(fake.requests)
    assert summary.complete and summary.rows_kept == len(lines) and pages > 1
    assert result.counts()["matched"] == len(lines)
    assert all(abs(ln.variance_pct or 0) <= Decimal("0.5") for ln in result.lines)
