"""Rollups stay equal to the events they summarise, whatever way the events arrive, in SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tokenid import Journal
from tokenid.dashboard.sample import ReadyRows, legacy_journal, sample_rows
from tokenid.journal import COLUMNS
from tokenid.journal.postgres import psycopg_sql
from tokenid.journal.rollups import ROLLUP_TABLES
from tokenid.journal.schema import SCHEMA_VERSION

from conftest import legacy_pg_journal, pg_schema

_I = {c: i for i, c in enumerate(COLUMNS)}


def expected(events: list[dict[str, Any]]) -> dict[str, dict[tuple[Any, ...], tuple[int, int, int, int]]]:
    """(calls, input tokens, output tokens, cost nano-dollars) per rollup key, computed in Python from events."""
    out: dict[str, dict[tuple[Any, ...], list[int]]] = {t: defaultdict(lambda: [0, 0, 0, 0]) for t in ROLLUP_TABLES}
    for e in events:
        model = e["canonical_model"] or e["model_served"] or e["model_requested"] or ""
        dims = (e["started_at"][:13], e["provider"], e["deployment"] or "", model, e["status"])
        nanos = int(Decimal(e["cost_usd"]) * 10**9) if e["cost_usd"] else 0
        keys = {"rollup_hourly": [dims]}
        keys["rollup_sessions"] = [(dims[0], e["session_id"], *dims[1:])] if e["session_id"] else []
        keys["session_totals"] = [(e["session_id"],)] if e["session_id"] else []
        tags = (e["tags"] or {}).items()
        keys["rollup_tags"] = [(k, str(v), *dims) for k, v in tags]
        keys["rollup_tag_pairs"] = [(k, str(v), k2, str(v2), *dims) for k, v in tags for k2, v2 in tags if k2 != k]
        session = e["session_id"]
        keys["rollup_session_tags"] = [(k, str(v), dims[0], session, *dims[1:]) for k, v in tags] if session else []
        for table, ks in keys.items():
            for k in ks:
                acc = out[table][k]
                for n, v in enumerate((1, e["input_tokens"] or 0, e["output_tokens"] or 0, nanos)):
                    acc[n] += v
    return {t: {k: (v[0], v[1], v[2], v[3]) for k, v in rows.items()} for t, rows in out.items()}


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """Where a test's journal lives: a SQLite file, or a fresh schema of the PostgreSQL test database."""
    if request.param == "sqlite":
        yield tmp_path / "j.db"
    else:
        with pg_schema() as url:
            yield url


def select(target: Path | str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query (``?`` placeholders) on either journal, read behind the store's back."""
    if isinstance(target, str):
        with psycopg.connect(target) as pg:
            return [tuple(r) for r in pg.execute(psycopg_sql(sql), params)]
    with contextlib.closing(sqlite3.connect(target)) as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


def write(target: Path | str, *statements: str) -> None:
    if isinstance(target, str):
        with psycopg.connect(target) as pg:  # one transaction, committed on leaving
            for statement in statements:
                pg.execute(statement)
        return
    with contextlib.closing(sqlite3.connect(target)) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()


def stored(target: Path | str) -> dict[str, dict[tuple[Any, ...], tuple[int, int, int, int]]]:
    out = {}
    for table, keys in ROLLUP_TABLES.items():
        rows = select(target,
                      f"SELECT {', '.join(keys)}, calls, input_tokens, output_tokens, cost_nanousd FROM {table}")
        out[table] = {tuple(r[:len(keys)]): tuple(int(v) for v in r[len(keys):]) for r in rows}
    return out


def test_rollups_match_events_for_batches_fanout_duplicates_and_out_of_order(target: Path | str) -> None:
    rows = list(sample_rows(3000, sessions=40, hours=72))
    journal = Journal(target, batch_size=500)
    for row in rows[:1000]:
        journal.record(ReadyRows(row))
    journal.flush()
    journal.record(ReadyRows(rows[1000:1200]))  # fan-out: one item, many rows
    journal.record(ReadyRows(rows[:50]))  # duplicates of stored events: skipped by the insert, must not count twice
    for row in reversed(rows[1200:]):  # a session's late events arrive after later ones
        journal.record(ReadyRows(row))
    late = list(rows[5])
    late[_I["id"]], late[_I["started_at"]] = "zz-late", "2026-09-01T03:04:05.000000Z"
    journal.record(ReadyRows(tuple(late)))  # an event older than everything stored
    journal.flush()
    events = journal.events()
    assert len(events) == 3001
    assert stored(target) == expected(events)
    actions: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for e in events:
        for a in e["enforcement"] or []:
            actions[a["rule"], a["type"], a["action"], "1" if a.get("shadow") else "0"] += 1
    got = {(r, t, a, sh): int(n) for r, t, a, sh, n in select(
        target, "SELECT rule, type, action, shadow, SUM(calls) FROM rollup_enforcement GROUP BY 1, 2, 3, 4")}
    assert got == dict(actions) and len(got) == 2
    mine = sorted(e["started_at"] for e in events if e["session_id"] == late[_I["session_id"]])
    for table in ("rollup_sessions", "session_totals"):
        span = select(target, f"SELECT MIN(first_at), MAX(last_at) FROM {table} WHERE session_id = ?",
                      (late[_I["session_id"]],))
        assert span == [(mine[0], mine[-1])]
    journal.close()


def test_spooled_rows_land_in_the_rollups_when_reloaded(target: Path | str) -> None:
    rows = list(sample_rows(300, seed=3))
    path = target
    journal = Journal(path)
    journal._spool(rows[:200], RuntimeError("disk full"))
    journal.record(ReadyRows(rows[200:]))
    journal.close()
    reopened = Journal(path)
    events = reopened.events()
    assert len(events) == 300
    assert stored(path) == expected(events)
    reopened.close()


def test_an_existing_journal_gets_its_rollups_backfilled(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    legacy_journal(path, list(sample_rows(800, seed=11, hours=48)))
    journal = Journal(path)
    events = journal.events()
    assert len(events) == 800
    assert stored(path) == expected(events)
    assert sum(v[0] for v in stored(path)["rollup_hourly"].values()) == 800
    journal.close()


def test_reconciliation_updates_move_the_invoice_sums(target: Path | str) -> None:
    rows = list(sample_rows(200, seed=5, hours=10))
    journal = Journal(target)
    journal.record(ReadyRows(rows))
    journal.flush()
    write(target, "UPDATE events SET invoice_cost_nanousd = cost_nanousd * 9 / 10, invoice_cost_usd = 'x' "
                  "WHERE cost_nanousd IS NOT NULL AND provider = 'azure_openai'",
          "UPDATE events SET invoice_cost_nanousd = invoice_cost_nanousd + 7 WHERE substr(id, 8, 1) IN ('1', 'a')",
          "UPDATE events SET invoice_cost_nanousd = NULL WHERE substr(id, 8, 1) = '2'")  # and one taken back
    want = tuple(int(v) for v in select(
        target, "SELECT SUM(invoice_cost_nanousd), COUNT(invoice_cost_nanousd), "
                "SUM(CASE WHEN invoice_cost_nanousd IS NULL THEN 0 ELSE cost_nanousd END) FROM events")[0])
    assert want[1] > 0 and want[0] != want[2]
    for table in ROLLUP_TABLES:
        got = tuple(int(v) for v in select(
            target, f"SELECT SUM(invoice_cost_nanousd), SUM(invoiced_calls), SUM(invoiced_list_nanousd) "
                    f"FROM {table}")[0])
        if "tag" in table:  # every sample event has two tags, so two pairs
            got = (got[0] // 2, got[1] // 2, got[2] // 2)
        assert got == want, table
    by_team = {k: int(v) for k, v in select(
        target, "SELECT tag_value, SUM(invoice_cost_nanousd) FROM rollup_tags WHERE tag_key = 'team' GROUP BY 1")}
    want_team: dict[str, int] = defaultdict(int)
    for e in journal.events():
        if e["invoice_cost_nanousd"] is not None:
            want_team[e["tags"]["team"]] += e["invoice_cost_nanousd"]
    assert {k: v for k, v in by_team.items() if v} == dict(want_team)
    journal.close()


def test_tag_values_of_every_json_type_are_rolled_up_as_text(target: Path | str) -> None:
    row = list(next(sample_rows(1)))
    row[_I["tags"]] = json.dumps({"user": "ann", "tier": 3, "beta": True, "off": False, "nested": {"x": 1},
                                  "gone": None, "list": [1]})  # null, objects and arrays are not tag values
    bad = list(next(sample_rows(1, seed=2)))
    bad[_I["id"]], bad[_I["tags"]] = "bad-tags", "{not json"  # stored as given: no tag rollup, the insert succeeds
    journal = Journal(target)
    journal.record(ReadyRows([tuple(row), tuple(bad)]))
    journal.close()
    tags = sorted(select(target, "SELECT tag_key, tag_value FROM rollup_tags"))
    assert tags == [("beta", "1"), ("off", "0"), ("tier", "3"), ("user", "ann")]
    assert int(select(target, "SELECT SUM(calls) FROM rollup_hourly")[0][0]) == 2


@pytest.mark.parametrize("version", [3, 4])
def test_an_existing_postgresql_journal_gets_its_rollups_backfilled(version: int) -> None:
    """v3: as TokenID left it before the rollups; v4 without them: as the first PostgreSQL store left it."""
    rows = list(sample_rows(800, seed=11, hours=48))
    with pg_schema() as url:
        legacy_pg_journal(url, rows, version)
        journal = Journal(url)
        events = journal.events()
        assert len(events) == 800
        assert stored(url) == expected(events)
        assert select(url, "SELECT version FROM tokenid_schema") == [(SCHEMA_VERSION,)]
        journal.record(ReadyRows(rows[:100]))  # the same calls again: already counted
        journal.close()
        assert sum(v[0] for v in stored(url)["rollup_hourly"].values()) == 800


def test_batches_without_tags_or_enforcement_skip_those_rollups_and_lose_nothing(target: Path | str) -> None:
    rows = [list(r) for r in sample_rows(1200, sessions=10, hours=12)]
    for row in rows[:400]:  # whole batches without tags, then without enforcement, then with neither
        row[_I["tags"]] = None
    for row in rows[200:600]:
        row[_I["enforcement"]] = None
    for row in rows[600::3]:  # then batches where only some rows carry them
        row[_I["tags"]] = row[_I["enforcement"]] = None
    journal = Journal(target, batch_size=200)
    for start in range(0, len(rows), 200):
        journal.record(ReadyRows([tuple(r) for r in rows[start:start + 200]]))
        journal.flush()
    events = journal.events()
    assert len(events) == 1200
    assert stored(target) == expected(events)
    enforced = sum(len(e["enforcement"] or []) for e in events)
    assert enforced > 0 and select(target, "SELECT SUM(calls) FROM rollup_enforcement") == [(enforced,)]
    journal.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_journals_on_its_own_and_the_parent_carries_on(target: Path | str) -> None:
    rows = list(sample_rows(600, sessions=5, hours=4))
    journal = Journal(target, batch_size=100)
    journal.record(ReadyRows(rows[:200]))
    assert journal.flush(10)  # the parent's writer thread and connections are live when it forks
    pid = os.fork()
    if pid == 0:  # the child: its own writer and connections (SQLite: its own checkpointer too)
        code = 1
        try:
            journal.record(ReadyRows(rows[200:400]))
            code = 0 if journal.flush(10) else 2
            journal.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    journal.record(ReadyRows(rows[400:]))  # the child's exit did not take the parent's connection with it
    assert journal.flush(10)
    events = journal.events()
    assert len(events) == 600 and journal.stats["spooled"] == 0
    assert stored(target) == expected(events)
    journal.close()
