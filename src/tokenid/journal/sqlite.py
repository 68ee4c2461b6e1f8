"""SQLite store: WAL mode, versioned migrations, batched inserts, simple parameterised reads.

Several processes may write one file: WAL lets readers and one writer work at once, and a
generous busy timeout makes concurrent writers queue instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import JournalError
from .rollups import STAGE_DDL, fold_statements
from .schema import BOOL_COLUMNS, COLUMNS, JSON_COLUMNS, MIGRATIONS, SCHEMA_VERSION

__all__ = ["SQLiteStore"]

# ids already stored are skipped (a spool reloaded twice, a retried batch); any other constraint a row breaks is
# an error, so the writer can keep that row apart instead of it vanishing (OR IGNORE would drop it silently)
_INSERT = (f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
           "ON CONFLICT (id) DO NOTHING")
_BUSY_TIMEOUT_MS = 60_000
# the rows a batch actually stored are those above the largest rowid before it (stored ids are skipped)
_FOLD = fold_statements("events.rowid > :after")


class SQLiteStore:
    """One SQLite journal file. Each thread gets its own connection."""

    dialect = "sqlite"
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    #: what a concurrent writer can cause ("database is locked"): worth another try
    transient_errors: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)
    #: what one bad row causes (the rest of its batch can still be stored)
    row_errors: tuple[type[BaseException], ...] = (sqlite3.IntegrityError, sqlite3.DataError)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._migrate(self._connection())
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open the journal at {path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(STAGE_DDL)  # a per-connection scratch table: no write to the journal file
            self._local.conn = conn
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"{self.path} has journal schema v{version}, newer than this TokenID (v{SCHEMA_VERSION}): "
                "upgrade tokenid"
            )
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see the new version
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for step in MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows (tuples in ``COLUMNS`` order) and fold them into the rollups, in one transaction."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
            conn.executemany(_INSERT, rows)
            for statement in _FOLD:
                conn.execute(statement, {"after": before})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside one write transaction: committed on success, rolled back on error.
        For tools that write beside the events (``tokenid reconcile``), never for the writer's inserts."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read-only parameterised query."""
        conn = self._connection()
        conn.row_factory = sqlite3.Row
        try:
            return list(conn.execute(sql, params))
        finally:
            conn.row_factory = None

    def iter_events(self, where: str = "", params: Sequence[Any] = (), order: str = "started_at, id") -> Iterator[
            dict[str, Any]]:
        """Events as dicts with JSON columns decoded and booleans restored."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM events {('WHERE ' + where) if where else ''} ORDER BY {order}"
        conn = self._connection()
        for values in conn.execute(sql, params):
            yield decode_row(values)

    def json_text(self, column: str) -> str:
        """SQL for the text of key ``?`` of the JSON object in ``column`` (the key is the parameter)."""
        return f"json_extract({column}, '$.\"' || ? || '\"')"

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def enable_wal(conn: sqlite3.Connection) -> None:
    """Put a connection's database in WAL mode, waiting out other processes doing the same."""
    # Switching a new file to WAL takes an exclusive lock, and SQLite may answer "locked" at once
    # (without its busy handler) while another process does the same: retry for a while.
    for attempt in range(50):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.02 * (1 + attempt % 5))


def decode_row(values: Sequence[Any]) -> dict[str, Any]:
    """Turn a stored row into the event dict that export and the API show."""
    event = dict(zip(COLUMNS, values, strict=True))
    for name in JSON_COLUMNS:
        raw = event[name]
        event[name] = json.loads(raw) if raw else None
    for name in BOOL_COLUMNS:
        if event[name] is not None:
            event[name] = bool(event[name])
    event.pop("cost_nanousd", None)
    return event
