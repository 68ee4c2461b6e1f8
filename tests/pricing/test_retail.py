"""Azure retail prices: the bundled snapshot, lookups by region and date, units, the file format, and ``sync``
against a local fake of the Retail Prices API (loopback only; never the internet)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from tokenid.errors import TokenIDError
from tokenid.pricing.retail import (
    FIELDS,
    RetailDataError,
    RetailPrice,
    RetailPrices,
    RetailSyncError,
    UnknownUnitError,
    bundled_path,
    default_synced_path,
    dump_document,
    is_azure_openai_item,
    meter_deployment_type,
    per_million,
    per_token,
    per_unit,
    sync,
    unit_quantity,
)

D = Decimal
NIKK = "Azure Retail Prices API via nikklavzar/azure-genai-prices@2d3ab76 (fetched 2026-07-31)"
MM = "Azure Retail Prices API via guygregory/modelmeters.com@144004a (fetched 2026-03-07)"


@pytest.fixture(scope="module")
def bundled() -> RetailPrices:
    return RetailPrices.bundled()


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the real per-user data directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


# -- the bundled snapshot ---------------------------------------------------------------------------------------


def test_bundled_snapshot_is_package_data_with_provenance(bundled: RetailPrices) -> None:
    path = bundled_path()
    assert path.is_file() and path.stat().st_size < 1_000_000
    assert bundled.origin.startswith("bundled snapshot")
    assert bundled.fetched == date(2026, 7, 31)
    repos = {s["repo"]: s for s in bundled.sources}
    assert repos["nikklavzar/azure-genai-prices"]["commit"] == "2d3ab76287bd2002426d31f0910a0c1be30f78c0"
    assert repos["nikklavzar/azure-genai-prices"]["path"] == "src/azure_genai_prices/data/snapshot.json"
    assert repos["guygregory/modelmeters.com"]["commit"] == "144004aa839baa4b20bbbee5fc649fe544ac4db4"
    assert len(bundled) > 1500
    assert {"eastus", "eastus2", "swedencentral", "westeurope", "japaneast"} <= set(bundled.regions())


def test_every_bundled_row_is_azure_openai_with_an_exact_price_and_a_known_unit(bundled: RetailPrices) -> None:
    for item in bundled.items():
        assert item.product_name.startswith("Azure OpenAI"), item
        assert isinstance(item.price, Decimal) and item.price >= 0
        assert item.currency == "USD"
        assert item.source in (NIKK, MM)
        unit_quantity(item.unit_of_measure)  # raises on a unit the helpers cannot divide


def test_load_uses_the_bundled_snapshot_when_nothing_was_synced() -> None:
    assert not default_synced_path().exists()
    prices = RetailPrices.load()
    assert prices.origin.startswith("bundled snapshot")
    assert not default_synced_path().exists()  # loading never writes or syncs


def test_gpt_4o_global_prices_in_eastus(bundled: RetailPrices) -> None:
    inp = bundled.lookup("gpt-4o-0806-Inp-glbl Tokens", "eastus")
    out = bundled.lookup("gpt-4o-0806-Outp-glbl Tokens", "eastus")
    assert inp == RetailPrice("gpt-4o-0806-Inp-glbl Tokens", "Azure OpenAI", "gpt-4o-0806-Inp-glbl", "eastus", "1K",
                              D("0.0025"), "USD", date(2024, 8, 1), MM)
    assert out is not None and out.price == D("0.01") and out.region == "eastus"
    assert (per_million(inp), per_million(out)) == (D("2.5"), D("10"))


@pytest.mark.parametrize(("meter", "region", "per_1m"), [
    ("gpt 4o 0806 cached Inp glbl Tokens", "eastus", "1.25"),  # cached input 0.5x (PRICING.md §2)
    ("gpt 4o 0806 Inp Data Zone Tokens", "eastus2", "2.75"),  # Data Zone 1.10x
    ("gpt-4o-0806-Inp-regnl Tokens", "eastus2", "2.75"),  # Regional 1.10x in US regions
    ("gpt 4.1 Inp glbl Tokens", "swedencentral", "2"),
    ("gpt 4.1 cached Inp glbl Tokens", "eastus2", "0.5"),  # gpt-4.1 cached 0.25x
    ("o3 mini 0131 input glbl Tokens", "eastus2", "1.1"),
    ("GPT 5 Inpt Glbl 1M Tokens", "eastus", "1.25"),
    ("GPT 5 outpt Glbl 1M Tokens", "eastus", "10"),
    ("gpt-4o-mini-0718-Batch-Inp-glbl Tokens", "swedencentral", "0.075"),  # batch 0.5x
])
def test_known_retail_prices(bundled: RetailPrices, meter: str, region: str, per_1m: str) -> None:
    found = bundled.lookup(meter, region, date(2026, 7, 31))
    assert found is not None and per_million(found) == D(per_1m)


def test_rows_merged_across_regions_that_disagree_are_unpriced(bundled: RetailPrices) -> None:
    # The snapshot keeps one row per distinct price of a meter, without the regions: 1.10x, 1.20x, 1.32x ...
    merged = [p for p in bundled.items() if p.meter_name == "gpt 4o 1120 Outp regnl Tokens"]
    assert len({p.price for p in merged}) > 1 and {p.region for p in merged} == {""}
    assert bundled.lookup("gpt 4o 1120 Outp regnl Tokens", "eastus2") is None
    # ... while a region the second source lists is priced from its own row
    assert bundled.lookup("gpt-4o-0806-Inp-regnl Tokens", "westus3") is not None
    assert bundled.lookup("gpt-4o-0806-Inp-regnl Tokens", "centralus") is None


# -- lookup semantics on a small, hand-made list ----------------------------------------------------------------


def price(meter: str, region: str, amount: str, start: date, unit: str = "1K") -> RetailPrice:
    return RetailPrice(meter, "Azure OpenAI", "", region, unit, D(amount), "USD", start, "test")


SMALL = RetailPrices(
    [
        price("m Inp glbl Tokens", "eastus", "0.002", date(2025, 1, 1)),
        price("m Inp glbl Tokens", "eastus", "0.0025", date(2025, 6, 1)),
        price("m Inp glbl Tokens", "westeurope", "0.003", date(2025, 3, 1)),
        price("m Inp glbl Tokens", "", "0.0025", date(2025, 1, 1)),
        price("m Inp regnl Tokens", "", "0.0022", date(2025, 1, 1)),
        price("m Inp regnl Tokens", "", "0.00242", date(2025, 2, 1)),
        price("m Outp glbl Tokens", "", "0.008", date(2025, 1, 1)),
        price("m Outp glbl Tokens", "", "0.01", date(2025, 1, 1)),
    ],
    fetched=date(2025, 7, 1),
    sources=[{"id": "test", "label": "test"}],
)


@pytest.mark.parametrize(("meter", "region", "at", "expected"), [
    ("m Inp glbl Tokens", "eastus", date(2025, 5, 31), "0.002"),  # the price in effect that day
    ("m Inp glbl Tokens", "eastus", date(2025, 6, 1), "0.0025"),  # new price from its effective date
    ("m Inp glbl Tokens", "eastus", datetime(2030, 1, 1, tzinfo=timezone.utc), "0.0025"),
    ("m Inp glbl Tokens", "eastus", date(2024, 12, 31), None),  # not yet sold there: no older region-less guess
    ("m Inp glbl Tokens", "East US", date(2025, 7, 1), "0.0025"),  # display name spelling of the region
    ("M  INP GLBL tokens", "EASTUS", date(2025, 7, 1), "0.0025"),  # meter and region ignore case and spacing
    ("m Inp glbl Tokens", "westeurope", date(2025, 7, 1), "0.003"),  # a region's own row beats the merged row
    ("m Inp glbl Tokens", "centralus", date(2025, 7, 1), "0.0025"),  # unlisted region: the merged row
    ("m Inp glbl Tokens", "", date(2025, 7, 1), "0.0025"),
    ("m Inp regnl Tokens", "centralus", date(2025, 1, 15), "0.0022"),  # only one merged row in effect yet
    ("m Inp regnl Tokens", "centralus", date(2025, 7, 1), None),  # two merged prices: region-dependent
    ("m Outp glbl Tokens", "eastus", date(2025, 7, 1), None),  # same date, different prices: ambiguous
    ("no such meter", "eastus", date(2025, 7, 1), None),
])
def test_lookup_by_region_and_date(meter: str, region: str, at: date, expected: str | None) -> None:
    found = SMALL.lookup(meter, region, at)
    assert (found.price if found else None) == (D(expected) if expected else None)


def test_lookup_defaults_to_today() -> None:
    today = datetime.now(timezone.utc).date()
    assert SMALL.lookup("m Inp glbl Tokens", "eastus") == SMALL.lookup("m Inp glbl Tokens", "eastus", today)


def test_find_matches_meter_spellings_and_filters_by_region(bundled: RetailPrices) -> None:
    names = {p.meter_name for p in bundled.find("gpt-4o-0806")}
    assert {"gpt-4o-0806-Inp-glbl Tokens", "gpt 4o 0806 Inp Data Zone Tokens"} <= names
    in_eastus = bundled.find("GPT_4o 0806", region="East US")
    assert in_eastus and {p.region for p in in_eastus} == {"eastus", ""}
    assert bundled.find("no-such-model") == []
    assert SMALL.regions() == ("eastus", "westeurope")


@pytest.mark.parametrize(("meter", "kind"), [
    ("gpt-4o-0806-Inp-glbl Tokens", "global"),
    ("5.4 opt Gl 1M Tokens", "global"),
    ("gpt 4o 0806 Inp Data Zone Tokens", "data_zone"),
    ("GPT 5 Nano Batch Inpt DZone 1M Tokens", "data_zone_batch"),
    ("gpt 4o mini0718 BatchOutp DataZone Tokens", "data_zone_batch"),
    ("gpt-4o-0806-Batch-Inp-glbl Tokens", "global_batch"),
    ("gpt-4o-0806-Outp-regnl Tokens", "regional"),
    ("gpt-35-turbo-4k-Input-regional Tokens", "regional"),
    ("GPT 5.1 inp Rg 1M Tokens", "regional"),
    ("Provisioned Managed Global Unit", "provisioned"),
    ("Az-GPT-3.5-turbo Tokens", None),
])
def test_meter_deployment_type(meter: str, kind: str | None) -> None:
    assert meter_deployment_type(meter) == kind


# -- units ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "amount", "one_unit"), [
    ("1K", "0.0025", "0.0000025"),
    ("1M", "1.25", "0.00000125"),
    ("100", "4.4", "0.044"),  # DALL-E images
    ("1", "0.03", "0.03"),  # code interpreter sessions
    ("1 Hour", "1.7", "1.7"),  # fine-tuned model hosting
    ("1/Hour", "2", "2"),  # provisioned throughput unit-hours
    ("1 Second", "0.45", "0.45"),
    ("1/Day", "0.1", "0.1"),
])
def test_per_unit(unit: str, amount: str, one_unit: str) -> None:
    item = price("x", "", amount, date(2025, 1, 1), unit=unit)
    assert per_unit(item) == per_token(item) == D(one_unit)


def test_per_million_is_exact_for_token_meters() -> None:
    assert per_million(price("x", "", "0.000083", date(2025, 1, 1))) == D("0.083")
    assert per_million(price("x", "", "0.000025", date(2025, 1, 1), unit="1K")) == D("0.025")
    with pytest.raises(UnknownUnitError, match="per_unit"):
        per_million(price("x", "", "1.7", date(2025, 1, 1), unit="1 Hour"))


@pytest.mark.parametrize("unit", ["1 Year", "1/Year", "1 GB/Month", "", "0", "1.5K", "tokens"])
def test_unknown_unit_is_a_clear_error(unit: str) -> None:
    with pytest.raises(UnknownUnitError, match="unknown unitOfMeasure") as info:
        per_unit(price("x", "", "260", date(2025, 1, 1), unit=unit))
    assert isinstance(info.value, TokenIDError) and "'1K'" in str(info.value)


# -- the file format ----------------------------------------------------------------------------------------------


def test_file_round_trips(bundled: RetailPrices, tmp_path: Path) -> None:
    path = tmp_path / "copy.json"
    path.write_text(bundled.to_text(), encoding="utf-8")
    again = RetailPrices.load(path)
    assert again.items() == bundled.items()
    assert again.fetched == bundled.fetched and again.sources == bundled.sources
    assert path.read_text(encoding="utf-8") == bundled_path().read_text(encoding="utf-8")


def test_dump_document_is_one_exact_row_per_line() -> None:
    text = dump_document(
        [["b Tokens", "Azure OpenAI", "", "eastus", "1K", "0.000025", "USD", "2025-01-01", 0]] * 2
        + [["a Tokens", "Azure OpenAI", "", "", "1M", "10", "USD", "2025-01-01", 0]],
        sources=[{"id": "t", "label": "t"}], fetched=date(2025, 2, 1))
    doc = json.loads(text)
    assert doc["fields"] == list(FIELDS) and doc["fetched"] == "2025-02-01"
    assert doc["rows"] == [["a Tokens", "Azure OpenAI", "", "", "1M", "10", "USD", "2025-01-01", 0],
                           ["b Tokens", "Azure OpenAI", "", "eastus", "1K", "0.000025", "USD", "2025-01-01", 0]]
    assert text.count("\n  [") == 2


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON"),
    ("[]", "expected a JSON object"),
    ('{"format": "other/1"}', "format is 'other/1'"),
])
def test_corrupt_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RetailDataError, match=message) as info:
        RetailPrices.load(path)
    assert str(path) in str(info.value) and "tokenid prices sync" in str(info.value)


def test_bad_row_is_reported_with_its_number(tmp_path: Path) -> None:
    text = dump_document([["a Tokens", "Azure OpenAI", "", "", "1K", "0.01", "USD", "2025-01-01", 0]],
                         sources=[{"id": "t"}], fetched=date(2025, 1, 1))
    path = tmp_path / "prices.json"
    path.write_text(text.replace('"0.01"', '"ten cents"'), encoding="utf-8")
    with pytest.raises(RetailDataError, match=r"row 1: retailPrice 'ten cents' is not a decimal number"):
        RetailPrices.load(path)
    path.write_text(text.replace(', 0]', ', 7]'), encoding="utf-8")
    with pytest.raises(RetailDataError, match=r"row 1: source 7"):
        RetailPrices.load(path)


def test_corrupt_synced_file_is_not_silently_replaced_by_the_snapshot() -> None:
    synced = default_synced_path()
    synced.parent.mkdir(parents=True)
    synced.write_text('{"format": "tokenid.azure-retail/1", "rows": [', encoding="utf-8")
    with pytest.raises(RetailDataError, match="corrupt") as info:
        RetailPrices.load()
    assert str(synced) in str(info.value)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RetailDataError, match="no retail prices file"):
        RetailPrices.load(tmp_path / "absent.json")


def test_is_azure_openai_item() -> None:
    assert is_azure_openai_item({"productName": "Azure OpenAI GPT5", "type": "Consumption"})
    assert is_azure_openai_item({"productName": "Azure OpenAI"})  # dumps that dropped the type field
    assert not is_azure_openai_item({"productName": "Azure OpenAI", "type": "Reservation"})  # price per term
    assert not is_azure_openai_item({"productName": "Cohere Models", "type": "Consumption"})


# -- sync against a local fake of the API -------------------------------------------------------------------------


def item(meter: str, region: str, amount: str, *, product: str = "Azure OpenAI", kind: str = "Consumption",
         unit: str = "1K", start: str = "2024-08-01T00:00:00Z") -> str:
    # prices are written as JSON number literals, as the API sends them (0.0025, 2.5E-05)
    return (f'{{"currencyCode": "USD", "retailPrice": {amount}, "unitPrice": {amount}, "armRegionName": "{region}", '
            f'"location": "x", "effectiveStartDate": "{start}", "meterId": "id", "meterName": "{meter}", '
            f'"productName": "{product}", "skuName": "{meter.rsplit(" ", 1)[0]}", "serviceName": "Foundry Models", '
            f'"unitOfMeasure": "{unit}", "type": "{kind}"}}')


class FakeRetailAPI:
    """The Retail Prices API on 127.0.0.1: paged JSON chained by NextPageLink, with scripted failures."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.failures: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.pages: dict[str, tuple[list[str], str | None]] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append(self.path)
                split = urlsplit(self.path)
                page = parse_qs(split.query).get("$skip", ["0"])[0]
                queued = api.failures.get(page)
                if queued:
                    status, headers = queued.pop(0)
                    self._send(status, b'{"Error": "busy"}', headers)
                    return
                items, next_skip = api.pages[page]
                next_link = None if next_skip is None else (
                    f"{api.url}?currencyCode='USD'&$filter=serviceName%20eq%20'Foundry%20Models'&$skip={next_skip}")
                body = ('{"BillingCurrency": "USD", "Items": [' + ", ".join(items) + "], "
                        f'"NextPageLink": {json.dumps(next_link)}, "Count": {len(items)}}}')
                self._send(200, body.encode(), {"Content-Type": "application/json"})

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/retail/prices"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def __enter__(self) -> FakeRetailAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def api() -> Iterator[FakeRetailAPI]:
    with FakeRetailAPI() as fake:
        fake.pages = {
            "0": ([item("gpt-4o-0806-Inp-glbl Tokens", "eastus", "0.0025"),
                   item("gpt-4o-0806-Inp-glbl Tokens", "swedencentral", "0.0025"),
                   item("Llama-3.3-70B-Instruct Inp glbl Tokens", "eastus", "0.00071", product="Meta Llama")], "2"),
            "2": ([item("gpt-4o-0806-Outp-glbl Tokens", "eastus", "0.01"),
                   item("Provisioned Managed Global Unit", "eastus", "260", kind="Reservation", unit="1 Hour"),
                   item("gpt 4.1 nano cached Inp glbl Tokens", "eastus", "2.5E-05", start="2025-04-01T00:00:00Z")],
                  "4"),
            "4": ([item("GPT 5 Inpt Glbl 1M Tokens", "westeurope", "1.25", product="Azure OpenAI GPT5", unit="1M",
                        start="2025-08-01T00:00:00Z")], None),
        }
        yield fake


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(trust_env=False, timeout=10) as client:  # loopback only, whatever proxy the env names
        yield client


def test_sync_pages_retries_filters_and_writes(api: FakeRetailAPI, http: httpx2.Client, tmp_path: Path) -> None:
    api.failures = {"2": [(429, {"Retry-After": "3"})], "4": [(503, {}), (502, {})]}
    slept: list[float] = []
    dest = tmp_path / "out" / "azure_retail.json"
    summary = sync(dest, base_url=api.url, client=http, sleep=slept.append, backoff=0.25, today=date(2026, 8, 1))

    assert slept == [3.0, 0.25, 0.5]  # Retry-After honoured; exponential backoff without it
    assert (summary.path, summary.items, summary.pages, summary.skipped) == (dest, 5, 3, 2)
    assert summary.regions == ("eastus", "swedencentral", "westeurope")
    assert summary.fetched == date(2026, 8, 1)
    first = urlsplit(api.requests[0])
    assert parse_qs(first.query) == {"currencyCode": ["'USD'"],
                                     "$filter": ["serviceName eq 'Foundry Models' and priceType eq 'Consumption'"]}
    assert [parse_qs(urlsplit(r).query).get("$skip") for r in api.requests[1:]] == [["2"]] * 2 + [["4"]] * 3

    prices = RetailPrices.load(dest)
    assert prices.fetched == date(2026, 8, 1)
    label = f"Azure Retail Prices API, synced 2026-08-01 from {api.url}"
    assert prices.sources[0]["label"] == label and prices.sources[0]["url"] == api.url
    assert prices.lookup("gpt 4.1 nano cached Inp glbl Tokens", "eastus") == RetailPrice(
        "gpt 4.1 nano cached Inp glbl Tokens", "Azure OpenAI", "gpt 4.1 nano cached Inp glbl", "eastus", "1K",
        D("0.000025"), "USD", date(2025, 4, 1), label)
    assert '"0.000025"' in dest.read_text(encoding="utf-8")  # exact decimal text, no float or exponent
    assert prices.lookup("Llama-3.3-70B-Instruct Inp glbl Tokens", "eastus") is None
    assert prices.lookup("Provisioned Managed Global Unit", "eastus") is None  # reservation dropped
    assert [p.meter_name for p in prices.items()].count("gpt-4o-0806-Inp-glbl Tokens") == 2
    assert sorted(p.name for p in dest.parent.iterdir()) == ["azure_retail.json"]  # no temp files left


def test_sync_default_destination_is_the_user_data_dir(api: FakeRetailAPI, http: httpx2.Client) -> None:
    summary = sync(base_url=api.url, client=http, sleep=lambda _: None)
    assert summary.path == default_synced_path() and summary.path.is_file()
    assert RetailPrices.load().origin == str(summary.path)  # the synced file now overrides the bundled one


def test_failed_sync_leaves_the_previous_file_intact(api: FakeRetailAPI, http: httpx2.Client, tmp_path: Path) -> None:
    dest = tmp_path / "azure_retail.json"
    dest.write_text("previous", encoding="utf-8")
    api.failures = {"2": [(500, {})] * 10}
    slept: list[float] = []
    with pytest.raises(RetailSyncError, match="HTTP 500 after 3 attempts"):
        sync(dest, base_url=api.url, client=http, sleep=slept.append, max_retries=2, backoff=0.5, max_backoff=0.75)
    assert slept == [0.5, 0.75]  # capped backoff
    assert dest.read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["azure_retail.json"]


def test_client_errors_are_not_retried(api: FakeRetailAPI, http: httpx2.Client, tmp_path: Path) -> None:
    api.failures = {"0": [(400, {})]}
    slept: list[float] = []
    with pytest.raises(RetailSyncError, match="HTTP 400 after 1 attempts"):
        sync(tmp_path / "x.json", base_url=api.url, client=http, sleep=slept.append)
    assert slept == [] and not (tmp_path / "x.json").exists()


def test_connection_errors_are_retried_then_reported(http: httpx2.Client, tmp_path: Path) -> None:
    with FakeRetailAPI() as fake:
        url = fake.url  # a port nothing listens on once the fake is gone
    slept: list[float] = []
    with pytest.raises(RetailSyncError, match="failed after 2 attempts"):
        sync(tmp_path / "x.json", base_url=url, client=http, sleep=slept.append, max_retries=1, backoff=0)
    assert slept == [0]


def test_prices_built_in_memory_can_be_written_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "small.json"
    path.write_text(SMALL.to_text(), encoding="utf-8")
    again = RetailPrices.load(path)
    assert again.items() == SMALL.items() and again.fetched == SMALL.fetched
    bare = RetailPrices([price("z Tokens", "eastus", "1", date(2025, 1, 1))], fetched=date(2025, 1, 2))
    assert RetailPrices.from_text(bare.to_text(), origin="x").items() == bare.items()
