"""Watching streamed responses: byte taps on the HTTP body and the journaled ``Stream`` classes.

The tap sits under every way the SDK (or the caller) reads a body — typed streams, raw responses,
``with_streaming_response`` — and keeps the bytes for metering at the end: it does no parsing per
chunk. The ``Stream`` subclasses add what only the parsed view knows: hiding the usage-only chunk
TokenID asked for, and noticing a ``break`` out of the loop.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, get_origin

import httpx2
from openai import AsyncStream, Stream

if TYPE_CHECKING:
    from .call import Call

__all__ = ["AsyncTap", "SyncTap", "journaled_stream_cls"]

# Bodies of these types are kept for metering; anything else (audio, files) is only counted.
_METERED_TYPES = ("json", "event-stream")
_MAX_KEPT_BYTES = 64 * 1024 * 1024


class _TapState:
    """What a tap shares with its finalizer: it must not reference the tap itself."""

    __slots__ = ("attempt", "call", "chunks", "complete", "done", "encoding", "error", "kept")

    def __init__(self, call: Call, attempt: int, response: httpx2.Response) -> None:
        self.call = call
        self.attempt = attempt
        self.chunks: list[bytes] = []
        self.complete = False
        self.done = False
        self.error: BaseException | None = None
        content_type = response.headers.get("content-type", "")
        self.kept = any(t in content_type for t in _METERED_TYPES)
        self.encoding = response.headers.get("content-encoding")

    def finish(self) -> None:
        if not self.done:
            self.done = True
            if self.error is not None:
                self.call.body_failed(self.attempt, self.chunks, self.error)
            else:
                self.call.body_done(self.attempt, self.chunks, self.complete, self.encoding)

    def collected(self) -> None:
        """The response was garbage-collected without being closed."""
        if not self.done:
            self.done = True
            self.call.body_done(self.attempt, self.chunks, self.complete, self.encoding)


class SyncTap(httpx2.SyncByteStream):
    """Passes a synchronous response body through unchanged, keeping a copy for the journal."""

    def __init__(self, inner: httpx2.SyncByteStream, state: _TapState) -> None:
        self.inner = inner
        self.state = state
        weakref.finalize(self, state.collected)

    def __iter__(self) -> Iterator[bytes]:
        state = self.state
        call = state.call
        chunks = state.chunks
        keep = state.kept
        size = 0
        try:
            for chunk in self.inner:
                if call.t_first is None:
                    call.first_byte()
                if keep:
                    size += len(chunk)
                    if size <= _MAX_KEPT_BYTES:
                        chunks.append(chunk)
                yield chunk
        except Exception as exc:  # the connection failed mid-body (the SDK re-raises it as its own error)
            state.error = exc
            raise
        state.complete = True

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.state.finish()


class AsyncTap(httpx2.AsyncByteStream):
    """Passes an asynchronous response body through unchanged, keeping a copy for the journal."""

    def __init__(self, inner: httpx2.AsyncByteStream, state: _TapState) -> None:
        self.inner = inner
        self.state = state
        weakref.finalize(self, state.collected)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        state = self.state
        call = state.call
        chunks = state.chunks
        keep = state.kept
        size = 0
        try:
            async for chunk in self.inner:
                if call.t_first is None:
                    call.first_byte()
                if keep:
                    size += len(chunk)
                    if size <= _MAX_KEPT_BYTES:
                        chunks.append(chunk)
                yield chunk
        except Exception as exc:  # the connection failed mid-body (the SDK re-raises it as its own error)
            state.error = exc
            raise
        state.complete = True

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            self.state.finish()


def tap_response(call: Call, attempt: int, response: httpx2.Response) -> None:
    """Put a tap under a response whose body has not been read yet."""
    state = _TapState(call, attempt, response)
    if isinstance(response.stream, httpx2.AsyncByteStream):
        response.stream = AsyncTap(response.stream, state)
    else:
        response.stream = SyncTap(response.stream, state)


def _call_of(stream: Any) -> Call | None:
    tap = getattr(stream.response, "stream", None)
    state = getattr(tap, "state", None)
    return state.call if isinstance(state, _TapState) else None


def _chunks_of(stream: Any) -> list[bytes] | None:
    state = getattr(getattr(stream.response, "stream", None), "state", None)
    return state.chunks if isinstance(state, _TapState) else None


def _usage_only(item: Any) -> bool:
    # the chunk include_usage adds: no choices, a usage object
    return getattr(item, "usage", None) is not None and getattr(item, "choices", True) == []


def _finished(item: Any) -> bool:
    choices = getattr(item, "choices", None)
    if not choices:
        return False
    if len(choices) == 1:
        return bool(getattr(choices[0], "finish_reason", None))
    return any(getattr(c, "finish_reason", None) for c in choices)


_NOTHING: Any = object()


class _UsageFolder:
    """Folds the usage-only chunk TokenID asked for into the chunk before it.

    Code such as ``chunk.choices[0]`` keeps working on every chunk, and the usage still reaches a caller
    who looks for ``chunk.usage``. Only after the first ``finish_reason`` (when just trailers remain, sent
    together) is one chunk held back, so streaming latency is unchanged.
    """

    __slots__ = ("held", "tail")

    def __init__(self) -> None:
        self.held: Any = _NOTHING
        self.tail = False

    def feed(self, item: Any) -> Any:
        """The item to hand to the caller now, or ``_NOTHING``."""
        if _usage_only(item):
            if self.held is not _NOTHING:
                self.held.usage = item.usage
            return _NOTHING
        if not self.tail:
            if not _finished(item):
                return item
            self.tail = True
        out, self.held = self.held, item
        return out

    def flush(self) -> Any:
        out, self.held = self.held, _NOTHING
        return out


def _folder(stream: Any) -> _UsageFolder | None:
    folder: _UsageFolder | None = stream.__dict__.get("_tokenid_folder", _NOTHING)
    if folder is _NOTHING:
        call = _call_of(stream)
        folder = _UsageFolder() if call is not None and call.injected_usage else None
        stream.__dict__["_tokenid_folder"] = folder
    return folder


class _JournaledSyncStream:
    """Methods of the journaled ``openai.Stream[...]`` subclasses: see the module docstring."""

    response: httpx2.Response
    _iterator: Iterator[Any]

    def __iter__(self) -> Iterator[Any]:
        call = _call_of(self)
        folder = _folder(self)
        iterator = self._iterator
        try:
            if folder is None:
                yield from iterator
            else:
                feed = folder.feed
                for item in iterator:
                    out = feed(item)
                    if out is not _NOTHING:
                        yield out
                held = folder.flush()
                if held is not _NOTHING:
                    yield held
        except GeneratorExit:  # the caller left the loop early
            if call is not None:
                call.abandoned(_chunks_of(self))
            raise
        except BaseException as exc:
            if call is not None:
                call.failed(exc)
            raise

    def __next__(self) -> Any:
        folder = _folder(self)
        try:
            while True:
                try:
                    item = self._iterator.__next__()
                except StopIteration:
                    if folder is not None:
                        held = folder.flush()
                        if held is not _NOTHING:
                            return held
                    raise
                if folder is None:
                    return item
                out = folder.feed(item)
                if out is not _NOTHING:
                    return out
        except StopIteration:
            raise
        except BaseException as exc:
            call = _call_of(self)
            if call is not None:
                call.failed(exc)
            raise


class _JournaledAsyncStream:
    """Methods of the journaled ``openai.AsyncStream[...]`` subclasses."""

    response: httpx2.Response
    _iterator: AsyncIterator[Any]

    async def __aiter__(self) -> AsyncIterator[Any]:
        call = _call_of(self)
        folder = _folder(self)
        iterator = self._iterator
        try:
            async for item in iterator:
                out = item if folder is None else folder.feed(item)
                if out is not _NOTHING:
                    yield out
            if folder is not None:
                held = folder.flush()
                if held is not _NOTHING:
                    yield held
        except GeneratorExit:
            if call is not None:
                call.abandoned(_chunks_of(self))
            raise
        except BaseException as exc:
            if call is not None:
                call.failed(exc)
            raise

    async def __anext__(self) -> Any:
        folder = _folder(self)
        try:
            while True:
                try:
                    item = await self._iterator.__anext__()
                except StopAsyncIteration:
                    if folder is not None:
                        held = folder.flush()
                        if held is not _NOTHING:
                            return held
                    raise
                if folder is None:
                    return item
                out = folder.feed(item)
                if out is not _NOTHING:
                    return out
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            call = _call_of(self)
            if call is not None:
                call.failed(exc)
            raise


_STREAM_CLASSES: dict[Any, type] = {}


def journaled_stream_cls(stream_cls: Any) -> Any:
    """The journaled subclass of an SDK stream class such as ``Stream[ChatCompletionChunk]`` (cached)."""
    cls = _STREAM_CLASSES.get(stream_cls)
    if cls is None:
        origin = get_origin(stream_cls) or stream_cls
        if isinstance(origin, type) and issubclass(origin, AsyncStream):
            mixin: type = _JournaledAsyncStream
        elif isinstance(origin, type) and issubclass(origin, Stream):
            mixin = _JournaledSyncStream
        else:
            return stream_cls
        # The SDK reads the chunk type from ``__orig_bases__`` and expects every base there to be generic,
        # so the mixin's methods are copied into the new class rather than added as a base.
        methods = {k: v for k, v in vars(mixin).items() if k in ("__iter__", "__next__", "__aiter__", "__anext__")}
        cls = types.new_class(f"Journaled{origin.__name__}", (stream_cls,), exec_body=lambda ns: ns.update(methods))
        cls.__module__ = origin.__module__
        _STREAM_CLASSES[stream_cls] = cls
    return cls
