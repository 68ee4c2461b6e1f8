"""The exact-match response cache: a normalised request → the response bytes, for a TTL.

Three stores behind one small interface: an in-process LRU (``memory``), a SQLite file shared by the
processes of one machine (``sqlite``), and Redis shared by many (``redis://``). Only complete, successful,
non-streamed JSON responses are stored; a cache that fails is logged and bypassed, never raised.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from .config import CachePolicy

__all__ = ["CACHE_HEADER", "Cache", "CachedResponse", "MemoryCache", "RedisCache", "SQLiteCache", "cache_key",
           "open_cache", "request_key", "without_opt_in"]

log = logging.getLogger("tokenid")

CACHE_HEADER = "x-tokenid-cache"
"""Request header that opts a call in (``true``), out (``false``), or forces a fresh answer (``refresh``)."""

_KEPT_HEADERS = ("content-type", "x-ms-region", "x-ms-deployment-name", "openai-version")


class CachedResponse:
    """A stored answer: status, the few headers worth replaying, and the body bytes."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = dict(headers)
        self.body = body

    @classmethod
    def of(cls, status: int, headers: Mapping[str, str], body: bytes) -> CachedResponse:
        kept = {k: headers[k] for k in _KEPT_HEADERS if k in headers}
        return cls(status, kept, body)

    def dumps(self) -> bytes:
        head = json.dumps({"status": self.status, "headers": self.headers}, separators=(",", ":")).encode()
        return head + b"\n" + self.body

    @classmethod
    def loads(cls, blob: bytes) -> CachedResponse:
        head, _, body = blob.partition(b"\n")
        meta = json.loads(head)
        return cls(int(meta["status"]), meta["headers"], body)


class Cache(Protocol):
    """What every store offers; keys are hex digests from :func:`cache_key`."""

    def get(self, key: str) -> CachedResponse | None: ...

    def put(self, key: str, value: CachedResponse, ttl_s: float) -> None: ...

    def close(self) -> None: ...


# body keys that never change a non-streamed answer
_IGNORED_KEYS = frozenset({"stream", "stream_options"})


def _normal(body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The body as it matters for the answer: top-level nulls and stream settings dropped."""
    if body is None:
        return None
    return {k: v for k, v in body.items() if v is not None and k not in _IGNORED_KEYS}


def cache_key(namespace: str, method: str, path: str, body: Mapping[str, Any] | None) -> str:
    """A digest of the normalised request: method, path and the JSON body with sorted keys.

    ``namespace`` keeps different services apart (the routing targets, or the client's base URL). Top-level
    ``null`` parameters and ``stream`` / ``stream_options`` (only non-streamed calls are cached) do not count;
    the TokenID opt-in header is not part of the body, so it never changes the key either.
    """
    normal = json.dumps([namespace, method.upper(), path, _normal(body)], sort_keys=True, separators=(",", ":"),
                        ensure_ascii=False, default=str)
    return hashlib.sha256(normal.encode()).hexdigest()


class MemoryCache:
    """An in-process LRU with a TTL per entry; thread-safe."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, CachedResponse]] = OrderedDict()

    def get(self, key: str) -> CachedResponse | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= time.monotonic():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: str, value: CachedResponse, ttl_s: float) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        self._items.clear()


class SQLiteCache:
    """A SQLite file (WAL) shared by the processes of one machine; one connection per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS response_cache "
                         "(key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL NOT NULL)")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, key: str) -> CachedResponse | None:
        row = self._conn().execute("SELECT value, expires_at FROM response_cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if row[1] <= time.time():
            self._conn().execute("DELETE FROM response_cache WHERE key = ? AND expires_at <= ?", (key, time.time()))
            return None
        return CachedResponse.loads(bytes(row[0]))

    def put(self, key: str, value: CachedResponse, ttl_s: float) -> None:
        now = time.time()
        conn = self._conn()
        conn.execute("INSERT OR REPLACE INTO response_cache (key, value, expires_at) VALUES (?, ?, ?)",
                     (key, value.dumps(), now + ttl_s))
        if hash(key) % 64 == 0:  # now and then, drop what has expired
            conn.execute("DELETE FROM response_cache WHERE expires_at <= ?", (now,))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class RedisCache:
    """Redis (``redis://`` / ``rediss://`` URL), entries under ``tokenid:cache:`` with Redis's own expiry."""

    PREFIX = "tokenid:cache:"

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def get(self, key: str) -> CachedResponse | None:
        blob = self._redis.get(self.PREFIX + key)
        return None if blob is None else CachedResponse.loads(bytes(blob))  # type: ignore[arg-type]

    def put(self, key: str, value: CachedResponse, ttl_s: float) -> None:
        self._redis.set(self.PREFIX + key, value.dumps(), px=max(1, int(ttl_s * 1000)))

    def close(self) -> None:
        self._redis.close()


def open_cache(policy: CachePolicy, journal_path: Path | None) -> Cache:
    """The store a cache policy names; ``sqlite`` alone means a file beside the journal."""
    backend = policy.backend
    if backend == "memory":
        return MemoryCache(policy.max_entries)
    if backend.startswith(("redis://", "rediss://")):
        try:
            return RedisCache(backend)
        except ModuleNotFoundError as exc:
            from ..errors import ConfigError

            raise ConfigError("routing['cache']['backend']: a Redis cache needs the redis package: "
                              "pip install \"tokenid[redis]\"") from exc
    if backend == "sqlite":
        base = journal_path if journal_path is not None else Path("tokenid.db")
        return SQLiteCache(base.with_name(base.name + ".cache"))
    return SQLiteCache(Path(backend[len("sqlite:///"):]).expanduser())


_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"0", "false", "no", "off"})


def _flag(headers: object) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    for name, value in headers.items():
        if isinstance(name, str) and name.lower() == CACHE_HEADER and isinstance(value, str):
            value = value.strip().lower()
            if value in _ON:
                return "on"
            if value in _OFF:
                return "off"
            if value == "refresh":
                return "refresh"
    return None


def without_opt_in(headers: object, default_headers: object) -> dict[str, Any] | None:
    """A call's headers with the opt-in header taken out (also from the client's defaults), or None if absent.

    The header is TokenID's, not the service's: it is never sent.
    """
    own = dict(headers) if isinstance(headers, Mapping) else {}
    defaults = default_headers if isinstance(default_headers, Mapping) else {}
    names = [k for k in (*own, *defaults) if isinstance(k, str) and k.lower() == CACHE_HEADER]
    if not names:
        return None
    import openai

    kept: dict[str, Any] = {k: v for k, v in own.items() if not (isinstance(k, str) and k.lower() == CACHE_HEADER)}
    kept.update({name: openai.Omit() for name in names})
    return kept


def request_key(policy: CachePolicy | None, namespace: str, method: str, path: str, body: object, *, stream: bool,
                has_files: bool, headers: object, default_headers: object) -> tuple[str | None, bool]:
    """(cache key, look it up?) for one call; the key is None when the call is not to be cached.

    Cached: non-streamed POSTs with a JSON body, when the policy's mode is ``all`` or the call (or the
    client's default headers) carries ``x-tokenid-cache: true``; ``refresh`` skips the lookup but stores
    the fresh answer; ``false`` opts out.
    """
    if policy is None or stream or has_files or not isinstance(body, Mapping) or method.lower() != "post":
        return None, False
    flag = _flag(headers) or _flag(default_headers)
    if flag == "off" or (flag is None and policy.mode == "opt_in"):
        return None, False
    return cache_key(namespace, method, path, body), flag != "refresh"
