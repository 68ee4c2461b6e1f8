"""Budget counters: atomic reserve-then-settle over (scope key, time bucket).

A budget is a limit over a scope key ("session:abc", "global", ...) and a :class:`Window`. Before a
call is sent the enforcer *reserves* the call's worst case; afterwards it *settles* the reservation
to the true amount. Reserve admits only if ``spent + reserved + amount <= limit``, so while every
call settles at or below its reservation the limit can never be overshot, whatever the concurrency.
If calls settle above their reservation, the overshoot is at most the sum of the excesses of the
calls in flight when the last one was admitted (one call's excess when calls are sequential).

Three backends, one protocol (:class:`Counters`): :class:`LocalCounters` (one process),
:class:`SQLiteCounters` (every process on the machine, in the journal file) and
:class:`RedisCounters` (many machines). Amounts are integers (nano-dollars or tokens).

Rolling windows. A ``rolling:N`` window is kept as time sub-buckets of ``g = ceil(N / 60)``
minutes (one minute for N <= 60, so at most ~60 sub-buckets), aligned to the epoch. A check sums
the current sub-bucket and the ``m = ceil(N / g)`` before it. That covers at least the last N
minutes and less than ``(m + 1) * g`` (= N + g when g divides N), so the error is one-sided: any
true N-minute interval is always fully counted (the limit holds for every N-minute interval), and
a spend keeps counting for at most ``g`` minutes (``2g`` when g does not divide N) after it has left
the window, i.e. at most ~1.7 % (3.4 %) of the window longer. Reservations and their settled
amounts belong to the sub-bucket in which the call was admitted. Reserve stays atomic: the sum
and the increment happen under one lock / one SQLite write transaction / one Lua script.

Stale reservations. Every reservation is recorded with an expiry ``reservation_ttl`` seconds
ahead (default 15 minutes): an entry in a dict (local, monotonic clock), a row in
``budget_reservations`` (SQLite, wall clock) or a member of a per-key sorted set scored by expiry
(Redis, the server's clock). Expired entries are released (their amount is subtracted from
``reserved``) lazily: by every reserve/usage of the same key (SQLite, Redis), by a sweep at most
every ``min(1 s, ttl / 10)`` (local), and for all keys by :meth:`snapshot`. Settling removes the
entry, and only an entry that was still there is subtracted, so expiry and settle never release
twice; settling an expired reservation still records its actual spend. A call that outlives the
TTL loses its hold on the budget, so pick a TTL longer than the slowest call.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, Literal, Protocol, cast

from ..errors import ConfigError, JournalError
from ..journal.sqlite import enable_wal

__all__ = [
    "DEFAULT_RESERVATION_TTL",
    "Counters",
    "LocalCounters",
    "RedisCounters",
    "Reservation",
    "SQLiteCounters",
    "Window",
    "WindowKind",
    "open_counters",
    "parse_window",
]

WindowKind = Literal["call", "hour", "day", "month", "rolling", "lifetime"]

DEFAULT_RESERVATION_TTL: Final[float] = 15 * 60.0
# How long a bucket is kept (Redis TTL, local pruning) after it stops counting, so late settles land.
_RETENTION: Final[float] = 3600.0
_FIXED_KINDS: Final[tuple[str, ...]] = ("call", "hour", "day", "month", "lifetime")
_ROLLING = re.compile(r"rolling:\s*(\d+)\s*([mhd])")
_UNIT_MINUTES: Final[dict[str, int]] = {"m": 1, "h": 60, "d": 1440}
_ACCEPTED = "'call', 'hour', 'day', 'month', 'lifetime', 'rolling:<N>m', 'rolling:<N>h' or 'rolling:<N>d'"
_UTC = timezone.utc
_INF = math.inf


# -- windows ---------------------------------------------------------------------------------------
class _Span:
    """One bucket of a window: its time range, id, reset time, the ids a check sums, when it stops counting."""

    __slots__ = ("bucket", "end", "expire", "members", "reset", "start")

    def __init__(self, start: float, end: float, bucket: str, reset: datetime | None,
                 members: tuple[str, ...], expire: float | None) -> None:
        self.start = start
        self.end = end
        self.bucket = bucket
        self.reset = reset
        self.members = members
        self.expire = expire


@dataclass(frozen=True)
class Window:
    """How a budget's counter resets: per call, per UTC hour/day/month, rolling N minutes, or never."""

    kind: WindowKind
    minutes: int | None = None
    _memo: _Span | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind == "rolling":
            if not isinstance(self.minutes, int) or isinstance(self.minutes, bool) or self.minutes <= 0:
                raise ConfigError(f"a rolling window needs a positive whole number of minutes, got {self.minutes!r}")
        elif self.kind in _FIXED_KINDS:
            if self.minutes is not None:
                raise ConfigError(f"window {self.kind!r} takes no minutes (got {self.minutes!r})")
        else:
            raise ConfigError(f"window kind {self.kind!r} is not one of {_ACCEPTED}")

    def __str__(self) -> str:
        if self.kind != "rolling":
            return self.kind
        minutes = self.minutes or 0
        return f"rolling:{minutes // 60}h" if minutes % 60 == 0 else f"rolling:{minutes}m"

    def bucket(self, now: datetime) -> tuple[str, datetime | None]:
        """(bucket id, when it resets, UTC). Rolling: the current sub-bucket and its end. Naive ``now`` is UTC."""
        span = self._span(_timestamp(now))
        return span.bucket, span.reset

    def _span(self, ts: float) -> _Span:
        memo = self._memo
        if memo is not None and memo.start <= ts < memo.end:
            return memo
        span = self._compute(ts)
        object.__setattr__(self, "_memo", span)  # a cache, not state: excluded from eq/hash
        return span

    def _compute(self, ts: float) -> _Span:
        kind = self.kind
        if kind in ("call", "lifetime"):
            bucket = "all" if kind == "lifetime" else "call"
            return _Span(-_INF, _INF, bucket, None, (bucket,), None)
        if kind in ("hour", "day"):
            width = 3600 if kind == "hour" else 86400
            start = math.floor(ts / width) * width
            begin = datetime.fromtimestamp(start, _UTC)
            bucket = begin.strftime("%Y-%m-%dT%H" if kind == "hour" else "%Y-%m-%d")
            return _Span(start, start + width, bucket, begin + timedelta(seconds=width), (bucket,), start + width)
        if kind == "month":
            begin = datetime.fromtimestamp(ts, _UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            reset = begin.replace(year=begin.year + 1, month=1) if begin.month == 12 else begin.replace(
                month=begin.month + 1)
            bucket = begin.strftime("%Y-%m")
            return _Span(begin.timestamp(), reset.timestamp(), bucket, reset, (bucket,), reset.timestamp())
        # rolling: sub-buckets of g minutes; sum the current one and the m before it
        minutes = self.minutes or 1
        g = -(-minutes // 60)
        m = -(-minutes // g)
        width = g * 60
        index = math.floor(ts / width)
        label = str(self)

        def name(i: int) -> str:
            return f"{label}@{datetime.fromtimestamp(i * width, _UTC):%Y-%m-%dT%H:%M}"

        members = tuple(name(i) for i in range(index - m, index + 1))
        start = index * width
        end = start + width
        return _Span(start, end, members[-1], datetime.fromtimestamp(end, _UTC), members, end + m * width)


def parse_window(value: object) -> Window:
    """Parse "hour", "day", "month", "lifetime", "call", "rolling:30m", "rolling:2h" (also "rolling:1d")."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _FIXED_KINDS:
            return Window(cast(WindowKind, text))
        match = _ROLLING.fullmatch(text)
        if match and int(match.group(1)) > 0:
            return Window("rolling", int(match.group(1)) * _UNIT_MINUTES[match.group(2)])
    raise ConfigError(f"window {value!r} is not one of {_ACCEPTED}")


def _timestamp(now: datetime | None) -> float:
    if now is None:
        return time.time()
    if now.tzinfo is None:
        now = now.replace(tzinfo=_UTC)
    return now.timestamp()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, _UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _seconds(ttl: float | timedelta) -> float:
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if not seconds > 0:
        raise ConfigError(f"reservation_ttl must be a positive duration, got {ttl!r}")
    return seconds


def _check(amount: int, what: str) -> None:
    if amount < 0:
        raise ValueError(f"{what} must be >= 0, got {amount}")


# -- the protocol ----------------------------------------------------------------------------------
_LIVE, _SETTLING, _SETTLED = 0, 1, 2


@dataclass(slots=True, eq=False)
class Reservation:
    """An admitted hold on a budget: settle it exactly once (later settles are ignored).

    ``expires_at`` is in the backend's clock (monotonic seconds locally, epoch seconds for SQLite
    and Redis); the other private fields are the backend's handle on the stored reservation.
    """

    key: str
    bucket: str
    amount: int
    expires_at: float = _INF
    _token: Any = field(default=None, repr=False)
    _ref: Any = field(default=None, repr=False)
    _state: int = field(default=_LIVE, repr=False)


class Counters(Protocol):
    """What the enforcer needs from a counter store."""

    def reserve(self, key: str, window: Window, amount: int, limit: int, *,
                now: datetime | None = None) -> tuple[Reservation | None, int]:
        """Atomically: if spent+reserved+amount <= limit, add amount to reserved and return (reservation, new
        total); else return (None, current total spent+reserved). Never partially applies."""
        ...

    def settle(self, reservation: Reservation, actual: int) -> None:
        """Release the reservation and add ``actual`` to spent. Idempotent per reservation."""
        ...

    def add(self, key: str, window: Window, amount: int, *, now: datetime | None = None) -> None:
        """Record spend without a reservation (warn-only budgets, shadow mode)."""
        ...

    def usage(self, key: str, window: Window, *, now: datetime | None = None) -> tuple[int, int]:
        """(spent, reserved) in the current bucket (summed over the window for rolling windows)."""
        ...

    def snapshot(self) -> list[dict[str, Any]]:
        """Every (key, bucket) row: key, bucket, spent, reserved, updated_at (ISO UTC)."""
        ...


def _call_reserve(key: str, amount: int, limit: int) -> tuple[Reservation | None, int]:
    # A per-call window has nothing to store: the call alone must fit.
    if amount > limit:
        return None, 0
    return Reservation(key, "call", amount), amount


# -- in-process ------------------------------------------------------------------------------------
class _Row:
    __slots__ = ("expire", "reserved", "spent", "updated")

    def __init__(self, expire: float | None) -> None:
        self.spent = 0
        self.reserved = 0
        self.updated = 0.0
        self.expire = expire


class LocalCounters:
    """Counters in this process only: one lock, dicts, no I/O. Lost when the process exits."""

    def __init__(self, *, reservation_ttl: float | timedelta = DEFAULT_RESERVATION_TTL) -> None:
        self.reservation_ttl = _seconds(reservation_ttl)
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], _Row] = {}
        self._live: dict[int, Reservation] = {}
        self._ids = itertools.count(1)
        self._sweep_every = min(1.0, self.reservation_ttl / 10)
        self._next_sweep = 0.0
        self._next_prune = time.monotonic() + 60.0

    def reserve(self, key: str, window: Window, amount: int, limit: int, *,
                now: datetime | None = None) -> tuple[Reservation | None, int]:
        """See :meth:`Counters.reserve`."""
        _check(amount, "amount")
        if window.kind == "call":
            return _call_reserve(key, amount, limit)
        wall = time.time()
        ts = wall if now is None else _timestamp(now)
        span = window._span(ts)
        mono = time.monotonic()
        rows = self._rows
        with self._lock:
            if mono >= self._next_sweep:
                self._sweep(mono, ts)
            row = rows.get((key, span.bucket))
            if len(span.members) == 1:
                total = 0 if row is None else row.spent + row.reserved
            else:
                total = 0
                for member in span.members:
                    r = rows.get((key, member))
                    if r is not None:
                        total += r.spent + r.reserved
            if total + amount > limit:
                return None, total
            if row is None:
                row = rows[(key, span.bucket)] = _Row(span.expire)
            row.reserved += amount
            row.updated = wall
            token = next(self._ids)
            reservation = Reservation(key, span.bucket, amount, mono + self.reservation_ttl, token, row)
            self._live[token] = reservation
            return reservation, total + amount

    def settle(self, reservation: Reservation, actual: int) -> None:
        """See :meth:`Counters.settle`."""
        _check(actual, "actual")
        with self._lock:
            if reservation._state != _LIVE:
                return
            reservation._state = _SETTLED
            row: _Row | None = reservation._ref
            if row is None:  # a per-call window
                return
            if self._live.pop(reservation._token, None) is not None:
                row.reserved -= reservation.amount
            row.spent += actual
            row.updated = time.time()

    def add(self, key: str, window: Window, amount: int, *, now: datetime | None = None) -> None:
        """See :meth:`Counters.add`."""
        _check(amount, "amount")
        if window.kind == "call":
            return
        wall = time.time()
        span = window._span(wall if now is None else _timestamp(now))
        with self._lock:
            row = self._rows.get((key, span.bucket))
            if row is None:
                row = self._rows[(key, span.bucket)] = _Row(span.expire)
            row.spent += amount
            row.updated = wall

    def usage(self, key: str, window: Window, *, now: datetime | None = None) -> tuple[int, int]:
        """See :meth:`Counters.usage`."""
        if window.kind == "call":
            return 0, 0
        ts = _timestamp(now)
        span = window._span(ts)
        mono = time.monotonic()
        spent = reserved = 0
        with self._lock:
            if mono >= self._next_sweep:
                self._sweep(mono, ts)
            for member in span.members:
                row = self._rows.get((key, member))
                if row is not None:
                    spent += row.spent
                    reserved += row.reserved
        return spent, reserved

    def snapshot(self) -> list[dict[str, Any]]:
        """See :meth:`Counters.snapshot`."""
        with self._lock:
            self._sweep(time.monotonic(), -_INF)
            return [{"key": key, "bucket": bucket, "spent": row.spent, "reserved": row.reserved,
                     "updated_at": _iso(row.updated)} for (key, bucket), row in sorted(self._rows.items())]

    def release_expired(self) -> int:
        """Release every expired reservation now; returns how many."""
        with self._lock:
            return self._sweep(time.monotonic(), -_INF)

    def close(self) -> None:
        """Nothing to close; here so every backend can be closed the same way."""

    def _sweep(self, mono: float, ts: float) -> int:
        # Caller holds the lock. Live reservations are few (bounded by concurrency), so a scan is cheap.
        self._next_sweep = mono + self._sweep_every
        expired = [token for token, r in self._live.items() if r.expires_at <= mono]
        for token in expired:
            reservation = self._live.pop(token)
            reservation._ref.reserved -= reservation.amount
        if mono >= self._next_prune and ts > -_INF:
            # Drop buckets that stopped counting more than _RETENTION ago (in the caller's time).
            self._next_prune = mono + 60.0
            old = [k for k, row in self._rows.items()
                   if row.expire is not None and row.expire + _RETENTION < ts and row.reserved == 0]
            for k in old:
                del self._rows[k]
        return len(expired)


# -- SQLite (the journal file) ---------------------------------------------------------------------
_BUSY_TIMEOUT_MS = 60_000
_SQLITE_DDL: Final[tuple[str, ...]] = (
    "CREATE TABLE IF NOT EXISTS budget_counters (key TEXT NOT NULL, bucket TEXT NOT NULL, "
    "spent INTEGER NOT NULL DEFAULT 0, reserved INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL, "
    "PRIMARY KEY (key, bucket)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS budget_reservations (id TEXT PRIMARY KEY, key TEXT NOT NULL, "
    "bucket TEXT NOT NULL, amount INTEGER NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS budget_reservations_expiry ON budget_reservations (key, expires_at)",
)
_ADD_RESERVED = ("INSERT INTO budget_counters (key, bucket, spent, reserved, updated_at) VALUES (?, ?, 0, ?, ?) "
                 "ON CONFLICT (key, bucket) DO UPDATE SET reserved = reserved + excluded.reserved, "
                 "updated_at = excluded.updated_at")
_ADD_SPENT = ("INSERT INTO budget_counters (key, bucket, spent, reserved, updated_at) VALUES (?, ?, ?, 0, ?) "
              "ON CONFLICT (key, bucket) DO UPDATE SET spent = spent + excluded.spent, "
              "reserved = reserved - ?, updated_at = excluded.updated_at")


class SQLiteCounters:
    """Counters in the journal's SQLite file: shared by every process on the machine, kept across restarts.

    Each operation is one ``BEGIN IMMEDIATE`` transaction (writers queue on the busy timeout), so
    a check and its increment can never interleave with another process's.
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 reservation_ttl: float | timedelta = DEFAULT_RESERVATION_TTL) -> None:
        self.path = Path(path)
        self.reservation_ttl = _seconds(reservation_ttl)
        self._local = threading.local()
        self._handles = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._write() as conn:
                for statement in _SQLITE_DDL:
                    conn.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open budget counters in {self.path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():  # a fork must not reuse the parent's connection
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            local.conn, local.pid = conn, os.getpid()
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def reserve(self, key: str, window: Window, amount: int, limit: int, *,
                now: datetime | None = None) -> tuple[Reservation | None, int]:
        """See :meth:`Counters.reserve`."""
        _check(amount, "amount")
        if window.kind == "call":
            return _call_reserve(key, amount, limit)
        wall = time.time()
        span = window._span(wall if now is None else _timestamp(now))
        token = os.urandom(12).hex()
        expires = wall + self.reservation_ttl
        with self._write() as conn:
            _release_key(conn, key, wall)
            total = _total(conn, key, span)
            if total + amount > limit:
                return None, total
            conn.execute(_ADD_RESERVED, (key, span.bucket, amount, _iso(wall)))
            conn.execute("INSERT INTO budget_reservations (id, key, bucket, amount, expires_at) VALUES (?, ?, ?, ?, ?)",
                         (token, key, span.bucket, amount, expires))
            if len(span.members) > 1:
                _prune_rolling(conn, key, window, span)
        return Reservation(key, span.bucket, amount, expires, token), total + amount

    def settle(self, reservation: Reservation, actual: int) -> None:
        """See :meth:`Counters.settle`."""
        _check(actual, "actual")
        with self._handles:
            if reservation._state != _LIVE:
                return
            reservation._state = _SETTLING
        try:
            if reservation._token is not None:
                with self._write() as conn:
                    live = conn.execute("DELETE FROM budget_reservations WHERE id = ?",
                                        (reservation._token,)).rowcount == 1
                    conn.execute(_ADD_SPENT, (reservation.key, reservation.bucket, actual, _iso(time.time()),
                                              reservation.amount if live else 0))
        except BaseException:
            reservation._state = _LIVE
            raise
        reservation._state = _SETTLED

    def add(self, key: str, window: Window, amount: int, *, now: datetime | None = None) -> None:
        """See :meth:`Counters.add`."""
        _check(amount, "amount")
        if window.kind == "call":
            return
        wall = time.time()
        span = window._span(wall if now is None else _timestamp(now))
        with self._write() as conn:
            conn.execute(_ADD_SPENT, (key, span.bucket, amount, _iso(wall), 0))
            if len(span.members) > 1:
                _prune_rolling(conn, key, window, span)

    def usage(self, key: str, window: Window, *, now: datetime | None = None) -> tuple[int, int]:
        """See :meth:`Counters.usage` (releases the key's expired reservations first)."""
        if window.kind == "call":
            return 0, 0
        span = window._span(_timestamp(now))
        with self._write() as conn:
            _release_key(conn, key, time.time())
            if len(span.members) == 1:
                row = conn.execute("SELECT spent, reserved FROM budget_counters WHERE key = ? AND bucket = ?",
                                   (key, span.bucket)).fetchone()
            else:
                row = conn.execute("SELECT COALESCE(SUM(spent), 0), COALESCE(SUM(reserved), 0) FROM budget_counters "
                                   "WHERE key = ? AND bucket BETWEEN ? AND ?",
                                   (key, span.members[0], span.members[-1])).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def snapshot(self) -> list[dict[str, Any]]:
        """See :meth:`Counters.snapshot` (releases every expired reservation first)."""
        self.release_expired()
        conn = self._connection()
        rows = conn.execute("SELECT key, bucket, spent, reserved, updated_at FROM budget_counters ORDER BY key, bucket")
        return [{"key": k, "bucket": b, "spent": int(s), "reserved": int(r), "updated_at": u} for k, b, s, r, u in rows]

    def release_expired(self) -> int:
        """Release every expired reservation of every key; returns how many."""
        wall = time.time()
        with self._write() as conn:
            groups = conn.execute("SELECT key, bucket, SUM(amount), COUNT(*) FROM budget_reservations "
                                  "WHERE expires_at <= ? GROUP BY key, bucket", (wall,)).fetchall()
            for key, bucket, amount, _ in groups:
                conn.execute("UPDATE budget_counters SET reserved = reserved - ? WHERE key = ? AND bucket = ?",
                             (amount, key, bucket))
            conn.execute("DELETE FROM budget_reservations WHERE expires_at <= ?", (wall,))
        return sum(int(count) for *_, count in groups)

    def close(self) -> None:
        """Close this thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _release_key(conn: sqlite3.Connection, key: str, wall: float) -> None:
    expired = conn.execute("SELECT bucket, SUM(amount) FROM budget_reservations WHERE key = ? AND expires_at <= ? "
                           "GROUP BY bucket", (key, wall)).fetchall()
    if expired:
        conn.executemany("UPDATE budget_counters SET reserved = reserved - ? WHERE key = ? AND bucket = ?",
                         [(amount, key, bucket) for bucket, amount in expired])
        conn.execute("DELETE FROM budget_reservations WHERE key = ? AND expires_at <= ?", (key, wall))


def _total(conn: sqlite3.Connection, key: str, span: _Span) -> int:
    if len(span.members) == 1:
        row = conn.execute("SELECT spent + reserved FROM budget_counters WHERE key = ? AND bucket = ?",
                           (key, span.bucket)).fetchone()
        return 0 if row is None else int(row[0])
    # Sub-bucket ids share the "rolling:<N>@" prefix and sort by time, so a range is exactly the window.
    row = conn.execute("SELECT COALESCE(SUM(spent + reserved), 0) FROM budget_counters "
                       "WHERE key = ? AND bucket BETWEEN ? AND ?", (key, span.members[0], span.members[-1])).fetchone()
    return int(row[0])


def _prune_rolling(conn: sqlite3.Connection, key: str, window: Window, span: _Span) -> None:
    # Sub-buckets older than the window no longer count; keep rows that still hold a live reservation.
    conn.execute("DELETE FROM budget_counters WHERE key = ? AND bucket >= ? AND bucket < ? AND reserved = 0",
                 (key, f"{window}@", span.members[0]))


# -- Redis -----------------------------------------------------------------------------------------
# Keys: "<prefix>{<scope>}:b:<bucket>" is a hash (key, bucket, spent, reserved, updated_at ms) with
# a TTL of "bucket stops counting + _RETENTION"; "<prefix>{<scope>}:r" is a sorted set of live
# reservations scored by expiry (server ms), member "<id>|<amount>|<bucket hash key>". The braces
# keep one scope's keys in one cluster slot. Amounts travel as strings (HINCRBY is exact int64);
# sums and comparisons in Lua are doubles, exact below 2**53 (~$9M in nano-dollars).
_LUA_COMMON = r"""
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function release(zk)
  local expired = redis.call('ZRANGEBYSCORE', zk, '-inf', now)
  for _, m in ipairs(expired) do
    local amt, bk = string.match(m, '^[^|]*|(%d+)|(.*)$')
    if bk and amt ~= '0' and redis.call('EXISTS', bk) == 1 then
      redis.call('HINCRBY', bk, 'reserved', '-' .. amt)
    end
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', zk, '-inf', now) end
  return #expired
end
local function touch(bk, key, bucket, ttl)
  if redis.call('HSETNX', bk, 'key', key) == 1 then
    redis.call('HSET', bk, 'bucket', bucket, 'spent', 0, 'reserved', 0)
    if tonumber(ttl) >= 0 then redis.call('PEXPIRE', bk, ttl) end
  end
  redis.call('HSET', bk, 'updated_at', now)
end
"""
# KEYS: reservations zset, the bucket to reserve in, then the other buckets summed (rolling).
# ARGV: amount, limit, reservation ttl ms, bucket ttl ms (-1: none), member, key, bucket
_LUA_RESERVE = _LUA_COMMON + r"""
release(KEYS[1])
local total = 0
for i = 2, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
  total = total + (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
end
local amount = tonumber(ARGV[1])
if total + amount > tonumber(ARGV[2]) then return {0, total, 0} end
touch(KEYS[2], ARGV[6], ARGV[7], ARGV[4])
redis.call('HINCRBY', KEYS[2], 'reserved', ARGV[1])
local zttl = redis.call('PTTL', KEYS[1])
local expires = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], expires, ARGV[5])
local bttl = tonumber(ARGV[4])
if bttl < 0 then
  redis.call('PERSIST', KEYS[1])
elseif zttl ~= -1 and zttl < bttl then
  redis.call('PEXPIRE', KEYS[1], bttl)
end
return {1, total + amount, expires}
"""
# KEYS: reservations zset, bucket. ARGV: member, amount, actual.
_LUA_SETTLE = _LUA_COMMON + r"""
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then return removed end
if removed == 1 and ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[2], 'reserved', '-' .. ARGV[2]) end
redis.call('HINCRBY', KEYS[2], 'spent', ARGV[3])
redis.call('HSET', KEYS[2], 'updated_at', now)
return removed
"""
# KEYS: bucket. ARGV: amount, bucket ttl ms, key, bucket.
_LUA_ADD = _LUA_COMMON + r"""
touch(KEYS[1], ARGV[3], ARGV[4], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'spent', ARGV[1])
return 1
"""
# KEYS: reservations zset, then buckets summed. Returns {spent, reserved, released}.
_LUA_USAGE = _LUA_COMMON + r"""
local released = release(KEYS[1])
local spent, reserved = 0, 0
for i = 2, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
  spent = spent + (tonumber(v[1]) or 0)
  reserved = reserved + (tonumber(v[2]) or 0)
end
return {spent, reserved, released}
"""


class RedisCounters:
    """Counters in Redis, for budgets shared by many machines. Every operation is one Lua script (EVALSHA)."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", prefix: str = "tokenid:", *,
                 reservation_ttl: float | timedelta = DEFAULT_RESERVATION_TTL) -> None:
        try:
            import redis
        except ImportError as exc:
            raise ConfigError("redis counters need the 'redis' package: pip install 'tokenid[redis]'") from exc
        self.url = url
        self.prefix = prefix
        self.reservation_ttl = _seconds(reservation_ttl)
        self._ttl_ms = max(1, round(self.reservation_ttl * 1000))
        self._handles = threading.Lock()
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self._reserve = self.client.register_script(_LUA_RESERVE)
        self._settle = self.client.register_script(_LUA_SETTLE)
        self._add = self.client.register_script(_LUA_ADD)
        self._usage = self.client.register_script(_LUA_USAGE)

    def _keys(self, key: str) -> tuple[str, str]:
        """(bucket-key prefix, reservations key) for a scope key."""
        tag = key
        if "{" in key or "}" in key:  # braces would break the cluster hash tag
            tag = "#" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
        base = f"{self.prefix}{{{tag}}}"
        return base + ":b:", base + ":r"

    @staticmethod
    def _bucket_ttl_ms(span: _Span, ts: float) -> int:
        if span.expire is None:
            return -1
        return max(1, round((span.expire + _RETENTION - ts) * 1000))

    def reserve(self, key: str, window: Window, amount: int, limit: int, *,
                now: datetime | None = None) -> tuple[Reservation | None, int]:
        """See :meth:`Counters.reserve`."""
        _check(amount, "amount")
        if window.kind == "call":
            return _call_reserve(key, amount, limit)
        ts = _timestamp(now)
        span = window._span(ts)
        bucket_prefix, zkey = self._keys(key)
        bkey = bucket_prefix + span.bucket
        keys = [zkey, bkey] + [bucket_prefix + m for m in span.members[:-1]]
        member = f"{os.urandom(12).hex()}|{amount}|{bkey}"
        ok, total, expires = self._reserve(keys=keys, args=[amount, limit, self._ttl_ms, self._bucket_ttl_ms(span, ts),
                                                            member, key, span.bucket])
        if not ok:
            return None, int(total)
        return Reservation(key, span.bucket, amount, int(expires) / 1000, member, (zkey, bkey)), int(total)

    def settle(self, reservation: Reservation, actual: int) -> None:
        """See :meth:`Counters.settle`."""
        _check(actual, "actual")
        with self._handles:
            if reservation._state != _LIVE:
                return
            reservation._state = _SETTLING
        try:
            if reservation._token is not None:
                zkey, bkey = reservation._ref
                self._settle(keys=[zkey, bkey], args=[reservation._token, reservation.amount, actual])
        except BaseException:
            reservation._state = _LIVE
            raise
        reservation._state = _SETTLED

    def add(self, key: str, window: Window, amount: int, *, now: datetime | None = None) -> None:
        """See :meth:`Counters.add`."""
        _check(amount, "amount")
        if window.kind == "call":
            return
        ts = _timestamp(now)
        span = window._span(ts)
        bucket_prefix, _ = self._keys(key)
        self._add(keys=[bucket_prefix + span.bucket], args=[amount, self._bucket_ttl_ms(span, ts), key, span.bucket])

    def usage(self, key: str, window: Window, *, now: datetime | None = None) -> tuple[int, int]:
        """See :meth:`Counters.usage` (releases the key's expired reservations first)."""
        if window.kind == "call":
            return 0, 0
        span = window._span(_timestamp(now))
        bucket_prefix, zkey = self._keys(key)
        spent, reserved, _ = self._usage(keys=[zkey] + [bucket_prefix + m for m in span.members])
        return int(spent), int(reserved)

    def snapshot(self) -> list[dict[str, Any]]:
        """See :meth:`Counters.snapshot` (releases every expired reservation under this prefix first)."""
        self.release_expired()
        names = sorted(self.client.scan_iter(match=_glob_escape(self.prefix) + "{*}:b:*", count=1000))
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(name)
        rows = []
        for data in pipe.execute():
            if data and "key" in data:
                rows.append({"key": data["key"], "bucket": data["bucket"], "spent": int(data.get("spent", 0)),
                             "reserved": int(data.get("reserved", 0)),
                             "updated_at": _iso(int(data.get("updated_at", 0)) / 1000)})
        rows.sort(key=lambda r: (r["key"], r["bucket"]))
        return rows

    def release_expired(self) -> int:
        """Release expired reservations of every key under this prefix; returns how many."""
        released = 0
        for zkey in self.client.scan_iter(match=_glob_escape(self.prefix) + "{*}:r", count=1000):
            released += int(self._usage(keys=[zkey])[2])
        return released

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


# -- choosing a backend ----------------------------------------------------------------------------
def open_counters(spec: str | None, journal_path: Path | None, *,
                  reservation_ttl: float | timedelta = DEFAULT_RESERVATION_TTL) -> Counters:
    """None/"local" -> :class:`LocalCounters`, "sqlite" -> the journal file, "redis://..." -> :class:`RedisCounters`."""
    if spec is None or spec == "local":
        return LocalCounters(reservation_ttl=reservation_ttl)
    if spec == "sqlite":
        if journal_path is None:
            raise ConfigError("counters 'sqlite' keeps budgets in the journal file, but no journal path was given")
        return SQLiteCounters(journal_path, reservation_ttl=reservation_ttl)
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisCounters(spec, reservation_ttl=reservation_ttl)
    raise ConfigError(f"counters {spec!r} is not 'local', 'sqlite' or a redis:// URL")
