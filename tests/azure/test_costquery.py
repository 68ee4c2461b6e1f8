"""Cost Management Query API reader: real HTTP to a local fake (``fake_costmanagement``): paging, filtering, column
order, currencies, 429 back-off, malformed rows with page and row, scopes, and a bearer token that never leaks."""

from __future__ import annotations

import csv
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fake_costmanagement import TOKEN, FakeCostManagement, FakeCredential, Usage, days

from tokenid.azure.costquery import (
    DEFAULT_SERVICE_NAMES,
    TOKEN_SCOPE,
    CostQueryError,
    query_body,
    query_cost_lines,
    unit_of_measure,
    validate_scope,
)
from tokenid.azure.exports import CostLine, ReadSummary
from tokenid.errors import ConfigError

SUB = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
SCOPE = f"subscriptions/{SUB}"
EAST = f"/subscriptions/{SUB}/resourceGroups/RG-AI/providers/Microsoft.CognitiveServices/accounts/AOAI-East"
SWEDEN = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/aoai-sweden"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/web-1"
# Real meter names from shared/azure-billing/meters.csv (checked below against the copy in tests/azure/data).
MINI_IN = "gpt-4o-mini-0718-Inp-glbl Tokens"
MINI_OUT = "gpt-4o-mini-0718-Outp-glbl Tokens"
GPT5_BATCH = "GPT 5 Batch Inpt cchd Dzone 1M Tokens"
PTU = "Provisioned Managed Global Unit"
DALLE = "Image-Dall-E-3 Std LowRes-glbl Images"
SPEECH = "Speech-Text to Speech-global Characters"
OCT = date(2025, 10, 1)
METERS_CSV = Path(__file__).parent / "data" / "meters.csv"


@pytest.fixture
def fake() -> Iterator[FakeCostManagement]:
    with FakeCostManagement() as server:
        yield server


def records(first: date = OCT, n_days: int = 3, currency: str = "USD") -> list[Usage]:
    """Two accounts × three meters × ``n_days`` days, each cost and quantity distinct."""
    out = []
    for d, day in enumerate(days(first, n_days)):
        for a, rid in enumerate((EAST, SWEDEN)):
            for m, meter in enumerate((MINI_IN, MINI_OUT, GPT5_BATCH)):
                out.append(Usage(day, rid, meter, Decimal(f"{d + 1}.{a}{m}5"), Decimal(f"{100 * (m + 1)}.{d}"),
                                 currency))
    return out


def read(fake: FakeCostManagement, start: date = OCT, end: date = date(2025, 10, 31), **kw: Any,
         ) -> tuple[list[CostLine], ReadSummary]:
    summary = ReadSummary(path="")
    kw.setdefault("credential", FakeCredential())
    lines = list(query_cost_lines(kw.pop("scope", SCOPE), start, end, base_url=fake.url, summary=summary, **kw))
    assert summary.complete
    assert summary.rows_read == summary.rows_kept + summary.rows_filtered_out + summary.rows_malformed
    assert summary.rows_kept == len(lines)
    assert summary.rows_filtered_out == sum(summary.filtered.values())
    return lines, summary


def key(line: CostLine) -> tuple[Any, ...]:
    return line.day, line.account_id, line.meter_name, line.currency


def test_pages_are_followed_to_the_end_with_the_same_body(fake: FakeCostManagement) -> None:
    fake.records = records()
    fake.page_size = 5  # 18 rows → 4 pages
    credential = FakeCredential()
    lines, summary = read(fake, credential=credential)

    assert len(lines) == 18
    assert len(summary.files) == 4 and summary.files[-1].endswith("page 4")
    posts = fake.requests
    assert [r["query"].get("$skiptoken") is None for r in posts] == [True, False, False, False]
    assert all(r["auth"] and r["method"] == "POST" and r["query"]["api-version"] == "2023-11-01" for r in posts)
    assert all(r["body"] == posts[0]["body"] for r in posts)
    body = posts[0]["body"]
    assert body["type"] == "AmortizedCost" and body["timeframe"] == "Custom"
    assert body["timePeriod"] == {"from": "2025-10-01T00:00:00Z", "to": "2025-10-31T23:59:59Z"}
    assert body["dataset"]["granularity"] == "Daily"
    assert [g["name"] for g in body["dataset"]["grouping"]] == ["ResourceId", "Meter"]
    assert sorted(a["name"] for a in body["dataset"]["aggregation"].values()) == ["Cost", "UsageQuantity"]
    assert body["dataset"]["filter"]["dimensions"]["values"] == list(DEFAULT_SERVICE_NAMES)
    assert credential.scopes[0] == (TOKEN_SCOPE,)

    want = {(r.day, r.resource_id.lower(), r.meter, r.currency): (r.cost, r.quantity) for r in fake.records}
    assert {key(line): (line.cost, line.quantity) for line in lines} == want
    assert summary.cost_kept == {"USD": sum((r.cost for r in fake.records), Decimal(0))}
    east = next(line for line in lines if line.account_name == "aoai-east" and line.meter_name == GPT5_BATCH)
    assert east.account_id == EAST.lower()
    assert (east.resource_group, east.subscription_id) == ("rg-ai", SUB)
    assert east.unit_of_measure == "1M"
    assert east.source.startswith(f"query {SCOPE} 2025-10-01..2025-10-31 page ")
    assert next(line for line in lines if line.meter_name == MINI_IN).unit_of_measure == "1K"


def test_a_long_range_is_queried_one_month_at_a_time(fake: FakeCostManagement) -> None:
    # The fake, like the service, refuses a Daily query longer than 31 days.
    fake.records = records(date(2025, 10, 30), n_days=35)
    fake.page_size = 50
    lines, summary = read(fake, start=date(2025, 10, 31), end=date(2025, 12, 2))

    periods = [r["body"]["timePeriod"] for r in fake.requests if "$skiptoken" not in r["query"]]
    assert len(fake.requests) == 1 + 4 + 1  # November's 180 rows take 4 pages
    assert periods == [
        {"from": "2025-10-31T00:00:00Z", "to": "2025-10-31T23:59:59Z"},
        {"from": "2025-11-01T00:00:00Z", "to": "2025-11-30T23:59:59Z"},
        {"from": "2025-12-01T00:00:00Z", "to": "2025-12-02T23:59:59Z"},
    ]
    assert {line.day for line in lines} == set(days(date(2025, 10, 31), 33))
    assert len(lines) == 33 * 6
    assert summary.rows_filtered_out == 0


def test_rows_that_are_not_azure_openai_are_dropped_and_counted(fake: FakeCostManagement) -> None:
    reservation = "/providers/Microsoft.Capacity/reservationOrders/0a1b2c3d/reservations/4e5f6a7b"
    child = EAST + "/deployments/gpt-4o-mini-prod"
    fake.records = [
        Usage(OCT, EAST, MINI_IN, Decimal("1.5"), Decimal(600)),
        Usage(OCT, child, MINI_OUT, Decimal("2.25"), Decimal(150)),  # a child id lands on its account
        Usage(OCT, SWEDEN, PTU, Decimal("44.00"), Decimal(24)),
        Usage(OCT, VM, "D2s v3", Decimal("2.30"), Decimal(24), service_name="Virtual Machines"),
        Usage(OCT, reservation, "Azure OpenAI Provisioned Throughput Reservation", Decimal(260), Decimal(1),
              service_name="Foundry Models"),
        Usage(OCT, f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Web/sites/app", "P1v3 App",
              Decimal("3.1"), Decimal(24), service_name="Foundry Models"),
    ]
    lines, summary = read(fake, service_names=None)  # no server-side filter: the client decides
    assert fake.requests[0]["body"]["dataset"].get("filter") is None
    assert sorted(line.meter_name for line in lines) == sorted(
        ["Azure OpenAI Provisioned Throughput Reservation", MINI_IN, MINI_OUT, PTU])
    assert summary.filtered == {"not_openai": 2}
    assert {line.account_id for line in lines if line.meter_name == MINI_OUT} == {EAST.lower()}
    assert next(line for line in lines if line.meter_name == PTU).unit_of_measure == ""  # the name does not say

    # with the default ServiceName filter the service drops the VM and the Foundry Tools (Speech) rows itself
    fake.records.append(Usage(OCT, SWEDEN, SPEECH, Decimal("0.5"), Decimal("0.03"), service_name="Foundry Tools"))
    lines, summary = read(fake)
    assert SPEECH not in {line.meter_name for line in lines} and "D2s v3" not in {line.meter_name for line in lines}
    assert summary.filtered == {"not_openai": 1}  # the web app filed under Foundry Models: dropped client-side

    lines, summary = read(fake, service_names=None, openai_only=False)
    assert len(lines) == 7 and summary.rows_filtered_out == 0


def test_columns_are_found_by_name_in_any_order(fake: FakeCostManagement) -> None:
    fake.records = records()
    fake.page_size = 7
    expected, _ = read(fake)
    fake.column_order = ["Currency", "Meter", "UsageDate", "UsageQuantity", "ResourceId", "Cost"]
    reordered, _ = read(fake)
    assert fake.served_columns[-1] == fake.column_order
    assert fake.served_columns[0] == ["Cost", "UsageQuantity", "UsageDate", "ResourceId", "Meter", "Currency"]
    strip = [(key(x), x.cost, x.quantity, x.unit_of_measure) for x in expected]
    assert [(key(x), x.cost, x.quantity, x.unit_of_measure) for x in reordered] == strip


def test_currency_is_read_from_the_appended_column(fake: FakeCostManagement) -> None:
    fake.records = [*records(n_days=1, currency="EUR"),
                    Usage(OCT, EAST, MINI_IN, Decimal("0.10"), Decimal(40), currency="USD")]
    lines, summary = read(fake)
    eur = [line for line in lines if line.currency == "EUR"]
    usd = [line for line in lines if line.currency == "USD"]
    assert len(eur) == 6 and len(usd) == 1
    assert all(line.cost_usd is None for line in eur)  # no exchange rate in a query result
    assert usd[0].cost_usd == usd[0].cost == Decimal("0.10")
    assert summary.currencies == {"EUR", "USD"}
    assert summary.cost_kept["EUR"] == sum((r.cost for r in fake.records if r.currency == "EUR"), Decimal(0))
    assert summary.cost_kept["USD"] == Decimal("0.10")


def test_money_stays_exact(fake: FakeCostManagement) -> None:
    fake.records = [Usage(OCT, EAST, MINI_IN, Decimal("0.1"), Decimal("0.3")) for _ in range(3)]
    (line,), _ = read(fake)
    assert line.cost == Decimal("0.3") and str(line.quantity) == "0.9"  # 0.1+0.1+0.1 summed by the fake, read exactly


@pytest.mark.parametrize("header", ["Retry-After", "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"])
def test_429_waits_what_the_service_asks(fake: FakeCostManagement, header: str) -> None:
    fake.records = records(n_days=1)
    fake.page_size = 4
    fake.throttle = [{header: "1"}]
    started = time.monotonic()
    lines, _ = read(fake)
    elapsed = time.monotonic() - started
    assert 0.95 <= elapsed < 4.0
    assert len(lines) == 6
    assert len(fake.requests) == 3  # 429, page 1, page 2


def test_the_largest_retry_header_wins_and_throttling_midway_resumes_the_same_page(fake: FakeCostManagement) -> None:
    fake.records = records(n_days=1)
    fake.page_size = 4
    summary = ReadSummary(path="")
    it = query_cost_lines(SCOPE, OCT, OCT, credential=FakeCredential(), base_url=fake.url, summary=summary)
    lines = [next(it)]  # page 1 is read; now throttle the request for page 2
    fake.throttle = [{"Retry-After": "0", "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": "1"}]
    started = time.monotonic()
    lines += list(it)
    elapsed = time.monotonic() - started
    assert 0.95 <= elapsed < 4.0
    assert len(lines) == 6 and summary.complete
    assert [r["query"].get("$skiptoken") is None for r in fake.requests] == [True, False, False]
    assert fake.requests[1]["query"]["$skiptoken"] == fake.requests[2]["query"]["$skiptoken"]


def test_retries_are_bounded(fake: FakeCostManagement) -> None:
    fake.records = records(n_days=1)
    fake.throttle = [{"Retry-After": "0"}] * 3
    with pytest.raises(CostQueryError) as info:
        read(fake, max_retries=2)
    assert info.value.status == 429 and "after 3 attempts" in str(info.value)
    assert len(fake.requests) == 3

    fake.throttle = [{"Retry-After": "600"}]
    started = time.monotonic()
    with pytest.raises(CostQueryError, match="600 s, more than max_retry_wait=30"):
        read(fake, max_retry_wait=30)
    assert time.monotonic() - started < 1.0  # refused, not slept


def test_5xx_is_retried_with_backoff(fake: FakeCostManagement) -> None:
    fake.records = records(n_days=1)
    fake.errors = [(503, {"error": {"code": "ServiceUnavailable", "message": "try later"}})]
    started = time.monotonic()
    lines, _ = read(fake)
    assert len(lines) == 6
    assert 0.95 <= time.monotonic() - started < 4.0  # no Retry-After: 1 s, the first back-off step


def test_malformed_rows_are_reported_with_page_and_row(fake: FakeCostManagement) -> None:
    fake.records = records(n_days=1)  # 6 good rows
    fake.page_size = 4
    good = [Decimal("1.5"), Decimal(10), 20251001, EAST, MINI_IN, "USD"]
    fake.extra_rows = [
        ["abc", *good[1:]],                      # page 2 row 3: Cost not a number
        [*good[:2], 20251345, *good[3:]],        # page 2 row 4: no such day
        [None, *good[1:]],                       # page 3 row 1: Cost null
        good[:5],                                # page 3 row 2: short row
        [*good[:4], "", "USD"],                  # page 3 row 3: empty Meter
        [*good[:2], "yesterday", *good[3:]],     # page 3 row 4: UsageDate not a number
        [*good[:2], 20251001, 42, *good[4:]],    # page 4 row 1: ResourceId not a string
        [*good[:1], None, *good[2:]],            # page 4 row 2: null quantity: kept as 0, with a warning
        "not a row",                             # page 4 row 3
        good,                                    # page 4 row 4: fine
    ]
    lines, summary = read(fake)
    assert summary.rows_read == 16
    assert summary.rows_malformed == 8
    assert len(lines) == 8
    where = {(i.file.rsplit(" ", 2)[-1], i.line): i for i in summary.issues}
    assert set(where) == {("2", 3), ("2", 4), ("3", 1), ("3", 2), ("3", 3), ("3", 4), ("4", 1), ("4", 2), ("4", 3)}
    assert "Cost 'abc' is not a number" in where["2", 3].reason
    assert "20251345" in where["2", 4].reason
    assert "Cost is null" in where["3", 1].reason
    assert "expected 6 values, found 5" in where["3", 2].reason
    assert "Meter is empty" in where["3", 3].reason
    assert "UsageDate" in where["3", 4].reason
    assert "ResourceId 42" in where["4", 1].reason
    assert where["4", 2].severity == "warning" and summary.warnings == 1
    assert "not an array" in where["4", 3].reason
    assert all(i.severity == "error" for k, i in where.items() if k != ("4", 2))
    assert all(i.file.startswith(f"query {SCOPE} 2025-10-01..2025-10-31 page ") for i in summary.issues)
    assert [line.quantity for line in lines if line.source.endswith("page 4:2")] == [Decimal(0)]


def test_a_page_without_needed_columns_is_an_error_not_silence(fake: FakeCostManagement) -> None:
    columns = [{"name": "Cost", "type": "Number"}, {"name": "UsageDate", "type": "Number"},
               {"name": "ResourceId", "type": "String"}, {"name": "Currency", "type": "String"}]
    fake.errors = [(200, {"properties": {"columns": columns, "rows": [[1, 20251001, EAST, "USD"]]}})]
    summary = ReadSummary(path="")
    with pytest.raises(CostQueryError, match="columns lack UsageQuantity, Meter"):
        list(query_cost_lines(SCOPE, OCT, OCT, credential=FakeCredential(), base_url=fake.url, summary=summary))
    assert summary.files_malformed == 1 and not summary.complete


def test_a_next_link_to_another_host_is_not_followed(fake: FakeCostManagement) -> None:
    fake.records = records(n_days=1)
    fake.page_size = 4
    fake.next_link_base = "https://attacker.example"
    with pytest.raises(CostQueryError, match=r"nextLink points to https://attacker\.example"):
        read(fake)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("change", "message"), [
    (lambda b: b["dataset"]["grouping"].append({"type": "Dimension", "name": "MeterId"}), "at most 2 groupings"),
    (lambda b: b["dataset"]["aggregation"].update(usd={"name": "CostUSD", "function": "Sum"}), "at most 2 aggreg"),
    (lambda b: b["dataset"].update(granularity="Monthly"), "granularity"),
    (lambda b: b.pop("timePeriod"), "timePeriod is required"),
    (lambda b: b.update(type="Amortized"), "type 'Amortized'"),
])
def test_the_fake_rejects_what_the_service_rejects(fake: FakeCostManagement, change: Any, message: str) -> None:
    body = query_body("AmortizedCost", OCT, OCT, DEFAULT_SERVICE_NAMES)
    change(body)
    url = f"{fake.url}/{SCOPE}/providers/Microsoft.CostManagement/query?api-version=2023-11-01"
    with httpx2.Client() as http:
        response = http.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "BadRequest" and message in error["message"]
        assert http.post(url, json=query_body("AmortizedCost", OCT, OCT, None),
                         headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("scope", [
    SCOPE,
    f"/subscriptions/{SUB}/",
    f"subscriptions/{SUB.upper()}/resourceGroups/rg-ai.prod(1)",
    "providers/Microsoft.Billing/billingAccounts/12345678",
    "/providers/Microsoft.Billing/billingAccounts/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b:"
    "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d_2019-05-31/billingProfiles/AB12-CD34-EF5-GH6",
    "providers/microsoft.management/managementGroups/mg-finance",
])
def test_supported_scopes(scope: str) -> None:
    assert validate_scope(scope) == scope.strip("/")


@pytest.mark.parametrize("scope", [
    "",
    "subscriptions/not-a-guid",
    f"subscriptions/{SUB}/resourceGroups/",
    f"subscriptions/{SUB}/resourceGroups/rg.",
    f"subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/x",
    f"https://management.azure.com/subscriptions/{SUB}",
    f"subscriptions/{SUB}?api-version=1",
    "providers/Microsoft.Billing/billingAccounts/12345678/invoiceSections/x",
    "providers/Microsoft.Billing/billingAccounts/../../x",
    "tenants/0f1e2d3c",
])
def test_bad_scope_is_a_config_error_naming_it(fake: FakeCostManagement, scope: str) -> None:
    with pytest.raises(ConfigError) as info:
        query_cost_lines(scope, OCT, OCT, credential=FakeCredential(), base_url=fake.url)
    assert repr(scope) in str(info.value) and "billingProfiles" in str(info.value)
    assert fake.requests == []  # raised at the call, before any request


def test_bad_arguments_are_config_errors(fake: FakeCostManagement) -> None:
    cred = FakeCredential()
    with pytest.raises(ConfigError, match="after end"):
        query_cost_lines(SCOPE, date(2025, 10, 2), OCT, credential=cred, base_url=fake.url)
    with pytest.raises(ConfigError, match="cost_type"):
        query_cost_lines(SCOPE, OCT, OCT, credential=cred, base_url=fake.url, cost_type="Amortized")
    with pytest.raises(ConfigError, match="loopback"):
        query_cost_lines(SCOPE, OCT, OCT, credential=cred, base_url="http://management.azure.com")
    with pytest.raises(ConfigError, match="get_token"):
        query_cost_lines(SCOPE, OCT, OCT, credential=object(), base_url=fake.url)  # type: ignore[arg-type]


def test_missing_azure_identity_names_the_extra(monkeypatch: pytest.MonkeyPatch, fake: FakeCostManagement) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    with pytest.raises(ConfigError, match=r"pip install 'tokenid\[azure\]'"):
        query_cost_lines(SCOPE, OCT, OCT, base_url=fake.url)


def test_the_bearer_token_never_leaks(fake: FakeCostManagement, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.records = records(n_days=1)
    fake.page_size = 4
    fake.throttle = [{"Retry-After": "0"}]
    read(fake)  # logs requests and a retry
    assert any("retrying" in r.getMessage() for r in caplog.records)

    fake.errors = [(400, {"error": {"code": "BadRequest", "message": f"token {TOKEN} is not valid here"}})]
    with pytest.raises(CostQueryError) as info:
        read(fake)
    assert info.value.status == 400 and info.value.code == "BadRequest"
    assert "<token>" in str(info.value)

    wrong = FakeCredential("eyWRONG.token.SECRET-0000")
    with pytest.raises(CostQueryError) as info401:
        read(fake, credential=wrong)
    assert info401.value.status == 401 and "AuthenticationFailed" in str(info401.value)
    assert len(wrong.scopes) == 2  # a 401 gets one fresh token, then gives up

    texts = [str(info.value), str(info401.value), caplog.text, *(r.getMessage() for r in caplog.records)]
    for secret in (TOKEN, wrong.token):
        assert all(secret not in text for text in texts)


def test_units_derived_from_meter_names_never_contradict_the_catalogue() -> None:
    with METERS_CSV.open(encoding="utf-8") as f:
        catalogue = list(csv.DictReader(f))
    names = {r["meter_name"] for r in catalogue}
    assert {MINI_IN, MINI_OUT, GPT5_BATCH, PTU, DALLE, SPEECH} <= names  # the tests use real meter names
    rows = [r for r in catalogue if r["unit_of_measure_raw"]]
    derived = [(r["meter_name"], r["unit_of_measure_raw"], unit_of_measure(r["meter_name"])) for r in rows]
    wrong = [d for d in derived if d[2] and d[2] != d[1]]
    assert wrong == []
    assert sum(1 for d in derived if d[2] == d[1]) >= 0.9 * len(derived)
    assert unit_of_measure(DALLE) == "100"


def test_importing_tokenid_does_not_import_the_query_reader() -> None:
    code = ("import sys, tokenid, tokenid.azure.exports; "
            "bad = [m for m in ('tokenid.azure.costquery', 'azure.identity', 'azure.core') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
