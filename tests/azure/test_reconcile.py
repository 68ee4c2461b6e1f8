"""Reconciliation rules on a real SQLite journal: capacity allocation, currencies, quantities, fallbacks, errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tokenid import Journal
from tokenid.azure.exports import CostLine
from tokenid.azure.reconcile import account_of_host, reconcile
from tokenid.call import row_tuple
from tokenid.errors import ConfigError

DAY = date(2025, 3, 4)
ACCOUNT_ID = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/acme-oai"
HOST = "acme-oai.openai.azure.com"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "j.db")
    yield j
    j.close()


def journal_call(journal: Journal, n: int, *, deployment: str, canonical: str, dtype: str = "global",
                 inp: int = 1000, out: int = 100, cached: int = 0, cost: str | None = "0.001",
                 session: str = "s1", served: str | None = None) -> None:
    journal.store.insert([row_tuple({
        "id": f"{deployment}-{n}", "started_at": f"{DAY.isoformat()}T0{n % 10}:00:00Z", "session_id": session,
        "provider": "azure_openai", "endpoint": "chat.completions", "resource": HOST, "deployment": deployment,
        "model_served": served or canonical, "canonical_model": canonical, "deployment_type": dtype,
        "input_tokens": inp, "output_tokens": out, "cached_input_tokens": cached, "usage_source": "reported",
        "status": "ok", "cost_usd": cost, "cost_nanousd": None if cost is None else int(Decimal(cost) * 10**9)})])


def line(meter: str, unit: str, quantity: str, cost: str, *, currency: str = "USD", cost_usd: str | None = None,
         rate: str | None = None, account_id: str = ACCOUNT_ID, charge: str = "Usage", **kw: Any) -> CostLine:
    usd = Decimal(cost_usd) if cost_usd is not None else (Decimal(cost) if currency == "USD" else None)
    return CostLine(day=DAY, account_id=account_id, account_name=account_id.rsplit("/", 1)[-1], resource_group="rg",
                    subscription_id="s1", region="eastus2", meter_name=meter, meter_id="m-" + meter[:8],
                    meter_category="Foundry Models", meter_subcategory="", product="Azure OpenAI",
                    unit_of_measure=unit, quantity=Decimal(quantity), cost=Decimal(cost), cost_usd=usd,
                    currency=currency, exchange_rate=Decimal(rate) if rate else None, unit_price=None,
                    charge_type=charge, pricing_model=kw.get("pricing_model", "OnDemand"), tags={}, source="t:2")


def test_account_of_host() -> None:
    assert account_of_host("Acme-OAI.openai.azure.com") == "acme-oai"
    assert account_of_host("acme.cognitiveservices.azure.com") == "acme"
    assert account_of_host("proj.services.ai.azure.com") == "proj"
    assert account_of_host("llm-gw.internal", {"llm-gw.internal": ACCOUNT_ID}) == "acme-oai"
    assert account_of_host("127.0.0.1") == "127.0.0.1"
    assert account_of_host(None) is None


def test_ptu_hours_are_allocated_by_capacity_then_by_tokens(journal: Journal) -> None:
    journal_call(journal, 1, deployment="ptu-a", canonical="gpt-4o-2024-08-06", dtype="provisioned", cost="0",
                 inp=900, out=100)
    journal_call(journal, 2, deployment="ptu-b", canonical="gpt-4o-2024-08-06", dtype="provisioned", cost="0",
                 inp=2900, out=100)
    ptu = [line("Provisioned Managed Global Unit", "1/Hour", "48", "48")]

    by_capacity = reconcile(ptu, journal, capacities={"ptu-a": 100, "ptu-b": "300"})
    (result,) = by_capacity.lines
    assert result.status == "capacity"
    assert [(a.deployment, a.share, a.cost_usd, a.basis) for a in result.allocations] == [
        ("ptu-a", Decimal("0.25"), Decimal(12), "capacity"), ("ptu-b", Decimal("0.75"), Decimal(36), "capacity")]

    (by_tokens,) = reconcile(ptu, journal).lines
    assert [(a.deployment, a.tokens, a.cost_usd, a.basis) for a in by_tokens.allocations] == [
        ("ptu-a", 1000, Decimal(12), "tokens"), ("ptu-b", 3000, Decimal(36), "tokens")]
    assert "no capacity given" in by_tokens.note


def test_commitments_and_rows_off_any_account_are_shown_unallocated(journal: Journal) -> None:
    journal_call(journal, 1, deployment="ptu-a", canonical="gpt-4o-2024-08-06", dtype="provisioned", cost="0")
    rows = [line("Provisioned Managed Global Unit", "1/Month", "10", "2600", charge="Purchase",
                 account_id="/providers/microsoft.capacity/reservationorders/o1/reservations/r1"),
            line("Provisioned Managed Global Unit", "1/Hour", "5", "1.5", charge="UnusedReservation")]
    result = reconcile(rows, journal)
    assert [ln.status for ln in result.lines] == ["capacity", "capacity"]
    assert all(a.basis == "unallocated" for ln in result.lines for a in ln.allocations)
    assert result.totals()["invoice_usd"] == Decimal("2601.5")


def test_fine_tune_hosting_goes_to_fine_tuned_deployments(journal: Journal) -> None:
    journal_call(journal, 1, deployment="support-ft", canonical="gpt-4o-mini-2024-07-18",
                 served="gpt-4o-mini-2024-07-18.ft-9f8e7d")
    journal_call(journal, 2, deployment="chat", canonical="gpt-4o-mini-2024-07-18")
    lines = reconcile([line("gpt-4o-mini-0718-FT-Hstng-glbl Unit", "1 Hour", "24", "40.8")], journal).lines
    (result,) = [ln for ln in lines if ln.status == "capacity"]
    assert [(a.deployment, a.cost_usd, a.basis) for a in result.allocations] == [
        ("support-ft", Decimal("40.8"), "time")]


def test_billing_currency_converted_with_the_users_rate_or_compared_by_quantity(journal: Journal) -> None:
    journal_call(journal, 1, deployment="chat", canonical="gpt-4o-mini-2024-07-18", inp=10_000, out=0,
                 cost="0.0015")
    eur = [line("gpt-4o-mini-0718-Inp-glbl Tokens", "1K", "10", "0.00138", currency="EUR")]
    (converted,) = reconcile(eur, journal, fx={"eur": "0.92"}).lines
    assert converted.invoice_cost_usd == Decimal("0.0015")
    assert converted.status == "matched" and converted.variance_pct == 0
    (unconverted,) = reconcile(eur, journal).lines
    assert unconverted.invoice_cost_usd is None and unconverted.variance_pct is None
    assert unconverted.status == "matched" and "compared by quantity only" in unconverted.note


def test_quantity_off_by_a_block_size_is_a_variance_naming_the_ratio(journal: Journal) -> None:
    journal_call(journal, 1, deployment="chat", canonical="gpt-4o-mini-2024-07-18", inp=10_000, out=0,
                 cost="0.0015")
    (result,) = reconcile([line("gpt-4o-mini-0718-Inp-glbl Tokens", "1K", "0.01", "0.0015")], journal).lines
    assert result.status == "variance"
    assert result.variance_pct == 0 and result.quantity_variance_pct is not None
    assert "quantity differ" in result.note and "tokens ÷ invoice quantity = 1000000.00" in result.note


def test_cached_tokens_with_no_meter_of_their_own_are_billed_on_the_input_meter(journal: Journal) -> None:
    journal_call(journal, 1, deployment="chat", canonical="gpt-4o-mini-2024-07-18", inp=3000, cached=1024, out=0,
                 cost=None)
    (result,) = reconcile([line("gpt-4o-mini-0718-Inp-glbl Tokens", "1K", "3", "0.00045")], journal).lines
    assert result.journal_tokens == 3000
    assert "includes cached_input tokens" in result.note
    assert result.journal_cost_usd is not None  # re-derived from list prices: the call itself was unpriced


def test_unknown_meters_are_reported_with_their_cost(journal: Journal) -> None:
    (result,) = reconcile([line("Zorblax Quantum Widget", "1K", "3", "7")], journal).lines
    assert result.status == "unknown_meter" and "not understood" in result.note
    assert result.allocations[0].basis == "unallocated" and result.allocations[0].cost_usd == Decimal(7)


def test_one_account_only(journal: Journal) -> None:
    journal_call(journal, 1, deployment="chat", canonical="gpt-4o-mini-2024-07-18", inp=1000, out=0, cost="0.00015")
    other = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/other"
    rows = [line("gpt-4o-mini-0718-Inp-glbl Tokens", "1K", "1", "0.00015"),
            line("gpt-4o-mini-0718-Inp-glbl Tokens", "1K", "9", "0.00135", account_id=other)]
    result = reconcile(rows, journal, account="ACME-OAI")
    assert [(ln.account_name, ln.status) for ln in result.lines] == [("acme-oai", "matched")]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tolerance_pct": "lots"}, "tolerance_pct must be a number"),
    ({"tolerance_pct": "-1"}, "tolerance_pct must be a finite number >= 0"),
    ({"fx": {"EUR": "x"}}, "fx[EUR] must be a number"),
    ({"capacities": {"ptu-a": "NaN"}}, "capacities[ptu-a] must be a finite number"),
    ({"start": date(2025, 3, 5), "end": date(2025, 3, 1)}, "is after end"),
])
def test_bad_arguments_name_the_key(journal: Journal, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        reconcile([], journal, **kwargs)
