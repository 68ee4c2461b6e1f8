"""How long to wait before retrying a target: what the server asks for, else exponential backoff with jitter."""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Mapping

import openai

from .config import RetryPolicy

__all__ = ["backoff", "failure_status", "matches", "retry_after_seconds", "server_wait"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(text: str) -> float | None:
    """OpenAI's reset format (``6ms``, ``1s``, ``1m30s``, ``0.5s``) or a bare number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text.replace(" ", ""):
        return None
    return sum(float(amount) * _UNIT_S[unit] for amount, unit in parts)


def retry_after_seconds(value: str) -> float | None:
    """A ``Retry-After`` value in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); a date in the past is
    0, anything else unreadable is None."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        parsed = email.utils.parsedate_tz(text)
        if parsed is None:
            return None
        return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return seconds if seconds >= 0 else None  # NaN and negatives are not waits


def server_wait(headers: Mapping[str, str] | None) -> tuple[float, str] | None:
    """Seconds the server asked to wait, and the header that said so.

    ``retry-after-ms`` first (Azure and OpenAI send it with 429s), then ``retry-after`` (seconds or an HTTP
    date), then ``x-ratelimit-reset-requests`` / ``-tokens`` for whichever limit is exhausted (both when the
    response does not say which).
    """
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            ms = float(value)
            if ms >= 0:
                return ms / 1000.0, "retry-after-ms"
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is not None:
        seconds = retry_after_seconds(value)
        if seconds is not None:
            return seconds, "retry-after"
    waits: list[tuple[float, str]] = []
    for kind in ("requests", "tokens"):
        reset = headers.get(f"x-ratelimit-reset-{kind}")
        remaining = headers.get(f"x-ratelimit-remaining-{kind}")
        if reset is None or (remaining is not None and remaining.strip() not in ("0", "")):
            continue
        reset_s = _duration(reset)
        if reset_s is not None:
            waits.append((reset_s, f"x-ratelimit-reset-{kind}"))
    return max(waits) if waits else None


def backoff(policy: RetryPolicy, retry: int, rng: random.Random) -> float:
    """The ``retry``-th wait (0-based): ``initial * 2**retry`` capped at ``max_delay_s``, minus up to ``jitter``."""
    base = min(policy.initial_delay_s * (2.0 ** min(retry, 60)), policy.max_delay_s)
    return base * (1.0 - policy.jitter * rng.random())


def failure_status(exc: BaseException) -> int | None:
    """The HTTP status of a failed call, when it got a response."""
    return exc.status_code if isinstance(exc, openai.APIStatusError) else None


def matches(exc: BaseException, statuses: frozenset[int], errors: frozenset[str]) -> bool:
    """Does a failure fall under these status codes / error kinds / exception class names?

    ``timeout`` is :class:`openai.APITimeoutError`; ``connection`` any other :class:`openai.APIConnectionError`.
    """
    status = failure_status(exc)
    if status is not None and status in statuses:
        return True
    if not errors:
        return False
    if isinstance(exc, openai.APITimeoutError):
        if "timeout" in errors:
            return True
    elif isinstance(exc, openai.APIConnectionError) and "connection" in errors:
        return True
    return any(cls.__name__ in errors for cls in type(exc).__mro__)
