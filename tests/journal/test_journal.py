"""The SQLite journal: concurrency, durability, spooling, migrations."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenid import Journal, JournalError
from tokenid.journal import COLUMNS
from tokenid.journal.schema import INT_COLUMNS, SCHEMA_VERSION
from tokenid.journal.shapes import REPEATED_COLUMNS
from tokenid.journal.sqlite import SQLiteStore


class Row:
    """A pending item that is already a row (what the writer stores)."""

    def __init__(self, n: int, session: str = "s") -> None:
        values: dict[str, Any] = {c: None for c in COLUMNS}
        values.update(id=f"{n:032x}", started_at=f"2026-11-23T10:00:{n % 60:02d}.000000Z", provider="openai",
                      endpoint="chat.completions", usage_source="reported", status="ok", session_id=session,
                      input_tokens=n, cost_usd="0.000001", cost_nanousd=1000)
        self.row = tuple(values[c] for c in COLUMNS)

    def to_row(self) -> tuple[Any, ...]:
        return self.row

    def fallback_row(self, error: BaseException) -> tuple[Any, ...]:
        return self.row


class Broken(Row):
    def to_row(self) -> tuple[Any, ...]:
        raise RuntimeError("metering bug")


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    conn = sqlite3.connect(tmp_path / "j.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    j.close()
    with pytest.raises(JournalError, match="newer than this TokenID"):
        Journal(tmp_path / "j.db")


def test_bad_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal(tmp_path / "file" / "j.db")


def test_batched_writes_and_flush(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", batch_size=100)
    for n in range(1050):
        j.record(Row(n))
    assert j.flush(10)
    assert len(j.events()) == 1050
    assert j.stats["written"] == 1050


def test_a_metering_failure_still_journals_the_call(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.record(Broken(1))
    j.flush()
    (row,) = j.events()
    assert row["input_tokens"] == 1 and j.stats["row_errors"] == 1


def test_store_failure_spools_and_reloads(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")

    class FailingStore:
        def insert(self, rows: Any) -> None:
            raise sqlite3.DatabaseError("disk I/O error")

    real = j.store
    j.store = FailingStore()  # type: ignore[assignment]
    for n in range(5):
        j.record(Row(n))
    j.flush()
    assert j.stats["spooled"] == 5
    assert list((tmp_path / "j.db.spool").glob("*.jsonl"))
    j.store = real
    j.close()
    reopened = Journal(tmp_path / "j.db")
    assert sorted(e["input_tokens"] for e in reopened.events()) == [0, 1, 2, 3, 4]
    assert not list((tmp_path / "j.db.spool").glob("*.jsonl"))


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_journal import Row
    from tokenid import Journal
    j = Journal(sys.argv[1], batch_size=50)
    base = int(sys.argv[2]) * 100000
    for n in range(int(sys.argv[3])):
        j.record(Row(base + n, session=sys.argv[2]))
    # no flush, no close: the interpreter-exit hook must write everything
""")


def test_several_processes_lose_nothing(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=str(Path(__file__).parent)))
    db = tmp_path / "shared.db"
    procs = [subprocess.Popen([sys.executable, str(script), str(db), str(p), "2000"]) for p in range(4)]
    assert [p.wait(120) for p in procs] == [0, 0, 0, 0]
    j = Journal(db)
    counts = {s: len(j.events(session_id=str(s))) for s in range(4)}
    assert counts == {0: 2000, 1: 2000, 2: 2000, 3: 2000}


def test_a_v1_journal_is_migrated_and_keeps_its_events(tmp_path: Path) -> None:
    from tokenid.journal.schema import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:  # the schema as TokenID 1 created it
        conn.execute(statement)
    v1_columns = [r[1] for r in conn.execute("PRAGMA table_info(events)")]
    conn.execute(f"INSERT INTO events ({', '.join(v1_columns)}) VALUES ({', '.join('?' * len(v1_columns))})",
                 [Row(7).row[COLUMNS.index(c)] for c in v1_columns])
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    assert "batch_id" not in v1_columns

    j = Journal(path)
    (old,) = j.events()
    assert old["input_tokens"] == 7 and old["batch_id"] is None and old["units"] is None
    values: dict[str, Any] = dict(zip(COLUMNS, Row(8).row, strict=True))
    values.update(batch_id="batch_abc", service_tier="priority", image_input_tokens=3, units='{"images": 2}')
    j.record(_Fixed(tuple(values[c] for c in COLUMNS)))
    j.flush()
    new = next(e for e in j.events() if e["input_tokens"] == 8)
    assert (new["batch_id"], new["service_tier"], new["image_input_tokens"], new["units"]) == (
        "batch_abc", "priority", 3, {"images": 2})
    j.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "events_batch" in {r[1] for r in conn.execute("PRAGMA index_list(events)")}


class _Fixed(Row):
    def __init__(self, row: tuple[Any, ...]) -> None:
        self.row = row


def test_spool_files_from_an_older_schema_are_loaded_not_dropped(tmp_path: Path) -> None:
    import json

    spool = tmp_path / "j.db.spool"
    spool.mkdir()
    v1_width = COLUMNS.index("image_input_tokens")  # v1 rows were plain lists of the v1 columns
    (spool / "1-1.jsonl").write_text(json.dumps(list(Row(1).row[:v1_width])) + "\n")
    (spool / "1-2.jsonl").write_text(json.dumps(dict(zip(COLUMNS, Row(2).row, strict=True))) + "\n")
    j = Journal(tmp_path / "j.db")
    assert sorted(e["input_tokens"] for e in j.events()) == [1, 2]
    assert not list(spool.glob("*.jsonl"))
    j.close()


def test_a_spool_file_with_unknown_columns_is_kept_for_a_newer_tokenid(tmp_path: Path) -> None:
    import json

    spool = tmp_path / "j.db.spool"
    spool.mkdir()
    (spool / "1-1.jsonl").write_text(json.dumps({**dict(zip(COLUMNS, Row(1).row, strict=True)), "future": 1}) + "\n")
    j = Journal(tmp_path / "j.db")
    assert j.events() == []
    assert [p.name for p in spool.iterdir()] == ["1-1.jsonl"]  # kept for a TokenID that knows the column
    j.close()


def test_a_row_the_store_refuses_is_spooled_alone(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    bad = Row(3)
    bad.row = tuple(None if c == "started_at" else v for c, v in zip(COLUMNS, bad.row, strict=True))  # NOT NULL
    for item in (Row(1), Row(2), bad, Row(4), Row(5)):
        j.record(item)
    j.flush()
    assert sorted(e["input_tokens"] for e in j.events()) == [1, 2, 4, 5]
    assert j.stats == {"written": 4, "spooled": 1, "row_errors": 0, "lost": 0}
    (spooled,) = (tmp_path / "j.db.spool").glob("*.jsonl")
    assert json.loads(spooled.read_text())["input_tokens"] == 3
    j.close()


def test_checkpoints_run_off_the_writer_and_keep_the_wal_bounded(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from tokenid.journal.sqlite import Checkpointer

    monkeypatch.setattr(Checkpointer, "every", 200)
    monkeypatch.setattr(Checkpointer, "wal_limit", 256 << 10)
    path = tmp_path / "j.db"
    j = Journal(path, batch_size=100)
    conn = j.store._connection()  # type: ignore[attr-defined]
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # the writer never checkpoints itself
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 16384
    biggest = 0
    for n in range(6000):  # a sustained load: the writer never idles long enough for a PASSIVE restart alone
        j.record(Row(n))
        if n % 500 == 499:
            assert j.flush(10)
            biggest = max(biggest, (tmp_path / "j.db-wal").stat().st_size)
    assert j.flush(10)
    checkpointer = j.store.checkpointer  # type: ignore[attr-defined]
    assert checkpointer.checkpoints >= 3  # wake-ups that come while one runs are coalesced
    assert checkpointer.restarts >= 1
    # without restarts this WAL grows to about 30 MB (every row, every rollup page it touched); with them it stays
    # near the limit plus what a checkpoint interval adds (about 2-3 MB)
    assert biggest < 8 << 20, biggest
    assert len(j.events()) == 6000
    j.close()
    # the checkpoints copied the rows into the database file itself: a copy of it without its WAL holds them
    # (all but those committed since the last checkpoint)
    alone = tmp_path / "alone.db"
    alone.write_bytes(path.read_bytes())
    ro = sqlite3.connect(alone)
    assert ro.execute("SELECT COUNT(*) FROM events").fetchone()[0] >= 5000
    ro.close()


class Slow(Row):
    """A call whose metering takes a while (tokenizing an estimate, say)."""

    def to_row(self) -> tuple[Any, ...]:
        time.sleep(0.0003)
        return self.row


def test_a_steady_stream_of_calls_is_written_a_batch_per_interval(tmp_path: Path) -> None:
    # Each batch has a fixed cost (a transaction, the rollup statements): the writer takes what is queued when it
    # wakes and leaves what arrives meanwhile for the next wake-up, instead of chasing the queue in tiny batches.
    j = Journal(tmp_path / "j.db", flush_interval=0.3)
    batches: list[int] = []
    insert = j.store.insert

    def counting(rows: Any) -> None:
        batches.append(len(rows))
        insert(rows)

    j.store.insert = counting  # type: ignore[method-assign]
    deadline = time.monotonic() + 1.5
    n = 0
    while time.monotonic() < deadline:  # about a call a millisecond, while metering one takes 0.3 ms
        j.record(Slow(n))
        n += 1
        time.sleep(0.001)
    assert j.flush(10)
    assert sum(batches) == n and len(j.events()) == n
    assert len(batches) <= 8, batches  # 1.5 s at 0.3 s a wake-up, and the final flush


class Where(Row):
    """Remembers which thread metered it."""

    def __init__(self, n: int, seen: dict[int, str]) -> None:
        super().__init__(n)
        self.n, self.seen = n, seen

    def to_row(self) -> tuple[Any, ...]:
        self.seen[self.n] = threading.current_thread().name
        return self.row


def test_flush_writes_on_the_calling_thread_once_the_writer_is_between_batches(tmp_path: Path) -> None:
    # The flushing thread waits anyway: it stores what is queued itself instead of handing it to the writer thread
    # and back (a short-lived process that flushes after each request answers sooner).
    j = Journal(tmp_path / "j.db", flush_interval=60)
    seen: dict[int, str] = {}
    j.record(Where(0, seen))  # starts the writer, which then sleeps for the interval
    assert j._thread is not None and j._thread.is_alive()
    for n in range(1, 200):
        j.record(Where(n, seen))
    assert j.flush(10)
    assert len(j.events()) == 200 and j.stats["written"] == 200
    assert set(seen.values()) == {threading.current_thread().name}


def test_flushes_from_many_threads_beside_the_writer_store_each_call_once(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", batch_size=50, flush_interval=0.01)
    seen: dict[int, str] = {}
    flushed: list[bool] = []

    def work(first: int) -> None:
        for n in range(first, first + 500):
            j.record(Where(n, seen))
            if n % 37 == 0:
                flushed.append(j.flush(10))

    threads = [threading.Thread(target=work, args=(k * 500,), name=f"caller-{k}") for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert j.flush(10) and all(flushed)
    ids = [e["id"] for e in j.events()]
    assert len(ids) == len(set(ids)) == 2000 and j.stats["written"] == 2000
    assert len(seen) == 2000
    assert any(name.startswith("caller-") for name in seen.values())  # flushing threads stored some themselves


_REQUIRED = {"id", "started_at", "provider", "endpoint", "usage_source", "status"}
_REAL = {"latency_ms", "ttft_ms"}
_JSON = {"tags": '{"team": ""}', "units": "{}", "enforcement": "[]", "route": "{}", "content": "{}"}


def _value(draw: st.DrawFn, column: str) -> Any:
    if column in _JSON:
        return _JSON[column]
    if column in INT_COLUMNS:
        return draw(st.sampled_from([0, 1, -5, 2**40]))
    if column in _REAL:
        return draw(st.sampled_from([0.0, 1.5, 1234.25]))
    return draw(st.sampled_from(["", "x", "ü", "0", "it's"]))


@st.composite
def _rows(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Rows made from a few templates (so that many share their values), each value of a row possibly its own or
    NULL, falsy values (0, "", 0.0) included, and now and then an id given twice."""
    templates = [{c: _value(draw, c) for c in COLUMNS} for _ in range(draw(st.integers(1, 3)))]
    rows = []
    for n in range(draw(st.integers(1, 60))):
        values = dict(draw(st.sampled_from(templates)))
        for column in COLUMNS:  # the repeated columns rarely change (rows share them), the others often
            change = draw(st.sampled_from(["keep"] * (60 if column in REPEATED_COLUMNS else 4) + ["own", "null"]))
            if change == "own":
                values[column] = _value(draw, column)
            elif change == "null" and column not in _REQUIRED:
                values[column] = None
        values["id"] = f"{n:032x}" if n == 0 or not draw(st.booleans()) or n % 7 else f"{n - 1:032x}"
        values["started_at"] = f"2026-11-23T10:00:{n % 60:02d}.000000Z"
        rows.append(tuple(values[c] for c in COLUMNS))
    return rows


@settings(max_examples=60, deadline=None)
@given(rows=_rows())
def test_rows_of_any_shape_and_sharing_are_stored_exactly(tmp_path_factory: pytest.TempPathFactory,
                                                          rows: list[tuple[Any, ...]]) -> None:
    # The store names only the columns a row sets (binding None is slow in Python's sqlite3) and stages rows that
    # share their repeated values: every value must arrive, falsy ones included, NULLs stay NULL, and of an id
    # given twice the first row is kept.
    path = tmp_path_factory.mktemp("shapes") / "j.db"
    store = SQLiteStore(path)
    store.insert(rows)
    conn = sqlite3.connect(path)
    stored = {r[0]: r for r in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM events")}
    conn.close()
    store.close()
    expected: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        expected.setdefault(row[0], row)
    assert stored == expected


def test_a_row_that_sets_nothing_or_has_the_wrong_width_is_refused_not_half_stored(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "j.db")
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        store.insert([(None,) * len(COLUMNS)])
    with pytest.raises(sqlite3.ProgrammingError, match=f"has {len(COLUMNS) + 1} values, not {len(COLUMNS)}"):
        store.insert([(*Row(1).row, "extra")])
    # through the journal, the refused row is kept apart and the rest of its batch is stored
    j = Journal(tmp_path / "k.db")
    nothing = Row(0)
    nothing.row = (None,) * len(COLUMNS)
    for item in (Row(1), nothing, Row(2)):
        j.record(item)
    assert j.flush(10)
    assert [e["input_tokens"] for e in j.events()] == [1, 2]
    assert j.stats["spooled"] == 1
    j.close()


class Hopeless(Row):
    """Metering fails, and so does the fallback: a bug on top of a bug."""

    def to_row(self) -> tuple[Any, ...]:
        raise RuntimeError("metering bug")

    def fallback_row(self, error: BaseException) -> tuple[Any, ...]:
        raise RuntimeError("fallback bug")


@pytest.mark.parametrize("interval", [60, 0.01])  # stored by the flushing thread; by the writer
def test_a_call_that_cannot_become_any_row_is_counted_and_logged_and_the_rest_is_stored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, interval: float) -> None:
    j = Journal(tmp_path / "j.db", flush_interval=interval)
    j.record(Row(0))  # starts the writer
    j.record(Hopeless(1))
    j.record(Row(2))
    assert j.flush(10)  # the batch is not held up by it, and later flushes are not either
    j.record(Row(3))
    assert j.flush(10)
    assert sorted(e["input_tokens"] for e in j.events()) == [0, 2, 3]
    assert j.stats["lost"] == 1 and "could not be journaled at all" in caplog.text
