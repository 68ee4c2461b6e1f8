"""What the simulated models say, and how many tokens it costs.

Everything here is deterministic (the same prompt always gets the same reply)
and cached, so a request costs microseconds of work beyond HTTP.

Rules, so tests can rely on them:

* Reply length: exactly the request's ``max_tokens`` /
  ``max_completion_tokens`` / ``max_output_tokens`` visible tokens if given,
  else :data:`DEFAULT_REPLY_TOKENS`; capped at :data:`MAX_REPLY_TOKENS`.  The
  reply is a complete sentence of that length (finish reason ``stop``, a
  Responses status ``completed``) so a caller can ask for any stream length
  without tripping truncation paths.  Every piece of the reply is one real
  token, so a stream carries one chunk per visible completion token.
* Prompt tokens: :func:`tokenid.tokens.count_input_tokens` with the served
  model's real tokenizer.
* Cached tokens: prompts of at least :data:`CACHE_MIN_TOKENS` tokens report
  the largest multiple of :data:`CACHE_INCREMENT` not above the prompt size
  as cached (OpenAI caches in 1024 + 128·k token prefixes); shorter prompts 0.
* Reasoning tokens: :data:`REASONING_TOKENS` for reasoning models (o1, o3,
  o4, gpt-5 except ``*-chat``), added on top of the visible tokens.
* Built-in Responses tools: a ``web_search`` / ``web_search_preview`` tool
  makes one ``web_search_call`` that adds :data:`WEB_SEARCH_INPUT_TOKENS`
  input tokens (the search results the model reads); a ``file_search`` tool
  makes one ``file_search_call`` finding ``min(max_num_results,
  FILE_SEARCH_HITS)`` chunks of :data:`FILE_SEARCH_HIT_TOKENS` input tokens
  each.  The query is the last user text (see :func:`tool_query`).
"""

from __future__ import annotations

import array
import base64
import json
import math
import random
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from tokenid.tokens import count_text_tokens

DEFAULT_REPLY_TOKENS = 20
MAX_REPLY_TOKENS = 4096
CACHE_MIN_TOKENS = 1024
CACHE_INCREMENT = 128
REASONING_TOKENS = 64
WEB_SEARCH_INPUT_TOKENS = 300
FILE_SEARCH_HITS = 2
FILE_SEARCH_HIT_TOKENS = 400
DEFAULT_EMBEDDING_DIMENSIONS = 1536
LARGE_EMBEDDING_DIMENSIONS = 3072

# Each word, with its leading space, is exactly one token in o200k_base and cl100k_base,
# and so are the opening "The" and the closing ".": a reply of n pieces is n tokens.
REPLY_WORDS: tuple[str, ...] = (
    " time",
    " people",
    " way",
    " day",
    " world",
    " school",
    " state",
    " family",
    " group",
    " country",
    " problem",
    " hand",
    " part",
    " place",
    " case",
    " week",
    " company",
    " system",
    " program",
    " question",
    " work",
    " number",
    " night",
    " point",
    " home",
    " water",
    " room",
    " area",
    " money",
    " story",
    " fact",
    " month",
    " book",
    " eye",
    " job",
    " word",
    " business",
    " issue",
    " side",
    " kind",
    " head",
    " house",
    " service",
    " friend",
    " power",
    " hour",
    " game",
    " line",
    " end",
    " member",
    " city",
    " community",
    " name",
    " team",
    " minute",
    " idea",
    " body",
    " information",
    " level",
    " office",
    " door",
    " health",
)
OPENING_TOKEN = "The"
CLOSING_TOKEN = "."

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


@dataclass(frozen=True)
class Reply:
    """A generated reply: its one-token pieces, full text and token accounting."""

    pieces: tuple[str, ...]
    text: str
    tokens: int
    finish_reason: str


def prompt_seed(body: Mapping[str, object]) -> int:
    """Derive a stable seed from the prompt part of a request body."""
    for key in ("messages", "input", "prompt"):
        if key in body:
            try:
                raw = json.dumps(body[key], sort_keys=True, default=str)
            except (TypeError, ValueError):
                raw = repr(body[key])
            extra = body.get("instructions")
            if isinstance(extra, str):
                raw += extra
            return zlib.crc32(raw.encode("utf-8", "replace"))
    return 0


def requested_length(body: Mapping[str, object]) -> int | None:
    """The reply length a request asks for, from whichever max-tokens field it uses."""
    for key in ("max_completion_tokens", "max_output_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return min(value, MAX_REPLY_TOKENS)
    return None


@lru_cache(maxsize=2048)
def make_reply(seed: int, length: int | None, model: str) -> Reply:
    """Build the deterministic reply for ``seed``: ``length`` tokens, or the default length."""
    count = max(1, min(DEFAULT_REPLY_TOKENS if length is None else length, MAX_REPLY_TOKENS))
    if count == 1:
        pieces: tuple[str, ...] = (CLOSING_TOKEN,)
    else:
        rng = random.Random(seed)
        words = [rng.choice(REPLY_WORDS) for _ in range(count - 2)]
        pieces = (OPENING_TOKEN, *words, CLOSING_TOKEN)
    text = "".join(pieces)
    return Reply(pieces=pieces, text=text, tokens=count_text_tokens(text, model), finish_reason="stop")


def cached_tokens(prompt_tokens: int) -> int:
    """Simulated prompt-cache hit: largest multiple of 128 within a prompt of 1024+ tokens."""
    if prompt_tokens < CACHE_MIN_TOKENS:
        return 0
    return (prompt_tokens // CACHE_INCREMENT) * CACHE_INCREMENT


def is_reasoning_model(model: str) -> bool:
    """True for the o-series and gpt-5 reasoning models (not the ``-chat`` variants)."""
    name = model.lower()
    return name.startswith(_REASONING_PREFIXES) and "chat" not in name


def reasoning_tokens(model: str) -> int:
    """Reasoning tokens a reply from ``model`` reports."""
    return REASONING_TOKENS if is_reasoning_model(model) else 0


def embedding_dimensions(model: str, requested: object) -> int:
    """Vector size: the request's ``dimensions`` if valid, else the model's native size."""
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        return requested
    return LARGE_EMBEDDING_DIMENSIONS if "3-large" in model else DEFAULT_EMBEDDING_DIMENSIONS


@lru_cache(maxsize=4096)
def embedding_vector(key: str, dimensions: int) -> tuple[float, ...]:
    """A deterministic unit vector for an input, rounded to float32-like precision."""
    rng = random.Random(zlib.crc32(key.encode("utf-8", "replace")))
    raw = [rng.random() * 2.0 - 1.0 for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return tuple(round(v / norm, 8) for v in raw)


@lru_cache(maxsize=4096)
def embedding_base64(key: str, dimensions: int) -> str:
    """The vector as the API's base64 form: little-endian float32 bytes."""
    packed = array.array("f", embedding_vector(key, dimensions))
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, Mapping)]
        return " ".join(text for text in texts if isinstance(text, str))
    return ""


def tool_query(body: Mapping[str, object]) -> str:
    """What a built-in search tool searches for: the last user text, without a trailing question mark."""
    value = body.get("input")
    text = ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        for item in reversed(value):
            if isinstance(item, Mapping) and item.get("role", "user") == "user":
                text = _text_of(item.get("content"))
                if text:
                    break
    text = " ".join(text.split())[:100].rstrip(" ?")
    return text or "search"
