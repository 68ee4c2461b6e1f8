"""The Realtime API (WebSocket): one journal event per response, and per billed input transcription.

A Realtime session never reaches the SDK's HTTP chokepoint: ``client.realtime.connect()`` opens a WebSocket
in ``RealtimeConnectionManager._connect_ws``, which is also what the connection calls to reconnect.  The
journaled clients' ``realtime`` resource returns managers whose ``_connect_ws`` hands the SDK a thin proxy of
the websockets connection: its ``recv`` gives the SDK every message unchanged and shows it once to a
:class:`_Tap`, which journals:

* each ``response.done`` as endpoint ``realtime``: usage from ``response.usage`` (text, audio, cached and
  cached-audio, image tokens), the served model from ``session.created`` / ``session.updated`` (else the
  model the connection was opened with), latency from the matching ``response.created``, status ``ok``
  (completed), ``aborted`` (cancelled, incomplete; the reason in ``error_code``) or ``error`` (failed);
* each ``conversation.item.input_audio_transcription.completed`` that carries ``usage`` as endpoint
  ``realtime.transcription``, billed by the session's transcription model;
* a response still in progress when the socket closes, as ``aborted`` without usage.

The session id and tags are those in force when ``connect()`` was called.  The older ``client.beta.realtime``
surface (no reconnection) is tapped when its manager enters.  The tap is cheap per message (the event type is
read from the message's first bytes; only the few events above are JSON-decoded) and never raises into the
caller.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx2
import openai
from openai.resources.beta.beta import AsyncBeta, Beta
from openai.resources.beta.realtime.realtime import AsyncRealtime as AsyncBetaRealtime
from openai.resources.beta.realtime.realtime import AsyncRealtimeConnection as AsyncBetaRealtimeConnection
from openai.resources.beta.realtime.realtime import (
    AsyncRealtimeConnectionManager as AsyncBetaRealtimeConnectionManager,
)
from openai.resources.beta.realtime.realtime import Realtime as BetaRealtime
from openai.resources.beta.realtime.realtime import RealtimeConnection as BetaRealtimeConnection
from openai.resources.beta.realtime.realtime import RealtimeConnectionManager as BetaRealtimeConnectionManager
from openai.resources.realtime.realtime import (
    AsyncRealtime,
    AsyncRealtimeConnectionManager,
    Realtime,
    RealtimeConnectionManager,
)

from .call import AZURE_HOST_SUFFIXES, Call, ClientSettings
from .context import current_session, current_tags
from .usage import usage_from_json

if TYPE_CHECKING:
    from openai._types import Headers, Query
    from websockets.asyncio.client import ClientConnection as AsyncWebSocket
    from websockets.sync.client import ClientConnection as WebSocket

__all__ = ["journaled_beta", "journaled_realtime"]

log = logging.getLogger("tokenid")

ENDPOINT = "realtime"
TRANSCRIPTION_ENDPOINT = "realtime.transcription"
_UPGRADED = 101  # the HTTP status of the WebSocket upgrade every event rides on

_SESSION = ("session.created", "session.updated")
_RESPONSE_CREATED = "response.created"
_RESPONSE_DONE = "response.done"
_TRANSCRIBED = "conversation.item.input_audio_transcription.completed"
_WATCHED = frozenset({*_SESSION, _RESPONSE_CREATED, _RESPONSE_DONE, _TRANSCRIBED})
# how a message may start when its type comes first (the services and the simulator send it so)
_HEADS_B = (b'{"type":"', b'{"type": "')
_HEADS_S = ('{"type":"', '{"type": "')
# the watched types, quoted, for messages whose type is not first: only a JSON string can match
_QUOTED_B = tuple((b'"' + name.encode() + b'"', name) for name in _WATCHED)
_QUOTED_S = tuple(('"' + name + '"', name) for name in _WATCHED)
_RESPONSE_ID = re.compile(r'"response_id"\s*:\s*"([^"]+)"')
_ABORTED = {"cancelled": "aborted", "incomplete": "aborted", "failed": "error"}


def _closed_errors() -> tuple[type[BaseException], ...]:
    try:
        from websockets.exceptions import ConnectionClosed
    except ImportError:  # no realtime extra: the SDK cannot open a socket either
        return ()
    return (ConnectionClosed,)


_CLOSED = _closed_errors()


def _event_type(message: bytes | str) -> str | None:
    """The event type of a server message without decoding it: read from the start, else searched for.

    Returns any type found first in the message (deltas included), or one of the watched types found
    anywhere; None otherwise.
    """
    if isinstance(message, bytes):
        for head in _HEADS_B:
            if message.startswith(head):
                end = message.find(b'"', len(head), 128)
                return message[len(head):end].decode("ascii", "replace") if end != -1 else None
        for quoted, name in _QUOTED_B:
            if quoted in message:
                return name
        return None
    for text_head in _HEADS_S:
        if message.startswith(text_head):
            end = message.find('"', len(text_head), 128)
            return message[len(text_head):end] if end != -1 else None
    for text_quoted, name in _QUOTED_S:
        if text_quoted in message:
            return name
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _host(value: str) -> str:
    """A ``Host`` header without its port (``[::1]:80`` -> ``[::1]``)."""
    name, sep, port = value.rpartition(":")
    return name if sep and port.isdigit() else value


def _transcription_model(session: Mapping[str, Any]) -> str | None:
    """The input-transcription model a session names (GA ``audio.input.transcription``, beta field)."""
    config = session.get("input_audio_transcription")
    audio = session.get("audio")
    if isinstance(audio, Mapping) and isinstance(audio.get("input"), Mapping):
        config = audio["input"].get("transcription", config)
    return _text(config.get("model")) if isinstance(config, Mapping) else None


class _Origin:
    """What every event of one ``connect()`` shares, reconnections included."""

    __slots__ = ("model", "session_id", "settings", "tags")

    def __init__(self, client: object, model: object) -> None:
        settings: ClientSettings = cast(Any, client)._tokenid
        self.settings = settings
        self.model = _text(model)
        # as the journaled clients do for HTTP calls (_Journaling._tokenid_begin), at connect time
        self.session_id = current_session() or settings.session_id
        scoped = current_tags()
        self.tags = {**settings.tags, **scoped} if scoped else settings.tags


class _Tap:
    """Watches one WebSocket's server messages and journals what they bill."""

    __slots__ = ("_open", "_origin", "_transcriber", "_waiting_first", "api_version", "deployment", "headers",
                 "model_served", "path", "provider", "resource")

    def __init__(self, origin: _Origin, ws: Any) -> None:
        self._origin = origin
        self._open: dict[str, Call] = {}  # response id -> its call, from response.created to response.done
        self._waiting_first = 0  # open calls without a first delta yet
        self._transcriber: str | None = None
        self.model_served: str | None = None
        settings = origin.settings
        # where the handshake went (websockets keeps its request and response)
        request = getattr(ws, "request", None)
        url = urlsplit(getattr(request, "path", None) or "")
        self.path = url.path or "/realtime"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        sent = getattr(request, "headers", None)
        host = _host(sent.get("Host") or "") if sent is not None else ""
        self.resource = host or None
        azure = settings.azure or host.endswith(AZURE_HOST_SUFFIXES)
        self.provider = "azure_openai" if azure else "openai"
        deployment = re.search(r"/deployments/([^/]+)/", self.path)
        self.deployment = (query.get("deployment") or (deployment.group(1) if deployment else None)
                           or query.get("model") or origin.model) if azure else None
        self.api_version = (query.get("api-version") or settings.api_version) if azure else None
        response = getattr(ws, "response", None)
        raw = getattr(getattr(response, "headers", None), "raw_items", None)
        self.headers = httpx2.Headers(list(raw())) if callable(raw) else None

    # -- on the caller's thread, per message -----------------------------------------------------
    def see(self, message: bytes | str) -> None:
        try:
            kind = _event_type(message)
            if kind is None:
                return
            if kind in _WATCHED:
                self._handle(kind, json.loads(message))
            elif self._waiting_first and kind.endswith(".delta"):
                self._first_delta(message)
        except Exception as exc:  # the tap must never break the caller's session
            log.error("tokenid: cannot journal a realtime event (%s: %s)", type(exc).__name__, exc)

    def closed(self) -> None:
        """The socket closed: responses still open end here, unbilled as far as we know."""
        self._waiting_first = 0
        try:
            while self._open:
                _, call = self._open.popitem()
                call.status = "aborted"
                call.error_code = "connection_closed"
                call.returned = True
                call.finish()
        except Exception as exc:
            log.error("tokenid: cannot journal an unfinished realtime response (%s: %s)", type(exc).__name__, exc)

    def _handle(self, kind: str, event: object) -> None:
        if not isinstance(event, dict) or event.get("type") != kind:
            return
        if kind == _RESPONSE_DONE:
            self._response_done(event.get("response"))
        elif kind == _RESPONSE_CREATED:
            response = event.get("response")
            rid = response.get("id") if isinstance(response, dict) else None
            if isinstance(rid, str) and rid not in self._open:
                self._open[rid] = self._call(ENDPOINT, self._origin.model, self.deployment, stream=True)
                self._waiting_first += 1
        elif kind == _TRANSCRIBED:
            self._transcribed(event)
        else:
            session = event.get("session")
            if isinstance(session, dict):
                self.model_served = _text(session.get("model")) or self.model_served
                self._transcriber = _transcription_model(session)

    def _call(self, endpoint: str, model: str | None, deployment: str | None, *, stream: bool) -> Call:
        origin = self._origin
        call = Call(origin.settings, method="GET", path=self.path, body={"model": model} if model else None,
                    stream=stream, session_id=origin.session_id, tags=origin.tags)
        call.endpoint = endpoint
        call.provider = self.provider
        call.resource = self.resource
        call.deployment = deployment
        call.api_version = self.api_version
        call.attempts = 1
        call.http_status = _UPGRADED
        call.set_headers(self.headers)
        return call

    def _first_delta(self, message: bytes | str) -> None:
        text = message[:512].decode("utf-8", "replace") if isinstance(message, bytes) else message[:512]
        found = _RESPONSE_ID.search(text)
        call = self._open.get(found.group(1)) if found is not None else None
        if call is not None and call.t_first is None:
            call.first_byte()
            self._waiting_first -= 1

    def _response_done(self, response: object) -> None:
        if not isinstance(response, dict):
            return
        rid = response.get("id")
        call = self._open.pop(rid, None) if isinstance(rid, str) else None
        if call is None:  # its response.created was not seen (sent before a reconnection)
            call = self._call(ENDPOINT, self._origin.model, self.deployment, stream=True)
        elif call.t_first is None:
            self._waiting_first -= 1
        status = response.get("status")
        details = response.get("status_details")
        details = details if isinstance(details, dict) else {}
        call.status = _ABORTED.get(status, "ok") if isinstance(status, str) else "ok"
        if call.status == "error":
            found = details.get("error")
            error: dict[str, Any] = found if isinstance(found, dict) else {}
            call.error = _text(error.get("type")) or "failed"
            call.error_code = _text(error.get("code"))
            message = _text(error.get("message"))
            call.error_message = message[:2000] if message else None
        elif call.status == "aborted":
            call.error_code = _text(details.get("reason"))
        model = self.model_served or self._origin.model
        self._finish(call, response.get("usage"), model, response)

    def _transcribed(self, event: Mapping[str, Any]) -> None:
        usage = event.get("usage")
        if not isinstance(usage, dict):
            return
        # billed by the transcription model, not the realtime deployment: no deployment to resolve it by
        call = self._call(TRANSCRIPTION_ENDPOINT, self._transcriber, None, stream=False)
        self._finish(call, usage, self._transcriber, {"usage": usage})

    def _finish(self, call: Call, raw_usage: object, model: str | None, payload: Mapping[str, Any]) -> None:
        usage = usage_from_json(raw_usage)
        if usage is not None:
            call.parsed = (usage, model, None)
        else:
            call.stream = False  # nothing to estimate a realtime response's usage from
        if usage is None or call.settings.store_content:
            # the writer reads what it needs from a JSON body: usage and model, content when opted in, and
            # units such as a transcription's seconds
            call.body = json.dumps({**payload, "model": model}).encode()
            call.content_type = "application/json"
        call.complete = True
        call.returned = True
        call.finish()


class _SyncSocket:
    """The websockets connection as the SDK uses it, with every received message shown to the tap."""

    __slots__ = ("_tokenid_tap", "_ws")

    def __init__(self, ws: Any, tap: _Tap) -> None:
        self._ws = ws
        self._tokenid_tap = tap

    def recv(self, *args: Any, **kwargs: Any) -> Any:
        try:
            message = self._ws.recv(*args, **kwargs)
        except _CLOSED:
            self._tokenid_tap.closed()
            raise
        self._tokenid_tap.see(message)
        return message

    def close(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._ws.close(*args, **kwargs)
        finally:
            self._tokenid_tap.closed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


class _AsyncSocket:
    """:class:`_SyncSocket` for the asyncio connection."""

    __slots__ = ("_tokenid_tap", "_ws")

    def __init__(self, ws: Any, tap: _Tap) -> None:
        self._ws = ws
        self._tokenid_tap = tap

    async def recv(self, *args: Any, **kwargs: Any) -> Any:
        try:
            message = await self._ws.recv(*args, **kwargs)
        except _CLOSED:
            self._tokenid_tap.closed()
            raise
        self._tokenid_tap.see(message)
        return message

    async def close(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._ws.close(*args, **kwargs)
        finally:
            self._tokenid_tap.closed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


def _tapped(origin: _Origin | None, ws: Any, *, asynchronous: bool) -> Any:
    if origin is None:
        return ws
    try:
        tap = _Tap(origin, ws)
    except Exception as exc:  # journaling is lost for this socket, the session is not
        log.error("tokenid: cannot watch this realtime connection (%s: %s)", type(exc).__name__, exc)
        return ws
    return _AsyncSocket(ws, tap) if asynchronous else _SyncSocket(ws, tap)


# -- the SDK's managers, with the socket tapped ------------------------------------------------------

class _JournaledConnectionManager(RealtimeConnectionManager):
    _tokenid_origin: _Origin | None = None

    def _connect_ws(self, extra_query: Query, extra_headers: Headers) -> WebSocket:
        ws = super()._connect_ws(extra_query, extra_headers)
        return cast("WebSocket", _tapped(self._tokenid_origin, ws, asynchronous=False))


class _AsyncJournaledConnectionManager(AsyncRealtimeConnectionManager):
    _tokenid_origin: _Origin | None = None

    async def _connect_ws(self, extra_query: Query, extra_headers: Headers) -> AsyncWebSocket:
        ws = await super()._connect_ws(extra_query, extra_headers)
        return cast("AsyncWebSocket", _tapped(self._tokenid_origin, ws, asynchronous=True))


class _JournaledBetaConnectionManager(BetaRealtimeConnectionManager):
    _tokenid_origin: _Origin | None = None

    def __enter__(self) -> BetaRealtimeConnection:
        connection = super().__enter__()
        connection._connection = _tapped(self._tokenid_origin, connection._connection, asynchronous=False)
        return connection

    enter = __enter__


class _AsyncJournaledBetaConnectionManager(AsyncBetaRealtimeConnectionManager):
    _tokenid_origin: _Origin | None = None

    async def __aenter__(self) -> AsyncBetaRealtimeConnection:
        connection = await super().__aenter__()
        connection._connection = _tapped(self._tokenid_origin, connection._connection, asynchronous=True)
        return connection

    enter = __aenter__


def _journaled(manager: Any, cls: type, client: object, model: object) -> Any:
    """The manager the SDK's own ``connect()`` built (its arguments and defaults), retyped to tap its socket."""
    try:
        origin = _Origin(client, model)
        manager.__class__ = cls
        manager._tokenid_origin = origin
    except Exception as exc:
        log.error("tokenid: realtime session not journaled (%s: %s)", type(exc).__name__, exc)
    return manager


class _JournaledRealtime(Realtime):
    def connect(self, **kwargs: Any) -> RealtimeConnectionManager:
        manager = super().connect(**kwargs)
        return cast(RealtimeConnectionManager,
                    _journaled(manager, _JournaledConnectionManager, self._client, kwargs.get("model")))


class _AsyncJournaledRealtime(AsyncRealtime):
    def connect(self, **kwargs: Any) -> AsyncRealtimeConnectionManager:
        manager = super().connect(**kwargs)
        return cast(AsyncRealtimeConnectionManager,
                    _journaled(manager, _AsyncJournaledConnectionManager, self._client, kwargs.get("model")))


class _JournaledBetaRealtime(BetaRealtime):
    def connect(self, **kwargs: Any) -> BetaRealtimeConnectionManager:
        manager = super().connect(**kwargs)
        return cast(BetaRealtimeConnectionManager,
                    _journaled(manager, _JournaledBetaConnectionManager, self._client, kwargs.get("model")))


class _AsyncJournaledBetaRealtime(AsyncBetaRealtime):
    def connect(self, **kwargs: Any) -> AsyncBetaRealtimeConnectionManager:
        manager = super().connect(**kwargs)
        return cast(AsyncBetaRealtimeConnectionManager,
                    _journaled(manager, _AsyncJournaledBetaConnectionManager, self._client, kwargs.get("model")))


class _JournaledBeta(Beta):
    @cached_property
    def realtime(self) -> BetaRealtime:
        return _JournaledBetaRealtime(self._client)


class _AsyncJournaledBeta(AsyncBeta):
    @cached_property
    def realtime(self) -> AsyncBetaRealtime:
        return _AsyncJournaledBetaRealtime(self._client)


def journaled_realtime(client: object) -> Realtime | AsyncRealtime:
    """``client.realtime`` for a journaled client: the SDK's resource, its WebSocket sessions journaled."""
    if isinstance(client, openai.AsyncOpenAI):
        return _AsyncJournaledRealtime(client)
    return _JournaledRealtime(cast(openai.OpenAI, client))


def journaled_beta(client: object) -> Beta | AsyncBeta:
    """``client.beta`` for a journaled client, with ``beta.realtime`` sessions journaled."""
    if isinstance(client, openai.AsyncOpenAI):
        return _AsyncJournaledBeta(client)
    return _JournaledBeta(cast(openai.OpenAI, client))
