"""What a person sees: headless Chromium against a real uvicorn server on 127.0.0.1, over a real journal.

Screenshots of every view (light and dark, a laptop-sized window) go to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import uvicorn
from dashtraffic import cost, sql
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tokenid import Journal
from tokenid.dashboard import create_app
from tokenid.dashboard.sample import ReadyRows, sample_rows
from tokenid.enforce import SQLiteCounters, parse_config, parse_window
from tokenid.simulator.background import BackgroundServer

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


class Site:
    def __init__(self, base: str, journal: Journal, events: list[dict[str, Any]]) -> None:
        self.base = base
        self.journal = journal
        self.events = events


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    path = tmp_path_factory.mktemp("browser") / "journal.db"
    journal = Journal(path)
    start = (datetime.now(timezone.utc) - timedelta(days=6)).replace(minute=0, second=0, microsecond=0)
    journal.record(ReadyRows(list(sample_rows(1800, start=start, hours=24 * 6 - 2, sessions=24, seed=21))))
    journal.flush()
    sql(path, "UPDATE events SET invoice_cost_nanousd = cost_nanousd * 92 / 100 WHERE deployment = 'gpt-4o' "
              "AND cost_nanousd IS NOT NULL")
    sql(path, "INSERT INTO reconcile_runs (id, created_at, source, period_from, period_to, currency) VALUES "
              "('run-7', ?, 'azure-export', ?, ?, 'USD')", (datetime.now(timezone.utc).isoformat(),
                                                            start.date().isoformat(), start.date().isoformat()))
    for n, (meter, invoice, journal_cost, status) in enumerate([
            ("gpt-4o-0806-Inp-glbl Tokens", "41.20", "44.80", "variance"),
            ("gpt-4o-0806-Outp-glbl Tokens", "63.10", "63.10", "matched"),
            ("gpt-4o-mini-0718-Inp-glbl Tokens", "2.40", None, "invoice_only")]):
        variance = Decimal(invoice) - Decimal(journal_cost or 0)
        sql(path, "INSERT INTO reconcile_lines (run_id, day, account_id, account_name, meter_name, currency, "
                  "invoice_cost, invoice_cost_usd, journal_cost_usd, variance_usd, variance_pct, status) VALUES "
                  "('run-7', ?, 'sub-1', 'Production', ?, 'USD', ?, ?, ?, ?, ?, ?)",
            ((start + timedelta(days=n)).date().isoformat(), meter, invoice, invoice, journal_cost, str(variance),
             None if journal_cost is None else float(variance * 100 / Decimal(journal_cost)), status))
    config = parse_config({"budgets": [
        {"name": "team-daily", "scope": "tag:team", "window": "day", "limit_usd": "25"},
        {"name": "session-tokens", "scope": "session", "window": "rolling:1h", "limit_tokens": 200000}]})
    counters = SQLiteCounters(path)
    counters.add("team-daily|team:support", parse_window("day"), 18_400_000_000)
    counters.add("team-daily|team:search", parse_window("day"), 6_100_000_000)
    counters.add("session-tokens|session:sess-00003", parse_window("rolling:1h"), 120_000)
    counters.close()
    app = create_app(path, budgets=config.budgets)
    with BackgroundServer(lambda port: uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                      access_log=False, lifespan="off"), name="dashboard") as server:
        yield Site(f"http://127.0.0.1:{server.port}", journal, journal.events())
    journal.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests drive Debian's Chromium at {CHROMIUM}: apt-get install chromium "
                    "(scripts/install-chromium installs it when missing)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("request", lambda r: problems.append(f"off-site request {r.url}")
          if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)
    yield pg
    context.close()
    assert not problems, problems


def usd(value: Decimal) -> str:
    """The dashboard's display of dollars: cents from $1, 4 decimals from 1 cent, else 6."""
    digits = 2 if value >= 1 else 4 if value >= Decimal("0.01") else 6
    return f"${value.quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP):,f}"


def open_view(page: Page, site: Site, hash_: str) -> None:
    page.goto(f"{site.base}/#/{hash_}")
    page.wait_for_selector("body[data-ready='1']")


def test_overview_shows_the_totals_and_a_chart(page: Page, site: Site) -> None:
    open_view(page, site, "overview?range=7d")
    expect(page.locator("[data-kpi='spend'] .value")).to_have_text(usd(cost(site.events)))
    expect(page.locator("[data-kpi='calls'] .value")).to_have_text(f"{len(site.events):,}")
    assert page.locator("#chart rect.bar").count() > 10
    assert page.locator("#legend .legend span").count() == len({e["canonical_model"] for e in site.events})
    page.locator("#chart .hover-col").nth(3).hover()
    expect(page.locator("#tooltip")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "overview-light.png", full_page=True)
    page.click("button[data-set='bucket'][data-value='hour']")  # every bucket width draws, labels included
    expect(page.locator("#chart .axis text").first).to_be_visible()
    assert page.locator("#chart .hover-col").count() in (24 * 7, 24 * 7 + 1)  # 7 days of whole hours up to now
    page.click("button[data-set='bucket'][data-value='month']")
    now = datetime.now(timezone.utc)
    months = {(now - timedelta(days=7)).strftime("%Y-%m"), now.strftime("%Y-%m")}
    expect(page.locator("#chart .hover-col")).to_have_count(len(months))
    expect(page.locator("#notice")).to_be_hidden()
    page.select_option("select[data-param='group']", "tag:team")
    expect(page.locator("#legend .legend span")).to_have_count(len({e["tags"]["team"] for e in site.events}))


def test_filter_by_session_then_open_it_and_see_a_blocked_call(page: Page, site: Site) -> None:
    counts = Counter(e["session_id"] for e in site.events if e["status"] == "blocked")
    session = counts.most_common(1)[0][0]
    mine = [e for e in site.events if e["session_id"] == session]
    open_view(page, site, "overview?range=7d")
    page.fill("#f-session", session)
    page.click("#filters button[type=submit]")
    expect(page.locator("[data-kpi='calls'] .value")).to_have_text(f"{len(mine):,}")
    expect(page.locator("[data-kpi='spend'] .value")).to_have_text(usd(cost(mine)))
    assert f"session={session}" in page.url
    page.click(".tabs a[data-view='sessions']")
    row = page.locator("table.sessions tbody tr")
    expect(row).to_have_count(1)
    row.locator("a").click()
    expect(page.locator("h1")).to_contain_text(session)
    expect(page.locator("#session-calls tbody tr")).to_have_count(len(mine))
    blocked = page.locator("#session-calls tbody tr", has=page.locator(".badge.blocked")).first
    expect(blocked.locator(".actions")).to_contain_text("team-daily")
    blocked.click()
    expect(page.locator("tr.detail")).to_contain_text("budget team-daily exceeded")
    page.screenshot(path=ARTIFACTS / "session.png", full_page=True)


def test_sessions_sort_by_spend(page: Page, site: Site) -> None:
    open_view(page, site, "sessions?range=7d")
    page.click("th[data-sort='cost']")
    expect(page.locator("th.sorted")).to_have_text("Spend")
    by: dict[str, list[dict[str, Any]]] = {}
    for e in site.events:
        by.setdefault(e["session_id"], []).append(e)
    top = max(by, key=lambda s: cost(by[s]))
    expect(page.locator("table.sessions tbody tr").first).to_contain_text(top)
    page.screenshot(path=ARTIFACTS / "sessions.png", full_page=True)


def test_download_sessions_csv(page: Page, site: Site) -> None:
    open_view(page, site, "sessions?range=7d")
    page.wait_for_selector("table.sessions")
    with page.expect_download() as info:
        page.click("a[data-csv]")
    download = info.value
    assert download.suggested_filename == "tokenid-sessions.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rows) == len({e["session_id"] for e in site.events})
    assert sum(Decimal(r["cost_usd"]) for r in rows) == cost(site.events)


def test_enforcement_budgets_and_blocked_calls(page: Page, site: Site) -> None:
    open_view(page, site, "enforcement?range=7d")
    blocked = sum(e["status"] == "blocked" for e in site.events)
    expect(page.locator("[data-kpi='blocked'] .value")).to_have_text(f"{blocked:,}")
    budgets = page.locator("table.budgets tbody tr")
    expect(budgets).to_have_count(3)
    expect(budgets.filter(has_text="team:support")).to_contain_text("$18.40")
    expect(budgets.filter(has_text="team:support")).to_contain_text("$25.00")
    expect(page.locator("#blocked tbody tr").first.locator(".badge.blocked")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "enforcement.png", full_page=True)


def test_reconciliation_view(page: Page, site: Site) -> None:
    open_view(page, site, "reconciliation?range=7d")
    expect(page.locator("#run-text")).to_contain_text("run-7")
    expect(page.locator(".kpi").first.locator(".value")).to_have_text("$106.70")
    expect(page.locator("text=List vs invoice-calibrated cost")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "reconciliation.png", full_page=True)


def test_live_tail_shows_new_calls_without_a_reload(page: Page, site: Site) -> None:
    open_view(page, site, "calls?range=7d")
    page.wait_for_selector("#live-calls tbody tr")
    before = page.locator("#live-calls tbody tr").count()
    fresh = list(sample_rows(3, start=datetime.now(timezone.utc), hours=1, seed=99, id_prefix="zz"))
    site.journal.record(ReadyRows(fresh))
    site.journal.flush()
    expect(page.locator("#live-calls tbody tr.fresh")).to_have_count(3, timeout=10_000)
    assert page.locator("#live-calls tbody tr").count() == before + 3
    expect(page.locator("#live-calls tbody tr").first).to_have_attribute("data-call", fresh[-1][0])
    page.screenshot(path=ARTIFACTS / "live-calls.png")


def test_dark_mode_and_a_laptop_screen(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="dark")
    page = context.new_page()
    open_view(page, site, "overview?range=7d")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # nothing overflows sideways
    page.screenshot(path=ARTIFACTS / "overview-dark-1280.png", full_page=True)
    context.close()


def test_empty_range_explains_itself(page: Page, site: Site) -> None:
    open_view(page, site, "overview?from=2020-01-01&to=2020-01-02")
    expect(page.locator(".empty h3").first).to_have_text("No calls match this range and these filters")
    page.click("[data-action='all-time']")
    expect(page.locator("[data-kpi='calls'] .value")).not_to_have_text("0")
    page.screenshot(path=ARTIFACTS / "empty-then-all.png")
    assert json.loads(page.evaluate("JSON.stringify(location.hash.includes('range=all'))"))
