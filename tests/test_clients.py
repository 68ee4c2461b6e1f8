"""The journaled clients against the real simulator: every surface, whole journal rows."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from typing import Any

import genai_prices
import openai
import pytest

import tokenid
from tokenid import ConfigError, Journal

from conftest import API_KEY, make_client

KINDS = ["azure", "openai", "async_azure", "async_openai"]
MODES = ["plain", "raw", "streaming_response", "stream"]
ENDPOINTS = ["chat", "responses", "embeddings"]


def _usage_dict(usage: Any) -> dict[str, int]:
    """The usage the caller saw, in journal field names."""
    u = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
    if "input_tokens" in u:
        inp, out = u.get("input_tokens_details") or {}, u.get("output_tokens_details") or {}
        return {"input_tokens": u["input_tokens"], "output_tokens": u["output_tokens"],
                "cached_input_tokens": inp.get("cached_tokens") or 0,
                "reasoning_tokens": out.get("reasoning_tokens") or 0}
    p, c = u.get("prompt_tokens_details") or {}, u.get("completion_tokens_details") or {}
    return {"input_tokens": u["prompt_tokens"], "output_tokens": u.get("completion_tokens") or 0,
            "cached_input_tokens": p.get("cached_tokens") or 0, "reasoning_tokens": c.get("reasoning_tokens") or 0}


def _request(endpoint: str, model: str) -> tuple[str, dict[str, Any]]:
    if endpoint == "chat":
        return "chat.completions", {"model": model, "messages": [{"role": "user", "content": "Say hello to TokenID"}]}
    if endpoint == "responses":
        return "responses", {"model": model, "input": "Say hello to TokenID"}
    return "embeddings", {"model": "text-embedding-3-small", "input": ["first text", "second text"]}


def _resource(client: Any, endpoint: str) -> Any:
    return {"chat": client.chat.completions, "responses": client.responses, "embeddings": client.embeddings}[endpoint]


def _seen_from_stream_items(items: list[Any], endpoint: str) -> tuple[str | None, Any]:
    if endpoint == "responses":
        done = [i for i in items if getattr(i, "type", "") == "response.completed"]
        return done[-1].response.model, done[-1].response.usage
    model = next((i.model for i in items if getattr(i, "model", None)), None)
    usage = next((i.usage for i in reversed(items) if getattr(i, "usage", None) is not None), None)
    # every chunk the caller sees has choices, but Azure's first one (prompt_filter_results), a real shape
    assert all(i.choices for i in items if not getattr(i, "prompt_filter_results", None))
    return model, usage


def call_sync(client: Any, endpoint: str, mode: str, model: str) -> tuple[str | None, Any]:
    _, body = _request(endpoint, model)
    res = _resource(client, endpoint)
    if mode == "stream":
        return _seen_from_stream_items(list(res.create(**body, stream=True)), endpoint)
    if mode == "raw":
        parsed = res.with_raw_response.create(**body).parse()
    elif mode == "streaming_response":
        with res.with_streaming_response.create(**body) as response:
            parsed = response.parse()
    else:
        parsed = res.create(**body)
    return parsed.model, parsed.usage


async def call_async(client: Any, endpoint: str, mode: str, model: str) -> tuple[str | None, Any]:
    _, body = _request(endpoint, model)
    res = _resource(client, endpoint)
    if mode == "stream":
        stream = await res.create(**body, stream=True)
        return _seen_from_stream_items([i async for i in stream], endpoint)
    if mode == "raw":
        parsed = (await res.with_raw_response.create(**body)).parse()
    elif mode == "streaming_response":
        async with res.with_streaming_response.create(**body) as response:
            parsed = await response.parse()
    else:
        parsed = await res.create(**body)
    return parsed.model, parsed.usage


def expected_cost(model: str, usage: dict[str, int]) -> Decimal:
    """List price computed straight from genai-prices, independently of TokenID's pricing code."""
    calc = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"],
                           cache_read_tokens=usage["cached_input_tokens"] or None),
        model, provider_id="openai")
    return Decimal(calc.total_price)


MATRIX = [(k, m, e) for k in KINDS for m in MODES for e in ENDPOINTS if not (m == "stream" and e == "embeddings")]


@pytest.mark.parametrize("kind,mode,endpoint", MATRIX)
def test_every_surface_journals_one_whole_row(sim: Any, journal: Journal, kind: str, mode: str,
                                              endpoint: str) -> None:
    session = f"{kind}-{mode}-{endpoint}"
    client = make_client(kind, sim, journal, session_id=session, tags={"team": "qa"})
    model = "gpt-4o-mini"
    if kind.startswith("async"):
        async def go() -> tuple[str | None, Any]:
            try:
                return await call_async(client, endpoint, mode, model)
            finally:
                await client.close()
        served, usage = asyncio.run(go())
    else:
        with client:
            served, usage = call_sync(client, endpoint, mode, model)
    journal.flush()
    rows = journal.events(session_id=session)
    assert len(rows) == 1, rows
    row = rows[0]
    seen = _usage_dict(usage)
    azure = kind.endswith("azure")
    endpoint_name = _request(endpoint, model)[0]
    assert {k: row[k] for k in seen} == seen
    assert row["session_id"] == session
    assert row["tags"] == {"team": "qa"}
    assert row["provider"] == ("azure_openai" if azure else "openai")
    assert row["endpoint"] == endpoint_name
    assert row["model_served"] == served
    assert row["usage_source"] == "reported"
    assert row["status"] == "ok" and row["http_status"] == 200
    assert row["stream"] is (mode == "stream")
    assert row["attempts"] == 1
    assert row["error_type"] is None
    assert row["latency_ms"] > 0
    assert row["content"] is None  # not stored without opt-in
    if mode == "stream":
        assert row["ttft_ms"] is not None and 0 < row["ttft_ms"] <= row["latency_ms"]
    if azure:
        expected_deployment = "text-embedding-3-small" if endpoint == "embeddings" else model
        assert row["deployment"] == expected_deployment
        assert row["api_version"] == "2024-10-21"
        assert row["region"] == sim.region
        assert row["request_id"]
        assert row["model_resolved_by"] == "deployment_map"
    else:
        assert row["deployment"] is None and row["api_version"] is None
    canonical = row["canonical_model"]
    assert canonical and canonical.startswith("text-embedding-3-small" if endpoint == "embeddings" else model)
    assert Decimal(row["cost_usd"]) == expected_cost(
        "text-embedding-3-small" if endpoint == "embeddings" else model, seen)
    assert Decimal(row["cost_usd"]) > 0


def test_exact_public_usage_works(sim: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's seed snippet, verbatim but for the endpoint; key and journal from the environment."""
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("TOKENID_JOURNAL", str(tmp_path / "env-journal.db"))
    from tokenid import JournaledAzureOpenAI

    client = JournaledAzureOpenAI(azure_endpoint=sim.azure_endpoint, api_version="2024-02-01",
                                  session_id="my-session")
    resp = client.chat.completions.create(model="my-gpt4-deployment",
                                          messages=[{"role": "user", "content": "Hello"}])
    client.close()
    assert isinstance(client, openai.AzureOpenAI)
    assert client.api_key == API_KEY
    rows = client.journal.events(session_id="my-session")
    assert client.journal.path == (tmp_path / "env-journal.db").resolve()
    assert len(rows) == 1
    row = rows[0]
    assert row["deployment"] == "my-gpt4-deployment"
    assert row["model_served"] == resp.model
    assert row["input_tokens"] == resp.usage.prompt_tokens  # type: ignore[union-attr]
    # no deployment map: priced from the served model, and it says so
    assert row["model_resolved_by"] == "response_model"
    assert row["cost_usd"] is not None


@pytest.mark.parametrize("cls,base", [
    (tokenid.JournaledOpenAI, openai.OpenAI), (tokenid.AsyncJournaledOpenAI, openai.AsyncOpenAI),
    (tokenid.JournaledAzureOpenAI, openai.AzureOpenAI), (tokenid.AsyncJournaledAzureOpenAI, openai.AsyncAzureOpenAI),
])
def test_subclass_and_sdk_arguments(sim: Any, journal: Journal, cls: Any, base: Any) -> None:
    kw: dict[str, Any] = {"api_key": API_KEY, "journal": journal, "organization": "org-1", "project": "proj-1",
                          "max_retries": 5, "timeout": 12.5, "default_headers": {"x-team": "a"},
                          "default_query": {"q": "1"}}
    if "Azure" in cls.__name__:
        kw.update(azure_endpoint=sim.azure_endpoint, api_version="2024-10-21", azure_deployment="gpt-4o")
    else:
        kw.update(base_url=sim.openai_base_url)
    client = cls(**kw)
    assert isinstance(client, base)
    assert client.max_retries == 5 and client.timeout == 12.5
    assert client.default_headers["x-team"] == "a"
    copy = client.with_options(max_retries=1, session_id="copied", tags={"k": "v"})
    assert isinstance(copy, cls) and copy.max_retries == 1
    assert copy.journal is journal and copy.session_id == "copied"
    assert client.session_id is None
    assert client.copy(timeout=3).journal is journal


def test_with_options_copy_keeps_journaling(sim: Any, journal: Journal) -> None:
    client = make_client("azure", sim, journal, session_id="base")
    copy = client.with_options(timeout=30, session_id="via-copy")
    copy.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    client.copy().embeddings.create(model="text-embedding-3-small", input="x")
    client.close()
    rows = journal.events()
    assert [(r["session_id"], r["endpoint"]) for r in rows] == [("via-copy", "chat.completions"),
                                                                ("base", "embeddings")]


def test_azure_deployment_client_and_v1_routes(sim: Any, journal: Journal) -> None:
    dep = tokenid.JournaledAzureOpenAI(azure_endpoint=sim.azure_endpoint, azure_deployment="gpt-4o",
                                       api_version="2024-10-21", api_key=API_KEY, journal=journal, session_id="d")
    dep.chat.completions.create(model="ignored-by-azure", messages=[{"role": "user", "content": "hi"}])
    v1 = tokenid.JournaledOpenAI(base_url=sim.url + "/openai/v1", api_key=API_KEY, journal=journal, session_id="v1")
    list(v1.chat.completions.create(model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "hi"}]))
    dep.close()
    v1.close()
    (d,) = journal.events(session_id="d")
    assert d["deployment"] == "gpt-4o" and d["provider"] == "azure_openai"
    (v,) = journal.events(session_id="v1")
    assert v["endpoint"] == "chat.completions" and v["usage_source"] == "reported" and v["output_tokens"] > 0


def test_other_endpoints_are_journaled_not_dropped(sim: Any, journal: Journal) -> None:
    client = make_client("openai", sim, journal, session_id="other")
    models = client.models.list()
    assert models.data
    client.close()
    (row,) = journal.events(session_id="other")
    assert row["endpoint"] == "models" and row["method"] == "GET"
    assert row["status"] == "ok" and row["usage_source"] == "missing"
    assert row["cost_usd"] is None and row["unpriced_reason"] == "no usage"


def test_configuration_errors_name_the_problem(journal: Journal) -> None:
    with pytest.raises(ConfigError, match=r"unknown key.*'budget'.*accepted"):
        tokenid.JournaledOpenAI(api_key="k", journal=journal, enforcement_config={"budget": {}})
    with pytest.raises(ConfigError, match="mode"):
        tokenid.JournaledOpenAI(api_key="k", journal=journal, enforcement_config={"mode": "loud"})
    with pytest.raises(ConfigError, match="session_id"):
        tokenid.JournaledOpenAI(api_key="k", journal=journal, session_id="")
    with pytest.raises(ConfigError, match="journal"):
        tokenid.JournaledOpenAI(api_key="k", journal="mysql://db/x")
    with pytest.raises(ConfigError, match="deployments"):
        tokenid.JournaledAzureOpenAI(api_key="k", azure_endpoint="http://127.0.0.1:1", api_version="2024-10-21",
                                     journal=journal, deployments={"d": {"model": "gpt-4o", "typ": "global"}})
    kept = tokenid.JournaledOpenAI(api_key="k", journal=journal, enforcement_config={"mode": "shadow", "budgets": []})
    assert kept.enforcement_config == {"mode": "shadow", "budgets": []}


def test_api_key_from_environment_like_the_sdk(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert tokenid.JournaledOpenAI(journal=journal).api_key == "sk-from-env"
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(openai.OpenAIError, match="api_key"):
        tokenid.JournaledOpenAI(journal=journal)


def test_concurrent_async_calls_keep_their_sessions(sim: Any, journal: Journal) -> None:
    client = make_client("async_azure", sim, journal)

    async def one(n: int) -> None:
        with tokenid.session(f"task-{n}", tags={"n": n}):
            await asyncio.sleep(0.001 * (n % 3))
            await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": str(n)}])

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(12)))
        await client.close()

    asyncio.run(main())
    rows = journal.events()
    assert sorted((r["session_id"], r["tags"]["n"]) for r in rows) == sorted(
        (f"task-{n}", str(n)) for n in range(12))


def test_api_key_never_reaches_the_journal(sim: Any, tmp_path: Any) -> None:
    path = tmp_path / "secret.db"
    j = Journal(path)
    client = make_client("openai", sim, j, store_content=True, session_id="s")
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                       extra_headers={"x-sim-fault": "401"})
    client.close()
    j.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert len(j.events()) == 2
    assert API_KEY.encode() not in blob and b"SECRET" not in blob
    assert b"Bearer" not in blob


def test_content_only_with_opt_in(sim: Any, journal: Journal) -> None:
    plain = make_client("azure", sim, journal, session_id="plain")
    plain.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "private words"}])
    opted = make_client("azure", sim, journal, session_id="opted", store_content=True)
    reply = opted.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "private words"}])
    plain.close()
    opted.close()
    (p,) = journal.events(session_id="plain")
    (o,) = journal.events(session_id="opted")
    assert p["content"] is None
    assert o["content"]["request"]["messages"][0]["content"] == "private words"
    assert o["content"]["response_text"] == reply.choices[0].message.content
    assert b"private words" not in b"".join(str(v).encode() for v in p.values())


def test_journal_default_path_env(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENID_JOURNAL", str(tmp_path / "x.db"))
    assert tokenid.default_journal_target() == str(tmp_path / "x.db")
    monkeypatch.delenv("TOKENID_JOURNAL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert tokenid.default_journal_target() == os.path.join(str(tmp_path / "data"), "tokenid", "journal.db")


def test_a_pricing_failure_never_breaks_the_call(sim: Any, journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client("azure", sim, journal, session_id="pricing-bug")

    def broken(**_: Any) -> Any:
        raise ZeroDivisionError("bug in a price table")

    monkeypatch.setattr(client._tokenid.pricer, "price", broken)
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    client.close()
    assert reply.choices[0].message.content
    (row,) = journal.events(session_id="pricing-bug")
    assert row["status"] == "ok" and row["http_status"] == 200
    assert row["cost_usd"] is None and row["unpriced_reason"] == "pricing failed: ZeroDivisionError"
    assert row["usage_source"] == "reported"
    assert row["output_tokens"] == reply.usage.completion_tokens  # type: ignore[union-attr]


class _UsageRaises(openai.BaseModel):
    """A caller's own response model (the SDK asks for its base class) whose ``usage`` raises when read."""

    @property
    def usage(self) -> Any:
        raise RuntimeError("a property that raises")


def test_a_response_model_that_raises_on_usage_never_breaks_the_call(sim: Any, journal: Journal) -> None:
    # The usage of a parsed response is read on the caller's thread; a model that raises there must not reach
    # the caller, and the writer then reads the usage from the body instead.
    client = make_client("openai", sim, journal, session_id="odd-model")
    reply = client.post("/chat/completions", cast_to=_UsageRaises,
                        body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    client.close()
    assert isinstance(reply, _UsageRaises)
    (row,) = journal.events(session_id="odd-model")
    assert row["status"] == "ok" and row["usage_source"] == "reported"
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["cost_usd"] is not None
