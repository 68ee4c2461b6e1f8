"""Streams and errors: every way a call can end is journaled, once."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest

from tokenid import Journal, tokens

from conftest import make_client

LONG = {"max_tokens": 100}
MSG = [{"role": "user", "content": "Tell me a long story about budgets"}]


def only_row(journal: Journal, session: str) -> dict[str, Any]:
    journal.flush()
    rows = journal.events(session_id=session)
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("kind", ["azure", "openai"])
def test_injected_usage_chunk_is_folded_not_shown(sim: Any, journal: Journal, kind: str) -> None:
    client = make_client(kind, sim, journal, session_id="fold")
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True, **LONG))
    client.close()
    assert len(chunks) >= 90
    # chunk.choices[0] works on every chunk (Azure's first chunk carries only prompt_filter_results: real shape)
    assert all(c.choices for c in chunks if not getattr(c, "prompt_filter_results", None))
    assert chunks[-1].usage is not None and all(c.usage is None for c in chunks[:-1])
    row = only_row(journal, "fold")
    assert row["usage_source"] == "reported"
    assert row["output_tokens"] == chunks[-1].usage.completion_tokens
    assert row["input_tokens"] == chunks[-1].usage.prompt_tokens


def test_callers_own_stream_options_are_left_alone(sim: Any, journal: Journal) -> None:
    client = make_client("openai", sim, journal, session_id="own")
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True,
                                                 stream_options={"include_usage": True}))
    client.close()
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # exactly what the API sends
    assert only_row(journal, "own")["usage_source"] == "reported"


def test_next_call_style_also_folds(sim: Any, journal: Journal) -> None:
    client = make_client("azure", sim, journal, session_id="next")
    stream = client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True)
    seen = []
    while True:
        try:
            seen.append(next(stream))
        except StopIteration:
            break
    client.close()
    assert all(c.choices for c in seen[1:])  # Azure's first chunk has empty choices: the real shape
    assert seen[-1].usage is not None
    assert only_row(journal, "next")["usage_source"] == "reported"


def test_old_azure_api_version_gets_estimated_usage(sim: Any, journal: Journal) -> None:
    client = make_client("azure", sim, journal, api_version="2024-02-01", session_id="old")
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True, **LONG))
    client.close()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    row = only_row(journal, "old")
    assert all(c.usage is None for c in chunks)
    assert row["usage_source"] == "estimated" and row["status"] == "ok"
    assert row["output_tokens"] == tokens.count_text_tokens(text, "gpt-4o")
    assert row["input_tokens"] == tokens.count_chat_prompt_tokens(MSG, "gpt-4o")
    assert row["cost_usd"] is not None


def test_break_is_journaled_as_aborted_at_once(sim: Any, journal: Journal) -> None:
    client = make_client("azure", sim, journal, session_id="brk")
    stream = client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True, **LONG)
    received = []
    for chunk in stream:
        received.append(chunk)
        if len(received) == 6:
            break
    journal.flush()  # `stream` is still referenced: journaling must not wait for garbage collection
    row = only_row(journal, "brk")
    assert row["status"] == "aborted"
    assert row["usage_source"] == "estimated"
    got = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert 0 < row["output_tokens"] <= tokens.count_text_tokens(got, "gpt-4o") + 10
    stream.close()
    client.close()
    assert len(journal.events(session_id="brk")) == 1


def test_close_before_iterating(sim: Any, journal: Journal) -> None:
    client = make_client("openai", sim, journal, session_id="closed")
    stream = client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True)
    stream.close()
    client.close()
    row = only_row(journal, "closed")
    assert row["status"] == "aborted" and row["stream"] is True


def test_abandoned_stream_is_journaled_on_garbage_collection(sim: Any, journal: Journal) -> None:
    client = make_client("openai", sim, journal, session_id="gc")
    stream = client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True)
    next(stream)
    del stream
    gc.collect()
    client.close()
    assert only_row(journal, "gc")["status"] == "aborted"


def test_disconnect_mid_stream_is_an_error(sim: Any, journal: Journal) -> None:
    client = make_client("azure", sim, journal, session_id="cut")
    stream = client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True, **LONG,
                                            extra_headers={"x-sim-fault": "disconnect"})
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    client.close()
    row = only_row(journal, "cut")
    assert row["status"] == "error" and row["error_type"] in ("APIConnectionError", "APIError")


def test_async_stream_break_and_complete(sim: Any, journal: Journal) -> None:
    client = make_client("async_azure", sim, journal)

    async def main() -> None:
        async with client:
            with __import__("tokenid").session("a-full"):
                s = await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
                items = [c async for c in s]
                assert all(c.choices for c in items[1:]) and items[-1].usage is not None
            with __import__("tokenid").session("a-break"):
                s = await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True, **LONG)
                n = 0
                async for _ in s:
                    n += 1
                    if n == 3:
                        break
                await s.close()

    asyncio.run(main())
    assert only_row(journal, "a-full")["usage_source"] == "reported"
    assert only_row(journal, "a-break")["status"] == "aborted"


def test_responses_stream_helper(sim: Any, journal: Journal) -> None:
    client = make_client("openai", sim, journal, session_id="rs")
    with client.responses.stream(model="gpt-4o", input="hello") as stream:
        final = stream.get_final_response()
    client.close()
    row = only_row(journal, "rs")
    assert row["endpoint"] == "responses" and row["usage_source"] == "reported"
    assert row["output_tokens"] == final.usage.output_tokens  # type: ignore[union-attr]


def test_chat_stream_helper_and_parse(sim: Any, journal: Journal) -> None:
    client = make_client("azure", sim, journal, session_id="helpers")
    with client.chat.completions.stream(model="gpt-4o", messages=MSG) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    parsed = client.chat.completions.parse(model="gpt-4o", messages=MSG)
    client.close()
    journal.flush()
    rows = journal.events(session_id="helpers")
    assert [r["stream"] for r in rows] == [True, False]
    assert rows[0]["usage_source"] == "reported" and final.choices
    assert rows[1]["output_tokens"] == parsed.usage.completion_tokens  # type: ignore[union-attr]


@pytest.mark.parametrize("fault,status,exc,code", [
    ("429", 429, openai.RateLimitError, "429"),
    ("content_filter", 400, openai.BadRequestError, "content_filter"),
    ("500", 500, openai.InternalServerError, None),
    ("401", 401, openai.AuthenticationError, "401"),
])
def test_http_errors_are_journaled(sim: Any, journal: Journal, fault: str, status: int, exc: type,
                                   code: str | None) -> None:
    client = make_client("azure", sim, journal, session_id=f"err-{fault}")
    with pytest.raises(exc):
        client.chat.completions.create(model="gpt-4o", messages=MSG, extra_headers={"x-sim-fault": fault})
    client.close()
    row = only_row(journal, f"err-{fault}")
    assert row["status"] == "error" and row["http_status"] == status
    assert row["error_type"] == exc.__name__
    if code:
        assert row["error_code"].startswith(code)
    assert row["cost_usd"] is None and row["unpriced_reason"] == "error response"


def test_unknown_deployment(sim: Any, journal: Journal) -> None:
    client = make_client("azure", sim, journal, session_id="404")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-deployment", messages=MSG)
    client.close()
    row = only_row(journal, "404")
    assert (row["http_status"], row["error_code"], row["deployment"]) == (404, "DeploymentNotFound",
                                                                          "no-such-deployment")


def test_timeout_is_journaled(sim: Any, journal: Journal) -> None:
    client = make_client("openai", sim, journal, session_id="slow", timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=MSG, extra_headers={"x-sim-fault": "slow"})
    client.close()
    row = only_row(journal, "slow")
    assert row["status"] == "error" and row["error_type"] == "APITimeoutError" and row["http_status"] is None


def test_sdk_retries_make_one_event(sim: Any, journal: Journal) -> None:
    client = make_client("azure", sim, journal, session_id="retry", max_retries=2)
    reply = client.chat.completions.create(model="gpt-4o", messages=MSG, extra_headers={
        "x-sim-fault": "429", "x-sim-fail-times": "1", "x-sim-fault-key": "retry-test"})
    client.close()
    row = only_row(journal, "retry")
    assert row["attempts"] == 2 and row["status"] == "ok" and row["http_status"] == 200
    assert row["output_tokens"] == reply.usage.completion_tokens  # type: ignore[union-attr]
