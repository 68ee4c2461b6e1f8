"""Token usage as a response reports it, for every endpoint shape the OpenAI APIs return.

Counts are taken exactly as reported; nothing is derived unless the response leaves it out.
``cached_input_tokens`` is a subset of ``input_tokens`` and ``reasoning_tokens`` a subset of
``output_tokens`` (pricing relies on that).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Usage", "usage_from_json"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    cache_write_tokens: int = 0
    image_input_tokens: int = 0
    total_tokens: int | None = None


def _int(value: object) -> int:
    # bool is an int subclass; a JSON true/false is never a token count
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return 0


def _field(obj: object, name: str) -> Any:
    """``obj[name]`` for decoded JSON, ``obj.name`` for the SDK's parsed models; None when absent."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _details(usage: object, *keys: str) -> object:
    for key in keys:
        value = _field(usage, key)
        if value is not None:
            return value
    return None


def usage_from_json(usage: object) -> Usage | None:
    """Read a ``usage`` object of any endpoint; None when it carries no counts.

    Takes decoded JSON or the SDK's parsed usage model (same field names). Handles
    chat/completions/embeddings (``prompt_tokens``…), Responses, image and audio models
    (``input_tokens``…), and the details objects of both spellings.
    """
    if usage is None or isinstance(usage, str | int | float | list):
        return None
    total = _field(usage, "total_tokens")
    if _field(usage, "input_tokens") is not None or _field(usage, "output_tokens") is not None:
        inp = _details(usage, "input_tokens_details", "input_token_details")
        out = _details(usage, "output_tokens_details", "output_token_details")
        return Usage(
            input_tokens=_int(_field(usage, "input_tokens")),
            output_tokens=_int(_field(usage, "output_tokens")),
            cached_input_tokens=_int(_field(inp, "cached_tokens")),
            reasoning_tokens=_int(_field(out, "reasoning_tokens")),
            audio_input_tokens=_int(_field(inp, "audio_tokens")),
            audio_output_tokens=_int(_field(out, "audio_tokens")),
            cache_write_tokens=_int(_field(inp, "cache_creation_tokens") or _field(inp, "cache_write_tokens")),
            image_input_tokens=_int(_field(inp, "image_tokens")),
            total_tokens=_int(total) if total is not None else None,
        )
    if _field(usage, "prompt_tokens") is not None or _field(usage, "completion_tokens") is not None:
        prompt = _details(usage, "prompt_tokens_details")
        completion = _details(usage, "completion_tokens_details")
        return Usage(
            input_tokens=_int(_field(usage, "prompt_tokens")),
            output_tokens=_int(_field(usage, "completion_tokens")),
            cached_input_tokens=_int(_field(prompt, "cached_tokens")),
            reasoning_tokens=_int(_field(completion, "reasoning_tokens")),
            audio_input_tokens=_int(_field(prompt, "audio_tokens")),
            audio_output_tokens=_int(_field(completion, "audio_tokens")),
            image_input_tokens=_int(_field(prompt, "image_tokens")),
            total_tokens=_int(total) if total is not None else None,
        )
    return None
