"""Response bodies and stream events in the exact shapes the real services send.

Azure differs from OpenAI in ways clients trip over, and the simulator keeps
every one: sorted keys, ``prompt_filter_results`` and per-choice
``content_filter_results``, a first stream chunk with empty ``choices`` and
model ``""``, no ``obfuscation`` field.  OpenAI streams carry ``obfuscation``
padding (unless ``stream_options.include_obfuscation`` is false).  With
``include_usage`` every chunk has ``"usage":null`` and a last chunk with empty
``choices`` carries the usage.

Stream events are assembled from precomputed string templates so a 4096-token
stream costs little more than the bytes it sends.
"""

from __future__ import annotations

import json
import random
import string
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from tokenid.simulator.content import (
    FILE_SEARCH_HIT_TOKENS,
    FILE_SEARCH_HITS,
    WEB_SEARCH_INPUT_TOKENS,
    Reply,
    embedding_base64,
    embedding_vector,
    tool_query,
)

DONE = b"data: [DONE]\n\n"

_SAFE = {"filtered": False, "severity": "safe"}
_UNDETECTED = {"filtered": False, "detected": False}
AZURE_CHOICE_FILTER: dict[str, object] = {
    "hate": _SAFE,
    "protected_material_code": _UNDETECTED,
    "protected_material_text": _UNDETECTED,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}
AZURE_CHUNK_FILTER: dict[str, object] = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
AZURE_PROMPT_FILTER: list[dict[str, object]] = [
    {
        "prompt_index": 0,
        "content_filter_results": {
            "hate": _SAFE,
            "jailbreak": _UNDETECTED,
            "self_harm": _SAFE,
            "sexual": _SAFE,
            "violence": _SAFE,
        },
    }
]

_ID_CHARS = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
_PAD = "qWZcRtYbLmNpKsVxDfGh"
_ids = random.Random()


def new_id(prefix: str, length: int = 29, alphabet: str = _ID_CHARS) -> str:
    """A random object id in the service's style, e.g. ``chatcmpl-…`` or ``resp_…``."""
    return prefix + "".join(_ids.choices(alphabet, k=length))


def fingerprint(model: str) -> str:
    """A stable ``system_fingerprint`` per model."""
    return "fp_" + format(zlib.crc32(model.encode()), "08x") + "ab"


def _dumps(value: object, *, azure: bool) -> str:
    """Compact JSON; Azure sorts keys, as its gateway does."""
    return json.dumps(value, separators=(",", ":"), sort_keys=azure)


@lru_cache(maxsize=4096)
def _json_str(text: str) -> str:
    return json.dumps(text)


def _obfuscation(piece: str) -> str:
    """Padding that evens out chunk sizes, like OpenAI's ``obfuscation`` field."""
    return _PAD[: 1 + (15 - len(piece)) % 16]


def sse(data: str) -> bytes:
    """One ``data:`` server-sent event."""
    return f"data: {data}\n\n".encode()


_AZURE_FIRST_CHUNK = sse(
    json.dumps(
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": AZURE_PROMPT_FILTER,
        },
        separators=(",", ":"),
        sort_keys=True,
    )
)
"""Azure's first stream chunk: no choices, empty model, only the prompt's filter results."""


def named_sse(event: str, data: str) -> bytes:
    """One server-sent event with an ``event:`` line (Responses API style)."""
    return f"event: {event}\ndata: {data}\n\n".encode()


@dataclass(frozen=True)
class ChatAudio:
    """One choice's spoken answer (``message.audio``) and the output tokens it costs."""

    ident: str
    data: str
    expires_at: int
    transcript: str
    tokens: int


@dataclass(frozen=True)
class Generation:
    """Everything one chat/completions call produced, shared by its body and stream shapes."""

    azure: bool
    model: str
    replies: Sequence[Reply]
    prompt_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    ident: str
    created: int
    fingerprint: str
    audio: Sequence[ChatAudio] = ()
    """One spoken answer per reply when ``modalities`` asks for audio, else empty."""
    audio_prompt_tokens: int = 0
    """Audio input tokens (part of ``prompt_tokens``)."""
    detailed_usage: bool = False
    """Add ``text_tokens`` / ``image_tokens`` to the token details, as audio models report them."""

    @property
    def completion_tokens(self) -> int:
        """Visible, reasoning and audio tokens over all choices."""
        visible = sum(reply.tokens for reply in self.replies)
        return visible + self.reasoning_tokens * len(self.replies) + sum(audio.tokens for audio in self.audio)


def make_generation(
    *,
    azure: bool,
    model: str,
    replies: Sequence[Reply],
    prompt_tokens: int,
    cached: int,
    reasoning: int,
    prefix: str,
    audio: Sequence[ChatAudio] = (),
    audio_prompt_tokens: int = 0,
    detailed_usage: bool = False,
) -> Generation:
    """Stamp a generation with a fresh id and the current time."""
    return Generation(
        azure=azure,
        model=model,
        replies=replies,
        prompt_tokens=prompt_tokens,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
        ident=new_id(prefix),
        created=int(time.time()),
        fingerprint=fingerprint(model),
        audio=audio,
        audio_prompt_tokens=audio_prompt_tokens,
        detailed_usage=detailed_usage,
    )


def chat_usage(gen: Generation) -> dict[str, object]:
    """The chat ``usage`` object with its token details."""
    completion = gen.completion_tokens
    prompt_details: dict[str, object] = {"cached_tokens": gen.cached_tokens, "audio_tokens": gen.audio_prompt_tokens}
    completion_details: dict[str, object] = {
        "reasoning_tokens": gen.reasoning_tokens * len(gen.replies),
        "audio_tokens": sum(audio.tokens for audio in gen.audio),
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }
    if gen.detailed_usage:
        prompt_details["text_tokens"] = gen.prompt_tokens - gen.audio_prompt_tokens
        prompt_details["image_tokens"] = 0
        completion_details["text_tokens"] = sum(reply.tokens for reply in gen.replies)
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": gen.prompt_tokens + completion,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": completion_details,
    }


def completions_usage(gen: Generation) -> dict[str, object]:
    """The legacy completions ``usage`` object (no details)."""
    completion = gen.completion_tokens
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": gen.prompt_tokens + completion,
    }


# --------------------------------------------------------------------------- chat


def _audio_object(audio: ChatAudio) -> dict[str, object]:
    return {"id": audio.ident, "data": audio.data, "expires_at": audio.expires_at, "transcript": audio.transcript}


def _chat_message(reply: Reply, audio: ChatAudio | None) -> dict[str, object]:
    """The assistant message: text, or (audio output) no content and the spoken ``audio``."""
    if audio is None:
        return {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
    return {"role": "assistant", "content": None, "refusal": None, "audio": _audio_object(audio), "annotations": []}


def chat_body(gen: Generation, *, with_usage: bool) -> bytes:
    """A non-streamed ``chat.completion``."""
    choices: list[dict[str, object]] = []
    for index, reply in enumerate(gen.replies):
        choice: dict[str, object] = {
            "index": index,
            "message": _chat_message(reply, gen.audio[index] if gen.audio else None),
            "logprobs": None,
            "finish_reason": reply.finish_reason,
        }
        if gen.azure:
            choice["content_filter_results"] = AZURE_CHOICE_FILTER
        choices.append(choice)
    body: dict[str, object] = {
        "id": gen.ident,
        "object": "chat.completion",
        "created": gen.created,
        "model": gen.model,
        "choices": choices,
    }
    if with_usage:
        body["usage"] = chat_usage(gen)
    if gen.azure:
        body["prompt_filter_results"] = AZURE_PROMPT_FILTER
    else:
        body["service_tier"] = "default"
    body["system_fingerprint"] = gen.fingerprint
    return _dumps(body, azure=gen.azure).encode()


def chat_stream(gen: Generation, *, include_usage: bool, send_usage: bool, obfuscate: bool) -> Iterator[bytes]:
    """The SSE events of a streamed chat completion, ``[DONE]`` included."""
    if gen.audio:
        yield from _chat_audio_stream(gen, include_usage=include_usage, send_usage=send_usage)
        return
    usage_null = ',"usage":null' if include_usage else ""
    if gen.azure:
        yield _AZURE_FIRST_CHUNK
        tail = (
            f'],"created":{gen.created},"id":"{gen.ident}","model":"{gen.model}",'
            f'"object":"chat.completion.chunk","system_fingerprint":"{gen.fingerprint}"{usage_null}}}'
        )
        chunk_filter = _dumps(AZURE_CHUNK_FILTER, azure=True)
        for index, reply in enumerate(gen.replies):
            yield sse(
                '{"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},'
                f'"finish_reason":null,"index":{index},"logprobs":null}}{tail}'
            )
            head = f'{{"choices":[{{"content_filter_results":{chunk_filter},"delta":{{"content":'
            close = f'}},"finish_reason":null,"index":{index},"logprobs":null}}{tail}'
            for piece in reply.pieces:
                yield sse(head + _json_str(piece) + close)
            yield sse(
                f'{{"choices":[{{"content_filter_results":{{}},"delta":{{}},"finish_reason":"{reply.finish_reason}",'
                f'"index":{index},"logprobs":null}}{tail}'
            )
        if include_usage and send_usage:
            yield sse(
                f'{{"choices":[],"created":{gen.created},"id":"{gen.ident}","model":"{gen.model}",'
                f'"object":"chat.completion.chunk","system_fingerprint":"{gen.fingerprint}",'
                f'"usage":{_dumps(chat_usage(gen), azure=True)}}}'
            )
        yield DONE
        return

    head = (
        f'{{"id":"{gen.ident}","object":"chat.completion.chunk","created":{gen.created},"model":"{gen.model}",'
        f'"service_tier":"default","system_fingerprint":"{gen.fingerprint}","choices":['
    )

    def ending(piece: str) -> str:
        return usage_null + (f',"obfuscation":"{_obfuscation(piece)}"}}' if obfuscate else "}")

    for index, reply in enumerate(gen.replies):
        yield sse(
            f'{head}{{"index":{index},"delta":{{"role":"assistant","content":"","refusal":null}},'
            f'"logprobs":null,"finish_reason":null}}]{ending("")}'
        )
        open_piece = f'{head}{{"index":{index},"delta":{{"content":'
        end_piece = '},"logprobs":null,"finish_reason":null}]'
        for piece in reply.pieces:
            yield sse(open_piece + _json_str(piece) + end_piece + ending(piece))
        yield sse(
            f'{head}{{"index":{index},"delta":{{}},"logprobs":null,"finish_reason":"{reply.finish_reason}"}}]'
            f"{ending('.')}"
        )
    if include_usage and send_usage:
        usage = _dumps(chat_usage(gen), azure=False)
        obf = f',"obfuscation":"{_obfuscation("")}"' if obfuscate else ""
        yield sse(f'{head}],"usage":{usage}{obf}}}')
    yield DONE


AUDIO_STREAM_CHUNK = 32_000
"""Characters of base64 audio per streamed ``delta.audio.data`` chunk."""


def _chat_audio_stream(gen: Generation, *, include_usage: bool, send_usage: bool) -> Iterator[bytes]:
    """A streamed chat completion with audio output: transcript deltas, then audio data, then expiry.

    Built from dicts (not templates): audio streams are short and rare.
    """
    base: dict[str, object] = {"id": gen.ident, "object": "chat.completion.chunk", "created": gen.created}
    base["model"] = gen.model
    if not gen.azure:
        base["service_tier"] = "default"
    base["system_fingerprint"] = gen.fingerprint

    def chunk(index: int, delta: dict[str, object], finish: str | None = None) -> bytes:
        choice: dict[str, object] = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        if gen.azure:
            choice["content_filter_results"] = {}
        body = {**base, "choices": [choice]}
        if include_usage:
            body["usage"] = None
        return sse(_dumps(body, azure=gen.azure))

    if gen.azure:
        yield _AZURE_FIRST_CHUNK
    for index, (reply, audio) in enumerate(zip(gen.replies, gen.audio, strict=True)):
        yield chunk(index, {"role": "assistant", "content": None, "refusal": None})
        for number, piece in enumerate(reply.pieces):
            delta: dict[str, object] = {"transcript": piece}
            if number == 0:
                delta = {"id": audio.ident, **delta}
            yield chunk(index, {"audio": delta})
        for start in range(0, len(audio.data), AUDIO_STREAM_CHUNK):
            yield chunk(index, {"audio": {"id": audio.ident, "data": audio.data[start : start + AUDIO_STREAM_CHUNK]}})
        yield chunk(index, {"audio": {"expires_at": audio.expires_at}})  # the last audio update: expiry only
        yield chunk(index, {}, reply.finish_reason)
    if include_usage and send_usage:
        yield sse(_dumps({**base, "choices": [], "usage": chat_usage(gen)}, azure=gen.azure))
    yield DONE


# -------------------------------------------------------------------- completions


def completions_body(gen: Generation, *, with_usage: bool) -> bytes:
    """A non-streamed legacy ``text_completion``."""
    choices: list[dict[str, object]] = []
    for index, reply in enumerate(gen.replies):
        choice: dict[str, object] = {
            "text": reply.text,
            "index": index,
            "logprobs": None,
            "finish_reason": reply.finish_reason,
        }
        if gen.azure:
            choice["content_filter_results"] = AZURE_CHUNK_FILTER
        choices.append(choice)
    body: dict[str, object] = {"id": gen.ident, "object": "text_completion", "created": gen.created, "model": gen.model}
    if gen.azure:
        body["prompt_filter_results"] = AZURE_PROMPT_FILTER
    body["choices"] = choices
    if with_usage:
        body["usage"] = completions_usage(gen)
    return _dumps(body, azure=False).encode()


def completions_stream(gen: Generation, *, include_usage: bool, send_usage: bool) -> Iterator[bytes]:
    """The SSE events of a streamed legacy completion, ``[DONE]`` included."""
    usage_null = ',"usage":null' if include_usage else ""
    if gen.azure:
        yield _AZURE_FIRST_CHUNK
    head = f'{{"id":"{gen.ident}","object":"text_completion","created":{gen.created},"choices":['
    tail = f'],"model":"{gen.model}"{usage_null}}}'
    filt = f',"content_filter_results":{_dumps(AZURE_CHUNK_FILTER, azure=True)}' if gen.azure else ""
    for index, reply in enumerate(gen.replies):
        close = f',"index":{index},"logprobs":null,"finish_reason":null{filt}}}'
        for piece in reply.pieces:
            yield sse(head + '{"text":' + _json_str(piece) + close + tail)
        yield sse(f'{head}{{"text":"","index":{index},"logprobs":null,"finish_reason":"{reply.finish_reason}"}}{tail}')
    if include_usage and send_usage:
        yield sse(f'{head}],"model":"{gen.model}","usage":{_dumps(completions_usage(gen), azure=False)}}}')
    yield DONE


# --------------------------------------------------------------------- embeddings


@lru_cache(maxsize=4096)
def embedding_json(key: str, dimensions: int, base64: bool) -> str:
    """One vector rendered as JSON once: a float array, or the quoted base64 string."""
    if base64:
        return _json_str(embedding_base64(key, dimensions))
    return "[" + ",".join(repr(value) for value in embedding_vector(key, dimensions)) + "]"


def embeddings_body(
    model: str, keys: Sequence[str], dimensions: int, prompt_tokens: int, *, base64: bool, with_usage: bool
) -> bytes:
    """An embeddings ``list`` with one deterministic vector per input key."""
    data = ",".join(
        f'{{"object":"embedding","index":{index},"embedding":{embedding_json(key, dimensions, base64)}}}'
        for index, key in enumerate(keys)
    )
    usage = f',"usage":{{"prompt_tokens":{prompt_tokens},"total_tokens":{prompt_tokens}}}' if with_usage else ""
    return f'{{"object":"list","data":[{data}],"model":{_json_str(model)}{usage}}}'.encode()


# ---------------------------------------------------------------------- responses

WEB_SEARCH_TOOLS = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)
FILE_SEARCH_MAX_RESULTS = 20
"""The ``max_num_results`` a ``file_search`` tool echoes when the request sets none."""


@dataclass(frozen=True)
class ToolCall:
    """One built-in tool call the model made before answering (web search or file search)."""

    kind: str
    """``web_search_call`` or ``file_search_call``."""
    ident: str
    query: str
    results: tuple[dict[str, object], ...] | None = None
    """File search hits, when the request ``include``s ``file_search_call.results``."""
    sources: tuple[dict[str, object], ...] | None = None
    """Web search sources, when the request ``include``s ``web_search_call.action.sources``."""

    @property
    def events(self) -> str:
        """The prefix of this call's own stream events, e.g. ``response.web_search_call``."""
        return "response." + self.kind

    def item(self, *, done: bool) -> dict[str, object]:
        """The output item: in progress (as first announced) or completed."""
        status = "completed" if done else "in_progress"
        if self.kind == "web_search_call":
            action: dict[str, object] = {"type": "search"}
            if done:
                action["queries"] = [self.query]
                action["query"] = self.query
                if self.sources is not None:
                    action["sources"] = list(self.sources)
            return {"id": self.ident, "type": self.kind, "status": status, "action": action}
        return {
            "id": self.ident,
            "type": self.kind,
            "status": status,
            "queries": [self.query] if done else [],
            "results": list(self.results) if done and self.results is not None else None,
        }


def _user_location(given: object, *, default_country: str | None) -> dict[str, object]:
    location: dict[str, object] = dict(given) if isinstance(given, dict) else {}
    return {
        "type": "approximate",
        "city": location.get("city"),
        "country": location.get("country", None if given else default_country),
        "region": location.get("region"),
        "timezone": location.get("timezone"),
    }


def echo_tool(tool: object) -> object:
    """A request tool as the response's ``tools`` echoes it, defaults filled in."""
    if not isinstance(tool, dict):
        return tool
    kind = tool.get("type")
    if kind in WEB_SEARCH_TOOLS:
        echoed: dict[str, object] = {"type": kind}
        if not str(kind).startswith("web_search_preview"):
            echoed["filters"] = tool.get("filters")
        echoed["search_context_size"] = tool.get("search_context_size", "medium")
        echoed["user_location"] = _user_location(tool.get("user_location"), default_country="US")
        return echoed
    if kind == "file_search":
        max_results = tool.get("max_num_results")
        return {
            "type": "file_search",
            "filters": tool.get("filters"),
            "max_num_results": max_results if isinstance(max_results, int) else FILE_SEARCH_MAX_RESULTS,
            "ranking_options": tool.get("ranking_options") or {"ranker": "auto", "score_threshold": 0.0},
            "vector_store_ids": tool.get("vector_store_ids", []),
        }
    if kind == "function":
        return {"strict": True, **tool}
    return tool


@dataclass(frozen=True)
class ToolPlan:
    """The built-in tool calls a Responses request gets, their citations and the input tokens they add."""

    calls: tuple[ToolCall, ...] = ()
    annotations: tuple[dict[str, object], ...] = ()
    input_tokens: int = 0


def plan_tools(body: Mapping[str, object], answer: str) -> ToolPlan:
    """One ``web_search_call`` / ``file_search_call`` per built-in search tool in ``body['tools']``."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return ToolPlan()
    include = body.get("include")
    wanted = set(include) if isinstance(include, list) else set()
    query = tool_query(body)
    calls: list[ToolCall] = []
    annotations: list[dict[str, object]] = []
    extra = 0
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in WEB_SEARCH_TOOLS:
            slug = "-".join(query.lower().split())[:60]
            url = f"https://example.com/search/{slug}?utm_source=openai"
            source: dict[str, object] = {"type": "url", "url": url}
            sources = (source,) if "web_search_call.action.sources" in wanted else None
            calls.append(ToolCall("web_search_call", new_id("ws_", 50, HEX), query, sources=sources))
            annotations.append(
                {"type": "url_citation", "end_index": len(answer), "start_index": 0, "title": query, "url": url}
            )
            extra += WEB_SEARCH_INPUT_TOKENS
        elif kind == "file_search" and isinstance(tool, dict):
            limit = tool.get("max_num_results")
            hits = min(limit if isinstance(limit, int) and limit > 0 else FILE_SEARCH_MAX_RESULTS, FILE_SEARCH_HITS)
            file_id = "file-" + format(zlib.crc32(json.dumps(tool.get("vector_store_ids")).encode()), "08x")
            results = tuple(
                {
                    "attributes": {},
                    "file_id": file_id,
                    "filename": "document.txt",
                    "score": round(0.9 - 0.1 * hit, 2),
                    "text": f"Passage {hit + 1} about {query}.",
                }
                for hit in range(hits)
            )
            shown = results if "file_search_call.results" in wanted else None
            calls.append(ToolCall("file_search_call", new_id("fs_", 50, HEX), query, results=shown))
            annotations.append(
                {"type": "file_citation", "file_id": file_id, "filename": "document.txt", "index": len(answer)}
            )
            extra += hits * FILE_SEARCH_HIT_TOKENS
    return ToolPlan(tuple(calls), tuple(annotations), extra)


@dataclass(frozen=True)
class ResponseCall:
    """Everything one Responses API call produced."""

    model: str
    reply: Reply
    input_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    ident: str
    message_id: str
    reasoning_id: str | None
    created: int
    instructions: object
    max_output_tokens: object
    temperature: object
    top_p: object
    store: object
    metadata: object
    previous_response_id: object
    user: object
    tool_calls: tuple[ToolCall, ...] = ()
    tools: tuple[object, ...] = ()
    """The request's tools as echoed (see :func:`echo_tool`)."""
    annotations: tuple[dict[str, object], ...] = ()
    """Citations on the answer's text (``url_citation`` / ``file_citation``)."""


def responses_usage(call: ResponseCall) -> dict[str, object]:
    """The Responses ``usage`` object."""
    output = call.reply.tokens + call.reasoning_tokens
    return {
        "input_tokens": call.input_tokens,
        "input_tokens_details": {"cached_tokens": call.cached_tokens},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": call.reasoning_tokens},
        "total_tokens": call.input_tokens + output,
    }


def _text_part(text: str, annotations: Sequence[dict[str, object]] = ()) -> dict[str, object]:
    return {"type": "output_text", "annotations": list(annotations), "logprobs": [], "text": text}


def _message_item(call: ResponseCall, *, done: bool) -> dict[str, object]:
    return {
        "id": call.message_id,
        "type": "message",
        "status": "completed" if done else "in_progress",
        "content": [_text_part(call.reply.text, call.annotations)] if done else [],
        "role": "assistant",
    }


def _reasoning_item(call: ResponseCall) -> dict[str, object]:
    return {"id": call.reasoning_id, "type": "reasoning", "summary": []}


def _output(call: ResponseCall) -> list[dict[str, object]]:
    items = [_reasoning_item(call)] if call.reasoning_id else []
    items += [tool.item(done=True) for tool in call.tool_calls]
    return [*items, _message_item(call, done=True)]


def response_object(call: ResponseCall, *, done: bool, with_usage: bool) -> dict[str, object]:
    """The ``response`` object, in progress (no output yet) or completed."""

    def number(value: object, default: float) -> object:
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    reasoning = {"effort": "medium", "summary": None} if call.reasoning_id else {"effort": None, "summary": None}
    return {
        "id": call.ident,
        "object": "response",
        "created_at": call.created,
        "status": "completed" if done else "in_progress",
        "background": False,
        "completed_at": call.created if done else None,
        "error": None,
        "frequency_penalty": 0.0,
        "incomplete_details": None,
        "instructions": call.instructions if isinstance(call.instructions, (str, list)) else None,
        "max_output_tokens": call.max_output_tokens if isinstance(call.max_output_tokens, int) else None,
        "max_tool_calls": None,
        "model": call.model,
        "output": _output(call) if done else [],
        "parallel_tool_calls": True,
        "presence_penalty": 0.0,
        "previous_response_id": call.previous_response_id if isinstance(call.previous_response_id, str) else None,
        "prompt_cache_key": None,
        "prompt_cache_retention": None,
        "reasoning": reasoning,
        "safety_identifier": None,
        "service_tier": "default",
        "store": call.store if isinstance(call.store, bool) else True,
        "temperature": number(call.temperature, 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": list(call.tools),
        "top_logprobs": 0,
        "top_p": number(call.top_p, 1.0),
        "truncation": "disabled",
        "usage": responses_usage(call) if done and with_usage else None,
        "user": call.user if isinstance(call.user, str) else None,
        "metadata": call.metadata if isinstance(call.metadata, dict) else {},
    }


def responses_body(call: ResponseCall, *, with_usage: bool) -> bytes:
    """A non-streamed Responses API result."""
    return _dumps(response_object(call, done=True, with_usage=with_usage), azure=False).encode()


def responses_stream(call: ResponseCall, *, with_usage: bool, obfuscate: bool) -> Iterator[bytes]:
    """The named SSE events of a streamed response, numbered by ``sequence_number``."""
    seq = 0

    def event(kind: str, payload: dict[str, object]) -> bytes:
        nonlocal seq
        data = _dumps({"type": kind, **payload, "sequence_number": seq}, azure=False)
        seq += 1
        return named_sse(kind, data)

    yield event("response.created", {"response": response_object(call, done=False, with_usage=with_usage)})
    yield event("response.in_progress", {"response": response_object(call, done=False, with_usage=with_usage)})
    index = 0
    if call.reasoning_id:
        yield event("response.output_item.added", {"item": _reasoning_item(call), "output_index": 0})
        yield event("response.output_item.done", {"item": _reasoning_item(call), "output_index": 0})
        index = 1
    for tool in call.tool_calls:
        yield event("response.output_item.added", {"item": tool.item(done=False), "output_index": index})
        for stage in ("in_progress", "searching", "completed"):
            yield event(f"{tool.events}.{stage}", {"item_id": tool.ident, "output_index": index})
        yield event("response.output_item.done", {"item": tool.item(done=True), "output_index": index})
        index += 1
    yield event("response.output_item.added", {"item": _message_item(call, done=False), "output_index": index})
    yield event(
        "response.content_part.added",
        {"content_index": 0, "item_id": call.message_id, "output_index": index, "part": _text_part("")},
    )
    head = '{"type":"response.output_text.delta","content_index":0,"delta":'
    middle = f',"item_id":"{call.message_id}","logprobs":[],'
    for piece in call.reply.pieces:
        obf = f'"obfuscation":"{_obfuscation(piece)}",' if obfuscate else ""
        data = f'{head}{_json_str(piece)}{middle}{obf}"output_index":{index},"sequence_number":{seq}}}'
        seq += 1
        yield named_sse("response.output_text.delta", data)
    text = call.reply.text
    for number, annotation in enumerate(call.annotations):
        yield event(
            "response.output_text.annotation.added",
            {
                "annotation": annotation,
                "annotation_index": number,
                "content_index": 0,
                "item_id": call.message_id,
                "output_index": index,
            },
        )
    yield event(
        "response.output_text.done",
        {"content_index": 0, "item_id": call.message_id, "logprobs": [], "output_index": index, "text": text},
    )
    yield event(
        "response.content_part.done",
        {
            "content_index": 0,
            "item_id": call.message_id,
            "output_index": index,
            "part": _text_part(text, call.annotations),
        },
    )
    yield event("response.output_item.done", {"item": _message_item(call, done=True), "output_index": index})
    yield event("response.completed", {"response": response_object(call, done=True, with_usage=with_usage)})


def models_body(models: Sequence[str]) -> bytes:
    """The ``GET /v1/models`` list."""
    data = [{"id": model, "object": "model", "created": 1715367049, "owned_by": "system"} for model in models]
    return _dumps({"object": "list", "data": data}, azure=False).encode()
