"""Every API endpoint in-process against a real journal, SQLite and PostgreSQL alike (the same synthetic rows in
each); expected figures derived from the generated events, and the two stores' answers compared whole."""

from __future__ import annotations

import contextlib
import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from dashtraffic import NOW, Traffic, build_traffic, cost, model_of, sql, tokens
from starlette.testclient import TestClient

from tokenid import Journal
from tokenid.dashboard import create_app, prepare_journal
from tokenid.dashboard.api import ENDPOINTS
from tokenid.dashboard.queries import Reader
from tokenid.dashboard.sample import ReadyRows, sample_rows
from tokenid.enforce import SQLiteCounters, parse_config, parse_window
from tokenid.errors import JournalError
from tokenid.journal import COLUMNS

from conftest import legacy_pg_journal, pg_schema

STORES = ("sqlite", "postgresql")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Traffic]]:
    """The same synthetic traffic journaled into a SQLite file and into a PostgreSQL schema."""
    with pg_schema() as url:
        built = {"sqlite": build_traffic(tmp_path_factory.mktemp("dash") / "journal.db"),
                 "postgresql": build_traffic(url)}
        yield built
        for t in built.values():
            t.journal.close()


@pytest.fixture(scope="module", params=STORES)
def traffic(request: pytest.FixtureRequest, stores: dict[str, Traffic]) -> Traffic:
    return stores[request.param]


@pytest.fixture(scope="module")
def client(traffic: Traffic) -> Iterator[TestClient]:
    with TestClient(create_app(traffic.path, now=lambda: NOW), base_url="http://127.0.0.1:8050") as c:
        yield c


ALL = {"range": "all"}


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_meta_lists_what_the_journal_holds(client: TestClient, traffic: Traffic) -> None:
    meta = get(client, "/api/meta")
    assert meta["calls"] == len(traffic.events)
    assert meta["options"]["model"] == sorted({model_of(e) for e in traffic.events})
    assert meta["options"]["deployment"] == sorted({e["deployment"] or "" for e in traffic.events})
    assert meta["options"]["status"] == sorted({e["status"] for e in traffic.events})
    assert meta["options"]["tag_keys"] == ["feature", "team"]
    assert meta["first_hour"] == min(e["started_at"] for e in traffic.events)[:13]
    assert meta["has_reconciliation"] is False


FILTER_CASES: list[tuple[dict[str, str], Any]] = [
    ({}, lambda e: True),
    ({"provider": "openai"}, lambda e: e["provider"] == "openai"),
    ({"deployment": "gpt-4o"}, lambda e: e["deployment"] == "gpt-4o"),
    ({"deployment": "(none)"}, lambda e: e["deployment"] is None),
    ({"model": "gpt-4o-mini-2024-07-18"}, lambda e: model_of(e) == "gpt-4o-mini-2024-07-18"),
    ({"status": "error"}, lambda e: e["status"] == "error"),
    ({"tag": "team:search"}, lambda e: e["tags"]["team"] == "search"),
    ({"tag": "feature:rag", "status": "ok"}, lambda e: e["tags"]["feature"] == "rag" and e["status"] == "ok"),
    ({"session": "sess-00007"}, lambda e: e["session_id"] == "sess-00007"),
    ({"session": "sess-00007", "model": "gpt-4o-2024-08-06"},
     lambda e: e["session_id"] == "sess-00007" and model_of(e) == "gpt-4o-2024-08-06"),
]


@pytest.mark.parametrize(("params", "pred"), FILTER_CASES, ids=lambda p: str(p) if isinstance(p, dict) else "")
def test_summary_totals_for_every_filter(client: TestClient, traffic: Traffic, params: dict[str, str],
                                         pred: Any) -> None:
    mine = traffic.where(pred)
    assert mine, "each case selects some events"
    totals = get(client, "/api/summary", **ALL, **params)["totals"]
    assert totals["calls"] == len(mine)
    assert totals["tokens"] == tokens(mine)
    assert Decimal(totals["cost_usd"] or 0) == cost(mine)
    assert totals["blocked"] == sum(e["status"] == "blocked" for e in mine)
    assert totals["rewritten"] == sum('"rewrite"' in str(e["enforcement"]).replace("'", '"') for e in mine)
    latencies = [e["latency_ms"] for e in mine if e["latency_ms"] is not None]
    assert totals["avg_latency_ms"] == pytest.approx(sum(latencies) / len(latencies), abs=0.06)


def test_summary_range_is_whole_hours_and_has_the_previous_period(client: TestClient, traffic: Traffic) -> None:
    data = get(client, "/api/summary", **{"from": "2026-10-02T05:20", "to": "2026-10-03"})
    assert data["filters"]["from"] == "2026-10-02T05:00:00Z" and data["filters"]["to"] == "2026-10-03T00:00:00Z"
    mine = traffic.where(lambda e: "2026-10-02T05" <= e["started_at"] < "2026-10-03")
    before = traffic.where(lambda e: "2026-10-01T10" <= e["started_at"] < "2026-10-02T05")
    assert data["totals"]["calls"] == len(mine) and Decimal(data["totals"]["cost_usd"]) == cost(mine)
    assert data["previous"]["calls"] == len(before)


def test_default_range_is_the_last_30_days(client: TestClient, traffic: Traffic) -> None:
    data = get(client, "/api/summary")
    assert data["filters"]["to"] == "2026-10-04T13:00:00Z"
    assert data["totals"]["calls"] == len(traffic.events)
    last_day = traffic.where(lambda e: e["started_at"] >= "2026-10-03T12")  # 24 hours before 12:30, whole hours
    assert get(client, "/api/summary", range="24h")["totals"]["calls"] == len(last_day) > 0


@pytest.mark.parametrize("params", [{}, {"tag": "team:support"}, {"session": "sess-00007"}])
def test_timeseries_by_model_sums_to_the_events(client: TestClient, traffic: Traffic, params: dict[str, str]) -> None:
    cases = [*FILTER_CASES, ({"tag": "team:support"}, lambda e: e["tags"]["team"] == "support")]
    pred = next(p for c, p in cases if c == params)
    mine = traffic.where(pred)
    data = get(client, "/api/timeseries", **ALL, bucket="day", group="model", metric="cost", **params)
    assert data["buckets"] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    by: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for e in mine:
        if e["cost_usd"] is not None:
            by[model_of(e), e["started_at"][:10]] += Decimal(e["cost_usd"])
    for series in data["series"]:
        for day, value in zip(data["buckets"], series["values"], strict=True):
            assert Decimal(value) == by.get((series["key"], day), Decimal(0))


def test_timeseries_keeps_the_top_series_and_sums_the_rest(client: TestClient, traffic: Traffic) -> None:
    data = get(client, "/api/timeseries", **ALL, bucket="hour", group="session", metric="calls", top=3)
    assert len(data["buckets"]) == 72
    keys = [s["key"] for s in data["series"]]
    counts = Counter(e["session_id"] for e in traffic.events)
    assert keys[:3] == [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    assert keys[3] == "(other)"
    assert sum(s["total"] for s in data["series"]) == len(traffic.events)
    by_model = get(client, "/api/timeseries", **ALL, bucket="day", group="model", metric="calls", top=2)
    ranked = Counter(model_of(e) for e in traffic.events).most_common()
    assert [s["key"] for s in by_model["series"]] == [ranked[0][0], ranked[1][0], "(other)"]
    assert by_model["series"][2]["total"] == sum(n for _, n in ranked[2:])
    month = get(client, "/api/timeseries", **ALL, bucket="month", metric="tokens")
    assert month["buckets"] == ["2026-10"] and month["series"][0]["values"] == [tokens(traffic.events)]


@pytest.mark.parametrize("group", ["model", "deployment", "provider", "status", "session", "tag:team"])
def test_breakdown_by_every_group(client: TestClient, traffic: Traffic, group: str) -> None:
    key = {"model": model_of, "deployment": lambda e: e["deployment"] or "", "provider": lambda e: e["provider"],
           "status": lambda e: e["status"], "session": lambda e: e["session_id"],
           "tag:team": lambda e: e["tags"]["team"]}[group]
    data = get(client, "/api/breakdown", **ALL, group=group)
    want: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in traffic.events:
        want[key(e)].append(e)
    assert {r["key"]: (r["calls"], Decimal(r["cost_usd"] or 0)) for r in data["rows"]} == {
        k: (len(v), cost(v)) for k, v in want.items()}
    costs = [Decimal(r["cost_usd"] or 0) for r in data["rows"]]
    assert costs == sorted(costs, reverse=True)
    assert data["total"]["calls"] == len(traffic.events)


def test_breakdown_by_tag_within_another_tag_and_by_session_within_a_tag(client: TestClient,
                                                                         traffic: Traffic) -> None:
    data = get(client, "/api/breakdown", **ALL, group="tag:feature", tag="team:growth")
    mine = traffic.where(lambda e: e["tags"]["team"] == "growth")
    assert {r["key"]: r["calls"] for r in data["rows"]} == dict(Counter(e["tags"]["feature"] for e in mine))
    series = get(client, "/api/timeseries", **ALL, group="tag:feature", tag="team:growth", metric="calls", top=2)
    assert sum(s["total"] for s in series["series"]) == len(mine) and series["series"][-1]["key"] == "(other)"
    ok = [e for e in mine if e["status"] == "ok"]  # a dimension too: read from the events
    data = get(client, "/api/breakdown", **ALL, group="tag:feature", tag="team:growth", status="ok")
    assert {r["key"]: r["calls"] for r in data["rows"]} == dict(Counter(e["tags"]["feature"] for e in ok))
    data = get(client, "/api/breakdown", **ALL, group="session", tag="team:growth")
    assert {r["key"]: r["calls"] for r in data["rows"]} == dict(Counter(e["session_id"] for e in mine))


@pytest.mark.parametrize(("sort", "key"), [
    ("cost", lambda v: cost(v)), ("calls", len), ("tokens", tokens),
    ("last_call", lambda v: max(e["started_at"] for e in v)),
    ("errors", lambda v: sum(e["status"] == "error" for e in v)),
    ("blocked", lambda v: sum(e["status"] == "blocked" for e in v)),
])
def test_sessions_sorted_on_each_column(client: TestClient, traffic: Traffic, sort: str, key: Any) -> None:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in traffic.events:
        by[e["session_id"]].append(e)
    data = get(client, "/api/sessions", **ALL, sort=sort, order="desc", limit=10)
    assert data["total"] == len(by)
    values = [key(by[r["session_id"]]) for r in data["rows"]]
    assert values == sorted((key(v) for v in by.values()), reverse=True)[:10]
    first = data["rows"][0]
    mine = by[first["session_id"]]
    assert (first["calls"], Decimal(first["cost_usd"]), first["first_call"]) == (
        len(mine), cost(mine), min(e["started_at"] for e in mine))
    ascending = get(client, "/api/sessions", **ALL, sort=sort, order="asc", limit=5, offset=2)
    assert [key(by[r["session_id"]]) for r in ascending["rows"]] == sorted(key(v) for v in by.values())[2:7]


def test_sessions_filtered_by_tag_and_model(client: TestClient, traffic: Traffic) -> None:
    data = get(client, "/api/sessions", **ALL, tag="feature:triage", limit=100)
    mine = traffic.where(lambda e: e["tags"]["feature"] == "triage")
    assert {r["session_id"]: r["calls"] for r in data["rows"]} == dict(Counter(e["session_id"] for e in mine))
    data = get(client, "/api/sessions", **ALL, model="o3-mini-2025-01-31", limit=100)
    mine = traffic.where(lambda e: model_of(e) == "o3-mini-2025-01-31")
    assert {r["session_id"]: r["calls"] for r in data["rows"]} == dict(Counter(e["session_id"] for e in mine))
    # both at once (read from the session-by-tag rollup, which keeps the dimensions)
    data = get(client, "/api/sessions", **ALL, tag="feature:triage", model="o3-mini-2025-01-31", limit=100)
    mine = traffic.where(lambda e: e["tags"]["feature"] == "triage" and model_of(e) == "o3-mini-2025-01-31")
    per_session = Counter(e["session_id"] for e in mine)
    assert mine and {r["session_id"]: (r["calls"], Decimal(r["cost_usd"] or 0)) for r in data["rows"]} == {
        s: (n, cost([e for e in mine if e["session_id"] == s])) for s, n in per_session.items()}
    split = get(client, "/api/timeseries", **ALL, tag="feature:triage", model="o3-mini-2025-01-31", group="session",
                metric="calls", bucket="day")
    assert sum(s["total"] for s in split["series"]) == len(mine)


def test_one_session_with_every_call_in_order(client: TestClient, traffic: Traffic) -> None:
    data = get(client, "/api/sessions/sess-00011")
    mine = traffic.where(lambda e: e["session_id"] == "sess-00011")
    assert [c["id"] for c in data["calls"]] == [e["id"] for e in sorted(mine, key=lambda e: (e["started_at"],
                                                                                                 e["id"]))]
    assert data["totals"]["calls"] == len(mine) and Decimal(data["totals"]["cost_usd"]) == cost(mine)
    assert data["usage_sources"] == dict(Counter(e["usage_source"] for e in mine))
    call = data["calls"][0]
    assert {"tokens", "content"}.isdisjoint(call) and call["model"] == model_of(mine[0])
    blocked = next(c for c in data["calls"] if c["status"] == "blocked")
    assert blocked["enforcement"][0]["action"] == "block"
    missing = client.get("/api/sessions/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_calls_newest_first_with_kinds_and_paging(client: TestClient, traffic: Traffic) -> None:
    data = get(client, "/api/calls", **ALL, limit=5)
    newest = sorted(traffic.events, key=lambda e: (e["started_at"], e["id"]), reverse=True)
    assert [c["id"] for c in data["rows"]] == [e["id"] for e in newest[:5]] and data["more"]
    page2 = get(client, "/api/calls", **ALL, limit=5, before=data["rows"][-1]["id"])
    assert [c["id"] for c in page2["rows"]] == [e["id"] for e in newest[5:10]]
    blocked = get(client, "/api/calls", **ALL, kind="blocked", limit=1000)["rows"]
    assert len(blocked) == sum(e["status"] == "blocked" for e in traffic.events)
    rewritten = get(client, "/api/calls", **ALL, kind="rewritten", limit=1000)["rows"]
    assert {c["id"] for c in rewritten} == {e["id"] for e in traffic.events if e["enforcement"] and
                                            e["enforcement"][0]["action"] == "rewrite"}
    errors = get(client, "/api/calls", **ALL, kind="errors", tag="team:support", limit=1000)["rows"]
    assert len(errors) == sum(e["status"] == "error" and e["tags"]["team"] == "support" for e in traffic.events)


def test_enforcement_counts_by_rule(client: TestClient, traffic: Traffic) -> None:
    for params, pred in [({}, lambda e: True), ({"session": "sess-00004"}, lambda e: e["session_id"] == "sess-00004"),
                         ({"deployment": "gpt-4o"}, lambda e: e["deployment"] == "gpt-4o")]:
        data = get(client, "/api/enforcement", **ALL, **params)
        want = Counter((a["rule"], a["action"]) for e in traffic.where(pred) for a in e["enforcement"] or [])
        assert {(r["rule"], r["action"]): r["calls"] for r in data["rules"]} == dict(want)
        assert all(c["status"] == "blocked" for c in data["blocked"])
        assert all(c["enforcement"][0]["action"] == "rewrite" for c in data["rewritten"])


def test_budgets_with_spent_reserved_limit_and_reset(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal(path).close()
    config = parse_config({"budgets": [
        {"name": "team-daily", "scope": "tag:team", "window": "day", "limit_usd": "5"},
        {"name": "per-session", "scope": "session", "window": "rolling:2h", "limit_tokens": 10000},
        {"name": "unused", "scope": "global", "window": "month", "limit_usd": "100"}]})
    counters = SQLiteCounters(path)
    day = parse_window("day")
    counters.add("team-daily|team:support", day, 1_250_000_000, now=NOW)
    held, _ = counters.reserve("team-daily|team:support", day, 250_000_000, 5_000_000_000, now=NOW)
    assert held is not None
    counters.add("team-daily|team:support", day, 9_000_000_000, now=NOW - timedelta(days=1))  # yesterday: reset
    counters.add("per-session|session:a", parse_window("rolling:2h"), 700, now=NOW - timedelta(minutes=50))
    counters.add("per-session|session:a", parse_window("rolling:2h"), 300, now=NOW)
    counters.close()
    app = create_app(path, budgets=config.budgets, now=lambda: NOW)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        rows = {r["budget"]: r for r in get(client, "/api/budgets")["rows"]}
        bare = {r["budget"]: r for r in get(TestClient(create_app(path, now=lambda: NOW),
                                                       base_url="http://localhost"), "/api/budgets")["rows"]}
        text = client.get("/api/budgets", params={"format": "csv"}).text
    team = rows["team-daily"]
    assert (team["spent"], team["reserved"], team["limit"], team["used_pct"]) == (
        "1.250000000", "0.250000000", "5.000000000", "30.0")
    assert team["resets_at"] == "2026-10-05T00:00:00Z" and team["scope"] == "team:support"
    assert (rows["per-session"]["spent"], rows["per-session"]["unit"], rows["per-session"]["rolling"]) == (
        1000, "tokens", True)
    assert rows["unused"]["spent"] == "0E-9" or Decimal(rows["unused"]["spent"]) == 0
    assert rows["unused"]["resets_at"] == "2026-11-01T00:00:00Z"
    assert bare["team-daily"]["spent"] == 1_250_000_000 and bare["team-daily"]["unit"] == "unknown"
    assert bare["team-daily"]["window"] == "day"
    assert len(list(csv.DictReader(io.StringIO(text)))) == 3


@pytest.fixture(params=STORES)
def reconciled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Traffic]:
    with contextlib.ExitStack() as stack:
        path: Path | str = tmp_path / "j.db" if request.param == "sqlite" else stack.enter_context(pg_schema())
        yield _reconciled(path)


def _reconciled(path: Path | str) -> Traffic:
    journal = Journal(path)
    journal.record(ReadyRows(list(sample_rows(400, hours=48, sessions=8, seed=9))))
    journal.flush()
    sql(path, "UPDATE events SET invoice_cost_nanousd = cost_nanousd * 11 / 10 WHERE deployment = 'gpt-4o-mini' "
              "AND cost_nanousd IS NOT NULL")
    for run, created in (("run-1", "2026-10-05T00:00:00Z"), ("run-2", "2026-10-06T00:00:00Z")):
        sql(path, "INSERT INTO reconcile_runs (id, created_at, source, period_from, period_to, account, currency, "
                  "summary) VALUES (?, ?, 'azure-export', '2026-10-01', '2026-10-03', 'acct', 'EUR', ?)",
            (run, created, '{"lines": 3}'))
    lines = [("2026-10-01", "sub-1", "gpt-4o-mini-input", "10.00", "9.50", "0.50", 5.26, "variance"),
             ("2026-10-01", "sub-1", "gpt-4o-output", "3.25", "3.25", "0", 0.0, "matched"),
             ("2026-10-02", "sub-2", "gpt-4o-mini-input", "1.10", None, "1.10", None, "invoice_only")]
    for day, account, meter, invoice, journal_cost, variance, pct, status in lines:
        sql(path, "INSERT INTO reconcile_lines (run_id, day, account_id, meter_name, invoice_cost, invoice_cost_usd, "
                  "journal_cost_usd, variance_usd, variance_pct, status) VALUES ('run-2', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (day, account, meter, invoice, invoice, journal_cost, variance, pct, status))
    return Traffic(path, journal, journal.events())


def test_reconciliation_latest_run_and_list_vs_invoice(reconciled: Traffic) -> None:
    with TestClient(create_app(reconciled.path, now=lambda: NOW), base_url="http://127.0.0.1") as client:
        data = get(client, "/api/reconciliation", **ALL)
        assert data["run"]["id"] == "run-2" and [r["id"] for r in data["runs"]] == ["run-2", "run-1"]
        assert data["run"]["summary"] == {"lines": 3} and len(data["lines"]) == 3
        by_day = {r["key"]: r for r in data["by_day"]}
        assert Decimal(by_day["2026-10-01"]["invoice_cost_usd"]) == Decimal("13.25")
        assert Decimal(by_day["2026-10-01"]["variance_usd"]) == Decimal("0.50")
        assert {r["key"]: r["lines"] for r in data["by_status"]} == {"invoice_only": 1, "matched": 1, "variance": 1}
        repriced = [e for e in reconciled.events if e["invoice_cost_nanousd"] is not None]
        assert repriced
        assert sum(r["calls"] for r in data["repriced_calls"]) == len(repriced)
        assert sum(Decimal(r["list_cost_usd"]) for r in data["repriced_calls"]) == cost(repriced)
        assert sum(Decimal(r["invoice_cost_usd"]) for r in data["repriced_calls"]) == sum(
            Decimal(e["invoice_cost_nanousd"]) / 10**9 for e in repriced)
        summary = get(client, "/api/summary", **ALL)["totals"]
        assert summary["invoiced_calls"] == len(repriced)
        only = get(client, "/api/reconciliation", **ALL, run="run-2", line_status="invoice_only")
        assert [line["meter_name"] for line in only["lines"]] == ["gpt-4o-mini-input"] and only["lines_total"] == 1
        empty = get(client, "/api/reconciliation", **ALL, run="run-1")
        assert empty["lines"] == [] and empty["run"]["id"] == "run-1"
        assert client.get("/api/reconciliation", params={"run": "zzz"}).status_code == 404
        text = client.get("/api/reconciliation", params={"format": "csv"}).text
        assert next(csv.DictReader(io.StringIO(text)))["meter_name"] == "gpt-4o-mini-input"
    reconciled.journal.close()


def test_reconciliation_when_nothing_was_reconciled(client: TestClient) -> None:
    data = get(client, "/api/reconciliation")
    assert data["run"] is None and data["lines"] == [] and data["repriced_calls"] == []


@pytest.mark.parametrize("store", STORES)
def test_live_tail_sees_calls_journaled_after_the_page_loaded(tmp_path: Path, store: str) -> None:
    with contextlib.ExitStack() as stack:
        _live_tail(tmp_path / "j.db" if store == "sqlite" else stack.enter_context(pg_schema()))


def _live_tail(path: Path | str) -> None:
    journal = Journal(path)
    rows = list(sample_rows(30, seed=1, hours=1))
    journal.record(ReadyRows(rows[:20]))
    journal.flush()
    with TestClient(create_app(path, now=lambda: NOW), base_url="http://127.0.0.1") as client:
        last = get(client, "/api/calls", range="all", limit=1)["rows"][0]["id"]
        assert get(client, "/api/calls", after=last)["rows"] == []
        journal.record(ReadyRows(rows[20:]))
        journal.flush()
        fresh = get(client, "/api/calls", after=last)["rows"]
        assert [c["id"] for c in fresh] == [r[0] for r in rows[20:]]
        assert get(client, "/api/summary", range="all")["totals"]["calls"] == 30  # the rollups kept up too
    journal.close()


@pytest.mark.parametrize(("path", "params", "message"), [
    ("/api/summary", {"bogus": "1"}, "unknown parameter 'bogus'"),
    ("/api/summary", {"from": "yesterday"}, "not an ISO 8601"),
    ("/api/summary", {"from": "2026-13-45"}, "not an ISO 8601"),
    ("/api/summary", {"from": "2026-10-03", "to": "2026-10-01"}, "must be before"),
    ("/api/summary", {"from": "1990-01-01", "to": "2026-01-01"}, "at most 3660 days"),
    ("/api/summary", {"range": "7d", "from": "2026-10-01"}, "either range= or from="),
    ("/api/summary", {"range": "forever"}, "range='forever'"),
    ("/api/summary", {"status": "weird"}, "status='weird'"),
    ("/api/summary", {"tag": "team"}, "KEY:VALUE"),
    ("/api/summary", {"tag": 'te"am:x'}, "KEY:VALUE"),
    ("/api/summary", {"session": "x" * 500}, "longer than"),
    ("/api/timeseries", {"bucket": "hour", "from": "2020-01-01"}, "too many"),
    ("/api/timeseries", {"bucket": "week"}, "bucket='week'"),
    ("/api/timeseries", {"group": "colour"}, "group='colour'"),
    ("/api/timeseries", {"top": "many"}, "not a whole number"),
    ("/api/breakdown", {"group": "tag:a\"b"}, "group="),
    ("/api/breakdown", {"limit": "0"}, "out of range"),
    ("/api/sessions", {"sort": "colour"}, "sort='colour'"),
    ("/api/sessions", {"offset": "-1"}, "out of range"),
    ("/api/calls", {"kind": "odd"}, "kind='odd'"),
    ("/api/calls", {"format": "xml"}, "format='xml'"),
    ("/api/meta", {"range": "7d"}, "unknown parameter 'range'"),
    ("/api/reconciliation", {"line_status": "odd"}, "line_status='odd'"),
])
def test_bad_parameters_are_a_400_with_a_clear_message(client: TestClient, path: str, params: dict[str, str],
                                                       message: str) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_repeated_parameters_and_unknown_paths(client: TestClient) -> None:
    response = client.get("/api/summary?status=ok&status=error")
    assert response.status_code == 400 and "more than once" in response.json()["error"]
    response = client.get("/api/nothing")
    assert response.status_code == 404 and "/api/docs" in response.json()["error"]


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.csv_rows is not None], ids=lambda e: e.name)
def test_every_table_downloads_as_csv(client: TestClient, endpoint: Any) -> None:
    path = endpoint.path.replace("{session_id}", "sess-00002")
    params = {} if "{" in endpoint.path or endpoint.name == "budgets" else {"range": "all"}
    response = client.get(path, params={**params, "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith(f'attachment; filename="tokenid-{endpoint.name}')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(endpoint.csv_rows(client.get(path, params=params).json()))
    if endpoint.name in ("sessions", "calls", "session", "breakdown"):
        assert rows and "cost_usd" in rows[0]


def test_openapi_documents_every_endpoint_and_parameter(client: TestClient) -> None:
    spec = get(client, "/api/openapi.json")
    assert spec["openapi"].startswith("3.")
    for endpoint in ENDPOINTS:
        documented = {p["name"] for p in spec["paths"][endpoint.path]["get"]["parameters"] if p["in"] == "query"}
        assert documented == {p.name for p in endpoint.params}
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "/api/sessions/{session_id}" in docs.text


def test_the_front_end_is_served_locally(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "content-security-policy" in page.headers
    for asset in ("/static/app.js", "/static/app.css"):
        assert client.get(asset).status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, nothing fetched from elsewhere


def test_sessions_straddling_the_range_show_whole_totals_unless_filtered(client: TestClient, traffic: Traffic) -> None:
    cut = "2026-10-02T12"
    spans = defaultdict(list)
    for e in traffic.events:
        spans[e["session_id"]].append(e)
    session, mine = next((s, v) for s, v in sorted(spans.items()) if min(e["started_at"] for e in v) < cut
                         <= max(e["started_at"] for e in v))
    data = get(client, "/api/sessions", **{"from": cut + ":00", "to": "2026-10-04"}, limit=1000)
    row = next(r for r in data["rows"] if r["session_id"] == session)
    assert data["whole_sessions"] and row["calls"] == len(mine) and row["first_call"] < cut
    assert row["models"] == sorted({model_of(e) for e in mine})
    ok = get(client, "/api/sessions", **{"from": cut + ":00", "to": "2026-10-04"}, status="ok", limit=1000)
    row = next(r for r in ok["rows"] if r["session_id"] == session)
    assert not ok["whole_sessions"]
    assert row["calls"] == sum(e["status"] == "ok" and e["started_at"] >= cut for e in mine)


def test_session_ids_with_slashes_spaces_and_unicode(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal(path)
    odd = "user/42 · café?x=1"
    row = list(next(sample_rows(1)))
    row[COLUMNS.index("session_id")] = odd
    journal.record(ReadyRows(tuple(row)))
    journal.close()
    with TestClient(create_app(path), base_url="http://127.0.0.1") as client:
        response = client.get("/api/sessions/" + quote(odd, safe=""))
        assert response.status_code == 200 and response.json()["session_id"] == odd
        assert response.json()["calls"][0]["session_id"] == odd


SESSION_SORT_NAMES = ("last_call", "first_call", "calls", "cost", "tokens", "errors", "blocked", "latency", "session")
# Every endpoint, with the filters and groupings that take each path through the reader (rollups, tag pairs, session
# tags, raw events by session or tag, enforcement actions), as plain JSON and as CSV.
SAME_ANSWERS: list[tuple[str, dict[str, Any]]] = [
    ("/api/meta", {}),
    *(("/api/summary", {**ALL, **params}) for params, _ in FILTER_CASES),
    ("/api/summary", {"from": "2026-10-02T05:20", "to": "2026-10-03"}),
    ("/api/summary", {"range": "24h"}),
    *(("/api/timeseries", {**ALL, "bucket": bucket, "metric": metric, **extra})
      for bucket in ("hour", "day", "month") for metric in ("cost", "tokens", "calls")
      for extra in ({}, {"group": "model"}, {"group": "session", "top": "3"}, {"group": "tag:team"})),
    *(("/api/timeseries", {**ALL, "bucket": "day", "metric": "cost", **extra})
      for extra in ({"group": "model", "tag": "team:support"}, {"group": "model", "session": "sess-00007"},
                    {"group": "tag:feature", "tag": "team:growth", "top": "2"}, {"group": "deployment", "status": "ok"},
                    {"group": "session", "tag": "feature:rag"})),
    *(("/api/breakdown", {**ALL, "group": group, **extra})
      for group in ("model", "deployment", "provider", "status", "session", "tag:team", "tag:feature")
      for extra in ({}, {"tag": "team:growth"}, {"status": "ok"}, {"session": "sess-00007"},
                    {"tag": "team:growth", "status": "ok"})),
    *(("/api/sessions", {**ALL, "sort": sort, "order": order, "limit": "7", "offset": "3"})
      for sort in SESSION_SORT_NAMES for order in ("asc", "desc")),
    *(("/api/sessions", {**ALL, "limit": "100", **extra})
      for extra in ({"tag": "feature:triage"}, {"model": "o3-mini-2025-01-31"}, {"status": "ok", "sort": "latency"},
                    {"tag": "team:growth", "status": "ok"}, {"session": "sess-00007"})),
    ("/api/sessions", {"from": "2026-10-02T12:00", "to": "2026-10-04", "limit": "1000"}),
    ("/api/sessions/sess-00011", {}),
    ("/api/sessions/sess-00002", {}),
    *(("/api/calls", {**ALL, "limit": "40", **extra})
      for extra in ({}, {"kind": "blocked"}, {"kind": "rewritten"}, {"kind": "enforced"}, {"kind": "errors"},
                    {"tag": "team:support"}, {"model": "gpt-4o-2024-08-06", "session": "sess-00003"},
                    {"deployment": "(none)"})),
    *(("/api/enforcement", {**ALL, **extra})
      for extra in ({}, {"session": "sess-00004"}, {"deployment": "gpt-4o"}, {"tag": "team:search"})),
    ("/api/budgets", {}),
    ("/api/reconciliation", ALL),
]


def test_every_endpoint_answers_the_same_on_sqlite_and_postgresql(stores: dict[str, Traffic]) -> None:
    assert stores["sqlite"].events == stores["postgresql"].events
    with contextlib.ExitStack() as stack:
        clients = {name: stack.enter_context(TestClient(create_app(t.path, now=lambda: NOW),
                                                        base_url="http://127.0.0.1"))
                   for name, t in stores.items()}
        page = get(clients["sqlite"], "/api/calls", **ALL, limit=30)["rows"]
        requests = [*SAME_ANSWERS, ("/api/calls", {**ALL, "limit": "10", "before": page[-1]["id"]}),
                    ("/api/calls", {"after": page[-1]["id"], "limit": "50"})]
        for path, params in requests:
            lite, pg = (get(clients[name], path, **params) for name in STORES)
            if path == "/api/meta":
                assert lite.pop("journal") == "journal.db" and "@127.0.0.1:5432/test" in pg.pop("journal")
            assert lite == pg, (path, params)
            if path == "/api/summary":  # each case selects something: equal answers are not both empty
                assert lite["totals"]["calls"] > 0, params
            if any(e.path == path and e.csv_rows is not None for e in ENDPOINTS) or path.startswith("/api/sessions/"):
                csvs = [clients[name].get(path, params={**params, "format": "csv"}).text for name in STORES]
                assert csvs[0] == csvs[1], (path, params)


def test_a_postgresql_journal_is_read_only_to_the_dashboard(stores: dict[str, Traffic]) -> None:
    url = str(stores["postgresql"].path)
    reader = Reader(url)
    try:
        for statement in ("DELETE FROM events", "UPDATE rollup_hourly SET calls = 0", "CREATE TABLE x (y TEXT)"):
            with pytest.raises(JournalError, match="read-only transaction"):
                reader.rows(statement)
        assert reader.scalar("SELECT COUNT(*) FROM events") == len(stores["postgresql"].events)
    finally:
        reader.close()


@pytest.mark.parametrize("version", [3, 4])
def test_an_older_postgresql_journal_is_upgraded_once_before_serving(version: int) -> None:
    with pg_schema() as url:
        legacy_pg_journal(url, list(sample_rows(50)), version)
        with pytest.raises(JournalError, match="needs v4" if version == 3 else "no rollup_hourly yet"):
            create_app(url)
        said: list[str] = []
        prepare_journal(url, said.append)
        assert said and f"v{version} to v" in said[0] and "postgres@127.0.0.1" in said[0]
        with TestClient(create_app(url), base_url="http://127.0.0.1") as client:
            assert get(client, "/api/summary", range="all")["totals"]["calls"] == 50
        prepare_journal(url, said.append)
        assert len(said) == 1  # already current: nothing to do
