"""Session id and tags for a block of code, carried by ``contextvars``.

Context variables follow asyncio tasks (each task starts with a copy of its creator's context)
and stay separate per thread, so concurrent requests in one process never mix sessions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current_session", "current_tags", "session", "tags"]

_SESSION: ContextVar[str | None] = ContextVar("tokenid_session", default=None)
_TAGS: ContextVar[Mapping[str, str]] = ContextVar("tokenid_tags", default={})  # noqa: B039 (never mutated)


def _clean_tags(values: Mapping[str, object], where: str) -> dict[str, str]:
    from .errors import ConfigError

    out: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: tag names must be non-empty strings, got {key!r}")
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{where}: tag {key!r} must be a string or number, got {type(value).__name__}")
        out[key] = str(value)
    return out


@contextmanager
def session(session_id: str | None = None, *, tags: Mapping[str, object] | None = None) -> Iterator[None]:
    """Journal every call made inside the block under ``session_id`` (and extra ``tags``).

    Overrides the client's own ``session_id``; tags merge over the client's and any outer block's.
    """
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        from .errors import ConfigError

        raise ConfigError(f"session_id must be a non-empty string, got {session_id!r}")
    session_token = _SESSION.set(session_id) if session_id is not None else None
    tags_token = _TAGS.set({**_TAGS.get(), **_clean_tags(tags, "session(tags=...)")}) if tags else None
    try:
        yield
    finally:
        if tags_token is not None:
            _TAGS.reset(tags_token)
        if session_token is not None:
            _SESSION.reset(session_token)


@contextmanager
def tags(**values: object) -> Iterator[None]:
    """Add tags (user, team, feature, ...) to every call made inside the block."""
    token = _TAGS.set({**_TAGS.get(), **_clean_tags(values, "tags(...)")})
    try:
        yield
    finally:
        _TAGS.reset(token)


def current_session() -> str | None:
    """The session id set by the innermost :func:`session` block, if any."""
    return _SESSION.get()


def current_tags() -> Mapping[str, str]:
    """Tags set by the enclosing :func:`session` / :func:`tags` blocks."""
    return _TAGS.get()
