"""Dashboard API timings over a large journal (issue #7: every page under 500 ms with 5,000,000 events).

Run:  .venv/bin/python benchmarks/dashboard.py [--events 5000000] [--days 90] [--sessions 50000]
      [--journal PATH --reuse] [--runs 5]

Writes ``--events`` synthetic calls through the journal writer (so the rollups are built the way they are in
production, batch by batch), reports the ingest rate, then times every API endpoint in-process (Starlette
test client: routing, SQL, JSON or CSV encoding; no network). Each request runs once cold, then ``--runs``
times; the median and the worst warm run are printed, and for each page the endpoints it loads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from tokenid import Journal
from tokenid.dashboard import create_app
from tokenid.dashboard.sample import ReadyRows, sample_rows

END = datetime(2026, 11, 30, tzinfo=timezone.utc)
BATCH = 5000


def chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def build(path: Path, events: int, days: int, sessions: int) -> float:
    """Journal ``events`` calls through the writer; returns events/s (generation excluded)."""
    journal = Journal(path, batch_size=BATCH)
    start = END - timedelta(days=days)
    spent = 0.0
    done = 0
    for chunk in chunks(sample_rows(events, start=start, hours=days * 24, sessions=sessions, seed=1), 100_000):
        t = time.perf_counter()
        for part in chunks(iter(chunk), BATCH):
            journal.record(ReadyRows(part))
        journal.flush(None)
        spent += time.perf_counter() - t
        done += len(chunk)
        print(f"\r  journaled {done:,} / {events:,} ({done / spent:,.0f} events/s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    journal.close()
    return events / spent


def requests(days: int) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Each page of the dashboard and the API requests it makes (as the front end sends them)."""
    d30 = {"from": (END - timedelta(days=30)).isoformat(), "to": END.isoformat()}
    every = {"range": "all"}
    session = {"session": "sess-01234", **d30}
    return {
        "overview, 30 days": [("/api/summary", d30), ("/api/timeseries", {**d30, "group": "model", "bucket": "day"}),
                              ("/api/breakdown", {**d30, "group": "model", "limit": "50"}),
                              ("/api/sessions", {**d30, "sort": "cost", "limit": "8"})],
        f"overview, all {days} days, hourly": [
            ("/api/summary", every), ("/api/timeseries", {**every, "group": "deployment", "bucket": "hour"}),
            ("/api/breakdown", {**every, "group": "deployment", "limit": "50"}),
            ("/api/sessions", {**every, "sort": "cost", "limit": "8"})],
        "overview, split by session": [("/api/timeseries", {**d30, "group": "session", "bucket": "day"}),
                                       ("/api/breakdown", {**d30, "group": "session", "limit": "50"})],
        "overview, tag filter, by tag": [("/api/summary", {**d30, "tag": "team:search"}),
                                         ("/api/timeseries", {**d30, "tag": "team:search", "group": "tag:feature"}),
                                         ("/api/breakdown", {**d30, "tag": "team:search", "group": "tag:feature"})],
        "tag filter + status, by another tag": [
            ("/api/breakdown", {**d30, "tag": "team:search", "status": "error", "group": "tag:feature"})],
        "overview, model + status filter": [
            ("/api/summary", {**d30, "model": "o3-mini-2025-01-31", "status": "error"}),
            ("/api/timeseries", {**d30, "model": "o3-mini-2025-01-31", "status": "error", "group": "deployment"})],
        "overview, one session": [("/api/summary", session), ("/api/timeseries", {**session, "group": "model"}),
                                  ("/api/breakdown", {**session, "group": "model"})],
        "sessions, by last call": [("/api/sessions", {**d30, "limit": "50"})],
        "sessions, by spend, page 20": [("/api/sessions", {**d30, "sort": "cost", "offset": "1000", "limit": "50"})],
        "sessions, all time, by tokens": [("/api/sessions", {**every, "sort": "tokens", "limit": "50"})],
        "sessions, tag filter, by spend": [("/api/sessions", {**d30, "tag": "team:search", "sort": "cost"})],
        "sessions, tag + model filter": [
            ("/api/sessions", {**d30, "tag": "team:search", "model": "o3-mini-2025-01-31"})],
        "session page": [("/api/sessions/sess-01234", {})],
        "live calls (first load + one poll)": [("/api/calls", {**d30, "limit": "100"}),
                                               ("/api/calls", {"after": "t", "limit": "200"})],
        "calls: errors of one model": [("/api/calls", {**d30, "kind": "errors", "model": "o3-mini-2025-01-31"})],
        "enforcement": [("/api/enforcement", {**d30, "limit": "50"}), ("/api/budgets", {})],
        "reconciliation": [("/api/reconciliation", d30)],
        "meta (every page, once)": [("/api/meta", {})],
        "CSV: sessions, 1000 rows": [("/api/sessions", {**d30, "limit": "1000", "format": "csv"})],
    }


def time_requests(client: TestClient, plan: list[tuple[str, dict[str, str]]], runs: int) -> tuple[float, float,
                                                                                                   float]:
    """(cold, median, worst warm) seconds for loading the page's requests one after the other."""
    def once() -> float:
        t = time.perf_counter()
        for path, params in plan:
            response = client.get(path, params=params)
            assert response.status_code == 200, (path, params, response.text[:200])
        return time.perf_counter() - t

    cold = once()
    warm = [once() for _ in range(runs)]
    return cold, statistics.median(warm), max(warm)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--sessions", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--journal", type=Path, help="Keep the journal here (default: a temporary directory).")
    ap.add_argument("--reuse", action="store_true", help="Use an existing --journal instead of building one.")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = a.journal or Path(tmp) / "bench.db"
        if not (a.reuse and path.exists()):
            for stale in path.parent.glob(path.name + "*"):
                stale.unlink()
            rate = build(path, a.events, a.days, a.sessions)
            print(f"journal ingest (writer + rollups): {rate:,.0f} events/s; file {path.stat().st_size / 1e9:.2f} GB")
        app = create_app(path, now=lambda: END)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            calls = client.get("/api/meta").json()["calls"]
            print(f"{calls:,} events in {path}; {a.runs} warm runs per page after one cold run\n")
            print(f"{'page':40s} {'requests':>8s} {'cold':>9s} {'median':>9s} {'worst':>9s}")
            worst = 0.0
            for page, plan in requests(a.days).items():
                cold, median, high = time_requests(client, plan, a.runs)
                worst = max(worst, high)
                print(f"{page:40s} {len(plan):8d} {cold * 1e3:7.1f}ms {median * 1e3:7.1f}ms {high * 1e3:7.1f}ms")
            print(f"\nslowest warm page: {worst * 1e3:.1f} ms (target < 500 ms); requests run one after the other, "
                  "as a browser would run them at once")


if __name__ == "__main__":
    main()
