"""The simulator's Realtime WebSocket endpoint, on the wire: handshake, refusals, events and token rules."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tokenid.simulator import DEFAULT_DEPLOYMENTS, DEFAULT_REPLY_TOKENS, Simulator
from tokenid.simulator.media import input_audio_tokens, output_audio_tokens, pcm_bytes, speech_seconds
from tokenid.simulator.realtime import DEFAULT_INSTRUCTIONS, PCM16_BYTES_PER_SECOND
from tokenid.tokens import count_chat_prompt_tokens, count_text_tokens

KEY = "sk-realtime-test-key-0123456789"
SERVED = "gpt-realtime-2025-08-28"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(deployments={**DEFAULT_DEPLOYMENTS, "gpt-realtime": SERVED}, api_keys={KEY}) as server:
        yield server


def ws_url(sim: Simulator, path: str) -> str:
    return sim.url.replace("http://", "ws://") + path


def open_ws(sim: Simulator, path: str = "/v1/realtime?model=gpt-realtime", **headers: str) -> ClientConnection:
    return connect(ws_url(sim, path), additional_headers={"Authorization": f"Bearer {KEY}", **headers})


def recv(ws: ClientConnection) -> dict[str, Any]:
    message = ws.recv(timeout=5)
    event = json.loads(message)
    assert isinstance(event, dict)
    return event


def send(ws: ClientConnection, kind: str, **fields: Any) -> None:
    ws.send(json.dumps({"type": kind, **fields}))


def until(ws: ClientConnection, kind: str) -> tuple[dict[str, Any], list[str]]:
    """Events up to the first of type ``kind``: that event and the types seen on the way."""
    seen: list[str] = []
    while True:
        event = recv(ws)
        seen.append(event["type"])
        if event["type"] == kind:
            return event, seen


def user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


@pytest.mark.parametrize("path,azure", [
    ("/v1/realtime?model=gpt-realtime", False),
    ("/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-realtime", True),
    ("/openai/v1/realtime?model=gpt-realtime", True),
])
def test_session_created_names_the_served_model(sim: Simulator, path: str, azure: bool) -> None:
    headers = {"api-key": KEY} if azure else {}
    with connect(ws_url(sim, path), additional_headers=headers or {"Authorization": f"Bearer {KEY}"}) as ws:
        assert ws.response is not None
        if azure:
            assert ws.response.headers["x-ms-region"] == sim.region
            assert ws.response.headers["apim-request-id"]
        else:
            assert ws.response.headers["x-request-id"].startswith("req_")
        raw = ws.recv(timeout=5)
        assert isinstance(raw, str) and raw.startswith('{"type":"session.created","event_id":"event_')
        session = json.loads(raw)["session"]
        assert (session["model"], session["type"], session["instructions"]) == (SERVED, "realtime",
                                                                                 DEFAULT_INSTRUCTIONS)


@pytest.mark.parametrize("path,headers,status,text", [
    ("/v1/realtime?model=gpt-realtime", {"Authorization": "Bearer sk-wrong-key-000000000000"}, 401,
     "Incorrect API key provided"),
    ("/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-realtime", {"api-key": "wrong"}, 401,
     "invalid subscription key"),
    ("/openai/realtime?api-version=2025-04-01-preview&deployment=nope", {"api-key": KEY}, 404, "DeploymentNotFound"),
    ("/openai/realtime?deployment=gpt-realtime", {"api-key": KEY}, 404, "Resource not found"),
    ("/openai/v1/realtime?model=gpt-realtime", {"api-key": KEY, "x-sim-fault": "401"}, 401, "subscription key"),
])
def test_a_refused_upgrade_answers_the_http_error(sim: Simulator, path: str, headers: dict[str, str], status: int,
                                                  text: str) -> None:
    with pytest.raises(InvalidStatus) as caught:
        connect(ws_url(sim, path), additional_headers=headers)
    assert caught.value.response.status_code == status
    assert text in caught.value.response.body.decode()


def test_token_rules_across_two_turns(sim: Simulator) -> None:
    audio = pcm_bytes(1.5)
    with open_ws(sim) as ws:
        recv(ws)
        send(ws, "session.update", session={"type": "realtime", "output_modalities": ["text"]})
        assert recv(ws)["session"]["output_modalities"] == ["text"]
        send(ws, "conversation.item.create", item=user_text("What is the capital of Portugal?"))
        assert [recv(ws)["type"] for _ in range(2)] == ["conversation.item.added", "conversation.item.done"]
        for start in range(0, len(audio), 9600):
            send(ws, "input_audio_buffer.append", audio=base64.b64encode(audio[start:start + 9600]).decode())
        send(ws, "input_audio_buffer.commit")
        assert recv(ws)["type"] == "input_audio_buffer.committed"
        send(ws, "response.create")
        done, seen = until(ws, "response.done")
        text_in = count_chat_prompt_tokens([{"role": "system", "content": DEFAULT_INSTRUCTIONS},
                                            {"role": "user", "content": "What is the capital of Portugal?"},
                                            {"role": "user", "content": ""}], SERVED)
        first = done["response"]
        assert first["status"] == "completed" and first["output_modalities"] == ["text"]
        assert seen.count("response.output_text.delta") == DEFAULT_REPLY_TOKENS
        reply = first["output"][0]["content"][0]["text"]
        assert first["usage"] == {
            "total_tokens": text_in + 15 + DEFAULT_REPLY_TOKENS, "input_tokens": text_in + 15,
            "output_tokens": DEFAULT_REPLY_TOKENS,
            "input_token_details": {"text_tokens": text_in, "audio_tokens": 15, "image_tokens": 0, "cached_tokens": 0,
                                    "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
            "output_token_details": {"text_tokens": DEFAULT_REPLY_TOKENS, "audio_tokens": 0},
        }
        send(ws, "response.create", response={"output_modalities": ["audio"], "max_output_tokens": 8})
        done, seen = until(ws, "response.done")
        second = done["response"]
        transcript = second["output"][0]["content"][0]["transcript"]
        assert count_text_tokens(transcript, SERVED) == 8
        audio_out = output_audio_tokens(speech_seconds(transcript))
        usage = second["usage"]
        assert usage["output_token_details"] == {"text_tokens": 8, "audio_tokens": audio_out}
        assert usage["output_tokens"] == 8 + audio_out
        # the earlier text reply is now input text; the whole first input is a cache hit
        details = usage["input_token_details"]
        assert details["cached_tokens"] == first["usage"]["input_tokens"]
        assert details["cached_tokens_details"] == {"text_tokens": text_in, "audio_tokens": 15, "image_tokens": 0}
        assert details["text_tokens"] == count_chat_prompt_tokens(
            [{"role": "system", "content": DEFAULT_INSTRUCTIONS},
             {"role": "user", "content": "What is the capital of Portugal?"}, {"role": "user", "content": ""},
             {"role": "assistant", "content": reply}], SERVED)
        assert "response.output_audio.delta" in seen and "response.output_audio_transcript.done" in seen
        # a third turn also finds the audio reply cached, as audio
        send(ws, "response.create", response={"output_modalities": ["text"]})
        third = until(ws, "response.done")[0]["response"]["usage"]["input_token_details"]
        assert third["cached_tokens_details"]["audio_tokens"] == 15
        reply_seconds = len(pcm_bytes(speech_seconds(transcript))) / PCM16_BYTES_PER_SECOND
        assert third["audio_tokens"] == 15 + input_audio_tokens(reply_seconds)


def test_cancel(sim: Simulator) -> None:
    with open_ws(sim) as ws:
        recv(ws)
        send(ws, "response.cancel", event_id="evt_1")
        error = until(ws, "error")[0]["error"]
        assert (error["code"], error["event_id"]) == ("response_cancel_not_active", "evt_1")
        send(ws, "conversation.item.create", item=user_text("Count to a thousand."))
        send(ws, "response.create", response={"output_modalities": ["text"], "max_output_tokens": 500})
        until(ws, "response.output_text.delta")
        send(ws, "response.create")
        assert until(ws, "error")[0]["error"]["code"] == "conversation_already_has_active_response"
        send(ws, "response.cancel")
        response = until(ws, "response.done")[0]["response"]
        assert response["status"] == "cancelled"
        assert response["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        assert 0 < response["usage"]["output_tokens"] < 500
        assert response["output"][0]["status"] == "incomplete"


def test_input_transcription_usage(sim: Simulator) -> None:
    with open_ws(sim) as ws:
        recv(ws)
        for model, expected in (("whisper-1", {"type": "duration", "seconds": 3}), ("gpt-4o-mini-transcribe", None)):
            send(ws, "session.update", session={"audio": {"input": {"transcription": {"model": model}}}})
            until(ws, "session.updated")
            send(ws, "input_audio_buffer.append", audio=base64.b64encode(pcm_bytes(2.5)).decode())
            send(ws, "input_audio_buffer.commit")
            event = until(ws, "conversation.item.input_audio_transcription.completed")[0]
            words = event["transcript"]
            if expected is not None:
                assert event["usage"] == expected
            else:
                out = count_text_tokens(words, model)
                assert event["usage"] == {"type": "tokens", "total_tokens": 25 + out, "input_tokens": 25,
                                          "input_token_details": {"text_tokens": 0, "audio_tokens": 25},
                                          "output_tokens": out}
        send(ws, "input_audio_buffer.commit")
        assert until(ws, "error")[0]["error"]["code"] == "input_audio_buffer_commit_empty"


def test_beta_clients_get_the_beta_dialect(sim: Simulator) -> None:
    with open_ws(sim, **{"OpenAI-Beta": "realtime=v1"}) as ws:
        session = recv(ws)["session"]
        assert session["modalities"] == ["text", "audio"] and "output_modalities" not in session
        send(ws, "conversation.item.create", item=user_text("Hi"))
        assert recv(ws)["type"] == "conversation.item.created"
        send(ws, "response.create", response={"modalities": ["text", "audio"]})
        done, seen = until(ws, "response.done")
        assert "response.audio.delta" in seen and "response.audio_transcript.delta" in seen
        assert not any(kind.startswith("response.output_") and "delta" in kind for kind in seen)
        assert done["response"]["output"][0]["content"][0]["type"] == "audio"
        assert "image_tokens" not in done["response"]["usage"]["input_token_details"]


def test_unknown_events_and_the_disconnect_fault(sim: Simulator) -> None:
    with open_ws(sim, **{"x-sim-fault": "disconnect", "x-sim-fault-key": "rt-sim-disconnect",
                         "x-sim-fail-times": "1"}) as ws:
        recv(ws)
        send(ws, "conversation.frobnicate")
        error = until(ws, "error")[0]["error"]
        assert (error["code"], error["param"]) == ("invalid_value", "type")
        send(ws, "response.create")
        until(ws, "response.done")
        with pytest.raises(ConnectionClosed) as closed:
            recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    with open_ws(sim, **{"x-sim-fault": "disconnect", "x-sim-fault-key": "rt-sim-disconnect",
                         "x-sim-fail-times": "1"}) as ws:  # only the first socket got the fault
        recv(ws)
        send(ws, "response.create")
        until(ws, "response.done")
        send(ws, "response.cancel")
        assert until(ws, "error")[0]["error"]["code"] == "response_cancel_not_active"
