"""Realtime (WebSocket) sessions through the journaled clients, against the simulator's Realtime endpoint."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import genai_prices
import openai
import pytest

import tokenid
from tokenid import Journal
from tokenid.realtime import _event_type, _Origin, _Tap
from tokenid.simulator import DEFAULT_DEPLOYMENTS, Simulator
from tokenid.simulator.media import pcm_bytes

from conftest import API_KEY, AZURE_VERSION, DEPLOYMENTS, make_client

KINDS = ["azure", "openai", "async_azure", "async_openai"]
REALTIME = "gpt-realtime"
SERVED = "gpt-realtime-2025-08-28"
RT_DEPLOYMENTS = {**DEPLOYMENTS, REALTIME: {"model": "gpt-realtime", "version": "2025-08-28", "type": "global"}}
AUDIO = base64.b64encode(pcm_bytes(1.0)).decode()  # one second of 24 kHz pcm16: 10 audio tokens
PROMPT = "Tell me about the weather in Lisbon"


@pytest.fixture(scope="module")
def rt_sim() -> Iterator[Simulator]:
    with Simulator(deployments={**DEFAULT_DEPLOYMENTS, REALTIME: SERVED}, api_keys=[API_KEY]) as simulator:
        yield simulator


def rt_client(kind: str, sim: Simulator, journal: Journal, **kw: Any) -> Any:
    if kind.endswith("azure"):
        kw.setdefault("deployments", RT_DEPLOYMENTS)
        kw.setdefault("websocket_base_url", sim.url.replace("http://", "ws://") + "/openai")
    return make_client(kind, sim, journal, **kw)


def run(kind: str, sync_flow: Any, async_flow: Any, client: Any, *args: Any) -> Any:
    """Run the sync flow, or the async one in an event loop, closing the client after."""
    if kind.startswith("async"):
        async def go() -> Any:
            try:
                return await async_flow(client, *args)
            finally:
                await client.close()
        return asyncio.run(go())
    with client:
        return sync_flow(client, *args)


def user_text(text: str = PROMPT) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


# -- the conversation every kind runs: text and audio in, a text reply, then an audio reply -------------

def converse(client: Any, **connect: Any) -> list[Any]:
    events: list[Any] = []
    with client.realtime.connect(model=REALTIME, **connect) as conn:
        conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        conn.conversation.item.create(item=user_text())
        conn.input_audio_buffer.append(audio=AUDIO)
        conn.input_audio_buffer.commit()
        conn.response.create()
        for event in conn:
            events.append(event)
            if event.type == "response.done":
                if sum(e.type == "response.done" for e in events) == 2:
                    break
                conn.response.create(response={"output_modalities": ["audio"]})
    return events


async def aconverse(client: Any, **connect: Any) -> list[Any]:
    events: list[Any] = []
    async with client.realtime.connect(model=REALTIME, **connect) as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.conversation.item.create(item=user_text())
        await conn.input_audio_buffer.append(audio=AUDIO)
        await conn.input_audio_buffer.commit()
        await conn.response.create()
        async for event in conn:
            events.append(event)
            if event.type == "response.done":
                if sum(e.type == "response.done" for e in events) == 2:
                    break
                await conn.response.create(response={"output_modalities": ["audio"]})
    return events


def seen_usage(usage: Any) -> dict[str, int]:
    """What the caller saw in ``response.usage``, in journal field names."""
    inp, out = usage.input_token_details, usage.output_token_details
    return {
        "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens, "cached_input_tokens": inp.cached_tokens,
        "audio_input_tokens": inp.audio_tokens, "cached_audio_input_tokens": inp.cached_tokens_details.audio_tokens,
        "audio_output_tokens": out.audio_tokens, "image_input_tokens": inp.image_tokens or 0,
        "reasoning_tokens": 0, "cache_write_tokens": 0,
    }


def list_price(model: str, usage: dict[str, int]) -> Decimal:
    """The list price straight from genai-prices, independently of TokenID's pricing code."""
    calc = genai_prices.calc_price(genai_prices.Usage(
        input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"],
        cache_read_tokens=usage["cached_input_tokens"], input_audio_tokens=usage["audio_input_tokens"],
        cache_audio_read_tokens=usage["cached_audio_input_tokens"], output_audio_tokens=usage["audio_output_tokens"],
    ), model, provider_id="openai")
    return Decimal(calc.total_price)


@pytest.mark.parametrize("kind", KINDS)
def test_each_response_is_one_whole_row(rt_sim: Simulator, journal: Journal, kind: str) -> None:
    client = rt_client(kind, rt_sim, journal, session_id="client-session", tags={"team": "voice"})
    with tokenid.session(f"rt-{kind}", tags={"feature": "assistant"}):  # in force at connect time
        events = run(kind, converse, aconverse, client)
    journal.flush()
    rows = journal.events(session_id=f"rt-{kind}")
    done = [e.response for e in events if e.type == "response.done"]
    assert [r["endpoint"] for r in rows] == ["realtime", "realtime"]
    azure = kind.endswith("azure")
    for row, response in zip(rows, done, strict=True):
        usage = seen_usage(response.usage)
        expected = {
            **usage, "session_id": f"rt-{kind}", "tags": {"team": "voice", "feature": "assistant"},
            "provider": "azure_openai" if azure else "openai", "endpoint": "realtime", "method": "GET",
            "path": "/openai/realtime" if azure else "/v1/realtime", "resource": "127.0.0.1",
            "region": rt_sim.region if azure else None, "api_version": AZURE_VERSION if azure else None,
            "deployment": REALTIME if azure else None, "model_requested": REALTIME, "model_served": SERVED,
            "canonical_model": SERVED, "deployment_type": "global" if azure else None,
            "model_resolved_by": "deployment_map" if azure else "response_model", "usage_source": "reported",
            "status": "ok", "http_status": 101, "error_type": None, "error_code": None, "error_message": None,
            "attempts": 1, "stream": True, "cache_hit": False, "units": None, "unpriced_reason": None,
            "content": None, "enforcement": None,
        }
        assert {k: row[k] for k in expected} == expected
        assert Decimal(row["cost_usd"]) == list_price("gpt-realtime", usage) > 0
        assert row["request_id"] and row["id"] and row["started_at"] < row["ended_at"]
        assert 0 < row["ttft_ms"] <= row["latency_ms"]
    first, second = rows
    # the text reply: text and audio in, nothing cached yet; the audio reply: the first turn's input is cached
    assert first["audio_input_tokens"] == 10 and first["cached_input_tokens"] == 0
    assert first["audio_output_tokens"] == 0 and first["output_tokens"] > 0
    assert second["cached_input_tokens"] == first["input_tokens"]
    assert second["cached_audio_input_tokens"] == 10
    assert second["audio_output_tokens"] > 0 and second["output_tokens"] > second["audio_output_tokens"]


def _normalized(value: Any) -> Any:
    """An event dump with what varies (ids, expiry, rate-limit counters) replaced, so two sessions compare equal."""
    if isinstance(value, dict):
        return {k: "<n>" if k in ("expires_at", "remaining") else _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"^(event|resp|item|sess|conv|req)_\w+$", r"\1_<id>", value)
    return value


@pytest.mark.parametrize("kind", ["openai", "async_azure"])
def test_the_caller_sees_every_event_unchanged(rt_sim: Simulator, journal: Journal, kind: str) -> None:
    journaled = run(kind, converse, aconverse, rt_client(kind, rt_sim, journal))
    raw_kw: dict[str, Any] = {"api_key": API_KEY, "max_retries": 0}
    if kind.endswith("azure"):
        raw = openai.AsyncAzureOpenAI(azure_endpoint=rt_sim.url, api_version=AZURE_VERSION,
                                      websocket_base_url=rt_sim.url.replace("http://", "ws://") + "/openai", **raw_kw)
    else:
        raw = openai.OpenAI(base_url=rt_sim.openai_base_url, **raw_kw)
    plain = run(kind, converse, aconverse, raw)
    assert [type(e) for e in journaled] == [type(e) for e in plain]
    assert [_normalized(e.model_dump()) for e in journaled] == [_normalized(e.model_dump()) for e in plain]
    assert len(journaled) > 40  # deltas, audio chunks and all


def _cancel_sync(client: Any) -> Any:
    with client.realtime.connect(model=REALTIME) as conn:
        conn.conversation.item.create(item=user_text())
        conn.response.create(response={"output_modalities": ["text"], "max_output_tokens": 400})
        for event in conn:
            if event.type == "response.output_text.delta":
                conn.response.cancel()
            if event.type == "response.done":
                return event.response
    raise AssertionError("no response.done")


async def _cancel_async(client: Any) -> Any:
    async with client.realtime.connect(model=REALTIME) as conn:
        await conn.conversation.item.create(item=user_text())
        await conn.response.create(response={"output_modalities": ["text"], "max_output_tokens": 400})
        async for event in conn:
            if event.type == "response.output_text.delta":
                await conn.response.cancel()
            if event.type == "response.done":
                return event.response
    raise AssertionError("no response.done")


@pytest.mark.parametrize("kind", ["openai", "async_azure"])
def test_a_cancelled_response_is_aborted_and_priced(rt_sim: Simulator, journal: Journal, kind: str) -> None:
    response = run(kind, _cancel_sync, _cancel_async, rt_client(kind, rt_sim, journal, session_id="cancel"))
    assert response.status == "cancelled"
    journal.flush()
    (row,) = journal.events(session_id="cancel")
    usage = seen_usage(response.usage)
    assert {k: row[k] for k in usage} == usage
    assert 0 < row["output_tokens"] < 400
    assert (row["status"], row["error_code"], row["error_type"]) == ("aborted", "client_cancelled", None)
    assert Decimal(row["cost_usd"]) == list_price("gpt-realtime", usage)


def test_a_response_open_when_the_socket_closes_is_aborted(rt_sim: Simulator, journal: Journal) -> None:
    client = rt_client("openai", rt_sim, journal, session_id="closed")
    with client, client.realtime.connect(model=REALTIME) as conn:
        conn.conversation.item.create(item=user_text())
        conn.response.create(response={"max_output_tokens": 400})
        for event in conn:
            if event.type == "response.output_audio_transcript.delta":
                break
    journal.flush()
    (row,) = journal.events(session_id="closed")
    assert (row["endpoint"], row["status"], row["error_code"]) == ("realtime", "aborted", "connection_closed")
    assert row["usage_source"] == "missing" and row["input_tokens"] is None
    assert row["cost_usd"] is None and row["unpriced_reason"] == "no usage"


def _reconnect_sync(client: Any, key: str) -> list[str]:
    seen: list[str] = []
    fault = {"x-sim-fault": "disconnect", "x-sim-fail-times": "1", "x-sim-fault-key": key}
    with client.realtime.connect(model=REALTIME, extra_headers=fault, on_reconnecting=lambda event: None,
                                 initial_delay=0.01) as conn:
        conn.conversation.item.create(item=user_text())
        conn.response.create(response={"output_modalities": ["text"]})
        for event in conn:
            seen.append(event.type)
            if event.type == "session.created" and seen.count("session.created") == 2:  # a new socket
                conn.conversation.item.create(item=user_text("And in Porto?"))
                conn.response.create(response={"output_modalities": ["text"]})
            if seen.count("response.done") == 2:
                break
    return seen


async def _reconnect_async(client: Any, key: str) -> list[str]:
    seen: list[str] = []
    fault = {"x-sim-fault": "disconnect", "x-sim-fail-times": "1", "x-sim-fault-key": key}
    async with client.realtime.connect(model=REALTIME, extra_headers=fault, on_reconnecting=lambda event: None,
                                       initial_delay=0.01) as conn:
        await conn.conversation.item.create(item=user_text())
        await conn.response.create(response={"output_modalities": ["text"]})
        async for event in conn:
            seen.append(event.type)
            if event.type == "session.created" and seen.count("session.created") == 2:
                await conn.conversation.item.create(item=user_text("And in Porto?"))
                await conn.response.create(response={"output_modalities": ["text"]})
            if seen.count("response.done") == 2:
                break
    return seen


@pytest.mark.parametrize("kind", ["openai", "async_azure"])
def test_the_tap_survives_a_reconnection(rt_sim: Simulator, journal: Journal, kind: str) -> None:
    client = rt_client(kind, rt_sim, journal, session_id="reconnect")
    seen = run(kind, _reconnect_sync, _reconnect_async, client, uuid.uuid4().hex)
    assert seen.count("session.created") == 2  # the server closed after the first response; the SDK reconnected
    journal.flush()
    rows = journal.events(session_id="reconnect")
    assert [(r["endpoint"], r["status"], r["model_served"]) for r in rows] == [("realtime", "ok", SERVED)] * 2
    assert rows[1]["cached_input_tokens"] == 0  # a new server session: a new conversation
    assert all(Decimal(r["cost_usd"]) > 0 for r in rows)


def _transcribe_sync(client: Any, model: str) -> Any:
    with client.realtime.connect(model=REALTIME) as conn:
        conn.session.update(session={"type": "realtime", "audio": {"input": {"transcription": {"model": model}}}})
        conn.input_audio_buffer.append(audio=AUDIO)
        conn.input_audio_buffer.commit()
        for event in conn:
            if event.type == "conversation.item.input_audio_transcription.completed":
                return event.usage
    raise AssertionError("no transcription")


async def _transcribe_async(client: Any, model: str) -> Any:
    async with client.realtime.connect(model=REALTIME) as conn:
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"transcription": {"model": model}}}})
        await conn.input_audio_buffer.append(audio=AUDIO)
        await conn.input_audio_buffer.commit()
        async for event in conn:
            if event.type == "conversation.item.input_audio_transcription.completed":
                return event.usage
    raise AssertionError("no transcription")


@pytest.mark.parametrize("kind", ["azure", "async_openai"])
def test_input_transcription_is_journaled_at_the_transcription_models_price(
        rt_sim: Simulator, journal: Journal, kind: str) -> None:
    client = rt_client(kind, rt_sim, journal, session_id="transcribe")
    usage = run(kind, _transcribe_sync, _transcribe_async, client, "gpt-4o-transcribe")
    journal.flush()
    (row,) = journal.events(session_id="transcribe")
    expected = {"endpoint": "realtime.transcription", "model_requested": "gpt-4o-transcribe",
                "model_served": "gpt-4o-transcribe", "canonical_model": "gpt-4o-transcribe", "deployment": None,
                "input_tokens": usage.input_tokens, "audio_input_tokens": 10, "output_tokens": usage.output_tokens,
                "status": "ok", "stream": False, "usage_source": "reported",
                "provider": "azure_openai" if kind == "azure" else "openai"}
    assert {k: row[k] for k in expected} == expected
    calc = genai_prices.calc_price(genai_prices.Usage(
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, input_audio_tokens=10),
        "gpt-4o-transcribe", provider_id="openai")
    assert Decimal(row["cost_usd"]) == Decimal(calc.total_price) > 0


def test_duration_billed_transcription_is_journaled(rt_sim: Simulator, journal: Journal) -> None:
    client = rt_client("openai", rt_sim, journal, session_id="whisper")
    with client:
        usage = _transcribe_sync(client, "whisper-1")
    assert (usage.type, usage.seconds) == ("duration", 1)
    journal.flush()
    (row,) = journal.events(session_id="whisper")
    assert (row["endpoint"], row["model_served"], row["status"]) == ("realtime.transcription", "whisper-1", "ok")
    assert row["usage_source"] == "missing"  # seconds, not tokens: units are not read for this endpoint yet


def _beta_sync(client: Any) -> Any:
    with client.beta.realtime.connect(model=REALTIME) as conn:
        conn.session.update(session={"modalities": ["text"]})
        conn.conversation.item.create(item=user_text())
        conn.response.create()
        for event in conn:
            if event.type == "response.done":
                return event.response
    raise AssertionError("no response.done")


async def _beta_async(client: Any) -> Any:
    async with client.beta.realtime.connect(model=REALTIME) as conn:
        await conn.session.update(session={"modalities": ["text"]})
        await conn.conversation.item.create(item=user_text())
        await conn.response.create()
        async for event in conn:
            if event.type == "response.done":
                return event.response
    raise AssertionError("no response.done")


@pytest.mark.parametrize("kind", ["azure", "async_openai"])
def test_the_beta_surface_is_journaled(rt_sim: Simulator, journal: Journal, kind: str) -> None:
    # the beta surface connects with wss:// unless told otherwise
    ws_base = rt_sim.url.replace("http://", "ws://") + ("/openai" if "azure" in kind else "/v1")
    client = rt_client(kind, rt_sim, journal, session_id="beta", websocket_base_url=ws_base)
    response = run(kind, _beta_sync, _beta_async, client)
    journal.flush()
    (row,) = journal.events(session_id="beta")
    assert (row["endpoint"], row["status"], row["model_served"]) == ("realtime", "ok", SERVED)
    assert (row["input_tokens"], row["output_tokens"]) == (response.usage.input_tokens, response.usage.output_tokens)
    assert Decimal(row["cost_usd"]) > 0


def test_opt_in_content_keeps_the_usage(rt_sim: Simulator, journal: Journal) -> None:
    client = rt_client("openai", rt_sim, journal, session_id="content", store_content=True,
                       websocket_base_url=rt_sim.url.replace("http://", "ws://") + "/v1")
    with client:
        response = _beta_sync(client)
    journal.flush()
    (row,) = journal.events(session_id="content")
    assert row["input_tokens"] == response.usage.input_tokens and row["model_served"] == SERVED
    assert row["content"]["response_text"] == response.output[0].content[0].text
    assert Decimal(row["cost_usd"]) > 0


# -- the tap on its own ---------------------------------------------------------------------------

def test_event_types_are_read_without_decoding() -> None:
    assert _event_type(b'{"type":"response.output_audio.delta","delta":"AAAA"}') == "response.output_audio.delta"
    assert _event_type('{"type": "response.done", "response": {}}') == "response.done"
    # the type is not first: only the watched types are searched for, and only as JSON strings
    assert _event_type(b'{"event_id":"e","type":"response.done"}') == "response.done"
    assert _event_type('{"event_id":"e","type":"response.output_text.delta"}') is None
    assert _event_type(b'{"delta":"say \\"response.done\\" now"}') is None


def test_the_tap_never_raises(journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    client = tokenid.JournaledOpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", journal=journal,
                                     session_id="tap")
    tap = _Tap(_Origin(client, REALTIME), object())
    with caplog.at_level(logging.ERROR, logger="tokenid"):
        for message in (b'{"type":"response.done",', b'{"type":"response.done","response":[1]}',
                        '{"type":"session.created","session":"x"}', b"\xff\xfe", b"[]",
                        b'{"type":"response.done","response":{"id":"r","status":7,"usage":{"input_tokens":-3}}}'):
            tap.see(message)
        tap.closed()
    assert "cannot journal a realtime event" in caplog.text  # the broken JSON, logged
    journal.flush()
    (row,) = journal.events(session_id="tap")  # the last one, with what could be read
    assert (row["endpoint"], row["status"], row["input_tokens"]) == ("realtime", "ok", 0)
    client.close()
