"""The Realtime API over WebSocket, as OpenAI and Azure OpenAI serve it.

Routes: OpenAI ``/v1/realtime?model=M``, Azure ``/openai/realtime?api-version=DATE&deployment=D`` and Azure's
GA ``/openai/v1/realtime?model=D``.  The upgrade request gets the HTTP routes' checks (Azure ``api-version``,
the key, the deployment or model); when one fails the upgrade is refused with the very HTTP error those routes
send.  The handshake answer carries the HTTP routes' headers (request ids; the region on Azure).

Events are the GA ones ``openai.types.realtime`` models.  A client that sends ``OpenAI-Beta: realtime=v1``
(the SDK's ``beta.realtime``) gets the beta names and shapes instead (``conversation.item.created``,
``response.text.delta``, ``response.audio.delta``, ``response.audio_transcript.delta``, ``modalities``).
Handled client events: ``session.update``, ``conversation.item.create`` (``input_text`` and
``input_audio`` parts), ``input_audio_buffer.append`` / ``commit`` / ``clear``, ``response.create`` and
``response.cancel``; anything else answers an ``error`` event.  Turn detection is not simulated: audio
becomes an item on ``commit`` and a response starts on ``response.create``.

Rules, so tests can rely on them (the ``usage`` of ``response.done``):

* Input text tokens: the conversation counted as a chat prompt by
  :func:`tokenid.tokens.count_chat_prompt_tokens` with the served model's tokenizer: the instructions as a
  system message, every item as a message of its text.  Audio adds no text tokens (an audio reply counts
  as audio, not as its transcript).
* Input audio tokens: :data:`~tokenid.simulator.media.INPUT_AUDIO_TOKENS_PER_SECOND` (1 per 100 ms, rounded
  up per item) for user audio and for earlier audio replies.  User audio is 24 kHz mono pcm16
  (:data:`PCM16_BYTES_PER_SECOND`) or G.711 (:data:`G711_BYTES_PER_SECOND`) as the session's input format
  says.  OpenAI documents the same rates for its realtime models: user audio 1 token per 100 ms, assistant
  audio 1 token per 50 ms.
* Cached tokens: when the conversation only grew since the previous response (same instructions, earlier
  items unchanged), that response's whole input is a cache hit, reported as ``cached_tokens`` with its text
  and audio split in ``cached_tokens_details``.  The first response caches nothing.
* Output: a reply of ``max_output_tokens`` tokens (the response's, else the session's; ``"inf"`` or none
  gives :data:`~tokenid.simulator.content.DEFAULT_REPLY_TOKENS`) from
  :func:`~tokenid.simulator.content.make_reply`.  Audio output speaks that text as the transcript:
  :func:`~tokenid.simulator.media.speech_seconds` of pcm16 at
  :data:`~tokenid.simulator.media.OUTPUT_AUDIO_TOKENS_PER_SECOND` (1 per 50 ms), and the transcript's
  tokens as output text tokens.  ``output_tokens`` is text plus audio.
* Deltas are :data:`DELTA_INTERVAL_S` apart, so a ``response.cancel`` lands mid-response: the response stops
  at its next event and ends ``cancelled`` (reason ``client_cancelled``); its usage counts the whole input
  and the output sent until then.
* Input transcription (GA ``audio.input.transcription.model``, beta ``input_audio_transcription.model``):
  each commit is followed by ``conversation.item.input_audio_transcription.completed``, with
  :data:`~tokenid.simulator.media.TRANSCRIPT_WORDS_PER_SECOND` one-token words a second.  ``whisper`` models
  report ``usage: {type: "duration", seconds}`` (whole seconds, rounded up), others ``{type: "tokens"}``
  with the audio tokens as input and the transcript's tokens as output.

Faults (``x-sim-fault`` on the upgrade request; ``x-sim-fail-times`` / ``x-sim-fault-key`` as for HTTP):
``401`` and ``404`` refuse the upgrade; ``disconnect`` closes the socket with code 1012 (service restart,
which the SDK's reconnection treats as recoverable) right after the first ``response.done``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import importlib.util
import json
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from tokenid.simulator import errors
from tokenid.simulator.content import make_reply
from tokenid.simulator.media import (
    SAMPLE_RATE,
    TRANSCRIPT_WORDS_PER_SECOND,
    input_audio_tokens,
    output_audio_tokens,
    pcm_bytes,
    speech_seconds,
)
from tokenid.simulator.payloads import new_id
from tokenid.simulator.wire import AZURE_RESPONSES, AZURE_V1, OPENAI
from tokenid.tokens import count_chat_prompt_tokens, count_text_tokens

if TYPE_CHECKING:
    from tokenid.simulator.app import SimulatorApp

__all__ = ["WS_PROTOCOL", "routes"]

WS_PROTOCOL = "websockets-sansio" if importlib.util.find_spec("websockets") is not None else "none"
"""The uvicorn WebSocket implementation the simulator runs: websockets' sans-I/O one when installed."""

DELTA_INTERVAL_S = 0.002
AUDIO_CHUNK_SECONDS = 0.1
"""Seconds of audio per ``response.output_audio.delta``."""
PCM16_BYTES_PER_SECOND = SAMPLE_RATE * 2
G711_BYTES_PER_SECOND = 8000
DEFAULT_INSTRUCTIONS = "You are a helpful, witty, and friendly AI. Answer briefly."
DEFAULT_VOICE = "alloy"
DISCONNECT_CLOSE_CODE = 1012

_BETA_NAMES = {
    "conversation.item.added": "conversation.item.created",
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
}
_CLIENT_EVENTS = (
    "session.update",
    "conversation.item.create",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "response.create",
    "response.cancel",
)
_TEXT_PARTS = frozenset({"input_text", "text", "output_text"})
_PCM_FORMATS = frozenset({"audio/pcm", "pcm16"})


def routes(app: SimulatorApp) -> list[WebSocketRoute]:
    """The Realtime WebSocket routes of ``app``."""
    endpoint = _Endpoint(app)
    return [
        WebSocketRoute("/v1/realtime", endpoint.handler(OPENAI)),
        WebSocketRoute("/openai/realtime", endpoint.handler(AZURE_RESPONSES)),
        WebSocketRoute("/openai/v1/realtime", endpoint.handler(AZURE_V1)),
    ]


class _Endpoint:
    """The upgrade: the HTTP routes' checks, then one :class:`_Conversation` per socket."""

    def __init__(self, app: SimulatorApp) -> None:
        self._app = app

    def handler(self, flavor: str) -> Callable[[WebSocket], Awaitable[None]]:
        async def serve(websocket: WebSocket) -> None:
            await self._serve(websocket, flavor)

        return serve

    async def _serve(self, websocket: WebSocket, flavor: str) -> None:
        app = self._app
        started = time.perf_counter()
        azure = flavor != OPENAI
        # the app's checks read only the headers, which a WebSocket carries like a Request
        as_request = cast(Request, websocket)
        query = websocket.query_params
        name = query.get("deployment" if flavor == AZURE_RESPONSES else "model")
        deployment = name if azure else None
        served: str | None = None
        fault, denied = app.admit(as_request, flavor, query.get("api-version"), azure=azure)
        if denied is None:
            if name is None:
                denied = errors.missing_parameter("deployment" if flavor == AZURE_RESPONSES else "model")
            elif azure:
                served = app.deployments.get(name)
                if served is None or fault == "404":
                    denied = errors.deployment_not_found()
            elif fault == "404":
                denied = errors.model_not_found(name)
            else:
                served = app.deployments.get(name, name)
        headers = app._base_headers(azure=azure, deployment=deployment, started=started)
        if denied is not None or served is None:
            reply = denied or errors.deployment_not_found()
            headers.update(reply.headers)
            await websocket.send_denial_response(
                Response(reply.body, status_code=reply.status, headers=headers, media_type="application/json"))
            return
        await websocket.accept(headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()])
        beta = websocket.headers.get("openai-beta", "").replace(" ", "").lower() == "realtime=v1"
        conversation = _Conversation(websocket, app, model=served, beta=beta, disconnect=fault == "disconnect")
        await conversation.run()


@dataclass
class _Item:
    """One conversation item, as far as tokens go."""

    id: str
    role: str
    text: str
    audio_seconds: float


@dataclass(frozen=True)
class _Prefix:
    """The input of the previous response: what the next one finds cached if the conversation only grew."""

    item_ids: tuple[str, ...]
    instructions: str
    text_tokens: int
    audio_tokens: int


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` laid over it, objects merged key by key."""
    out = dict(base)
    for key, value in update.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = _merge(current, value)
        else:
            out[key] = value
    return out


def _max_tokens(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class _Conversation:
    """One socket's session: its configuration, items, input audio buffer and the response in progress."""

    def __init__(self, websocket: WebSocket, app: SimulatorApp, *, model: str, beta: bool, disconnect: bool) -> None:
        self.ws = websocket
        self.app = app
        self.model = model
        self.beta = beta
        self.disconnect = disconnect
        self.session = self._new_session()
        self.items: list[_Item] = []
        self.buffer = bytearray()
        self.prefix: _Prefix | None = None
        self.conversation_id = new_id("conv_", 22)
        self.active: str | None = None  # id of the response in progress
        self.cancel_requested = False
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self._send_lock = asyncio.Lock()

    # ------------------------------------------------------------------ the socket

    async def run(self) -> None:
        await self.send("session.created", session=self.session)
        try:
            while not self.closed:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                await self.handle(text)
        finally:
            self.closed = True
            if self.task is not None:
                self.task.cancel()
                with contextlib.suppress(BaseException):
                    await self.task

    async def send(self, kind: str, **fields: object) -> None:
        """Send a server event (``type`` first, compact JSON, as the service sends them)."""
        if self.closed:
            return
        name = _BETA_NAMES.get(kind, kind) if self.beta else kind
        event = {"type": name, "event_id": new_id("event_", 22), **fields}
        async with self._send_lock:
            await self.ws.send_text(json.dumps(event, separators=(",", ":")))

    async def error(self, message: str, *, code: str | None, param: str | None = None,
                    event_id: object = None, kind: str = "invalid_request_error") -> None:
        await self.send("error", error={"type": kind, "code": code, "message": message, "param": param,
                                        "event_id": event_id if isinstance(event_id, str) else None})

    async def handle(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            await self.error("The server could not parse the event as JSON.", code="invalid_json")
            return
        if not isinstance(event, dict):
            await self.error("Events must be JSON objects.", code="invalid_value")
            return
        kind = event.get("type")
        handler = {
            "session.update": self.session_update,
            "conversation.item.create": self.item_create,
            "input_audio_buffer.append": self.buffer_append,
            "input_audio_buffer.commit": self.buffer_commit,
            "input_audio_buffer.clear": self.buffer_clear,
            "response.create": self.response_create,
            "response.cancel": self.response_cancel,
        }.get(kind if isinstance(kind, str) else "")
        if handler is None:
            allowed = ", ".join(f"'{name}'" for name in _CLIENT_EVENTS)
            await self.error(f"Invalid value: '{kind}'. Supported values are: {allowed}.", code="invalid_value",
                             param="type", event_id=event.get("event_id"))
            return
        await handler(event)

    # ------------------------------------------------------------------ session

    def _new_session(self) -> dict[str, Any]:
        ident = new_id("sess_", 22)
        expires = int(time.time()) + 30 * 60
        if self.beta:
            return {
                "id": ident, "object": "realtime.session", "model": self.model, "expires_at": expires,
                "modalities": ["text", "audio"], "instructions": DEFAULT_INSTRUCTIONS, "voice": DEFAULT_VOICE,
                "input_audio_format": "pcm16", "output_audio_format": "pcm16", "input_audio_transcription": None,
                "turn_detection": None, "tools": [], "tool_choice": "auto", "temperature": 0.8,
                "max_response_output_tokens": "inf",
            }
        pcm = {"type": "audio/pcm", "rate": SAMPLE_RATE}
        return {
            "type": "realtime", "object": "realtime.session", "id": ident, "model": self.model,
            "expires_at": expires, "output_modalities": ["audio"], "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [], "tool_choice": "auto", "max_output_tokens": "inf", "tracing": None, "truncation": "auto",
            "prompt": None, "include": None,
            "audio": {
                "input": {"format": pcm, "transcription": None, "noise_reduction": None, "turn_detection": None},
                "output": {"format": pcm, "voice": DEFAULT_VOICE, "speed": 1.0},
            },
        }

    async def session_update(self, event: Mapping[str, Any]) -> None:
        update = event.get("session")
        if not isinstance(update, Mapping):
            await self.error("Missing required parameter: 'session'.", code="missing_required_parameter",
                             param="session", event_id=event.get("event_id"))
            return
        fixed = ("id", "object", "model", "expires_at")
        self.session = _merge(self.session, {k: v for k, v in update.items() if k not in fixed})
        await self.send("session.updated", session=self.session)

    def _instructions(self, response: Mapping[str, Any]) -> str:
        value = response.get("instructions", self.session.get("instructions"))
        return value if isinstance(value, str) else ""

    def _audio_out(self, response: Mapping[str, Any]) -> bool:
        key = "modalities" if self.beta else "output_modalities"
        value = response.get(key, self.session.get(key))
        return isinstance(value, list) and "audio" in value

    def _reply_limit(self, response: Mapping[str, Any]) -> int | None:
        key = "max_response_output_tokens" if self.beta else "max_output_tokens"
        found = response.get("max_output_tokens", response.get(key))
        return _max_tokens(found if found is not None else self.session.get(key))

    def _input_bytes_per_second(self) -> int:
        if self.beta:
            fmt = self.session.get("input_audio_format")
        else:
            config = ((self.session.get("audio") or {}).get("input") or {}).get("format")
            fmt = config.get("type") if isinstance(config, Mapping) else None
        return PCM16_BYTES_PER_SECOND if fmt is None or fmt in _PCM_FORMATS else G711_BYTES_PER_SECOND

    def _transcription_model(self) -> str | None:
        if self.beta:
            config = self.session.get("input_audio_transcription")
        else:
            config = ((self.session.get("audio") or {}).get("input") or {}).get("transcription")
        model = config.get("model") if isinstance(config, Mapping) else None
        return model if isinstance(model, str) and model else None

    # ------------------------------------------------------------------ conversation items

    async def _add_item(self, item: _Item, payload: dict[str, Any]) -> None:
        previous = self.items[-1].id if self.items else None
        self.items.append(item)
        await self.send("conversation.item.added", previous_item_id=previous, item=payload)
        if not self.beta:
            await self.send("conversation.item.done", previous_item_id=previous, item=payload)

    async def item_create(self, event: Mapping[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, Mapping):
            await self.error("Missing required parameter: 'item'.", code="missing_required_parameter",
                             param="item", event_id=event.get("event_id"))
            return
        texts: list[str] = []
        seconds = 0.0
        parts: list[dict[str, Any]] = []
        for part in item.get("content") or ():
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
                texts.append(part["text"])
                parts.append({"type": kind, "text": part["text"]})
            elif kind == "input_audio":
                try:
                    audio = base64.b64decode(str(part.get("audio") or ""), validate=True)
                except (binascii.Error, ValueError):
                    await self.error("Invalid 'item.content.audio': not base64.", code="invalid_value",
                                     param="item.content.audio", event_id=event.get("event_id"))
                    return
                seconds += len(audio) / self._input_bytes_per_second()
                parts.append({"type": "input_audio", "transcript": part.get("transcript")})
        if isinstance(item.get("output"), str):  # a function_call_output
            texts.append(item["output"])
        given_id, given_role = item.get("id"), item.get("role")
        ident = given_id if isinstance(given_id, str) else new_id("item_", 22)
        role = given_role if isinstance(given_role, str) else "user"
        payload = {**item, "id": ident, "object": "realtime.item", "status": "completed"}
        if "content" in item:
            payload["content"] = parts
        await self._add_item(_Item(ident, role, " ".join(texts), seconds), payload)

    async def buffer_append(self, event: Mapping[str, Any]) -> None:
        try:
            self.buffer += base64.b64decode(str(event.get("audio") or ""), validate=True)
        except (binascii.Error, ValueError):
            await self.error("Invalid 'audio'. Expected base64-encoded audio bytes.", code="invalid_value",
                             param="audio", event_id=event.get("event_id"))

    async def buffer_clear(self, event: Mapping[str, Any]) -> None:
        self.buffer.clear()
        await self.send("input_audio_buffer.cleared")

    async def buffer_commit(self, event: Mapping[str, Any]) -> None:
        seconds = len(self.buffer) / self._input_bytes_per_second()
        if seconds < 0.1:
            await self.error(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but "
                f"buffer only has {seconds * 1000:.2f}ms of audio.", code="input_audio_buffer_commit_empty",
                event_id=event.get("event_id"))
            return
        audio = bytes(self.buffer)
        self.buffer.clear()
        ident = new_id("item_", 22)
        previous = self.items[-1].id if self.items else None
        await self.send("input_audio_buffer.committed", previous_item_id=previous, item_id=ident)
        payload = {"id": ident, "type": "message", "object": "realtime.item", "status": "completed", "role": "user",
                   "content": [{"type": "input_audio", "transcript": None}]}
        await self._add_item(_Item(ident, "user", "", seconds), payload)
        model = self._transcription_model()
        if model is not None:
            await self._transcribe(ident, audio, seconds, model)

    async def _transcribe(self, item_id: str, audio: bytes, seconds: float, model: str) -> None:
        words = max(1, round(seconds * TRANSCRIPT_WORDS_PER_SECOND))
        transcript = make_reply(zlib.crc32(audio), words, model).text
        usage: dict[str, Any]
        if model.startswith("whisper"):
            usage = {"type": "duration", "seconds": math.ceil(seconds)}
        else:
            audio_tokens = input_audio_tokens(seconds)
            out = count_text_tokens(transcript, model)
            usage = {"type": "tokens", "total_tokens": audio_tokens + out, "input_tokens": audio_tokens,
                     "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens}, "output_tokens": out}
        await self.send("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                        transcript=transcript, usage=usage)

    # ------------------------------------------------------------------ responses

    async def response_create(self, event: Mapping[str, Any]) -> None:
        if self.active is not None:
            await self.error(f"Conversation already has an active response in progress: {self.active}. Wait until "
                             "the response is finished before creating a new one.",
                             code="conversation_already_has_active_response", event_id=event.get("event_id"))
            return
        params = event.get("response")
        self.active = new_id("resp_", 22)
        self.cancel_requested = False
        self.task = asyncio.create_task(self._respond(self.active, params if isinstance(params, Mapping) else {}))

    async def response_cancel(self, event: Mapping[str, Any]) -> None:
        if self.active is None:
            await self.error("Cancellation failed: no active response found", code="response_cancel_not_active",
                             event_id=event.get("event_id"))
            return
        self.cancel_requested = True

    def _input_tokens(self, instructions: str) -> tuple[int, int]:
        messages = [{"role": "system", "content": instructions}] if instructions else []
        messages += [{"role": item.role, "content": item.text} for item in self.items]
        text = count_chat_prompt_tokens(messages, self.model)
        audio = sum(input_audio_tokens(item.audio_seconds) for item in self.items if item.audio_seconds > 0)
        return text, audio

    def _response_object(self, rid: str, *, status: str, audio_out: bool, limit: int | None,
                         metadata: object, output: list[dict[str, Any]], details: object = None,
                         usage: object = None) -> dict[str, Any]:
        modalities = ["audio"] if audio_out else ["text"]
        common = {"object": "realtime.response", "id": rid, "status": status, "status_details": details,
                  "output": output, "conversation_id": self.conversation_id,
                  "max_output_tokens": limit if limit is not None else "inf", "usage": usage,
                  "metadata": metadata if isinstance(metadata, Mapping) else None}
        if self.beta:
            return {**common, "modalities": ["text", "audio"] if audio_out else ["text"],
                    "voice": self.session.get("voice", DEFAULT_VOICE), "output_audio_format": "pcm16",
                    "temperature": 0.8}
        output_config = ((self.session.get("audio") or {}).get("output")) or {}
        return {**common, "output_modalities": modalities,
                "audio": {"output": {"format": output_config.get("format"),
                                     "voice": output_config.get("voice", DEFAULT_VOICE)}}}

    def _usage(self, text_in: int, audio_in: int, cached: _Prefix | None, text_out: int,
               audio_out: int) -> dict[str, Any]:
        cached_text = cached.text_tokens if cached is not None else 0
        cached_audio = cached.audio_tokens if cached is not None else 0
        details: dict[str, Any] = {"text_tokens": cached_text, "audio_tokens": cached_audio}
        inputs: dict[str, Any] = {"text_tokens": text_in, "audio_tokens": audio_in,
                                  "cached_tokens": cached_text + cached_audio, "cached_tokens_details": details}
        if not self.beta:
            details["image_tokens"] = 0
            inputs["image_tokens"] = 0
        return {"total_tokens": text_in + audio_in + text_out + audio_out, "input_tokens": text_in + audio_in,
                "output_tokens": text_out + audio_out, "input_token_details": inputs,
                "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out}}

    async def _respond(self, rid: str, params: Mapping[str, Any]) -> None:
        try:
            await self._generate(rid, params)
        except Exception:  # the client went away mid-response; nothing to answer
            self.closed = True

    async def _generate(self, rid: str, params: Mapping[str, Any]) -> None:
        instructions = self._instructions(params)
        audio_out = self._audio_out(params)
        limit = self._reply_limit(params)
        metadata = params.get("metadata")
        text_in, audio_in = self._input_tokens(instructions)
        ids = tuple(item.id for item in self.items)
        prev = self.prefix
        cached = prev if prev is not None and prev.instructions == instructions and \
            ids[:len(prev.item_ids)] == prev.item_ids else None
        self.prefix = _Prefix(ids, instructions, text_in, audio_in)
        seed = zlib.crc32(json.dumps([instructions, [(i.role, i.text, i.audio_seconds) for i in self.items]]).encode())
        reply = make_reply(seed, limit, self.model)

        def response(status: str, **fields: Any) -> dict[str, Any]:
            return self._response_object(rid, status=status, audio_out=audio_out, limit=limit, metadata=metadata,
                                         **fields)

        await self.send("response.created", response=response("in_progress", output=[]))
        await self._rate_limits(text_in + audio_in + reply.tokens)
        item_id = new_id("item_", 22)
        previous = self.items[-1].id if self.items else None
        item: dict[str, Any] = {"id": item_id, "type": "message", "object": "realtime.item",
                                "status": "in_progress", "role": "assistant", "content": []}
        where = {"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0}
        await self.send("response.output_item.added", response_id=rid, output_index=0, item=item)
        await self.send("conversation.item.added", previous_item_id=previous, item=item)
        part_type = ("" if self.beta else "output_") + ("audio" if audio_out else "text")
        text_key = "transcript" if audio_out else "text"
        await self.send("response.content_part.added", **where, part={"type": part_type, text_key: ""})
        if self.app.latency_s > 0:
            await asyncio.sleep(self.app.latency_s)

        audio = pcm_bytes(speech_seconds(reply.text)) if audio_out else b""
        step = int(PCM16_BYTES_PER_SECOND * AUDIO_CHUNK_SECONDS)
        chunks = [audio[i:i + step] for i in range(0, len(audio), step)]
        sent: list[str] = []
        audio_sent = 0
        delta = "response.output_audio_transcript.delta" if audio_out else "response.output_text.delta"
        for index, piece in enumerate(reply.pieces):
            await asyncio.sleep(DELTA_INTERVAL_S)
            if self.cancel_requested or self.closed:
                break
            await self.send(delta, **where, delta=piece)
            sent.append(piece)
            share = len(chunks) * index // len(reply.pieces), len(chunks) * (index + 1) // len(reply.pieces)
            for chunk in chunks[share[0]:share[1]]:
                await self.send("response.output_audio.delta", **where, delta=base64.b64encode(chunk).decode("ascii"))
                audio_sent += len(chunk)
        cancelled = self.cancel_requested
        text = "".join(sent)
        if audio_out:
            await self.send("response.output_audio.done", **where)
            await self.send("response.output_audio_transcript.done", **where, transcript=text)
        else:
            await self.send("response.output_text.done", **where, text=text)
        part = {"type": part_type, text_key: text}
        await self.send("response.content_part.done", **where, part=part)
        item = {**item, "status": "incomplete" if cancelled else "completed", "content": [part]}
        await self.send("response.output_item.done", response_id=rid, output_index=0, item=item)
        if not self.beta:
            await self.send("conversation.item.done", previous_item_id=previous, item=item)
        seconds = audio_sent / PCM16_BYTES_PER_SECOND
        self.items.append(_Item(item_id, "assistant", "" if audio_out else text, seconds))
        text_out = count_text_tokens(text, self.model) if text else 0
        usage = self._usage(text_in, audio_in, cached, text_out, output_audio_tokens(seconds) if audio_sent else 0)
        details = {"type": "cancelled", "reason": "client_cancelled"} if cancelled else None
        self.active = None
        await self.send("response.done", response=response("cancelled" if cancelled else "completed", output=[item],
                                                           details=details, usage=usage))
        if self.disconnect:
            self.disconnect = False
            self.closed = True
            await self.ws.close(code=DISCONNECT_CLOSE_CODE, reason="service restart")

    async def _rate_limits(self, tokens: int) -> None:
        from tokenid.simulator.app import REQUEST_LIMIT, TOKEN_LIMIT  # the app imports this module

        requests_left, tokens_left = self.app.rates.take(tokens)
        await self.send("rate_limits.updated", rate_limits=[
            {"name": "requests", "limit": REQUEST_LIMIT, "remaining": requests_left, "reset_seconds": 0.006},
            {"name": "tokens", "limit": TOKEN_LIMIT, "remaining": tokens_left, "reset_seconds": 0.0},
        ])
