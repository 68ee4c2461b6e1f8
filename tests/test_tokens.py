"""Token counting: the packaged ranks are OpenAI's, counts match tiktoken's engine and recorded usage."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenid import tokens
from tokenid.tokens import (
    count_chat_prompt_tokens,
    count_input_tokens,
    count_text_tokens,
    encoding_name_for_model,
)

CORPUS = Path("/work/shared/conformance/corpus.jsonl.gz")

# SHA-256 of the rank files OpenAI publishes, as pinned by tiktoken (tiktoken_ext/openai_public.py).
PUBLISHED_RANK_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

# The OpenAI cookbook's "How to count tokens with tiktoken" example conversation.
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain "
        "English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased "
        "leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]

TRICKY_TEXTS = [
    "",
    "Hello world",
    " leading and trailing spaces  ",
    "\n\n\t\r\n mixed   whitespace \u00a0\u2003",
    "numbers 1 12 123 1234 12345 3.14159 -42 1e10",
    "contractions: don't I'M we'll they've she'd IT'S",
    "code: def f(x):\n    return x ** 2  # comment\n",
    "https://example.com/a/b?c=d&e=f#frag //// ....",
    "emoji 😀🚀🇸🇪👩‍👩‍👧 and CJK 漢字かなカナ 한국어",
    "Ελληνικά русский العربية עברית हिन्दी",
    "special token text <|endoftext|> <|endofprompt|> is ordinary text",
    "A" * 5000,
    " " * 3000,
    "!" * 2000,
]


def _import_bpe_openai(name: str) -> Any:
    """Import part of the bpe_openai package, which warns about a deprecated importlib call on import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pytest.importorskip(name)


def _packaged_data_dir() -> Path:
    spec = importlib.util.find_spec("bpe_openai")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@pytest.fixture(scope="module")
def reference_encodings() -> dict[str, Any]:
    """tiktoken's own BPE engine loaded with the ranks bpe-openai ships (tiktoken cannot download here)."""
    tiktoken = pytest.importorskip("tiktoken")
    registry = _import_bpe_openai("bpe_openai.registry")
    built: dict[str, Any] = {}
    for name in PUBLISHED_RANK_SHA256:
        spec = getattr(registry, name)()
        built[name] = tiktoken.Encoding(
            name=f"{name}_reference",
            pat_str=spec["pat_str"],
            mergeable_ranks=spec["mergeable_ranks"],
            special_tokens=spec["special_tokens"],
        )
    return built


@pytest.mark.parametrize("encoding", sorted(PUBLISHED_RANK_SHA256))
def test_packaged_ranks_are_byte_identical_to_openais_files(encoding: str) -> None:
    packed = (_packaged_data_dir() / f"{encoding}.tiktoken.gz").read_bytes()
    assert hashlib.sha256(gzip.decompress(packed)).hexdigest() == PUBLISHED_RANK_SHA256[encoding]


@pytest.mark.parametrize("encoding", sorted(PUBLISHED_RANK_SHA256))
@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_counts_equal_tiktoken_engine(reference_encodings: dict[str, Any], encoding: str, text: str) -> None:
    model = "gpt-4o" if encoding == "o200k_base" else "gpt-4"
    assert count_text_tokens(text, model) == len(reference_encodings[encoding].encode_ordinary(text))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_counts_equal_tiktoken_engine_on_random_text(reference_encodings: dict[str, Any], text: str) -> None:
    # Lone surrogates cannot be UTF-8 encoded; both sides replace them.
    clean = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert count_text_tokens(text, "gpt-4o") == len(reference_encodings["o200k_base"].encode_ordinary(clean))
    assert count_text_tokens(text, "gpt-4") == len(reference_encodings["cl100k_base"].encode_ordinary(clean))


@pytest.mark.parametrize(
    ("text", "cl100k", "o200k"),
    [
        # Counts published in OpenAI's cookbook and tiktoken's README.
        ("Hello world", 2, 2),
        ("tiktoken is great!", 6, 6),
        ("antidisestablishmentarianism", 6, 6),
        ("2 + 2 = 4", 7, 7),
        ("お誕生日おめでとう", 9, 8),
    ],
)
def test_published_counts(text: str, cl100k: int, o200k: int) -> None:
    assert count_text_tokens(text, "gpt-4-0613") == cl100k
    assert count_text_tokens(text, "gpt-4o-mini") == o200k


def test_published_token_ids_from_the_packaged_ranks() -> None:
    bpe_openai = _import_bpe_openai("bpe_openai")
    assert bpe_openai.get_encoding("cl100k_base").encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert bpe_openai.get_encoding("cl100k_base").encode("Hello world") == [9906, 1917]
    assert bpe_openai.get_encoding("o200k_base").encode("Hello world") == [13225, 2375]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-3.5-turbo-0613", 129),
        ("gpt-4-0613", 129),
        ("gpt-4", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
    ],
)
def test_cookbook_chat_example(model: str, expected: int) -> None:
    # The cookbook's num_tokens_from_messages() values, which it shows matching the API's prompt_tokens.
    assert count_chat_prompt_tokens(COOKBOOK_MESSAGES, model) == expected


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        (None, "o200k_base"),
        ("", "o200k_base"),
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("gpt-4.5-preview", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-5-mini-2025-08-07", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini-2025-01-31", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-image-1", "o200k_base"),
        ("gpt-realtime", "o200k_base"),
        ("my-gpt4-deployment", "o200k_base"),
        ("some-unknown-model", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("GPT-4-0613", "cl100k_base"),
        ("gpt-4-32k", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-4-turbo-2024-04-09", "cl100k_base"),
        ("gpt-4-1106-vision-preview", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-instruct", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("gpt-35-turbo-16k", "cl100k_base"),
        ("gpt-35-turbo-instruct", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("text-embedding-ada-002-v2", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-embedding-3-large", "cl100k_base"),
        ("ada", "cl100k_base"),
        ("davinci-002", "cl100k_base"),
        ("ft:gpt-4o-mini-2024-07-18:org::abc123", "o200k_base"),
        ("ft:gpt-3.5-turbo-0125:org::abc123", "cl100k_base"),
        ("azure/gpt-35-turbo", "cl100k_base"),
        ("openai/gpt-4o", "o200k_base"),
    ],
)
def test_encoding_name_for_model(model: str | None, encoding: str) -> None:
    assert encoding_name_for_model(model) == encoding


def test_name_costs_its_tokens_plus_one() -> None:
    plain = [{"role": "user", "content": "hi"}]
    named = [{"role": "user", "content": "hi", "name": "alice"}]
    assert count_chat_prompt_tokens(plain, "gpt-4o") == 3 + 1 + 1 + 3
    extra = count_chat_prompt_tokens(named, "gpt-4o") - count_chat_prompt_tokens(plain, "gpt-4o")
    assert extra == count_text_tokens("alice", "gpt-4o") + 1


def test_content_parts_and_images() -> None:
    as_string = [{"role": "user", "content": "Describe this picture please"}]
    as_parts = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this picture please"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    ]
    assert count_chat_prompt_tokens(as_parts, "gpt-4o") == count_chat_prompt_tokens(as_string, "gpt-4o") + 85


def test_tools_add_tokens() -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the weather for a city.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "The city."},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    },
                },
            },
        }
    ]
    without = count_chat_prompt_tokens(messages, "gpt-4o")
    with_tools = count_chat_prompt_tokens(messages, "gpt-4o", tools)
    assert with_tools > without + 12
    assert count_input_tokens({"model": "gpt-4o", "messages": messages, "tools": tools}) == with_tools


def test_assistant_tool_calls_count() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    bare = [{"role": "assistant", "content": None}]
    with_call = [{"role": "assistant", "content": None, "tool_calls": [call]}]
    delta = count_chat_prompt_tokens(with_call, "gpt-4o") - count_chat_prompt_tokens(bare, "gpt-4o")
    assert delta == 3 + count_text_tokens("lookup", "gpt-4o") + count_text_tokens('{"q": "x"}', "gpt-4o")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(messages=json_values, tools=json_values, model=st.none() | st.text(max_size=20))
def test_chat_estimate_never_raises(messages: object, tools: object, model: str | None) -> None:
    result = count_chat_prompt_tokens(messages, model, tools)
    assert isinstance(result, int)
    assert result >= 0


@settings(max_examples=200, deadline=None)
@given(
    body=st.dictionaries(
        st.sampled_from(["messages", "prompt", "input", "instructions", "model", "tools"]), json_values
    )
)
def test_input_estimate_never_raises(body: dict[str, object]) -> None:
    result = count_input_tokens(body)
    assert isinstance(result, int)
    assert result >= 0


def test_odd_inputs_give_zero() -> None:
    assert count_chat_prompt_tokens("not a list") == 0
    assert count_chat_prompt_tokens(None) == 0
    assert count_input_tokens({}) == 0
    assert count_input_tokens({"unrelated": 1}) == 0
    assert count_input_tokens("nope") == 0  # type: ignore[arg-type]
    assert count_text_tokens(None) == 0  # type: ignore[arg-type]


def test_lone_surrogates_are_counted_not_raised() -> None:
    assert count_text_tokens("ab\ud800cd") == count_text_tokens("ab\ufffdcd")


def test_completions_prompt_forms() -> None:
    text = "Say this is a test"
    single = count_text_tokens(text, "gpt-3.5-turbo-instruct")
    assert count_input_tokens({"model": "gpt-3.5-turbo-instruct", "prompt": text}) == single
    assert count_input_tokens({"model": "gpt-3.5-turbo-instruct", "prompt": [text, text]}) == 2 * single
    assert count_input_tokens({"model": "gpt-3.5-turbo-instruct", "prompt": [1, 2, 3, 4]}) == 4
    assert count_input_tokens({"model": "gpt-3.5-turbo-instruct", "prompt": [[1, 2], [3, 4, 5]]}) == 5


def test_embeddings_input_forms() -> None:
    model = "text-embedding-3-small"
    hello = count_text_tokens("hello world", model)
    assert count_input_tokens({"model": model, "input": "hello world"}) == hello
    assert count_input_tokens({"model": model, "input": ["hello world", "hello world"]}) == 2 * hello
    assert count_input_tokens({"model": model, "input": [5, 6, 7]}) == 3
    assert count_input_tokens({"model": model, "input": [[5, 6], [7]]}) == 3
    # An Azure deployment name says nothing; the SDK's encoding_format marks the body as embeddings.
    body = {"model": "embeddings", "input": "hello world", "encoding_format": "base64"}
    assert count_input_tokens(body, "text-embedding-ada-002") == hello


def test_responses_input_forms() -> None:
    model = "gpt-4o"
    plain = count_input_tokens({"model": model, "input": "Say hello in one word."})
    assert plain == 3 + 1 + count_text_tokens("Say hello in one word.", model) + 3
    items = {
        "model": model,
        "input": [
            {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "You are helpful."}]},
            {"role": "user", "content": "Say hello in one word."},
        ],
    }
    as_chat = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Say hello in one word."},
    ]
    assert count_input_tokens(items) == count_chat_prompt_tokens(as_chat, model)
    with_instructions = count_input_tokens(
        {"model": model, "input": "Say hello in one word.", "instructions": "Be terse"}
    )
    assert with_instructions == plain + 3 + 1 + count_text_tokens("Be terse", model)
    assert count_input_tokens({"model": model, "input": "x"}, endpoint="responses") == count_input_tokens(
        {"model": model, "input": "x", "store": True}
    )


def test_endpoint_hint_overrides_guessing() -> None:
    body = {"model": "my-deployment", "input": "hello world"}
    assert count_input_tokens(body, endpoint="embeddings") == count_text_tokens("hello world")
    assert count_input_tokens(body, endpoint="responses") == count_text_tokens("hello world") + 7


@pytest.mark.parametrize(
    ("body", "model", "recorded_prompt_tokens"),
    [
        # Recorded Azure/OpenAI responses (see /work/shared/conformance): prompt -> usage.prompt_tokens.
        (
            {
                "messages": [
                    {"role": "user", "content": "Can you explain what Descartes meant by 'I think, therefore I am'?"}
                ]
            },
            "gpt-4.1-mini-2025-04-14",
            24,
        ),
        ({"messages": [{"role": "user", "content": "Say this is a test"}]}, "gpt-4o-mini-2024-07-18", 12),
        (
            {
                "input": [
                    {
                        "type": "message",
                        "role": "system",
                        "content": [{"type": "input_text", "text": "You are a helpful assistant."}],
                    },
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "Say hello in one word."}],
                    },
                ]
            },
            "gpt-4o-2024-08-06",
            23,
        ),
        ({"prompt": "Who won the World Cup in 2018?\n\nBEGIN RESPONSE:"}, "gpt-3.5-turbo-instruct", 13),
    ],
)
def test_recorded_prompt_tokens(body: dict[str, object], model: str, recorded_prompt_tokens: int) -> None:
    assert count_input_tokens(body, model) == recorded_prompt_tokens


def _plain_chat_records() -> Iterator[tuple[dict[str, Any], str, int]]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            expected = record.get("expected") or {}
            body = record["request"]["body"]
            if record["response"]["status"] != 200 or record["api"] not in ("chat", "chat_stream"):
                continue
            if expected.get("prompt_tokens") is None or not isinstance(body, dict):
                continue
            if any(key in body for key in ("tools", "functions", "response_format")):
                continue
            messages = body.get("messages") or []
            if all(isinstance(m.get("content"), str) and set(m) <= {"role", "content", "name"} for m in messages):
                yield body, expected["model_served"], expected["prompt_tokens"]


@pytest.mark.skipif(not CORPUS.exists(), reason="conformance corpus not present")
def test_chat_estimates_match_recorded_usage() -> None:
    records = list(_plain_chat_records())
    exact = sum(count_input_tokens(body, model) == recorded for body, model, recorded in records)
    assert len(records) > 100
    assert exact / len(records) >= 0.95


def test_counters_load_once_across_threads() -> None:
    results: list[int] = []

    def work() -> None:
        results.append(count_chat_prompt_tokens(COOKBOOK_MESSAGES, "gpt-4o"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [124] * 8
    tokens.preload()
    assert tokens._counter("o200k_base") is tokens._counter("o200k_base")


def test_public_api_fallback_counts_the_same() -> None:
    fallback = tokens._load_counter("cl100k_base", fast=False)
    for text in TRICKY_TEXTS:
        assert fallback.count(text) == count_text_tokens(text, "gpt-4")
