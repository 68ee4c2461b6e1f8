"""The exact-match response cache over memory, SQLite and the machine's Redis: hits cost 0 and save the price."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from regions import MSG, azure_target, events, routed
from regions import regions as regions_fixture

from tokenid import AsyncJournaledAzureOpenAI, Journal, JournaledAzureOpenAI
from tokenid.routing import CachedResponse, MemoryCache, RedisCache, SQLiteCache, cache_key
from tokenid.simulator import Simulator

from conftest import API_KEY, AZURE_VERSION, DEPLOYMENTS

regions = regions_fixture
ON = {"x-tokenid-cache": "true"}
REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "redis":
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        yield REDIS_URL
        for key in r.scan_iter("tokenid:cache:*"):
            r.delete(key)
        r.close()
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cache.db'}"
    else:
        yield "memory"


def routes(regions: dict[str, Simulator], backend: str, **cache: Any) -> dict[str, Any]:
    return {"targets": [azure_target("sweden", regions["swedencentral"])],
            "cache": {"backend": backend, "ttl_s": 60, **cache}}


def test_a_hit_is_served_without_a_send_and_journaled_at_no_cost(regions: dict[str, Simulator], tmp_path: Path,
                                                                 backend: str) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, routes(regions, backend))
    prompt = [{"role": "user", "content": f"cache me {uuid.uuid4()}"}]
    first = client.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers=ON)
    second = client.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers=ON)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=prompt, extra_headers=ON)
    client.close()
    assert second.model_dump() == first.model_dump()
    assert raw.parse().id == first.id and raw.headers["x-ms-region"] == "Sweden Central"
    miss, hit, raw_hit = events(journal)
    assert miss["cache_hit"] is False and miss["attempts"] == 1 and miss["saved_usd"] is None
    assert Decimal(miss["cost_usd"]) > 0
    for row in (hit, raw_hit):
        assert row["cache_hit"] is True and row["attempts"] == 0 and row["status"] == "ok"
        assert row["cost_usd"] == "0"
        assert row["saved_usd"] == miss["cost_usd"]
        assert row["input_tokens"] == miss["input_tokens"] and row["output_tokens"] == miss["output_tokens"]
        assert row["usage_source"] == "reported" and row["model_served"] == miss["model_served"]
        assert row["route"] == {"strategy": "cache", "served_by": "cache", "attempts": []}
        assert row["deployment"] == "gpt-4o" and row["region"] == "Sweden Central"


def test_opt_in_per_call_refresh_and_opt_out(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, routes(regions, "memory"))
    prompt = [{"role": "user", "content": f"opt in {uuid.uuid4()}"}]
    client.chat.completions.create(model="gpt-4o", messages=prompt)  # not opted in: not stored
    client.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers=ON)  # miss, stored
    client.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers={"x-tokenid-cache": "refresh"})
    client.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers=ON)  # hit
    client.chat.completions.create(model="gpt-4o", messages=prompt)  # not opted in: sent
    other = [{"role": "user", "content": f"another {uuid.uuid4()}"}]
    client.chat.completions.create(model="gpt-4o", messages=other, extra_headers=ON)  # a different key
    cached_client = client.with_options(default_headers=ON)  # a whole client copy can opt in
    cached_client.chat.completions.create(model="gpt-4o", messages=prompt)
    cached_client.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers={"x-tokenid-cache": "0"})
    client.close()
    assert [r["cache_hit"] for r in events(journal)] == [False, False, False, True, False, False, True, False]


def test_mode_all_ttl_and_streams(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, routes(regions, "memory", mode="all", ttl_s=0.4))
    prompt = [{"role": "user", "content": f"ttl {uuid.uuid4()}"}]
    client.chat.completions.create(model="gpt-4o", messages=prompt)
    client.chat.completions.create(model="gpt-4o", messages=prompt)
    time.sleep(0.5)
    client.chat.completions.create(model="gpt-4o", messages=prompt)  # expired
    list(client.chat.completions.create(model="gpt-4o", messages=prompt, stream=True))  # streams are never cached
    list(client.chat.completions.create(model="gpt-4o", messages=prompt, stream=True))
    client.close()
    assert [r["cache_hit"] for r in events(journal)] == [False, True, False, False, False]


def test_errors_are_not_cached(regions: dict[str, Simulator], tmp_path: Path) -> None:
    import openai

    journal = Journal(tmp_path / "j.db")
    client = routed(journal, routes(regions, "memory", mode="all"))
    for _ in range(2):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="gpt-4o", messages=MSG,
                                           extra_headers={"x-sim-fault": "content_filter"})
    client.close()
    assert [r["cache_hit"] for r in events(journal)] == [False, False]


def test_cache_without_targets_on_a_plain_client(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    sim = regions["eastus2"]
    client = JournaledAzureOpenAI(azure_endpoint=sim.azure_endpoint, api_key=API_KEY, api_version=AZURE_VERSION,
                                  journal=journal, deployments=DEPLOYMENTS, routing={"cache": "memory"})
    for _ in range(2):
        client.embeddings.create(model="text-embedding-3-small", input="same words", extra_headers=ON)
    client.close()
    miss, hit = events(journal)
    assert (miss["cache_hit"], hit["cache_hit"]) == (False, True)
    assert hit["saved_usd"] == miss["cost_usd"] and hit["cost_usd"] == "0"
    assert miss["route"] is None


async def test_async_hit(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, routes(regions, "memory"), cls=AsyncJournaledAzureOpenAI)
    prompt = [{"role": "user", "content": f"async {uuid.uuid4()}"}]
    a = await client.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers=ON)
    b = await client.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers=ON)
    await client.close()
    assert a.id == b.id
    assert [r["cache_hit"] for r in events(journal)] == [False, True]


def test_a_broken_cache_never_breaks_the_call(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, routes(regions, "redis://127.0.0.1:1/0"))  # nothing listens there
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o", messages=MSG, extra_headers=ON)
    client.close()
    assert [(r["status"], r["cache_hit"]) for r in events(journal)] == [("ok", False), ("ok", False)]


def test_stores_directly(tmp_path: Path) -> None:
    value = CachedResponse.of(200, {"content-type": "application/json", "authorization": "x"}, b'{"a": 1}')
    assert value.headers == {"content-type": "application/json"}  # only the few replayed headers are kept
    key = cache_key("ns", "post", "/chat/completions", {"b": 1, "a": [1, 2]})
    assert key == cache_key("ns", "POST", "/chat/completions", {"a": [1, 2], "b": 1})  # key order is irrelevant
    assert key != cache_key("other", "POST", "/chat/completions", {"a": [1, 2], "b": 1})
    assert key == cache_key("ns", "POST", "/chat/completions", {"a": [1, 2], "b": 1, "user": None, "stream": False})
    assert key != cache_key("ns", "POST", "/chat/completions", {"a": [1, 2], "b": 2})
    assert key != cache_key("ns", "POST", "/embeddings", {"a": [1, 2], "b": 1})
    memory = MemoryCache(max_entries=2)
    for store in (memory, SQLiteCache(tmp_path / "c.db"), RedisCache(REDIS_URL)):
        k = uuid.uuid4().hex
        assert store.get(k) is None
        store.put(k, value, 0.3)
        got = store.get(k)
        assert got is not None and got.body == b'{"a": 1}' and got.status == 200
        time.sleep(0.35)
        assert store.get(k) is None
        store.close()
    memory = MemoryCache(max_entries=2)
    for k in ("a", "b", "c"):
        memory.put(k, value, 60)
    assert memory.get("a") is None and memory.get("c") is not None and len(memory) == 2


@pytest.mark.parametrize("shared", ["sqlite", "redis"])
def test_shared_stores_serve_another_client(regions: dict[str, Simulator], tmp_path: Path, shared: str) -> None:
    backend = f"sqlite:///{tmp_path / 'shared.db'}" if shared == "sqlite" else REDIS_URL
    journal = Journal(tmp_path / "j.db")
    prompt = [{"role": "user", "content": f"shared {uuid.uuid4()}"}]
    first = routed(journal, routes(regions, backend))  # two clients stand for two processes
    second = routed(journal, routes(regions, backend))
    a = first.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers=ON)
    b = second.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers=ON)
    first.close()
    second.close()
    assert a.id == b.id
    assert [r["cache_hit"] for r in events(journal)] == [False, True]


def test_the_opt_in_header_is_never_sent(regions: dict[str, Simulator], tmp_path: Path) -> None:
    import httpx2

    seen: list[dict[str, str]] = []
    http = httpx2.Client(event_hooks={"request": [lambda request: seen.append(dict(request.headers))]})
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, routes(regions, "memory"), http_client=http)
    copy = client.with_options(default_headers={"X-TokenID-Cache": "true"})
    prompt = [{"role": "user", "content": f"header {uuid.uuid4()}"}]
    client.chat.completions.create(model="gpt-4o", messages=prompt, extra_headers=ON)
    copy.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"{uuid.uuid4()}"}])
    copy.chat.completions.create(model="gpt-4o", messages=prompt)  # a hit: nothing sent
    client.close()
    assert len(seen) == 2
    assert all(k.lower() != "x-tokenid-cache" for headers in seen for k in headers)
    assert [r["cache_hit"] for r in events(journal)] == [False, False, True]
