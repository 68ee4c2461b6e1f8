"""Budget counters against real things: a SQLite file, the Redis server on 127.0.0.1:6379, threads, processes."""

from __future__ import annotations

import multiprocessing
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tokenid import Journal
from tokenid.enforce.counters import (
    Counters,
    LocalCounters,
    RedisCounters,
    SQLiteCounters,
    Window,
    open_counters,
    parse_window,
)
from tokenid.errors import ConfigError

UTC = timezone.utc
REDIS_URL = "redis://127.0.0.1:6379/0"
DAY = Window("day")
Spec = tuple[str, ...]  # how a child process opens the same counters: ("sqlite", path) / ("redis", url, prefix)


def _redis_or_skip() -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.skip("no Redis server on 127.0.0.1:6379")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards (and checked gone)."""
    _redis_or_skip()
    import redis

    prefix = f"tokenid-test:{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(REDIS_URL)
    yield prefix
    names = list(client.scan_iter(match=prefix + "*"))
    if names:
        client.delete(*names)
    assert not list(client.scan_iter(match=prefix + "*"))
    client.close()


def _open(spec: Spec, ttl: float = 900.0) -> Counters:
    if spec[0] == "sqlite":
        return SQLiteCounters(Path(spec[1]), reservation_ttl=ttl)
    if spec[0] == "redis":
        return RedisCounters(spec[1], spec[2], reservation_ttl=ttl)
    return LocalCounters(reservation_ttl=ttl)


@pytest.fixture(params=["local", "sqlite", "redis"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Counters]]:
    """A factory of counters of one backend; every instance it makes shares one store."""
    if request.param == "redis":
        spec: Spec = ("redis", REDIS_URL, request.getfixturevalue("redis_prefix"))
    elif request.param == "sqlite":
        spec = ("sqlite", str(tmp_path / "journal.db"))
    else:
        spec = ("local",)
    made: list[Counters] = []

    def factory(ttl: float = 900.0) -> Counters:
        made.append(_open(spec, ttl))
        return made[-1]

    factory.spec = spec  # type: ignore[attr-defined]
    yield factory
    for counters in made:
        counters.close()  # type: ignore[attr-defined]


# -- windows -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("window", "now", "bucket", "reset"), [
    ("hour", datetime(2026, 11, 23, 10, 59, 59, 999999, UTC), "2026-11-23T10", datetime(2026, 11, 23, 11, tzinfo=UTC)),
    ("hour", datetime(2026, 11, 23, 23, 0, tzinfo=UTC), "2026-11-23T23", datetime(2026, 11, 24, tzinfo=UTC)),
    ("day", datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC), "2026-11-23", datetime(2026, 11, 24, tzinfo=UTC)),
    ("day", datetime(2026, 11, 24, tzinfo=UTC), "2026-11-24", datetime(2026, 11, 25, tzinfo=UTC)),
    ("month", datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), "2026-11", datetime(2026, 12, 1, tzinfo=UTC)),
    ("month", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "2026-12", datetime(2027, 1, 1, tzinfo=UTC)),
    ("month", datetime(2027, 1, 1, tzinfo=UTC), "2027-01", datetime(2027, 2, 1, tzinfo=UTC)),
    ("month", datetime(2028, 2, 29, 12, tzinfo=UTC), "2028-02", datetime(2028, 3, 1, tzinfo=UTC)),
    ("lifetime", datetime(2026, 11, 23, tzinfo=UTC), "all", None),
    ("call", datetime(2026, 11, 23, tzinfo=UTC), "call", None),
    ("rolling:30m", datetime(2026, 11, 23, 10, 7, 30, tzinfo=UTC), "rolling:30m@2026-11-23T10:07",
     datetime(2026, 11, 23, 10, 8, tzinfo=UTC)),
    ("rolling:2h", datetime(2026, 11, 23, 10, 7, 30, tzinfo=UTC), "rolling:2h@2026-11-23T10:06",
     datetime(2026, 11, 23, 10, 8, tzinfo=UTC)),
])
def test_buckets_and_resets_are_utc(window: str, now: datetime, bucket: str, reset: datetime | None) -> None:
    got_bucket, got_reset = parse_window(window).bucket(now)
    assert (got_bucket, got_reset) == (bucket, reset)
    if got_reset is not None:
        assert got_reset.utcoffset() == timedelta(0)


def test_bucket_converts_other_zones_and_treats_naive_as_utc() -> None:
    evening_new_york = datetime(2026, 11, 23, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert DAY.bucket(evening_new_york) == ("2026-11-24", datetime(2026, 11, 25, tzinfo=UTC))
    naive = datetime(2026, 11, 23, 23, 30)  # noqa: DTZ001 - naive on purpose
    assert DAY.bucket(naive) == ("2026-11-23", datetime(2026, 11, 24, tzinfo=UTC))


def test_bucket_cache_follows_time_back_and_forth() -> None:
    hour = Window("hour")
    times = [datetime(2026, 11, 23, h, 30, tzinfo=UTC) for h in (10, 9, 10, 11, 9)]
    assert [hour.bucket(t)[0] for t in times] == ["2026-11-23T10", "2026-11-23T09", "2026-11-23T10",
                                                  "2026-11-23T11", "2026-11-23T09"]
    assert hour == Window("hour") and hash(hour) == hash(Window("hour"))  # the cache is not part of equality


@pytest.mark.parametrize(("text", "window", "canonical"), [
    ("hour", Window("hour"), "hour"), (" Day ", Window("day"), "day"), ("month", Window("month"), "month"),
    ("lifetime", Window("lifetime"), "lifetime"), ("call", Window("call"), "call"),
    ("rolling:30m", Window("rolling", 30), "rolling:30m"), ("rolling:2h", Window("rolling", 120), "rolling:2h"),
    ("rolling:120m", Window("rolling", 120), "rolling:2h"), ("rolling:1d", Window("rolling", 1440), "rolling:24h"),
])
def test_parse_window_accepts(text: str, window: Window, canonical: str) -> None:
    parsed = parse_window(text)
    assert parsed == window
    assert str(parsed) == canonical
    assert parse_window(str(parsed)) == parsed


@pytest.mark.parametrize("bad", ["dayly", "", "rolling", "rolling:0m", "rolling:30", "rolling:xm", "rolling:30s",
                                 "weekly", 5, None])
def test_parse_window_rejects_with_the_accepted_forms(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_window(bad)
    message = str(info.value)
    assert f"window {bad!r} is not one of" in message
    assert "'hour'" in message and "'rolling:<N>m'" in message and "'rolling:<N>h'" in message


def test_window_validates_its_fields() -> None:
    with pytest.raises(ConfigError, match="positive whole number of minutes"):
        Window("rolling")
    with pytest.raises(ConfigError, match="positive whole number of minutes"):
        Window("rolling", 0)
    with pytest.raises(ConfigError, match="takes no minutes"):
        Window("hour", 5)
    with pytest.raises(ConfigError, match="is not one of"):
        Window("weekly")  # type: ignore[arg-type]


# -- correctness, every backend ------------------------------------------------------------------------
def test_reserve_settle_usage(make: Callable[..., Counters]) -> None:
    c = make()
    now = datetime.now(UTC)
    r1, total = c.reserve("k", DAY, 60, 100, now=now)
    assert r1 is not None and total == 60
    assert (r1.key, r1.bucket, r1.amount) == ("k", DAY.bucket(now)[0], 60)
    assert c.usage("k", DAY, now=now) == (0, 60)

    denied, current = c.reserve("k", DAY, 41, 100, now=now)
    assert denied is None and current == 60
    assert c.usage("k", DAY, now=now) == (0, 60)  # a denial changes nothing

    r2, total = c.reserve("k", DAY, 40, 100, now=now)  # exactly at the limit is allowed
    assert r2 is not None and total == 100

    c.settle(r1, 25)
    assert c.usage("k", DAY, now=now) == (25, 40)
    c.settle(r1, 25)  # idempotent
    c.settle(r1, 999)
    assert c.usage("k", DAY, now=now) == (25, 40)

    c.settle(r2, 55)  # more than reserved: spent records the truth
    assert c.usage("k", DAY, now=now) == (80, 0)
    c.add("k", DAY, 7, now=now)
    assert c.usage("k", DAY, now=now) == (87, 0)
    assert c.reserve("k", DAY, 14, 100, now=now) == (None, 87)
    r3, _ = c.reserve("k", DAY, 13, 100, now=now)
    assert r3 is not None
    c.settle(r3, 0)  # a call that is not sent gives everything back
    assert c.usage("k", DAY, now=now) == (87, 0)

    assert c.usage("other", DAY, now=now) == (0, 0)
    assert c.usage("k", Window("hour"), now=now) == (0, 0)  # another window of the same key is its own counter


def test_reserve_rejects_negative_amounts(make: Callable[..., Counters]) -> None:
    c = make()
    with pytest.raises(ValueError, match="amount"):
        c.reserve("k", DAY, -1, 100)
    r, _ = c.reserve("k", DAY, 5, 100)
    assert r is not None
    with pytest.raises(ValueError, match="actual"):
        c.settle(r, -5)
    c.settle(r, 5)  # a failed settle leaves the reservation settleable
    assert c.usage("k", DAY) == (5, 0)


def test_snapshot_lists_every_key_and_bucket(make: Callable[..., Counters]) -> None:
    c = make()
    now = datetime.now(UTC)
    r, _ = c.reserve("budget|session:abc", DAY, 50, 1000, now=now)
    assert r is not None
    c.settle(r, 30)
    c.reserve("budget|session:abc", Window("lifetime"), 9, 1000, now=now)
    c.add("other|global", Window("month"), 4, now=now)
    rows = c.snapshot()
    by_row = {(row["key"], row["bucket"]): row for row in rows}
    assert set(by_row) == {("budget|session:abc", DAY.bucket(now)[0]), ("budget|session:abc", "all"),
                           ("other|global", Window("month").bucket(now)[0])}
    assert (by_row[("budget|session:abc", DAY.bucket(now)[0])]["spent"],
            by_row[("budget|session:abc", DAY.bucket(now)[0])]["reserved"]) == (30, 0)
    assert (by_row[("budget|session:abc", "all")]["spent"], by_row[("budget|session:abc", "all")]["reserved"]) == (0, 9)
    assert by_row[("other|global", Window("month").bucket(now)[0])]["spent"] == 4
    for row in rows:
        assert set(row) == {"key", "bucket", "spent", "reserved", "updated_at"}
        updated = datetime.fromisoformat(row["updated_at"].replace("Z", "+00:00"))
        assert abs((updated - datetime.now(UTC)).total_seconds()) < 60


def test_month_rollover_starts_a_new_bucket(make: Callable[..., Counters]) -> None:
    c = make()
    month = Window("month")
    end_of_november = datetime(2026, 11, 30, 23, 59, 59, 500000, tzinfo=UTC)
    first_of_december = datetime(2026, 12, 1, tzinfo=UTC)
    r, _ = c.reserve("k", month, 80, 100, now=end_of_november)
    assert r is not None and r.bucket == "2026-11"
    c.settle(r, 80)
    assert c.reserve("k", month, 80, 100, now=end_of_november) == (None, 80)
    r2, total = c.reserve("k", month, 80, 100, now=first_of_december)
    assert r2 is not None and total == 80 and r2.bucket == "2026-12"
    assert c.usage("k", month, now=end_of_november) == (80, 0)
    assert c.usage("k", month, now=first_of_december) == (0, 80)


def test_rolling_window_sums_sub_buckets(make: Callable[..., Counters]) -> None:
    c = make()
    w = parse_window("rolling:30m")
    t0 = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)
    c.add("k", w, 60, now=t0)
    c.add("k", w, 30, now=t0 + timedelta(minutes=20))
    assert c.usage("k", w, now=t0 + timedelta(minutes=25)) == (90, 0)
    assert c.reserve("k", w, 20, 100, now=t0 + timedelta(minutes=25)) == (None, 90)
    # Conservative: the 10:00 sub-bucket still counts during the 10:30 minute, and drops at 10:31:00.
    assert c.usage("k", w, now=datetime(2026, 11, 23, 10, 30, 59, tzinfo=UTC)) == (90, 0)
    assert c.usage("k", w, now=datetime(2026, 11, 23, 10, 31, 0, tzinfo=UTC)) == (30, 0)
    r, total = c.reserve("k", w, 20, 100, now=datetime(2026, 11, 23, 10, 31, tzinfo=UTC))
    assert r is not None and total == 50
    c.settle(r, 15)
    assert c.usage("k", w, now=datetime(2026, 11, 23, 10, 40, tzinfo=UTC)) == (45, 0)
    assert c.usage("k", w, now=datetime(2026, 11, 23, 11, 2, tzinfo=UTC)) == (0, 0)
    # A different rolling length on the same key is a separate counter.
    assert c.usage("k", parse_window("rolling:60m"), now=t0) == (0, 0)


def test_rolling_two_hours_uses_two_minute_sub_buckets(make: Callable[..., Counters]) -> None:
    c = make()
    w = parse_window("rolling:2h")
    t0 = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)
    c.add("k", w, 5, now=t0)
    assert c.usage("k", w, now=t0 + timedelta(minutes=119)) == (5, 0)
    assert c.usage("k", w, now=datetime(2026, 11, 23, 12, 1, 59, tzinfo=UTC)) == (5, 0)  # within +g = 2 min
    assert c.usage("k", w, now=datetime(2026, 11, 23, 12, 2, 0, tzinfo=UTC)) == (0, 0)


def test_call_window_is_a_per_call_check_that_stores_nothing(make: Callable[..., Counters]) -> None:
    c = make()
    call = Window("call")
    assert c.reserve("k", call, 101, 100) == (None, 0)
    r, total = c.reserve("k", call, 100, 100)
    assert r is not None and total == 100
    r2, _ = c.reserve("k", call, 100, 100)  # nothing accumulates
    assert r2 is not None
    c.settle(r, 100)
    c.add("k", call, 50)
    assert c.usage("k", call) == (0, 0)
    assert c.snapshot() == []


# -- stale reservations ---------------------------------------------------------------------------------
def test_stale_reservations_expire(make: Callable[..., Counters]) -> None:
    c = make(ttl=0.3)
    stale, _ = c.reserve("k", DAY, 100, 100)
    assert stale is not None
    assert c.reserve("k", DAY, 1, 100) == (None, 100)
    c.reserve("other", DAY, 40, 100)
    time.sleep(0.5)
    assert c.usage("k", DAY) == (0, 0)
    fresh, total = c.reserve("k", DAY, 100, 100)
    assert fresh is not None and total == 100
    c.settle(stale, 10)  # records the spend, but its reserved amount was already released: no double release
    assert c.usage("k", DAY) == (10, 100)
    c.settle(stale, 10)
    assert c.usage("k", DAY) == (10, 100)
    rows = {row["key"]: row for row in c.snapshot()}  # snapshot releases expired holds of every key
    assert rows["other"]["reserved"] == 0
    assert rows["k"]["reserved"] == 100


def _reserve_and_die(spec: Spec, ttl: float) -> None:
    counters = _open(spec, ttl)
    reservation, _ = counters.reserve("k", DAY, 100, 100)
    os._exit(3 if reservation is not None else 4)  # crash: never settle


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_crashed_process_does_not_hold_a_budget_forever(backend: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    spec: Spec = (("sqlite", str(tmp_path / "j.db")) if backend == "sqlite"
                  else ("redis", REDIS_URL, request.getfixturevalue("redis_prefix")))
    ttl = 1.5
    child = multiprocessing.get_context("spawn").Process(target=_reserve_and_die, args=(spec, ttl))
    child.start()
    child.join(60)
    assert child.exitcode == 3
    c = _open(spec, ttl)
    assert c.usage("k", DAY) == (0, 100)
    assert c.reserve("k", DAY, 1, 100) == (None, 100)
    time.sleep(ttl + 0.2)
    assert c.usage("k", DAY) == (0, 0)
    r, total = c.reserve("k", DAY, 100, 100)
    assert r is not None and total == 100
    c.close()  # type: ignore[attr-defined]


# -- the key property: concurrent reserve/settle never overshoots -----------------------------------------
LIMIT = 1_000_000
WORST = 10_000
EXCESS = 5_000
MODES = {"exact": 0, "excess": EXCESS, "always-excess": -EXCESS}


def _hammer(counters: Counters, key: str, excess: int, seed: int, hold: float,
            start: Callable[[], Any]) -> tuple[int, int]:
    """Reserve WORST, hold briefly, settle an actual in [WORST/4, WORST+|excess|] (exactly WORST+excess when
    excess < 0 is passed as -X: the adversarial case); stop at the first denial."""
    rng = random.Random(seed)
    start()
    settled = calls = 0
    while True:
        reservation, total = counters.reserve(key, DAY, WORST, LIMIT)
        if reservation is None:
            return settled, calls
        assert total <= LIMIT
        actual = WORST - excess if excess < 0 else rng.randint(WORST // 4, WORST + excess)
        if hold:
            time.sleep(rng.random() * hold)
        counters.settle(reservation, actual)
        settled += actual
        calls += 1


def _check_hammer(name: str, counters: Counters, key: str, results: list[tuple[int, int]], workers: int,
                  excess: int) -> None:
    spent, reserved = counters.usage(key, DAY)
    assert reserved == 0
    assert spent == sum(s for s, _ in results)  # no lost or doubled update
    assert sum(n for _, n in results) >= LIMIT // (WORST + abs(excess))
    # At the last denial nothing was in flight, and spent + WORST exceeded the limit.
    assert spent > LIMIT - WORST
    overshoot = spent - LIMIT
    if excess == 0:
        assert overshoot <= 0
    else:
        assert overshoot <= workers * abs(excess)  # at most the excess of every call in flight at the last admission
    print(f"\n{name}: {sum(n for _, n in results)} calls, overshoot {overshoot:+,} (limit {LIMIT:,})")


def _threads(counters: Counters, key: str, n: int, excess: int, hold: float) -> list[tuple[int, int]]:
    barrier = threading.Barrier(n)
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            results.append(_hammer(counters, key, excess, seed, hold, barrier.wait))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert len(results) == n
    return results


@pytest.mark.parametrize("mode", MODES)
def test_sixteen_threads_never_overshoot(make: Callable[..., Counters], mode: str) -> None:
    c = make()
    name = f"{make.spec[0]} 16 threads {mode}"  # type: ignore[attr-defined]
    for round_ in range(3):
        key = f"hammer:{round_}"
        results = _threads(c, key, 16, MODES[mode], hold=0.003)
        _check_hammer(name, c, key, results, 16, MODES[mode])


def test_one_caller_overshoots_by_at_most_one_calls_excess(make: Callable[..., Counters]) -> None:
    c = make()
    results = _threads(c, "single", 1, -EXCESS, hold=0.0)  # every call settles EXCESS above its reservation
    spent, _ = c.usage("single", DAY)
    assert spent == results[0][0]
    assert LIMIT - WORST < spent <= LIMIT + EXCESS
    print(f"\n{make.spec[0]} 1 caller always-excess: overshoot {spent - LIMIT:+,}")  # type: ignore[attr-defined]


def _process_hammer(spec: Spec, key: str, excess: int, seed: int, barrier: Any, out: Any) -> None:
    counters = _open(spec)
    try:
        out.put(_hammer(counters, key, excess, seed, 0.003, barrier.wait))
    except BaseException as exc:
        out.put(repr(exc))
        raise


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_four_processes_never_overshoot(backend: str, mode: str, tmp_path: Path,
                                        request: pytest.FixtureRequest) -> None:
    spec: Spec = (("sqlite", str(tmp_path / "j.db")) if backend == "sqlite"
                  else ("redis", REDIS_URL, request.getfixturevalue("redis_prefix")))
    parent = _open(spec)
    ctx = multiprocessing.get_context("spawn")
    excess = MODES[mode]
    name = f"{backend} 4 processes {mode}"
    for round_ in range(2):
        key = f"hammer:{round_}"
        barrier, out = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_process_hammer, args=(spec, key, excess, seed, barrier, out))
                 for seed in range(4)]
        for p in procs:
            p.start()
        results = [out.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        assert all(isinstance(r, tuple) for r in results), results
        _check_hammer(name, parent, key, results, 4, excess)
    parent.close()  # type: ignore[attr-defined]


# -- backend specifics ----------------------------------------------------------------------------------
def test_sqlite_counters_live_in_the_journal_and_survive_restarts(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    first = SQLiteCounters(journal.path)
    r, _ = first.reserve("k", Window("lifetime"), 70, 100)
    assert r is not None
    first.settle(r, 42)
    first.close()
    again = SQLiteCounters(journal.path)
    assert again.usage("k", Window("lifetime")) == (42, 0)
    assert again.reserve("k", Window("lifetime"), 59, 100) == (None, 42)
    tables = {name for (name,) in sqlite3.connect(journal.path).execute("SELECT name FROM sqlite_master")}
    assert {"events", "budget_counters", "budget_reservations"} <= tables
    assert journal.events() == []  # the journal still opens and reads its own table
    again.close()
    journal.close()


def test_sqlite_prunes_rolling_sub_buckets_that_left_the_window(tmp_path: Path) -> None:
    c = SQLiteCounters(tmp_path / "j.db")
    w = parse_window("rolling:30m")
    t0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    for minute in range(0, 90, 5):
        c.add("k", w, 1, now=t0 + timedelta(minutes=minute))
    buckets = [row["bucket"] for row in c.snapshot()]
    assert len(buckets) <= 31 // 5 + 2  # only sub-buckets of the last ~30 minutes remain
    assert c.usage("k", w, now=t0 + timedelta(minutes=85)) == (7, 0)  # 55..85 in steps of 5
    c.close()


def test_redis_buckets_expire_after_their_window(redis_prefix: str) -> None:
    c = RedisCounters(REDIS_URL, redis_prefix)
    now = datetime.now(UTC)
    c.add("k", Window("hour"), 5, now=now)
    c.add("k", Window("lifetime"), 5, now=now)
    r, _ = c.reserve("k", DAY, 5, 100, now=now)
    assert r is not None
    names = list(c.client.scan_iter(match=redis_prefix + "*"))
    ttls = {name.rsplit(":", 1)[-1]: c.client.pttl(name) for name in names}
    hour_bucket, hour_reset = Window("hour").bucket(now)
    assert hour_reset is not None
    _between(ttls[hour_bucket], 0, ((hour_reset - now).total_seconds() + 3600) * 1000 + 1000)
    day_bucket, day_reset = DAY.bucket(now)
    assert day_reset is not None
    day_ttl_ms = ((day_reset - now).total_seconds() + 3600) * 1000
    _between(ttls[day_bucket], day_ttl_ms - 60_000, day_ttl_ms + 1000)
    assert ttls["all"] == -1  # a lifetime bucket never expires
    assert ttls["r"] >= ttls[day_bucket] - 1000  # live reservations outlive nothing they point at
    c.settle(r, 5)
    assert not c.client.exists(redis_prefix + "{k}:r")  # no live reservations: the set is gone
    c.close()


def _between(ttl: int, low: float, high: float) -> None:
    assert low < ttl <= high, (low, ttl, high)


def test_redis_scope_keys_with_braces_stay_distinct(redis_prefix: str) -> None:
    c = RedisCounters(REDIS_URL, redis_prefix)
    c.add("tag:{a}", DAY, 1)
    c.add("tag:{b}", DAY, 2)
    assert c.usage("tag:{a}", DAY) == (1, 0)
    assert c.usage("tag:{b}", DAY) == (2, 0)
    assert sorted(row["key"] for row in c.snapshot()) == ["tag:{a}", "tag:{b}"]
    c.close()


def test_open_counters(tmp_path: Path, redis_prefix: str) -> None:
    assert isinstance(open_counters(None, None), LocalCounters)
    assert isinstance(open_counters("local", tmp_path / "j.db"), LocalCounters)
    sqlite_counters = open_counters("sqlite", tmp_path / "j.db")
    assert isinstance(sqlite_counters, SQLiteCounters) and sqlite_counters.path == tmp_path / "j.db"
    redis_counters = open_counters(REDIS_URL, None)
    assert isinstance(redis_counters, RedisCounters) and redis_counters.url == REDIS_URL
    redis_counters.close()
    with pytest.raises(ConfigError, match="no journal path"):
        open_counters("sqlite", None)
    with pytest.raises(ConfigError, match="'postgres://x' is not 'local', 'sqlite' or a redis:// URL"):
        open_counters("postgres://x", None)
    with pytest.raises(ConfigError, match="reservation_ttl"):
        open_counters("local", None, reservation_ttl=0)


def test_reserve_settle_speed(make: Callable[..., Counters]) -> None:
    """A measurement, not a timed assertion: prints µs per reserve+settle pair."""
    c = make()
    n = 50_000 if make.spec[0] == "local" else 2_000  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(n):
        r, _ = c.reserve("speed", DAY, 10, 10**15)
        assert r is not None
        c.settle(r, 3)
    elapsed = time.perf_counter() - started
    assert c.usage("speed", DAY) == (3 * n, 0)
    print(f"\n{make.spec[0]}: {elapsed / n * 1e6:.2f} µs per reserve+settle")  # type: ignore[attr-defined]
