"""The simulator driven over real HTTP by the real openai SDK (and raw HTTP for wire details)."""

from __future__ import annotations

import base64
import gzip
import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from tokenid.simulator import (
    CACHE_INCREMENT,
    DEFAULT_DEPLOYMENTS,
    DEFAULT_REPLY_TOKENS,
    REASONING_TOKENS,
    Simulator,
)
from tokenid.simulator.app import DISCONNECT_AFTER_EVENTS
from tokenid.simulator.content import CLOSING_TOKEN, OPENING_TOKEN, REPLY_WORDS
from tokenid.tokens import count_input_tokens, count_text_tokens

CORPUS = Path("/work/shared/conformance/corpus.jsonl.gz")
NEW_API = "2024-10-21"
OLD_API = "2024-02-01"
KEY = "sk-simulator-test-key-0123456789"
MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three colours."},
]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as server:
        yield server


@pytest.fixture(scope="module")
def locked() -> Iterator[Simulator]:
    with Simulator(api_keys={KEY}, region="eastus2") as server:
        yield server


_open_clients: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close every SDK client a test made, so no socket outlives it."""
    yield
    while _open_clients:
        _open_clients.pop().close()


def azure(sim: Simulator, api_version: str = NEW_API, **kw: Any) -> openai.AzureOpenAI:
    client = openai.AzureOpenAI(azure_endpoint=sim.azure_endpoint, api_key=KEY, api_version=api_version, **kw)
    _open_clients.append(client)
    return client


def oai(sim: Simulator, **kw: Any) -> openai.OpenAI:
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key=KEY, **kw)
    _open_clients.append(client)
    return client


def azure_v1(sim: Simulator, **kw: Any) -> openai.OpenAI:
    client = openai.OpenAI(base_url=sim.url + "/openai/v1", api_key=KEY, **kw)
    _open_clients.append(client)
    return client


def sse_data(text: str) -> list[Any]:
    """The JSON payloads of a ``data:`` event stream, ``[DONE]`` kept as the string."""
    events: list[Any] = []
    for block in text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                payload = line[len("data: ") :]
                events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def raw_post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.post(url, json=body, headers={"api-key": KEY, **(headers or {})}, timeout=10)


# ----------------------------------------------------------------------------- lifecycle


def test_starts_fast_and_runs_side_by_side() -> None:
    started = time.perf_counter()
    first = Simulator().start()
    second = Simulator().start()
    try:
        assert time.perf_counter() - started < 1.0
        assert first.url.startswith("http://127.0.0.1:")
        assert first.port != second.port
        assert first.azure_endpoint == first.url
        assert first.openai_base_url == first.url + "/v1"
        assert httpx2.get(second.openai_base_url + "/models").status_code == 200
    finally:
        first.stop()
        second.stop()
    with pytest.raises(RuntimeError):
        _ = first.url
    restarted = first.start()
    try:
        assert httpx2.get(restarted.openai_base_url + "/models").status_code == 200
    finally:
        restarted.stop()


def test_default_deployments() -> None:
    assert DEFAULT_DEPLOYMENTS["gpt-4o"] == "gpt-4o-2024-08-06"
    assert DEFAULT_DEPLOYMENTS["embeddings"] == "text-embedding-ada-002"
    assert DEFAULT_DEPLOYMENTS["o3-mini"] == "o3-mini-2025-01-31"


def test_reply_pieces_are_single_tokens() -> None:
    for piece in (OPENING_TOKEN, CLOSING_TOKEN, *REPLY_WORDS):
        assert count_text_tokens(piece, "gpt-4o") == 1
        assert count_text_tokens(piece, "gpt-35-turbo") == 1


# ------------------------------------------------------------------------------- chat


def test_azure_chat(sim: Simulator) -> None:
    raw = azure(sim).chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    result = raw.parse()
    assert result.model == "gpt-4o-2024-08-06"
    assert result.object == "chat.completion"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.prompt_tokens == count_input_tokens({"messages": MESSAGES}, "gpt-4o-2024-08-06")
    assert result.usage.completion_tokens == DEFAULT_REPLY_TOKENS
    assert result.usage.completion_tokens == count_text_tokens(result.choices[0].message.content or "", "gpt-4o")
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 0
    assert result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details.reasoning_tokens == 0
    body = json.loads(raw.http_response.text)
    assert body["prompt_filter_results"][0]["content_filter_results"]["jailbreak"] == {
        "detected": False,
        "filtered": False,
    }
    assert body["choices"][0]["content_filter_results"]["violence"] == {"filtered": False, "severity": "safe"}
    assert list(body) == sorted(body)  # Azure's gateway sorts keys
    headers = raw.headers
    for name in ("apim-request-id", "x-request-id", "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"):
        assert headers.get(name)
    assert headers["x-ms-region"] == sim.region == "Sweden Central"
    assert headers["x-ms-deployment-name"] == "gpt-4o"
    assert "openai-processing-ms" not in headers


def test_reply_is_deterministic(sim: Simulator) -> None:
    client = azure(sim)
    first = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    again = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    other = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Something else"}])
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content


def test_openai_chat(sim: Simulator) -> None:
    raw = oai(sim).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=7, n=2)
    result = raw.parse()
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert len(result.choices) == 2
    assert result.usage is not None
    assert result.usage.completion_tokens == 14
    assert result.service_tier == "default"
    body = json.loads(raw.http_response.text)
    assert "prompt_filter_results" not in body
    assert "content_filter_results" not in body["choices"][0]
    assert raw.headers["x-request-id"].startswith("req_")
    for name in ("openai-processing-ms", "x-ratelimit-limit-requests", "x-ratelimit-remaining-tokens"):
        assert raw.headers.get(name)
    assert "apim-request-id" not in raw.headers


def test_unknown_openai_model_is_served_as_named(sim: Simulator) -> None:
    result = oai(sim).chat.completions.create(model="gpt-4.1-nano", messages=MESSAGES)
    assert result.model == "gpt-4.1-nano"


def test_reasoning_model_reports_reasoning_tokens(sim: Simulator) -> None:
    result = azure(sim).chat.completions.create(model="o3-mini", messages=MESSAGES, max_completion_tokens=10)
    assert result.usage is not None
    assert result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details.reasoning_tokens == REASONING_TOKENS
    assert result.usage.completion_tokens == 10 + REASONING_TOKENS


def test_long_prompts_report_cached_tokens(sim: Simulator) -> None:
    long_prompt = "Remember this sentence about tokens and caching. " * 150
    messages: list[Any] = [{"role": "user", "content": long_prompt}]
    result = oai(sim).chat.completions.create(model="gpt-4o", messages=messages)
    assert result.usage is not None
    prompt_tokens = result.usage.prompt_tokens
    assert prompt_tokens >= 1024
    assert result.usage.prompt_tokens_details is not None
    cached = result.usage.prompt_tokens_details.cached_tokens
    assert cached == prompt_tokens // CACHE_INCREMENT * CACHE_INCREMENT
    assert cached > 0


# ---------------------------------------------------------------------------- streams


def test_azure_stream_without_usage(sim: Simulator) -> None:
    chunks = list(azure(sim).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    first = chunks[0]
    assert first.choices == []
    assert first.model == ""
    assert first.id == ""
    assert (first.model_extra or {}).get("prompt_filter_results")
    assert all(chunk.usage is None for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    plain = azure(sim).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert text == plain.choices[0].message.content
    content_chunks = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert len(content_chunks) == DEFAULT_REPLY_TOKENS
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_azure_stream_wire_shape_with_usage(sim: Simulator) -> None:
    url = f"{sim.url}/openai/deployments/gpt-4o/chat/completions?api-version={NEW_API}"
    body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 100}
    response = raw_post(url, body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_data(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0] == {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": chunks[0]["prompt_filter_results"],
    }
    assert "usage" not in chunks[0]
    assert all(chunk["usage"] is None for chunk in chunks[1:-1])
    final = chunks[-1]
    assert final["choices"] == []
    assert final["usage"]["completion_tokens"] == 100
    assert set(final["usage"]) >= {"prompt_tokens_details", "completion_tokens_details", "total_tokens"}
    content = [c for c in chunks[1:-1] if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) == 100
    assert all("content_filter_results" in c["choices"][0] for c in content)
    assert all("obfuscation" not in c for c in chunks)


def test_sdk_stream_with_usage(sim: Simulator) -> None:
    for client in (azure(sim), oai(sim), azure_v1(sim)):
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}, max_tokens=100
        )
        chunks = list(stream)
        usage = chunks[-1].usage
        assert usage is not None
        assert usage.completion_tokens == 100
        assert chunks[-1].choices == []
        assert all(chunk.usage is None for chunk in chunks[:-1])
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 100


def test_openai_stream_wire_shape(sim: Simulator) -> None:
    url = sim.openai_base_url + "/chat/completions"
    plain = sse_data(raw_post(url, {"model": "gpt-4o", "messages": MESSAGES, "stream": True}).text)
    assert plain[-1] == "[DONE]"
    assert all("usage" not in chunk for chunk in plain[:-1])
    assert all("obfuscation" in chunk for chunk in plain[:-1])
    assert plain[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    quiet = sse_data(
        raw_post(
            url,
            {"model": "gpt-4o", "messages": MESSAGES, "stream": True, "stream_options": {"include_obfuscation": False}},
        ).text
    )
    assert all("obfuscation" not in chunk for chunk in quiet[:-1])


def test_old_api_version_rejects_stream_options(sim: Simulator) -> None:
    client = azure(sim, api_version=OLD_API)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": "Unrecognized request argument supplied: stream_options",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert all(chunk.usage is None for chunk in chunks)


@pytest.mark.parametrize(
    "api_version", ["2024-08-01-preview", "2024-09-01-preview", "2024-10-21", "2025-04-01-preview"]
)
def test_newer_api_versions_accept_stream_options(sim: Simulator, api_version: str) -> None:
    chunks = list(
        azure(sim, api_version=api_version).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage is not None


@pytest.mark.parametrize("api_version", ["2023-05-15", "2024-02-15-preview", "2024-06-01", "2024-07-01-preview"])
def test_older_api_versions_reject_stream_options(sim: Simulator, api_version: str) -> None:
    with pytest.raises(openai.BadRequestError):
        azure(sim, api_version=api_version).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )


async def test_async_azure_client(sim: Simulator) -> None:
    client = openai.AsyncAzureOpenAI(azure_endpoint=sim.azure_endpoint, api_key=KEY, api_version=NEW_API)
    result = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.usage is not None
    assert result.usage.completion_tokens == DEFAULT_REPLY_TOKENS
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}, max_tokens=50
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 50
    await client.close()


# ------------------------------------------------------------------------- completions


def test_legacy_completions(sim: Simulator) -> None:
    raw = azure(sim).completions.with_raw_response.create(
        model="gpt-35-turbo", prompt="Say this is a test", max_tokens=5
    )
    result = raw.parse()
    assert result.object == "text_completion"
    assert result.usage is not None
    assert result.usage.prompt_tokens == count_text_tokens("Say this is a test", "gpt-35-turbo")
    assert result.usage.completion_tokens == 5
    assert "prompt_filter_results" in json.loads(raw.http_response.text)
    stream = oai(sim).completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt=["one", "two"],
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    assert {c.choices[0].index for c in chunks if c.choices} == {0, 1}


# -------------------------------------------------------------------------- embeddings


def test_embeddings_float_and_base64(sim: Simulator) -> None:
    client = oai(sim)
    inputs = ["Argentina won the World Cup in 2022.", "France won the World Cup in 2018."]
    as_float = client.embeddings.create(model="text-embedding-3-small", input=inputs, encoding_format="float")
    default = client.embeddings.create(model="text-embedding-3-small", input=inputs)  # the SDK asks for base64
    assert len(as_float.data) == 2
    assert len(as_float.data[0].embedding) == 1536
    assert as_float.usage.prompt_tokens == sum(count_text_tokens(t, "text-embedding-3-small") for t in inputs)
    for exact, decoded in zip(as_float.data[0].embedding, default.data[0].embedding, strict=True):
        assert decoded == pytest.approx(exact, abs=1e-6)
    norm = sum(v * v for v in as_float.data[0].embedding)
    assert norm == pytest.approx(1.0, abs=1e-4)
    assert as_float.data[0].embedding != as_float.data[1].embedding


def test_embeddings_wire_base64(sim: Simulator) -> None:
    url = f"{sim.url}/openai/deployments/embeddings/embeddings?api-version=2023-05-15"
    body = raw_post(url, {"input": "Hello world", "encoding_format": "base64"}).json()
    assert body["model"] == "text-embedding-ada-002"
    assert set(body) == {"object", "data", "model", "usage"}
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert len(raw) == 1536 * 4
    values = struct.unpack("<1536f", raw)
    assert sum(v * v for v in values) == pytest.approx(1.0, abs=1e-4)
    assert body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_embeddings_dimensions_and_token_input(sim: Simulator) -> None:
    client = azure(sim)
    result = client.embeddings.create(
        model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]], dimensions=256, encoding_format="float"
    )
    assert [len(item.embedding) for item in result.data] == [256, 256]
    assert result.usage.prompt_tokens == 5
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="embeddings", input="x", dimensions=256)


# --------------------------------------------------------------------------- responses


def test_responses_plain(sim: Simulator) -> None:
    result = oai(sim).responses.create(
        model="gpt-4o", input="Say hello.", instructions="Be brief", max_output_tokens=12
    )
    assert result.status == "completed"
    assert result.model == "gpt-4o-2024-08-06"
    assert result.usage is not None
    assert result.usage.output_tokens == 12
    assert result.usage.input_tokens == count_input_tokens(
        {"input": "Say hello.", "instructions": "Be brief"}, "gpt-4o", endpoint="responses"
    )
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens
    assert count_text_tokens(result.output_text, "gpt-4o") == 12
    assert result.instructions == "Be brief"


def test_responses_reasoning_model(sim: Simulator) -> None:
    result = azure(sim).responses.create(model="o3-mini", input=[{"role": "user", "content": "Think."}])
    assert result.usage is not None
    assert result.usage.output_tokens_details.reasoning_tokens == REASONING_TOKENS
    assert [item.type for item in result.output] == ["reasoning", "message"]


def test_responses_stream_event_sequence(sim: Simulator) -> None:
    for client in (oai(sim), azure(sim), azure_v1(sim)):
        events = list(client.responses.create(model="gpt-4o", input="Stream please", stream=True, max_output_tokens=30))
        kinds = [event.type for event in events]
        assert kinds == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            *["response.output_text.delta"] * 30,
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        assert [event.sequence_number for event in events] == list(range(len(events)))
        completed = events[-1]
        assert completed.type == "response.completed"
        assert completed.response.usage is not None
        assert completed.response.usage.output_tokens == 30
        deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert deltas == completed.response.output_text


def test_responses_stream_wire_has_event_lines(sim: Simulator) -> None:
    text = raw_post(sim.openai_base_url + "/responses", {"model": "gpt-4o", "input": "x", "stream": True}).text
    blocks = [block for block in text.split("\n\n") if block]
    assert all(block.startswith("event: ") and "\ndata: " in block for block in blocks)
    assert "[DONE]" not in text


# ------------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", ["azure", "openai"])
def test_fault_429(sim: Simulator, kind: str) -> None:
    client = (azure(sim) if kind == "azure" else oai(sim)).with_options(max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-sim-fault": "429"})
    response = caught.value.response
    assert response.headers["retry-after"] == "1"
    assert response.headers["retry-after-ms"] == "1000"
    error = response.json()["error"]
    if kind == "azure":
        assert error["code"] == "429"
        assert error["message"].startswith("Requests to the ChatCompletions_Create Operation under Azure OpenAI API")
        assert "Please retry after 1 second." in error["message"]
    else:
        assert error["code"] == "rate_limit_exceeded"
        assert error["type"] == "requests"


def test_fail_times_lets_retries_succeed(sim: Simulator) -> None:
    attempts: list[str] = []

    def count(request: httpx2.Request) -> None:
        attempts.append(str(request.url))

    client = azure(sim, max_retries=3, http_client=httpx2.Client(event_hooks={"request": [count]}))
    headers = {
        "x-sim-fault": "429",
        "x-sim-fail-times": "2",
        "x-sim-fault-key": "retry-test",
        "x-sim-retry-after-ms": "5",
    }
    result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=headers)
    assert result.usage is not None
    assert len(attempts) == 3
    again = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=headers)
    assert again.usage is not None
    assert len(attempts) == 4


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("500", openai.InternalServerError, 500),
        ("503", openai.InternalServerError, 503),
        ("401", openai.AuthenticationError, 401),
        ("content_filter", openai.BadRequestError, 400),
        ("404", openai.NotFoundError, 404),
    ],
)
def test_error_faults(sim: Simulator, fault: str, error: type[openai.APIStatusError], status: int) -> None:
    with pytest.raises(error) as caught:
        azure(sim, max_retries=0).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"x-sim-fault": fault}
        )
    assert caught.value.status_code == status
    if fault == "content_filter":
        body = caught.value.response.json()["error"]
        assert body["code"] == "content_filter"
        assert body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
        assert body["innererror"]["content_filter_result"]["violence"] == {"filtered": True, "severity": "medium"}
    if fault == "500":
        assert "go.microsoft.com/fwlink/?linkid=2213926" in caught.value.response.json()["error"]["message"]


def test_openai_server_error_wording(sim: Simulator) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        oai(sim, max_retries=0).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"x-sim-fault": "503"}
        )
    error = caught.value.response.json()["error"]
    assert error["type"] == "server_error"
    assert "help.openai.com" in error["message"]


def test_fault_disconnect_mid_stream(sim: Simulator) -> None:
    received = []
    stream = oai(sim, max_retries=0).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, extra_headers={"x-sim-fault": "disconnect"}
    )
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == DISCONNECT_AFTER_EVENTS


def test_fault_disconnect_plain(sim: Simulator) -> None:
    with pytest.raises(openai.APIConnectionError):
        azure(sim, max_retries=0).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"x-sim-fault": "disconnect"}
        )


def test_fault_slow(sim: Simulator) -> None:
    headers = {"x-sim-fault": "slow", "x-sim-slow-seconds": "1"}
    with pytest.raises(openai.APITimeoutError):
        azure(sim, max_retries=0, timeout=0.2).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers=headers
        )
    started = time.perf_counter()
    result = azure(sim).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, extra_headers={"x-sim-fault": "slow", "x-sim-slow-seconds": "0.3"}
    )
    assert time.perf_counter() - started >= 0.3
    assert result.usage is not None


def test_fault_no_usage(sim: Simulator) -> None:
    headers = {"x-sim-fault": "no_usage"}
    plain = oai(sim).chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=headers)
    assert plain.usage is None
    chunks = list(
        azure(sim).chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=headers,
        )
    )
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    events = list(oai(sim).responses.create(model="gpt-4o", input="x", stream=True, extra_headers=headers))
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage is None
    embeddings = oai(sim).embeddings.create(model="text-embedding-3-small", input="x", extra_headers=headers)
    assert embeddings.usage is None


def test_unknown_fault_is_rejected(sim: Simulator) -> None:
    response = raw_post(
        sim.openai_base_url + "/chat/completions", {"model": "gpt-4o", "messages": MESSAGES}, {"x-sim-fault": "typo"}
    )
    assert response.status_code == 400
    assert "Unknown x-sim-fault" in response.json()["error"]["message"]


# ------------------------------------------------------------------- auth and routing


def test_api_keys_enforced_on_azure(locked: Simulator) -> None:
    wrong_key = azure(locked, max_retries=0).with_options(api_key="wrong")
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong_key.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.response.json() == {
        "error": {
            "code": "401",
            "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
            "valid key for an active subscription and use a correct regional API endpoint for your resource.",
        }
    }
    raw = azure(locked).chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.headers["x-ms-region"] == "East US 2"
    bearer = httpx2.post(
        f"{locked.url}/openai/deployments/gpt-4o/chat/completions?api-version={NEW_API}",
        json={"messages": MESSAGES},
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert bearer.status_code == 200


def test_api_keys_enforced_on_openai(locked: Simulator) -> None:
    wrong = "sk-wrong-key-0123456789abcdef"
    with pytest.raises(openai.AuthenticationError) as caught:
        oai(locked, max_retries=0).with_options(api_key=wrong).chat.completions.create(
            model="gpt-4o", messages=MESSAGES
        )
    error = caught.value.response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("Incorrect API key provided: sk-wrong*")
    assert wrong not in error["message"]
    assert oai(locked).models.list().data


def test_deployment_not_found(sim: Simulator) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        azure(sim).chat.completions.create(model="no-such-deployment", messages=MESSAGES)
    assert caught.value.response.json() == {
        "error": {
            "code": "DeploymentNotFound",
            "message": "The API deployment for this resource does not exist. If you created the deployment within "
            "the last 5 minutes, please wait a moment and try again.",
        }
    }
    with pytest.raises(openai.NotFoundError):
        azure_v1(sim).chat.completions.create(model="no-such-deployment", messages=MESSAGES)


def test_api_version_required_on_deployment_routes(sim: Simulator) -> None:
    url = f"{sim.url}/openai/deployments/gpt-4o/chat/completions"
    missing = raw_post(url, {"messages": MESSAGES})
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "404", "message": "Resource not found"}}
    bogus = raw_post(url + "?api-version=banana", {"messages": MESSAGES})
    assert bogus.status_code == 400
    assert bogus.json()["error"]["message"] == "API version not supported"
    dated_on_v1 = raw_post(
        sim.url + "/openai/v1/chat/completions?api-version=2024-10-21",
        {
            "model": "gpt-4o",
            "messages": MESSAGES,
        },
    )
    assert dated_on_v1.status_code == 400
    assert (
        raw_post(
            sim.url + "/openai/v1/chat/completions?api-version=preview",
            {
                "model": "gpt-4o",
                "messages": MESSAGES,
            },
        ).status_code
        == 200
    )


def test_azure_v1_routes(sim: Simulator) -> None:
    client = azure_v1(sim)
    chat = client.chat.completions.with_raw_response.create(model="my-gpt4-deployment", messages=MESSAGES)
    assert chat.parse().model == "gpt-4o-2024-08-06"
    assert chat.headers["x-ms-deployment-name"] == "my-gpt4-deployment"
    assert "prompt_filter_results" in json.loads(chat.http_response.text)
    embedded = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert len(embedded.data[0].embedding) == 1536
    completion = client.completions.create(model="gpt-35-turbo", prompt="hello", max_tokens=3)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3
    response = client.responses.create(model="gpt-4o-mini", input="hello")
    assert response.model == "gpt-4o-mini-2024-07-18"


def test_models_list(sim: Simulator) -> None:
    ids = {model.id for model in oai(sim).models.list()}
    assert {"gpt-4o", "gpt-4o-2024-08-06", "text-embedding-3-small"} <= ids


def test_unknown_paths(sim: Simulator) -> None:
    azure_path = raw_post(sim.url + "/openai/nothing-here", {})
    assert azure_path.status_code == 404
    assert azure_path.json() == {"error": {"code": "404", "message": "Resource not found"}}
    openai_path = raw_post(sim.url + "/v1/nothing-here", {})
    assert openai_path.status_code == 404
    assert openai_path.json()["error"]["message"] == "Invalid URL (POST /v1/nothing-here)"


def test_bad_json_and_missing_fields(sim: Simulator) -> None:
    url = sim.openai_base_url + "/chat/completions"
    bad = httpx2.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    missing = raw_post(url, {"messages": MESSAGES})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "model"


def test_latency_setting() -> None:
    with Simulator(latency_s=0.2) as slow:
        started = time.perf_counter()
        oai(slow).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert time.perf_counter() - started >= 0.2


def test_custom_deployments() -> None:
    with Simulator(deployments={"prod-chat": "gpt-4.1-2025-04-14"}) as custom:
        result = azure(custom).chat.completions.create(model="prod-chat", messages=MESSAGES)
        assert result.model == "gpt-4.1-2025-04-14"
        with pytest.raises(openai.NotFoundError):
            azure(custom).chat.completions.create(model="gpt-4o", messages=MESSAGES)


# ------------------------------------------------------------ shapes vs real recordings


def _keys(value: Any) -> set[str]:
    return set(value) if isinstance(value, dict) else set()


def _newest(
    records: list[dict[str, Any]], provider: str, api: str, quirk: str | None = None, contains: str = ""
) -> dict[str, Any]:
    """The most recently recorded successful interaction of a kind (newest shapes)."""
    matches = [
        r
        for r in records
        if r["provider"] == provider
        and r["api"] == api
        and r["response"]["status"] == 200
        and (quirk is None or quirk in r["quirks"])
        and contains in r["response"]["body_text"]
    ]
    assert matches, (provider, api, quirk)
    return max(matches, key=lambda r: (r["meta"].get("source_commit_date") or "", r["id"]))


def _replay(sim: Simulator, record: dict[str, Any]) -> httpx2.Response:
    request = record["request"]
    path = request["path"]
    body = dict(request["body"])
    if record["provider"] == "azure":
        path = path.replace(path.split("/")[3], "gpt-4o", 1) if "/deployments/" in path else path
        url = f"{sim.url}{path}?api-version={request['query'].get('api-version', NEW_API)}"
    else:
        url = sim.url + path
        body["model"] = "gpt-4o-mini" if record["api"] != "embeddings" else "text-embedding-3-small"
    return raw_post(url, body)


@pytest.mark.skipif(not CORPUS.exists(), reason="conformance corpus not present")
def test_shapes_match_real_recordings(sim: Simulator) -> None:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]

    # Azure chat: every recorded key is present at each level.
    record = _newest(records, "azure", "chat", "prompt_filter_results", contains="completion_tokens_details")
    real, ours = json.loads(record["response"]["body_text"]), _replay(sim, record).json()
    assert _keys(real) <= _keys(ours)
    assert _keys(real["choices"][0]) <= _keys(ours["choices"][0])
    assert _keys(real["choices"][0]["message"]) <= _keys(ours["choices"][0]["message"])
    assert _keys(real["usage"]) <= _keys(ours["usage"])
    assert _keys(real["usage"]["completion_tokens_details"]) <= _keys(ours["usage"]["completion_tokens_details"])
    assert _keys(real["prompt_filter_results"][0]) == _keys(ours["prompt_filter_results"][0])
    assert _keys(real["choices"][0]["content_filter_results"]) <= _keys(ours["choices"][0]["content_filter_results"])

    # Azure stream with include_usage: first, content and usage chunks.  Fields Azure adds only for gpt-5.x
    # deployments (obfuscation, service_tier, latency_checkpoint) are not simulated for gpt-4o.
    newer_only = {"obfuscation", "service_tier", "latency_checkpoint"}
    record = _newest(records, "azure", "chat_stream", "include_usage_final_chunk")
    real_chunks = [c for c in sse_data(record["response"]["body_text"]) if c != "[DONE]"]
    our_chunks = [c for c in sse_data(_replay(sim, record).text) if c != "[DONE]"]
    assert _keys(real_chunks[0]) == _keys(our_chunks[0])
    real_content = next(c for c in real_chunks if c["choices"] and c["choices"][0]["delta"].get("content"))
    our_content = next(c for c in our_chunks if c["choices"] and c["choices"][0]["delta"].get("content"))
    assert _keys(real_content) - newer_only <= _keys(our_content)
    assert _keys(real_content["choices"][0]) == _keys(our_content["choices"][0])
    assert real_chunks[-1]["choices"] == our_chunks[-1]["choices"] == []
    assert _keys(real_chunks[-1]) - newer_only <= _keys(our_chunks[-1])

    # OpenAI chat, stream with usage, embeddings, completions.
    record = _newest(records, "openai", "chat")
    real, ours = json.loads(record["response"]["body_text"]), _replay(sim, record).json()
    assert _keys(real) <= _keys(ours)
    assert _keys(real["choices"][0]["message"]) <= _keys(ours["choices"][0]["message"])
    assert _keys(real["usage"]) == _keys(ours["usage"])
    record = _newest(records, "openai", "chat_stream", "include_usage_final_chunk")
    real_chunks = [c for c in sse_data(record["response"]["body_text"]) if c != "[DONE]"]
    our_chunks = [c for c in sse_data(_replay(sim, record).text) if c != "[DONE]"]
    assert _keys(real_chunks[1]) <= _keys(our_chunks[1])
    assert _keys(real_chunks[-1]) <= _keys(our_chunks[-1])
    assert _keys(real_chunks[-1]["usage"]) <= _keys(our_chunks[-1]["usage"])
    record = _newest(records, "openai", "embeddings")
    real, ours = json.loads(record["response"]["body_text"]), _replay(sim, record).json()
    assert _keys(real) == _keys(ours)
    assert _keys(real["data"][0]) == _keys(ours["data"][0])
    assert isinstance(ours["data"][0]["embedding"], type(real["data"][0]["embedding"]))

    # Responses: plain object keys and the stream's event order.
    record = _newest(records, "openai", "responses")
    real, ours = json.loads(record["response"]["body_text"]), _replay(sim, record).json()
    assert _keys(real) - {"billing"} <= _keys(ours)
    assert _keys(real["usage"]) == _keys(ours["usage"])
    record = _newest(records, "openai", "responses_stream")
    real_kinds = [e["type"] for e in sse_data(record["response"]["body_text"])]
    our_events = sse_data(_replay(sim, record).text)
    our_kinds = [e["type"] for e in our_events]

    def collapse(kinds: list[str]) -> list[str]:
        return [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]

    assert collapse(real_kinds) == collapse(our_kinds)
    assert _keys(sse_data(record["response"]["body_text"])[4]) <= _keys(our_events[4])
