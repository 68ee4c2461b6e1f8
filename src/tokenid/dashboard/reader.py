"""The dashboard's read-only connection to a journal, SQLite or PostgreSQL: the only thing that talks to it.

SQLite files open ``mode=ro`` with ``query_only``; PostgreSQL connections (the store's connection logic) make every
transaction read-only. Both take SQLite-style ``?`` placeholders and return rows as dicts; what their SQL spells
differently is in :attr:`Reader.dialect`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import JournalError
from ..journal.dialect import POSTGRES, SQLITE, Dialect
from ..journal.postgres import connect, first_line, psycopg_sql, redact_url
from ..journal.schema import SCHEMA_VERSION

__all__ = ["Reader", "is_postgres_url"]


def is_postgres_url(journal: str | Path) -> bool:
    return isinstance(journal, str) and journal.startswith(("postgresql://", "postgres://"))


class Reader:
    """A read-only view of one journal (a SQLite path or a ``postgresql://`` URL), a connection per thread.

    ``check_version``: refuse a journal whose schema the dashboard cannot read (off only to read the version).
    """

    def __init__(self, journal: str | Path, *, check_version: bool = True) -> None:
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        if is_postgres_url(journal):
            self.url: str | None = str(journal)
            self.path: Path | None = None
            self.name = redact_url(self.url)  # in messages and the dashboard's header: never the password
            self.dialect: Dialect = POSTGRES
            try:
                import psycopg
            except ImportError:
                raise JournalError("a PostgreSQL journal needs psycopg: pip install 'tokenid[postgres]'") from None
            self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        else:
            self.url = None
            self.path = Path(journal)
            self.name = str(self.path)
            self.dialect = SQLITE
            self._errors = (sqlite3.Error,)
        if check_version:
            try:
                self._check_version()
            except BaseException:
                self.close()
                raise

    def _check_version(self) -> None:
        version = self.schema_version()
        if version < 4:
            raise JournalError(f"{self.name} has journal schema v{version}; the dashboard needs v4 (open it once "
                               "with this TokenID to upgrade it)")
        if version > SCHEMA_VERSION:
            raise JournalError(f"{self.name} has journal schema v{version}, newer than this TokenID "
                               f"(v{SCHEMA_VERSION})")
        if self.url is not None and not self.has_table("rollup_hourly"):  # the first PostgreSQL store skipped them
            raise JournalError(f"{self.name} has no rollup_hourly yet; the dashboard needs v4 (open it once with "
                               "this TokenID to upgrade it)")

    @property
    def label(self) -> str:
        """What the dashboard shows as the journal: the file's name, or the URL without its password."""
        return self.path.name if self.path is not None else self.name

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not (self.url is not None and (conn.closed or conn.broken)):
            return conn
        try:
            if self.url is not None:
                from psycopg.rows import dict_row

                conn = connect(self.url, read_only=True)
                conn.row_factory = dict_row
            else:
                assert self.path is not None
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=10,
                                       check_same_thread=False)
                conn.execute("PRAGMA query_only = ON")
                conn.row_factory = sqlite3.Row
        except self._errors as exc:
            raise JournalError(f"cannot open the journal at {self.name}: {first_line(exc)}") from exc
        self._local.conn = conn
        with self._lock:
            self._opened.append(conn)
        return conn

    def _execute(self, sql: str, params: Sequence[Any]) -> Any:
        conn = self._connection()
        if self.url is None:
            return conn.execute(sql, params)
        return conn.execute(psycopg_sql(sql), list(params))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            return [dict(r) for r in self._execute(sql, params)]
        except self._errors as exc:
            raise JournalError(f"reading the journal failed: {first_line(exc)}") from exc

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            row = self._execute(sql, params).fetchone()
        except self._errors as exc:
            raise JournalError(f"reading the journal failed: {first_line(exc)}") from exc
        if row is None:
            return None
        return next(iter(row.values())) if isinstance(row, dict) else row[0]

    def has_table(self, name: str) -> bool:
        if self.url is None:
            return bool(self.scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))
        return bool(self.scalar("SELECT to_regclass(?) IS NOT NULL", (name,)))

    def schema_version(self) -> int:
        """The journal's schema version (0: not a journal yet)."""
        if self.url is None:
            return int(self.scalar("PRAGMA user_version"))
        if not self.has_table("tokenid_schema"):
            return 0
        return int(self.scalar("SELECT version FROM tokenid_schema") or 0)

    def close(self) -> None:
        """Close every thread's connection (PostgreSQL: give the server its sessions back)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()

