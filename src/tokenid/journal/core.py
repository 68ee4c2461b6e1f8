"""The journal: an in-memory queue the caller appends to, and a writer thread that stores batches.

``record()`` is the only thing an LLM call does here: an append to a deque. Turning a finished
call into a row (usage parsing, tokenizing, pricing) happens on the writer thread. When the store
cannot take a batch, the rows go to a spool file beside it and are loaded on the next open, so
nothing is lost silently.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError, JournalError
from .paths import default_journal_target, local_state_path
from .schema import COLUMNS
from .sqlite import SQLiteStore

__all__ = ["Journal", "Pending", "get_journal"]

log = logging.getLogger("tokenid.journal")

_YIELD_EVERY = 0.001  # seconds the writer may hold the GIL in a row before it lets a caller run


class Store(Protocol):
    """Where a journal's rows live: :class:`~tokenid.journal.sqlite.SQLiteStore` or ``PostgresStore``."""

    dialect: str
    location: str
    errors: tuple[type[BaseException], ...]
    transient_errors: tuple[type[BaseException], ...]
    row_errors: tuple[type[BaseException], ...]

    def insert(self, rows: Sequence[tuple[Any, ...]]) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any]: ...

    def iter_events(self, where: str = "", params: Sequence[Any] = (),
                    order: str = "started_at, id") -> Iterator[dict[str, Any]]: ...

    def transaction(self) -> contextlib.AbstractContextManager[Any]: ...

    def json_text(self, column: str) -> str: ...

    def close(self) -> None: ...

    def after_fork(self) -> None: ...


class Pending(Protocol):
    """Something the writer thread can turn into a journal row."""

    def to_row(self) -> tuple[Any, ...] | list[tuple[Any, ...]]: ...

    def fallback_row(self, error: BaseException) -> tuple[Any, ...]: ...


class Journal:
    """A journal file plus its background writer. Share one per file per process (:func:`get_journal`)."""

    def __init__(self, target: str | os.PathLike[str] | None = None, *, batch_size: int = 5000,
                 flush_interval: float = 0.2) -> None:
        kind, where = resolve_target(target)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.store: Store
        if kind == "postgresql":
            from .postgres import PostgresStore

            self.store = PostgresStore(str(where))
            #: local state of a shared journal (spool, budget counters): per user, per database
            self.path = local_state_path(self.store.location)
        else:
            self.path = Path(where)
            self.store = SQLiteStore(self.path)
        #: where the events are: a file path, or the database URL without its password
        self.location = self.store.location
        self.spool_dir = self.path.with_name(self.path.name + ".spool")
        self._reset_runtime()
        self._load_spool()
        _LIVE.add(self)

    def _reset_runtime(self) -> None:
        self._queue: deque[Pending] = deque()
        self._submitted = itertools.count(1)
        self._last_submitted = 0
        self._processed = 0
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._start_lock = threading.Lock()
        # held while a batch is taken from the queue and stored: by the writer, or by a thread flushing inline
        self._batch_lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: rows stored; rows kept in a spool file; calls whose metering failed (stored without usage); calls that
        #: could not be turned into any row (logged as critical)
        self.stats = {"written": 0, "spooled": 0, "row_errors": 0, "lost": 0}

    # -- the caller's side -------------------------------------------------------------------
    def record(self, item: Pending) -> None:
        """Queue a finished call. Never blocks on disk and never raises."""
        self._queue.append(item)
        self._last_submitted = next(self._submitted)
        if self._thread is None:  # the writer runs until close (after a fork, the child starts its own)
            self._start()
        elif len(self._queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write everything queued so far; True when it all reached the store (or the spool).

        With a SQLite journal the calling thread does the writing itself once the writer is between batches: it
        is waiting anyway, and handing the work to the writer thread and back only adds thread switches (a
        short-lived process that flushes after each request gets its answer sooner). ``timeout`` then bounds the
        wait for the writer's batch; a file another process keeps locked can hold the insert itself up to SQLite's
        busy timeout, as it would hold the writer. A server journal leaves the writing to the writer, so that
        flushing threads do not each open a database connection.
        """
        target = self._last_submitted
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._drain()  # no writer (interpreter exit, after fork): write inline
            return self._processed >= target
        deadline = None if timeout is None else time.monotonic() + timeout
        if getattr(self.store, "dialect", "sqlite") == "sqlite" and self._batch_lock.acquire(
                timeout=-1 if timeout is None else max(timeout, 0)):
            try:
                self._drain(target - self._processed)  # the queue's head is the first call not yet processed
            except Exception as exc:  # as on the writer: a bug here is logged, never raised into the caller
                log.error("tokenid: journal flush error (%s: %s)", type(exc).__name__, exc)
            finally:
                self._batch_lock.release()
            if self._processed >= target:
                return True
        with self._done:
            while self._processed < target:
                self._wake.set()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._done.wait(0.05 if remaining is None else min(0.05, remaining))
        return True

    def close(self) -> None:
        """Flush and stop the writer. The journal can still be read afterwards."""
        self.flush()
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self._drain()
        if getattr(self.store, "dialect", "sqlite") != "sqlite":
            self.store.close()  # a server connection per thread that wrote or read

    # -- the writer's side -------------------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name=f"tokenid-journal:{self.path.name}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        _lower_priority()
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                # only what is queued now: calls recorded while this runs wait for the next wake-up, so a steady
                # stream of calls makes a batch per interval instead of a string of tiny ones (each batch has a
                # fixed cost: a transaction and the rollup statements)
                with self._batch_lock:
                    self._drain(len(self._queue))
            except Exception as exc:  # the writer must outlive any bug: what it holds stays queued
                log.error("tokenid: journal writer error (%s: %s)", type(exc).__name__, exc)

    def _drain(self, count: int | None = None) -> None:
        """Write ``count`` queued items (when None: until the queue is empty), ``batch_size`` to a transaction."""
        left = sys.maxsize if count is None else count
        while left > 0 and self._queue:
            batch: list[Pending] = []
            try:
                while len(batch) < min(self.batch_size, left):
                    batch.append(self._queue.popleft())
            except IndexError:
                pass
            left -= len(batch)
            rows: list[tuple[Any, ...]] = []
            clock = time.perf_counter
            pause_at = clock() + _YIELD_EVERY
            for item in batch:
                try:
                    row = item.to_row()
                except Exception as exc:  # a bug in metering must not lose the call: keep what is known
                    try:
                        row = self._fallback_row(item, exc)
                    except Exception as second:  # nothing left to store: say so loudly, and count it
                        self.stats["lost"] += 1
                        log.critical("tokenid: a call could not be journaled at all (metering failed: %s: %s; "
                                     "then %s: %s)", type(exc).__name__, exc, type(second).__name__, second)
                        continue
                if isinstance(row, list):  # one response that bills many things (a batch output file)
                    rows.extend(row)
                else:
                    rows.append(row)
                if clock() > pause_at:
                    # Hand the GIL over now and then: a caller whose response just arrived would otherwise
                    # wait up to the interpreter's 5 ms switch interval behind this loop.
                    time.sleep(0)
                    pause_at = clock() + _YIELD_EVERY
            self._write(rows)
            with self._done:
                self._processed += len(batch)
                self._done.notify_all()

    def _fallback_row(self, item: Pending, exc: Exception) -> tuple[Any, ...]:
        self.stats["row_errors"] += 1
        log.warning("tokenid: could not meter a call (%s: %s); journaled without usage", type(exc).__name__, exc)
        return item.fallback_row(exc)

    def _write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        for attempt in range(5):
            try:
                self.store.insert(rows)
                self.stats["written"] += len(rows)
                return
            except Exception as exc:
                error: Exception = exc
                if not isinstance(exc, getattr(self.store, "transient_errors", ())):
                    break
                time.sleep(0.05 * 2**attempt)
        else:  # the store stayed busy or unreachable: keep the whole batch for later
            self._spool(rows, error)
            return
        if len(rows) > 1 and isinstance(error, getattr(self.store, "row_errors", ())):
            # a row the store refuses (a constraint, a bad value) must not take the rest of its batch with it
            half = len(rows) // 2
            self._write(rows[:half])
            self._write(rows[half:])
            return
        self._spool(rows, error)

    def _spool(self, rows: Sequence[tuple[Any, ...]], error: BaseException) -> None:
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            name = self.spool_dir / f"{os.getpid()}-{time.time_ns()}.jsonl"
            with open(name, "w", encoding="utf-8") as fh:
                for row in rows:  # keyed by column, so a later schema can still read it
                    fh.write(json.dumps(dict(zip(COLUMNS, row, strict=True)), default=str) + "\n")
            self.stats["spooled"] += len(rows)
            log.error("tokenid: journal store failed (%s); %d events spooled to %s", error, len(rows), name)
        except OSError as exc:
            log.critical("tokenid: journal store failed (%s) and spooling failed (%s): %d events lost",
                         error, exc, len(rows))

    def _load_spool(self) -> None:
        if not self.spool_dir.is_dir():
            return
        for file in sorted(self.spool_dir.glob("*.jsonl")):
            claimed = file.with_suffix(f".loading-{os.getpid()}")
            try:
                file.rename(claimed)  # atomic: only one process loads a spool file
            except OSError:
                continue
            try:
                with open(claimed, encoding="utf-8") as fh:
                    rows = [_spooled_row(json.loads(line)) for line in fh if line.strip()]
                self.store.insert(rows)
                claimed.unlink()
            except (OSError, ValueError, TypeError, *getattr(self.store, "errors", ())) as exc:
                log.error("tokenid: could not load spooled events from %s (kept for a later try): %s", file, exc)
                with contextlib.suppress(OSError):
                    claimed.rename(file)

    # -- reading -----------------------------------------------------------------------------
    def events(self, *, session_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored event (optionally one session's), oldest first. Call :meth:`flush` first."""
        if session_id is None:
            return list(self.store.iter_events())
        return list(self.store.iter_events("session_id = ?", (session_id,)))

    def iter_events(self, where: str = "", params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        return self.store.iter_events(where, params)

    def __repr__(self) -> str:
        return f"Journal({self.location!r})"


def _spooled_row(value: object) -> tuple[Any, ...]:
    """A spooled row back in ``COLUMNS`` order: a column-keyed object, or a list from before schema v2."""
    if isinstance(value, dict):
        unknown = set(value) - set(COLUMNS)
        if unknown:
            raise ValueError(f"spooled event has columns this TokenID does not know: {sorted(unknown)}")
        return tuple(value.get(name) for name in COLUMNS)
    if isinstance(value, list) and len(value) <= len(COLUMNS):
        return (*value, *([None] * (len(COLUMNS) - len(value))))  # columns added since are empty
    raise ValueError(f"not a spooled event: {str(value)[:80]}")


def _lower_priority() -> None:
    """Run the writer at a lower OS priority than the callers' threads (Linux: per-thread nice)."""
    # not Linux, or not permitted: the same priority as the callers is still correct
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def resolve_target(target: str | os.PathLike[str] | None) -> tuple[str, Path | str]:
    """("sqlite", absolute path) or ("postgresql", URL) for a journal target."""
    raw = os.fspath(target) if target is not None else default_journal_target()
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"journal must be a path, a sqlite:/// or postgresql:// URL, or a Journal, got {target!r}")
    if raw.startswith(("postgresql://", "postgres://")):
        return "postgresql", raw
    if raw.startswith("sqlite:///"):
        raw = raw[len("sqlite:///"):]
        raw = "/" + raw if raw and not raw.startswith("/") and raw[1:2] != ":" and os.name != "nt" else raw
    elif "://" in raw:
        raise ConfigError(f"journal: unsupported URL scheme in {raw!r}; accepted: a file path, sqlite:///PATH or "
                          "postgresql://USER@HOST/DATABASE")
    return "sqlite", Path(raw).expanduser().resolve()


def _key(target: str | os.PathLike[str] | None) -> str:
    return str(resolve_target(target)[1])


_JOURNALS: dict[str, Journal] = {}
_LIVE: weakref.WeakSet[Journal] = weakref.WeakSet()  # every open journal, flushed at interpreter exit
_REGISTRY_LOCK = threading.Lock()


def get_journal(target: Journal | str | os.PathLike[str] | None = None) -> Journal:
    """The process-wide Journal for a path (``None``: the default path); created on first use."""
    if isinstance(target, Journal):
        return target
    key = _key(target)
    with _REGISTRY_LOCK:
        journal = _JOURNALS.get(key)
        if journal is None:
            try:
                journal = _JOURNALS[key] = Journal(key)
            except (JournalError, ConfigError):
                raise
            except (OSError, sqlite3.Error) as exc:
                raise JournalError(f"cannot open the journal at {key}: {exc}") from exc
        return journal


@atexit.register
def _flush_all_at_exit() -> None:
    for journal in list(_LIVE):
        try:
            journal.close()
        except Exception as exc:  # at exit there is nobody left to raise to
            log.error("tokenid: flushing %s at exit failed: %s", journal.location, exc)


def _after_fork_in_child() -> None:
    # The parent's writer thread and SQLite connections do not exist in the child; the queued
    # items are the parent's to write, so the child starts empty.
    for journal in list(_LIVE):
        journal._reset_runtime()
        journal.store.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
