"""Responses API built-in tools (web search, file search), plain and streamed, through the raw openai SDK."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from raw_sdk import close_raw_clients, raw_client
from raw_sdk import sim as sim_fixture

from tokenid.simulator import REASONING_TOKENS, Simulator
from tokenid.simulator.content import FILE_SEARCH_HIT_TOKENS, FILE_SEARCH_HITS, WEB_SEARCH_INPUT_TOKENS
from tokenid.tokens import count_input_tokens

sim = sim_fixture  # a simulator of this module's own
_close = close_raw_clients  # autouse: closes the clients each test made

KEY = "sk-simulator-tools-key-0123456789"
API_VERSION = "2025-04-01-preview"
CORPUS = Path("/work/shared/conformance/corpus.jsonl.gz")
QUESTION = "What was a positive news story from today?"


def client(sim: Simulator, kind: str, **kw: Any) -> openai.OpenAI:
    return raw_client(sim, kind, key=KEY, api_version=API_VERSION, **kw)


def prompt_tokens(body: dict[str, Any]) -> int:
    return count_input_tokens(body, "gpt-4o-2024-08-06", endpoint="responses")


@pytest.mark.parametrize("kind", ["openai", "azure", "azure_v1"])
@pytest.mark.parametrize("tool", ["web_search", "web_search_preview"])
def test_web_search_plain(sim: Simulator, kind: str, tool: str) -> None:
    tools: list[Any] = [{"type": tool}]
    result = client(sim, kind).responses.create(model="gpt-4o", input=QUESTION, tools=tools)
    assert [item.type for item in result.output] == ["web_search_call", "message"]
    call = result.output[0]
    assert call.type == "web_search_call"
    assert call.id.startswith("ws_")
    assert call.status == "completed"
    assert call.action.type == "search"
    assert call.action.query == "What was a positive news story from today"
    assert call.action.queries == [call.action.query]
    message = result.output[1]
    assert message.type == "message"
    text = message.content[0]
    assert text.type == "output_text"
    assert [annotation.type for annotation in text.annotations] == ["url_citation"]
    assert result.usage is not None
    assert result.usage.input_tokens == prompt_tokens({"input": QUESTION, "tools": tools}) + WEB_SEARCH_INPUT_TOKENS
    assert result.usage.input_tokens_details.cached_tokens == 0
    echoed = result.tools[0].model_dump()
    assert echoed["type"] == tool
    assert echoed["search_context_size"] == "medium"
    assert echoed["user_location"]["country"] == "US"


def test_web_search_sources_when_included(sim: Simulator) -> None:
    result = client(sim, "openai").responses.create(
        model="gpt-4o",
        input=[{"role": "user", "content": "Weather in New York?"}],
        tools=[{"type": "web_search_preview", "user_location": {"type": "approximate", "city": "New York"}}],
        include=["web_search_call.action.sources"],
    )
    call = result.output[0]
    assert call.type == "web_search_call"
    assert call.action.type == "search"
    assert call.action.sources is not None and call.action.sources[0].url.startswith("https://")
    location = result.tools[0].model_dump()["user_location"]
    assert location["city"] == "New York"
    assert location["country"] is None


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_file_search_plain(sim: Simulator, kind: str) -> None:
    tools: list[Any] = [{"type": "file_search", "vector_store_ids": ["vs_123"], "max_num_results": 1}]
    body = {"input": [{"role": "user", "content": "Who made Logfire?"}], "tools": tools}
    result = client(sim, kind).responses.create(model="gpt-4o", **body)
    assert [item.type for item in result.output] == ["file_search_call", "message"]
    call = result.output[0]
    assert call.type == "file_search_call"
    assert call.id.startswith("fs_")
    assert call.queries == ["Who made Logfire"]
    assert call.results is None
    message = result.output[1]
    assert message.type == "message"
    assert message.content[0].type == "output_text"
    assert message.content[0].annotations[0].type == "file_citation"
    assert result.usage is not None
    assert result.usage.input_tokens == prompt_tokens(body) + FILE_SEARCH_HIT_TOKENS
    echoed = result.tools[0].model_dump()
    assert echoed["max_num_results"] == 1
    assert echoed["vector_store_ids"] == ["vs_123"]
    assert echoed["ranking_options"]["ranker"] == "auto"


def test_file_search_results_when_included(sim: Simulator) -> None:
    tools: list[Any] = [{"type": "file_search", "vector_store_ids": ["vs_123"]}]
    result = client(sim, "openai").responses.create(
        model="gpt-4o", input="Find the passage.", tools=tools, include=["file_search_call.results"]
    )
    call = result.output[0]
    assert call.type == "file_search_call"
    assert call.results is not None and len(call.results) == FILE_SEARCH_HITS
    assert all(hit.file_id and hit.text and hit.score is not None for hit in call.results)
    assert result.usage is not None
    assert result.usage.input_tokens == (
        prompt_tokens({"input": "Find the passage.", "tools": tools}) + FILE_SEARCH_HITS * FILE_SEARCH_HIT_TOKENS
    )


def test_both_tools_and_reasoning_order(sim: Simulator) -> None:
    tools: list[Any] = [{"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "web_search"}]
    result = client(sim, "azure").responses.create(model="o3-mini", input="Compare the docs with the web.", tools=tools)
    assert [item.type for item in result.output] == ["reasoning", "file_search_call", "web_search_call", "message"]
    assert result.usage is not None
    assert result.usage.output_tokens_details.reasoning_tokens == REASONING_TOKENS


STREAM_KINDS_WEB = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.web_search_call.in_progress",
    "response.web_search_call.searching",
    "response.web_search_call.completed",
    "response.output_item.done",
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 12,
    "response.output_text.annotation.added",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.mark.parametrize("kind", ["openai", "azure", "azure_v1"])
def test_web_search_stream(sim: Simulator, kind: str) -> None:
    events = list(
        client(sim, kind).responses.create(
            model="gpt-4o", input=QUESTION, tools=[{"type": "web_search"}], stream=True, max_output_tokens=12
        )
    )
    assert [event.type for event in events] == STREAM_KINDS_WEB
    assert [event.sequence_number for event in events] == list(range(len(events)))
    added = events[2]
    assert added.type == "response.output_item.added"
    assert added.item.type == "web_search_call"
    assert added.item.status == "in_progress"
    progress = events[3]
    assert progress.type == "response.web_search_call.in_progress"
    assert progress.item_id == added.item.id
    assert progress.output_index == 0
    text_added = events[7]
    assert text_added.type == "response.output_item.added"
    assert text_added.output_index == 1
    completed = events[-1]
    assert completed.type == "response.completed"
    response = completed.response
    assert [item.type for item in response.output] == ["web_search_call", "message"]
    assert response.output[0].id == added.item.id
    assert response.usage is not None
    assert response.usage.output_tokens == 12
    assert response.usage.input_tokens == (
        prompt_tokens({"input": QUESTION, "tools": [{"type": "web_search"}]}) + WEB_SEARCH_INPUT_TOKENS
    )
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert deltas == response.output_text


def test_file_search_stream_and_no_usage_fault(sim: Simulator) -> None:
    events = list(
        client(sim, "openai").responses.create(
            model="gpt-4o",
            input="Who made Logfire?",
            tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}],
            stream=True,
            extra_headers={"x-sim-fault": "no_usage"},
        )
    )
    kinds = [event.type for event in events]
    assert kinds[2:7] == [
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
    ]
    done = events[6]
    assert done.type == "response.output_item.done"
    assert done.item.type == "file_search_call"
    assert done.item.queries == ["Who made Logfire"]
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is None
    assert completed.response.output[0].type == "file_search_call"


def test_function_tools_are_echoed_without_calls(sim: Simulator) -> None:
    tool: Any = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    result = client(sim, "openai").responses.create(model="gpt-4o", input="hi", tools=[tool])
    assert [item.type for item in result.output] == ["message"]
    assert result.tools[0].type == "function"
    assert result.tools[0].name == "lookup"


@pytest.mark.skipif(not CORPUS.exists(), reason="conformance corpus not present")
def test_tool_shapes_match_real_recordings(sim: Simulator) -> None:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    for kind in ("web_search_call", "file_search_call"):
        record = max(
            (r for r in records if r["api"] == "responses" and kind in (r["response"]["body_text"] or "")),
            key=lambda r: r["meta"].get("source_commit_date") or "",
        )
        real = json.loads(record["response"]["body_text"])
        body = dict(record["request"]["body"])
        body["model"] = "gpt-4o"
        ours = httpx2.post(
            sim.openai_base_url + "/responses", json=body, headers={"authorization": f"Bearer {KEY}"}
        ).json()
        assert [item["type"] for item in ours["output"]] == [item["type"] for item in real["output"]]
        real_item, our_item = real["output"][0], ours["output"][0]
        assert set(real_item) == set(our_item)
        if kind == "web_search_call":
            assert set(real_item["action"]) <= set(our_item["action"])
        assert set(real["tools"][0]) == set(ours["tools"][0])
        real_text, our_text = real["output"][1]["content"][0], ours["output"][1]["content"][0]
        assert set(real_text["annotations"][0]) == set(our_text["annotations"][0])
