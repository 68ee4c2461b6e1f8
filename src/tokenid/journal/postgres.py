"""PostgreSQL store: the journal shared by many hosts (``journal="postgresql://user@host/db"``).

Same tables, columns and migrations as the SQLite store, in PostgreSQL types (integers are ``BIGINT``: nano-dollar
sums outgrow 32 bits), with the schema version in a one-row ``tokenid_schema`` table and migrations serialised by
an advisory lock so several hosts can start at once. The read API speaks the SQL the rest of TokenID writes for
SQLite (``?`` placeholders, ``CASE`` sums); the few constructs that differ go through :attr:`dialect`.
Needs ``pip install 'tokenid[postgres]'`` (psycopg 3).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError, JournalError
from .dialect import POSTGRES
from .rollups import fold_choices, stage_ddl
from .schema import COLUMNS, MIGRATIONS, PG_MIGRATIONS, SCHEMA_VERSION, SQLITE_ONLY_MIGRATIONS, batch_carries
from .sqlite import decode_row

__all__ = ["PostgresStore", "connect", "first_line", "psycopg_sql", "redact_url"]

_INSERT = (f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
           "ON CONFLICT (id) DO NOTHING RETURNING id")
_LOCK_ID = 0x746F6B656E6964  # "tokenid": one advisory lock for migrations, whatever the database
_TYPES = ((re.compile(r"\bINTEGER\b"), "BIGINT"), (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"))
_PLACEHOLDER = re.compile(r"\?")
_T = TypeVar("_T")
_STAGE_DDL: Final = stage_ddl(POSTGRES)


def redact_url(url: str) -> str:
    """The URL without its password, for messages and ``repr``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))


def pg_statement(statement: str) -> str:
    """A migration statement in PostgreSQL types (the DDL is otherwise common to both databases)."""
    for pattern, replacement in _TYPES:
        statement = pattern.sub(replacement, statement)
    return statement


def psycopg_sql(statement: str) -> str:
    """SQLite-style ``?`` placeholders as psycopg's ``%s`` (and literal ``%`` escaped)."""
    return _PLACEHOLDER.sub("%s", statement.replace("%", "%%"))


# the rows a batch actually stored are those its INSERT … ON CONFLICT DO NOTHING returned; by (any row has tags,
# any row has enforcement actions): a batch folds only into the rollups it can add to
_FOLD: Final = {carries: tuple(psycopg_sql(pg_statement(statement)) for statement in statements)
                 for carries, statements in fold_choices("events.id = ANY(?)", POSTGRES).items()}


def connect(url: str, *, read_only: bool = False) -> Any:
    """A new autocommit psycopg connection to the journal at ``url``; ``read_only``: every transaction on it is
    read-only (the dashboard's), so nothing sent on it can change the journal."""
    import psycopg

    conn = psycopg.connect(url, autocommit=True, application_name="tokenid")
    try:
        if read_only:
            conn.execute("SET default_transaction_read_only = on")
        else:
            conn.execute(pg_statement(_STAGE_DDL))  # the per-connection scratch table the rollups are folded from
    except BaseException:
        conn.close()
        raise
    return conn


class Row(tuple[Any, ...]):
    """A result row readable like ``sqlite3.Row``: by index, by column name, and as ``dict(row)``."""

    __slots__ = ()
    _names: tuple[str, ...] = ()

    def keys(self) -> tuple[str, ...]:
        return self._names

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names.index(key))
            except ValueError:
                raise IndexError(f"no column {key!r}") from None
        return tuple.__getitem__(self, key)


def _row_factory(cursor: Any) -> Any:
    description = cursor.description or ()
    cls = type("Row", (Row,), {"__slots__": (), "_names": tuple(d.name for d in description)})

    def make(values: Sequence[Any]) -> Row:
        row: Row = cls(values)
        return row

    return make


class _Connection:
    """What ``SQLiteStore.transaction()`` yields, over a psycopg connection: ``execute`` / ``executemany`` with
    ``?`` placeholders."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor = self._conn.cursor()
        cursor.execute(psycopg_sql(sql), params)
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        cursor = self._conn.cursor()
        if rows:
            cursor.executemany(psycopg_sql(sql), rows)
        return cursor


class PostgresStore:
    """One PostgreSQL journal (the tables in the connection's ``search_path`` schema). A connection per thread."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise ConfigError("a PostgreSQL journal needs psycopg: pip install 'tokenid[postgres]'") from None
        self._psycopg = psycopg
        self.url = url
        self.location = redact_url(url)
        self.errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        self.transient_errors: tuple[type[BaseException], ...] = (psycopg.OperationalError,)
        self.row_errors: tuple[type[BaseException], ...] = (psycopg.IntegrityError, psycopg.DataError)
        self._local = threading.local()
        self._opened: list[Any] = []  # every thread's connection, closed together by close()
        self._opened_lock = threading.Lock()
        try:
            self._migrate(self._connection())
        except psycopg.Error as exc:
            self.close()
            raise JournalError(f"cannot open the journal at {self.location}: {first_line(exc)}") from exc
        except BaseException:
            self.close()
            raise

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = connect(self.url)
            self._local.conn = conn
            with self._opened_lock:
                self._opened = [c for c in self._opened if not c.closed] + [conn]
        return conn

    def _migrate(self, conn: Any) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            conn.execute("CREATE TABLE IF NOT EXISTS tokenid_schema (version BIGINT NOT NULL)")
            row = conn.execute("SELECT version FROM tokenid_schema").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise JournalError(f"{self.location} has journal schema v{version}, newer than this TokenID "
                                   f"(v{SCHEMA_VERSION}): upgrade tokenid")
            for number, step in enumerate(MIGRATIONS[version:], version + 1):
                if number in SQLITE_ONLY_MIGRATIONS:
                    continue
                for statement in PG_MIGRATIONS.get(number, step):
                    conn.execute(pg_statement(statement))
            if version >= 4 and conn.execute("SELECT to_regclass('rollup_hourly')").fetchone()[0] is None:
                # a journal the first PostgreSQL store made recorded v4 but skipped the rollups: build them now
                for statement in PG_MIGRATIONS[4]:
                    conn.execute(pg_statement(statement))
            if row is None:
                conn.execute("INSERT INTO tokenid_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            elif version != SCHEMA_VERSION:
                conn.execute("UPDATE tokenid_schema SET version = %s", (SCHEMA_VERSION,))

    def _retrying(self, work: Callable[[Any], _T]) -> _T:
        """Run ``work(connection)``; when the server dropped this thread's connection (a restart, a failover, an
        idle timeout), open a new one and run it once more. Safe: the failed transaction was rolled back, and
        inserts skip ids already stored."""
        conn = self._connection()
        try:
            return work(conn)
        except self._psycopg.OperationalError:
            if not conn.closed and not conn.broken:
                raise
            self._local.conn = None
            return work(self._connection())

    def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows (tuples in ``COLUMNS`` order) and fold the new ones into the rollups, in one transaction;
        ids already stored are skipped (and not counted again)."""

        def work(conn: Any) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(_INSERT, rows, returning=True)
                stored: list[str] = []
                while True:
                    stored += (r[0] for r in cursor.fetchall())
                    if not cursor.nextset():
                        break
                if stored:
                    for statement in _FOLD[batch_carries(rows)]:
                        cursor.execute(statement, (stored,) if "%s" in statement else ())

        self._retrying(work)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Connection]:
        """One write transaction (committed on success, rolled back on error) taking ``?`` placeholders."""
        conn = self._connection()
        with conn.transaction():
            yield _Connection(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a read-only parameterised query (``?`` placeholders); rows read by index or column name."""

        def work(conn: Any) -> list[Row]:
            with conn.cursor(row_factory=_row_factory) as cursor:
                cursor.execute(psycopg_sql(sql), params)
                return list(cursor.fetchall())

        return self._retrying(work)

    def iter_events(self, where: str = "", params: Sequence[Any] = (), order: str = "started_at, id") -> Iterator[
            dict[str, Any]]:
        """Events as dicts with JSON columns decoded and booleans restored, streamed row by row (an export of
        millions of events does not sit in memory)."""
        sql = psycopg_sql(
            f"SELECT {', '.join(COLUMNS)} FROM events {('WHERE ' + where) if where else ''} ORDER BY {order}")
        for attempt in (1, 2):
            conn = self._connection()
            yielded = False
            try:
                with conn.cursor() as cursor:
                    for values in cursor.stream(sql, params):
                        yielded = True
                        yield decode_row(values)
                return
            except self._psycopg.OperationalError:
                if yielded or attempt == 2 or not (conn.closed or conn.broken):
                    raise
                self._local.conn = None  # dropped before the first row: reconnect and read again

    def json_text(self, column: str) -> str:
        """SQL for the text of key ``?`` of the JSON object in ``column`` (the key is the parameter)."""
        return f"(({column})::jsonb ->> ?)"

    def after_fork(self) -> None:
        """In a forked child: the parent's connections are not this process's (closing them would end the
        parent's sessions); the child opens its own."""
        self._local = threading.local()
        self._opened = []
        self._opened_lock = threading.Lock()

    def close(self) -> None:
        """Close every thread's connection; the store reconnects if used again."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()


def first_line(exc: BaseException) -> str:
    """An error's first line, for messages (server errors carry multi-line context)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
