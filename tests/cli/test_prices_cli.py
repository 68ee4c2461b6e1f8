"""``tokenid prices sync`` / ``show`` through CliRunner on a local Typer app (the real ``tokenid`` app registers
``prices_app`` as ``prices``). Sync talks to a fake Retail Prices API on 127.0.0.1 only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tokenid.cli.prices import prices_app

app = typer.Typer()
app.add_typer(prices_app, name="prices")
runner = CliRunner(env={"COLUMNS": "220"})


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["prices", *args], terminal_width=220)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # never the real per-user data directory
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # the sync below must stay on loopback


ITEMS = [
    {"currencyCode": "USD", "retailPrice": 0.0025, "armRegionName": "eastus", "effectiveStartDate":
     "2024-08-01T00:00:00Z", "meterName": "gpt-4o-0806-Inp-glbl Tokens", "productName": "Azure OpenAI",
     "skuName": "gpt-4o-0806-Inp-glbl", "unitOfMeasure": "1K", "type": "Consumption"},
    {"currencyCode": "USD", "retailPrice": 0.00275, "armRegionName": "eastus2", "effectiveStartDate":
     "2024-08-01T00:00:00Z", "meterName": "gpt-4o-0806-Inp-regnl Tokens", "productName": "Azure OpenAI",
     "skuName": "gpt-4o-0806-Inp-regnl", "unitOfMeasure": "1K", "type": "Consumption"},
    {"currencyCode": "USD", "retailPrice": 1.0, "armRegionName": "eastus", "effectiveStartDate":
     "2024-11-01T00:00:00Z", "meterName": "Command A Inp Glbl Tokens", "productName": "Cohere Models",
     "skuName": "x", "unitOfMeasure": "1K", "type": "Consumption"},
]


@pytest.fixture
def api_url() -> Iterator[str]:
    """Two pages joined by NextPageLink; the second answers 429 (Retry-After: 0) once."""
    state = {"throttled": False}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            second = "page=2" in self.path
            if second and not state["throttled"]:
                state["throttled"] = True
                self._send(429, {"Error": "slow down"}, {"Retry-After": "0"})
                return
            port = self.server.server_address[1]
            page = {"Items": ITEMS[2:] if second else ITEMS[:2],
                    "NextPageLink": None if second else f"http://127.0.0.1:{port}/api/retail/prices?page=2"}
            self._send(200, page, {})

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/retail/prices"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_show_lists_the_bundled_rows_of_a_model() -> None:
    out = run("show", "gpt-4o-0806", "--region", "eastus", "--type", "global")
    assert "Azure retail prices matching 'gpt-4o-0806'" in out
    assert "gpt-4o-0806-Inp-glbl Tokens" in out and "gpt-4o-0806-Outp-glbl Tokens" in out
    assert "$0.0025" in out and "$2.5/1M tokens" in out and "$10/1M tokens" in out
    assert "eastus" in out and "(any)" in out and "2024-08-01" in out
    assert "Data Zone" not in out and "regnl" not in out  # --type global
    assert "nikklavzar/azure-genai-prices@2d3ab76" in out and "fetched 2026-07-31" in out
    assert "not your EA/MCA price" in out


def test_show_json_has_exact_prices_and_sources() -> None:
    doc = json.loads(run("show", "gpt 4o 0806", "--region", "eastus2", "--type", "data_zone", "--json"))
    assert doc["type"] == "data_zone" and doc["region"] == "eastus2" and doc["fetched"] == "2026-07-31"
    assert {s["repo"] for s in doc["sources"]} == {"nikklavzar/azure-genai-prices", "guygregory/modelmeters.com"}
    rows = {r["meterName"]: r for r in doc["prices"]}
    assert rows["gpt 4o 0806 Inp Data Zone Tokens"] == {
        "meterName": "gpt 4o 0806 Inp Data Zone Tokens", "productName": "Azure OpenAI", "skuName": "",
        "armRegionName": "", "unitOfMeasure": "1K", "retailPrice": "0.00275", "currencyCode": "USD",
        "effectiveStartDate": "2024-10-01", "deploymentType": "data_zone", "perUnit": "0.00000275",
        "perMillion": "2.75",
        "source": "Azure Retail Prices API via nikklavzar/azure-genai-prices@2d3ab76 (fetched 2026-07-31)"}
    assert all(r["deploymentType"] == "data_zone" for r in doc["prices"])


def test_show_time_based_meters_per_hour() -> None:
    doc = json.loads(run("show", "Provisioned Managed Global", "--json"))
    assert doc["prices"][0]["unitOfMeasure"] == "1/Hour" and doc["prices"][0]["perMillion"] is None
    assert "$1/hour" in run("show", "Provisioned Managed Global")


def test_show_unknown_model_and_bad_type() -> None:
    assert "unknown model 'gpt-99'" in " ".join(run("show", "gpt-99", code=2).split())
    out = run("show", "gpt-4o", "--type", "cheap", code=2)
    assert "--type" in out and "data_zone" in out


def test_show_explains_how_a_call_is_priced() -> None:
    out = run("show", "gpt-4o", "--type", "data_zone", "--region", "eastus2", "--input", "1000000",
              "--output", "0")
    assert "How it is priced" in out and "azure-retail" in out and "$2.75" in out
    doc = json.loads(run("show", "gpt-4o", "--provider", "openai", "--batch", "--json"))
    assert doc["explanation"]["cost_usd"] == "6.25"  # (2.50 + 10) / 2
    assert "batch" in doc["explanation"]["text"]


def test_show_event_re_explains_a_journaled_call(tmp_path: Path) -> None:
    from tokenid import Journal
    from tokenid.journal import COLUMNS

    journal = Journal(tmp_path / "j.db")
    values = dict.fromkeys(COLUMNS)
    values.update(id="0" * 32, started_at="2026-07-15T10:00:00.000000Z", provider="azure_openai",
                  endpoint="chat.completions", usage_source="reported", status="ok",
                  canonical_model="gpt-4o-2024-08-06", deployment_type="data_zone", region="eastus2",
                  input_tokens=1000, output_tokens=100)

    class Fixed:
        def to_row(self) -> tuple[object, ...]:
            return tuple(values[c] for c in COLUMNS)

        def fallback_row(self, error: BaseException) -> tuple[object, ...]:
            return self.to_row()

    journal.record(Fixed())  # type: ignore[arg-type]
    journal.close()
    out = run("show", "--event", "0" * 32, "--journal", str(tmp_path / "j.db"))
    assert "data_zone" in out and "$0.003850000" in out  # 1000 x 2.75 + 100 x 11, per 1M
    assert "no event" in run("show", "--event", "nope", "--journal", str(tmp_path / "j.db"), code=2)


def test_show_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text("{oops", encoding="utf-8")
    result = runner.invoke(app, ["prices", "show", "gpt-4o", "--file", str(bad)])
    assert result.exit_code == 1
    assert "corrupt" in result.output and str(bad) in result.output


def test_sync_writes_the_user_file_that_show_then_reads(api_url: str, tmp_path: Path) -> None:
    out = run("sync", "--base-url", api_url)
    synced = tmp_path / "xdg" / "tokenid" / "azure_retail.json"
    assert f"Wrote {synced}" in out.replace("\n", "")
    assert "Synced 2 Azure OpenAI retail prices in 2 regions (2 pages, 1 other items skipped)" in out
    doc = json.loads(run("show", "gpt-4o-0806", "--json"))
    assert doc["origin"] == str(synced)
    assert [(r["meterName"], r["armRegionName"], r["retailPrice"]) for r in doc["prices"]] == [
        ("gpt-4o-0806-Inp-glbl Tokens", "eastus", "0.0025"), ("gpt-4o-0806-Inp-regnl Tokens", "eastus2", "0.00275")]
    assert doc["sources"][0]["url"] == api_url


def test_sync_to_dest_and_show_from_file(api_url: str, tmp_path: Path) -> None:
    dest = tmp_path / "elsewhere.json"
    run("sync", "--dest", str(dest), "--base-url", api_url)
    assert not (tmp_path / "xdg").exists()
    out = run("show", "gpt-4o-0806-Inp-regnl", "--file", str(dest))
    assert "eastus2" in out and "$2.75/1M tokens" in out and "synced" in out.lower()


def test_sync_failure_exits_non_zero(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prices", "sync", "--dest", str(tmp_path / "x.json"),
                                 "--base-url", "http://127.0.0.1:9/api/retail/prices", "--retries", "0"])
    assert result.exit_code == 1 and "error:" in result.output
    assert not (tmp_path / "x.json").exists()
