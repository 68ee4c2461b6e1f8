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


def _details(usage: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        value = usage.get(key)
        if isinstance(value, Mapping):
            return value
    return {}


def usage_from_json(usage: object) -> Usage | None:
    """Read a ``usage`` object (already decoded JSON) of any endpoint; None when it carries no counts.

    Handles chat/completions/embeddings (``prompt_tokens``…), Responses, image and audio models
    (``input_tokens``…), and the details objects of both spellings.
    """
    if not isinstance(usage, Mapping):
        return None
    if "input_tokens" in usage or "output_tokens" in usage:
        inp = _details(usage, "input_tokens_details", "input_token_details")
        out = _details(usage, "output_tokens_details", "output_token_details")
        return Usage(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cached_input_tokens=_int(inp.get("cached_tokens")),
            reasoning_tokens=_int(out.get("reasoning_tokens")),
            audio_input_tokens=_int(inp.get("audio_tokens")),
            audio_output_tokens=_int(out.get("audio_tokens")),
            cache_write_tokens=_int(inp.get("cache_creation_tokens") or inp.get("cache_write_tokens")),
            image_input_tokens=_int(inp.get("image_tokens")),
            total_tokens=_int(usage["total_tokens"]) if "total_tokens" in usage else None,
        )
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt = _details(usage, "prompt_tokens_details")
        completion = _details(usage, "completion_tokens_details")
        return Usage(
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
            cached_input_tokens=_int(prompt.get("cached_tokens")),
            reasoning_tokens=_int(completion.get("reasoning_tokens")),
            audio_input_tokens=_int(prompt.get("audio_tokens")),
            audio_output_tokens=_int(completion.get("audio_tokens")),
            image_input_tokens=_int(prompt.get("image_tokens")),
            total_tokens=_int(usage["total_tokens"]) if "total_tokens" in usage else None,
        )
    return None
