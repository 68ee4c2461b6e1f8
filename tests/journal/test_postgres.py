"""The PostgreSQL journal, on the machine's real server: same rows and answers as SQLite, shared by processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tokenid import Journal
from tokenid.call import row_tuple
from tokenid.cli import app
from tokenid.errors import JournalError
from tokenid.journal import queries
from tokenid.journal.postgres import PostgresStore, redact_url
from tokenid.journal.schema import SCHEMA_VERSION
from tokenid.simulator import Simulator

from conftest import PG_SERVER, make_client, pg_schema

SERVER = PG_SERVER


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A journal URL whose tables live in a fresh schema of the test database (dropped afterwards)."""
    with pg_schema() as url:
        yield url


def event(n: int, **kw: Any) -> tuple[Any, ...]:
    cost = Decimal("0.000125") * (n + 1)
    return row_tuple({
        "id": f"{n:032d}", "started_at": f"2025-03-0{1 + n % 3}T10:00:{n % 60:02d}.000000Z",
        "session_id": f"s{n % 4}", "tags": f'{{"team": "t{n % 2}"}}', "provider": "azure_openai",
        "endpoint": "chat.completions", "deployment": "gpt-4o" if n % 2 else "gpt-4o-mini",
        "canonical_model": "gpt-4o-2024-08-06" if n % 2 else "gpt-4o-mini-2024-07-18",
        "input_tokens": 100 + n, "output_tokens": 10 + n, "cached_input_tokens": n % 5,
        "usage_source": "estimated" if n % 7 == 0 else "reported", "status": "error" if n % 11 == 0 else "ok",
        "cost_usd": format(cost, "f"), "cost_nanousd": int(cost * 10**9), "stream": n % 2, **kw})


def test_the_same_rows_give_the_same_answers_as_sqlite(pg_url: str, tmp_path: Path) -> None:
    rows = [event(n) for n in range(60)] + [event(99, status="blocked", cost_usd=None, cost_nanousd=None)]
    pg, lite = Journal(pg_url), Journal(tmp_path / "j.db")
    try:
        for j in (pg, lite):
            j.store.insert(rows)
            j.store.insert(rows[:5])  # ids already stored are skipped, not duplicated
        assert pg.events() == lite.events()
        for by in queries.GROUPS:
            assert queries.totals(pg, by) == queries.totals(lite, by), by
        assert queries.sessions(pg) == queries.sessions(lite)
        assert queries.session_events(pg, "s1") == queries.session_events(lite, "s1")
        assert queries.recent(pg, limit=7) == queries.recent(lite, limit=7)
        expected = sum(Decimal(e["cost_usd"]) for e in lite.events() if e["cost_usd"])
        assert sum(r["cost_usd"] for r in queries.totals(pg, "provider")) == expected
    finally:
        pg.close()
        lite.close()


def test_journaled_calls_land_in_postgres(sim: Simulator, pg_url: str) -> None:
    journal = Journal(pg_url)
    client = make_client("azure", sim, journal, session_id="pg-session", tags={"team": "data"})
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello postgres"}])
    for _ in client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                            messages=[{"role": "user", "content": "stream it"}]):
        pass
    client.embeddings.create(model="text-embedding-3-small", input="a vector")
    client.close()
    journal.flush()
    events = journal.events(session_id="pg-session")
    assert [e["endpoint"] for e in events] == ["chat.completions", "chat.completions", "embeddings"]
    assert all(e["provider"] == "azure_openai" and e["status"] == "ok" and e["tags"] == {"team": "data"}
               for e in events)
    assert all(e["input_tokens"] > 0 and e["usage_source"] == "reported" and Decimal(e["cost_usd"]) > 0
               for e in events)
    assert [e["stream"] for e in events] == [False, True, False]
    assert "API_KEY" not in str(events) and "sk-test" not in str(events)
    journal.close()


async def test_async_client_and_a_second_journal_object_share_the_database(sim: Simulator, pg_url: str) -> None:
    journal = Journal(pg_url)
    client = make_client("async_azure", sim, journal, session_id="async-pg")
    await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "async"}])
    await client.close()
    journal.flush()
    other = Journal(pg_url)  # another host would see the same
    try:
        (row,) = other.events(session_id="async-pg")
        assert row["output_tokens"] > 0 and row["deployment"] == "gpt-4o"
    finally:
        other.close()
        journal.close()


WRITER = textwrap.dedent("""
    import sys
    from decimal import Decimal
    from tokenid import Journal
    from tokenid.call import row_tuple
    class Item:
        def __init__(self, n): self.n = n
        def to_row(self):
            return row_tuple({"id": f"p{self.n:031d}", "started_at": "2025-03-01T00:00:00Z",
                              "provider": "openai", "endpoint": "embeddings", "usage_source": "missing",
                              "status": "ok", "session_id": sys.argv[2]})
        def fallback_row(self, error): return self.to_row()
    j = Journal(sys.argv[1], batch_size=40)
    base = int(sys.argv[2]) * 100000
    for n in range(int(sys.argv[3])):
        j.record(Item(base + n))
    # no flush, no close: the interpreter-exit hook must write everything
""")


def test_several_processes_lose_nothing(pg_url: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), pg_url, str(p), "300"]) for p in range(4)]
    assert [p.wait(120) for p in procs] == [0, 0, 0, 0]
    journal = Journal(pg_url)
    try:
        counts = journal.store.query("SELECT session_id, COUNT(*) FROM events GROUP BY 1 ORDER BY 1")
        assert [(r[0], r[1]) for r in counts] == [(str(p), 300) for p in range(4)]
    finally:
        journal.close()


def test_migrations_are_versioned_and_safe_to_race(pg_url: str) -> None:
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            PostgresStore(pg_url).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = PostgresStore(pg_url)
    assert [tuple(r) for r in store.query("SELECT version FROM tokenid_schema")] == [(SCHEMA_VERSION,)]
    tables = {r[0] for r in store.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
    assert {"events", "reconcile_runs", "reconcile_lines", "calibrated_rates"} <= tables
    with store.transaction() as conn:
        conn.execute("UPDATE tokenid_schema SET version = ?", (SCHEMA_VERSION + 1,))
    store.close()
    with pytest.raises(JournalError, match="newer than this TokenID"):
        PostgresStore(pg_url)


def test_passwords_never_show(tmp_path: Path) -> None:
    url = "postgresql://tokenid:s3cret-pw@127.0.0.1:1/test"
    assert redact_url(url) == "postgresql://tokenid:***@127.0.0.1:1/test"
    with pytest.raises(JournalError) as info:
        Journal(url)
    assert "s3cret-pw" not in str(info.value) and "127.0.0.1:1" in str(info.value)


def test_cli_reads_a_postgres_journal(pg_url: str) -> None:
    journal = Journal(pg_url)
    journal.store.insert([event(n) for n in range(6)])
    journal.close()
    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(app, ["report", "--journal", pg_url, "--by", "session"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "s0" in result.output and "6 calls" in result.output
    result = runner.invoke(app, ["export", "--journal", pg_url, "--format", "jsonl"], catch_exceptions=False)
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 6


def test_reconciliation_gives_the_same_result_on_postgres(pg_url: str, tmp_path: Path) -> None:
    from datetime import date

    from tokenid.azure.exports import CostLine
    from tokenid.azure.reconcile import reconcile
    from tokenid.azure.reconcile_store import latest_run, list_vs_invoice, store_run

    rows = [event(n, resource="acme.openai.azure.com", deployment_type="global") for n in range(30)]
    account = "/subscriptions/s/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/acme"

    def line(day: int, meter: str, quantity: str, cost: str) -> CostLine:
        return CostLine(date(2025, 3, day), account, "acme", "rg", "s", "eastus2", meter, "", "", "", "", "1K",
                        Decimal(quantity), Decimal(cost), Decimal(cost), "USD", None, None, "Usage", "OnDemand", {},
                        "t:1")

    invoice = [line(d, m, q, c) for d in (1, 2, 3) for m, q, c in (
        ("gpt-4o-0806-Inp-glbl Tokens", "1.2", "0.003"), ("gpt-4o-0806-Outp-glbl Tokens", "0.2", "0.002"),
        ("gpt-4o-mini-0718-Inp-glbl Tokens", "1.1", "0.000165"))]
    results = []
    for target in (pg_url, tmp_path / "j.db"):
        journal = Journal(target)
        journal.store.insert(rows)
        result = reconcile(invoice, journal)
        recosted = store_run(journal, result)
        run = latest_run(journal)
        assert run is not None and run["id"] == result.run_id
        by_tag = list_vs_invoice(journal, "tag:team", result.run_id)
        results.append(([(ln.meter_name, ln.status, ln.journal_tokens, ln.invoice_cost_usd, ln.journal_cost_usd)
                         for ln in result.lines], recosted, [(r["key"], r["calls"], r["invoice_usd"]) for r in by_tag],
                        sorted((e["id"], e["invoice_cost_usd"]) for e in journal.events())))
        journal.close()
    assert results[0] == results[1]
    assert results[0][1] == 30 and {k for k, _, _ in results[0][2]} == {"t0", "t1"}


def test_a_dropped_connection_is_reopened_and_nothing_is_lost(pg_url: str) -> None:
    journal = Journal(pg_url)
    journal.store.insert([event(0)])
    killed = 0
    with psycopg.connect(SERVER, autocommit=True) as admin:
        for (pid,) in admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'tokenid'"):
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed += 1
    assert killed >= 1
    journal.store.insert([event(1)])  # this thread's connection was dropped: the store reconnects
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tokenid'")

    class Item:
        def __init__(self, n: int) -> None:
            self.n = n

        def to_row(self) -> tuple[Any, ...]:
            return event(self.n)

        def fallback_row(self, error: BaseException) -> tuple[Any, ...]:
            return event(self.n)

    for n in range(2, 12):
        journal.record(Item(n))
    assert journal.flush()
    assert journal.stats["spooled"] == 0
    assert sorted(e["id"] for e in journal.events()) == [f"{n:032d}" for n in range(12)]
    journal.close()


def test_budgets_work_with_a_postgres_journal(sim: Simulator, pg_url: str) -> None:
    from tokenid.errors import BudgetExceeded

    journal = Journal(pg_url)
    config = {"budgets": [{"name": "tiny", "scope": "session", "limit_usd": "0.0000001", "window": "lifetime"}]}
    session = f"pg-budget-{uuid.uuid4().hex[:8]}"
    client = make_client("azure", sim, journal, session_id=session, enforcement_config=config)
    with pytest.raises(BudgetExceeded):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "over budget"}])
    client.close()
    (blocked,) = journal.events(session_id=session)
    assert blocked["status"] == "blocked" and blocked["enforcement"][0]["rule"] == "tiny"
    assert journal.path.name.startswith("postgresql-")  # per-host counters beside the spool, not in the database
    journal.close()

