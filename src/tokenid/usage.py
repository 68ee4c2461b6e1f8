"""Token usage as a response reports it, for every endpoint shape the OpenAI APIs return.

Counts are taken exactly as reported; nothing is derived unless the response leaves it out.
``cached_input_tokens`` is a subset of ``input_tokens`` and ``reasoning_tokens`` a subset of
``output_tokens`` (pricing relies on that).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

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
    #: the audio part of ``cached_input_tokens``, when the response says (Realtime ``cached_tokens_details``)
    cached_audio_input_tokens: int = 0


def _int(value: object) -> int:
    if type(value) is int:  # nearly always: one check on the caller's thread
        return value if value >= 0 else 0
    # bool is an int subclass; a JSON true/false is never a token count
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return 0


def _fields(obj: object) -> Mapping[str, Any]:
    """Decoded JSON as is; the SDK's parsed models through their field dict (pydantic keeps fields there)."""
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, BaseModel):
        extra = obj.__pydantic_extra__  # fields the SDK does not declare yet (new Azure counters, say)
        return {**obj.__dict__, **extra} if extra else obj.__dict__
    if isinstance(obj, Mapping):
        return obj
    return {}


def _details(usage: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        value = usage.get(key)
        if value is not None:
            return _fields(value)
    return {}


def usage_from_json(usage: object) -> Usage | None:
    """Read a ``usage`` object of any endpoint; None when it carries no counts.

    Takes decoded JSON or the SDK's parsed usage model (same field names). Handles
    chat/completions/embeddings (``prompt_tokens``…), Responses, image and audio models
    (``input_tokens``…), and the details objects of both spellings.
    """
    if usage is None:
        return None
    usage = _fields(usage)
    total = usage.get("total_tokens")
    if usage.get("input_tokens") is not None or usage.get("output_tokens") is not None:
        inp = _details(usage, "input_tokens_details", "input_token_details")
        out = _details(usage, "output_tokens_details", "output_token_details")
        cached_parts = _details(inp, "cached_tokens_details")
        return Usage(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cached_input_tokens=_int(inp.get("cached_tokens")),
            reasoning_tokens=_int(out.get("reasoning_tokens")),
            audio_input_tokens=_int(inp.get("audio_tokens")),
            audio_output_tokens=_int(out.get("audio_tokens")),
            cache_write_tokens=_int(inp.get("cache_creation_tokens") or inp.get("cache_write_tokens")),
            image_input_tokens=_int(inp.get("image_tokens")),
            total_tokens=_int(total) if total is not None else None,
            cached_audio_input_tokens=_int(cached_parts.get("audio_tokens")),
        )
    if usage.get("prompt_tokens") is not None or usage.get("completion_tokens") is not None:
        prompt = _details(usage, "prompt_tokens_details")
        completion = _details(usage, "completion_tokens_details")
        cached_parts = _details(prompt, "cached_tokens_details")
        return Usage(
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
            cached_input_tokens=_int(prompt.get("cached_tokens")),
            reasoning_tokens=_int(completion.get("reasoning_tokens")),
            audio_input_tokens=_int(prompt.get("audio_tokens")),
            audio_output_tokens=_int(completion.get("audio_tokens")),
            image_input_tokens=_int(prompt.get("image_tokens")),
            total_tokens=_int(total) if total is not None else None,
            cached_audio_input_tokens=_int(cached_parts.get("audio_tokens")),
        )
    return None
