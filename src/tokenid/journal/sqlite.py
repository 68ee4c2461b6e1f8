"""SQLite store: WAL mode, versioned migrations, batched inserts, simple parameterised reads.

Several processes may write one file: WAL lets readers and one writer work at once, and a
generous busy timeout makes concurrent writers queue instead of failing. Copying the WAL back into
the database file (a checkpoint, with its fsyncs) is done by a thread of its own, not by the writer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import JournalError
from .rollups import STAGE_DDL, fold_choices
from .schema import BOOL_COLUMNS, COLUMNS, JSON_COLUMNS, MIGRATIONS, SCHEMA_VERSION, batch_carries
from .shapes import EVENT_STAGE_DDL, insert_rows

__all__ = ["SQLiteStore"]

log = logging.getLogger("tokenid.journal")

_BUSY_TIMEOUT_MS = 60_000
# a new journal file's page size: fewer, larger pages make the writer's appends (wide rows, four indexes) cheaper
_PAGE_SIZE = 16384
# the rows a batch actually stored are those above the largest rowid before it (stored ids are skipped); by
# (any row has tags, any row has enforcement actions): a batch folds only into the rollups it can add to
_FOLD = fold_choices("events.rowid > :after")


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
        self.checkpointer = Checkpointer(path)
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
            conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")  # takes effect only on a file not created yet
            enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's job, off this thread
            conn.execute(STAGE_DDL)  # per-connection scratch tables: no write to the journal file
            conn.execute(EVENT_STAGE_DDL)
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
            insert_rows(conn, rows)
            for statement in _FOLD[batch_carries(rows)]:
                conn.execute(statement, {"after": before})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.checkpointer.wrote(conn, len(rows))

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
        self.checkpointer.wrote(conn, self.checkpointer.every)  # a tool's update can be large: checkpoint after it

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

    def after_fork(self) -> None:
        """In a forked child: the parent's connections and checkpointer thread are not this process's."""
        self._local = threading.local()
        self.checkpointer = Checkpointer(self.path)

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class Checkpointer:
    """Copies a journal's WAL back into its database file, on a daemon thread with its own connection.

    SQLite would otherwise checkpoint inside the writer's commit every 1,000 pages (writing those pages again,
    and two fsyncs) while the queue waits. Here the writer only counts what it committed; the checkpoints are
    PASSIVE, so they never block it. Under a sustained load the WAL never gets the idle moment it needs to
    start over, so once it is past ``wal_limit`` the writer itself runs one RESTART checkpoint after a commit
    (little is left to copy by then), which keeps the WAL file bounded.
    """

    every = 2000  # rows committed between checkpoints
    wal_limit = 64 << 20  # bytes of WAL after which the writer restarts it

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoints = 0
        self.restarts = 0
        self._pending = 0
        self._restart_due = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def wrote(self, conn: sqlite3.Connection, rows: int) -> None:
        """The writer committed ``rows`` rows on ``conn``: wake the checkpointer now and then, restart the WAL
        when it has grown past its limit."""
        if self._restart_due:
            self._restart_due = False
            try:
                conn.execute("PRAGMA wal_checkpoint(RESTART)")
                self.restarts += 1
            except sqlite3.Error as exc:  # the rows are committed; the WAL is only larger for a while
                log.warning("tokenid: journal WAL restart failed (%s)", exc)
        self._pending += rows
        if self._pending < self.every:
            return
        self._pending = 0
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name=f"tokenid-checkpoint:{self.path.name}")
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            frame = conn.execute("PRAGMA page_size").fetchone()[0] + 24  # a WAL frame: a page and its header
        except sqlite3.Error as exc:
            log.warning("tokenid: journal checkpointer not started (%s); SQLite checkpoints on close", exc)
            return
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
                if frames * frame > self.wal_limit:
                    self._restart_due = True
            except sqlite3.Error as exc:  # the next one copies what this one could not; nothing is lost
                log.warning("tokenid: journal checkpoint failed (%s)", exc)


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
