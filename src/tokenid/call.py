"""One call's lifecycle: describe it, watch its response, and turn it into a journal row.

The caller's thread only describes the call and collects what the HTTP response carried (status,
headers, body bytes). Everything costly (JSON and SSE parsing, tokenizing for estimates, pricing)
runs in :meth:`Call.to_row` on the journal's writer thread.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import random
import re
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote_plus

import openai
import pydantic

from .journal.schema import COLUMNS
from .units import AudioSource, units_of
from .usage import Usage, usage_from_json

if TYPE_CHECKING:
    import httpx2

    from .enforce import Decision, Enforcer
    from .journal import Journal
    from .pricing import Pricer, PriceResult
    from .routing import CachedResponse, Router
    from .routing.router import RouteLog

__all__ = ["Call", "ClientSettings", "endpoint_name", "price_columns", "row_tuple", "usage_columns"]

log = logging.getLogger("tokenid")

AZURE_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")

# path after the API prefix -> journal endpoint name
_ENDPOINTS = {
    "chat/completions": "chat.completions",
    "completions": "completions",
    "embeddings": "embeddings",
    "responses": "responses",
    "images/generations": "images.generate",
    "images/edits": "images.edit",
    "images/variations": "images.variation",
    "audio/speech": "audio.speech",
    "audio/transcriptions": "audio.transcriptions",
    "audio/translations": "audio.translations",
    "moderations": "moderations",
    "batches": "batches",
    "files": "files",
    "uploads": "uploads",
    "models": "models",
    "fine_tuning/jobs": "fine_tuning.jobs",
    "vector_stores": "vector_stores",
    "assistants": "assistants",
    "threads": "threads",
    "threads/runs": "threads.runs",
    "realtime/sessions": "realtime.sessions",
}
_PREFIX = re.compile(r"^/*(?:openai/)?(?:v1/)?(?:deployments/[^/]+/)?")
_DEPLOYMENT_IN_PATH = re.compile(r"/deployments/([^/]+)/")
_SECRET = re.compile(r"(?:sk-[A-Za-z0-9_\-*]{3,}|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-.]+|Bearer\s+\S+)")
_NANO = Decimal("1e-9")
_EMPTY_ROW = dict.fromkeys(COLUMNS)
_to_tuple = operator.itemgetter(*COLUMNS)  # a row dict -> the column-ordered tuple, in C
# endpoints whose response may bill non-token units (see tokenid.units) or fan out into more events
_UNIT_ENDPOINTS = frozenset({
    "realtime.transcription",
    "images.generate", "images.edit", "images.variation", "audio.speech", "audio.transcriptions",
    "audio.translations",
})
_SPEECH_TOKENS_PER_SECOND = 1250 / 60  # see Call._estimate_speech
_FANOUT_ENDPOINTS = frozenset({"files.content", "batches", "fine_tuning.jobs"})


def row_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A row given as ``{column: value}`` (missing columns empty) in ``COLUMNS`` order."""
    return cast(tuple[Any, ...], _to_tuple({**_EMPTY_ROW, **row}))


def usage_columns(usage: Usage) -> dict[str, Any]:
    """The token columns of a row, as ``usage`` reported them."""
    return {
        "input_tokens": usage.input_tokens, "cached_input_tokens": usage.cached_input_tokens,
        "output_tokens": usage.output_tokens, "reasoning_tokens": usage.reasoning_tokens,
        "audio_input_tokens": usage.audio_input_tokens, "audio_output_tokens": usage.audio_output_tokens,
        "cache_write_tokens": usage.cache_write_tokens, "image_input_tokens": usage.image_input_tokens,
        "cached_audio_input_tokens": usage.cached_audio_input_tokens,
        "total_tokens": usage.total_tokens if usage.total_tokens is not None
        else usage.input_tokens + usage.output_tokens,
    }


def price_columns(priced: PriceResult) -> dict[str, Any]:
    """The pricing columns of a row: model resolution, source, exact cost (and its nano-dollar integer)."""
    out: dict[str, Any] = {
        "canonical_model": priced.canonical_model, "deployment_type": priced.deployment_type,
        "model_resolved_by": priced.resolved_by, "price_source": priced.price_source,
        "unpriced_reason": priced.unpriced_reason,
    }
    if priced.cost_usd is not None:
        out["cost_usd"] = format(priced.cost_usd, "f")
        out["cost_nanousd"] = int((priced.cost_usd / _NANO).to_integral_value(ROUND_HALF_EVEN))
    if priced.units_cost_usd is not None:
        out["units_cost_usd"] = format(priced.units_cost_usd, "f")
    return out


_ENDPOINT_CACHE: dict[str, str] = {}


def endpoint_name(path: str) -> str:
    """``/openai/deployments/x/chat/completions`` -> ``chat.completions``; unknown paths stay paths."""
    name = _ENDPOINT_CACHE.get(path)
    if name is None:
        name = _endpoint_name(path)
        if len(_ENDPOINT_CACHE) < 4096:  # paths with ids in them are many; stop caching rather than grow
            _ENDPOINT_CACHE[path] = name
    return name


# paths that carry an object id: (first segment(s), what follows the id) -> endpoint name
_ID_PATHS = {
    ("files", "content"): "files.content",
    ("files", ""): "files",
    ("batches", ""): "batches",
    ("batches", "cancel"): "batches",
    ("fine_tuning/jobs", ""): "fine_tuning.jobs",
    ("fine_tuning/jobs", "cancel"): "fine_tuning.jobs",
    ("fine_tuning/jobs", "pause"): "fine_tuning.jobs",
    ("fine_tuning/jobs", "resume"): "fine_tuning.jobs",
    ("fine_tuning/jobs", "events"): "fine_tuning.jobs.events",
    ("fine_tuning/jobs", "checkpoints"): "fine_tuning.jobs.checkpoints",
}
_ID_PATH = re.compile(r"^(files|batches|fine_tuning/jobs)/[^/]+(?:/([a-z_]+))?$")


def _endpoint_name(path: str) -> str:
    rest = _PREFIX.sub("", path, count=1).rstrip("/")
    name = _ENDPOINTS.get(rest)
    if name is not None:
        return name
    if rest.startswith("threads/") and rest.endswith("/runs"):
        return "threads.runs"
    match = _ID_PATH.match(rest)
    if match is not None:
        name = _ID_PATHS.get((match.group(1), match.group(2) or ""))
        if name is not None:
            return name
    return "/" + rest


_API_VERSION = re.compile(rb"(?:^|&)api-version(?:=([^&]*))?(?=&|$)")


def api_version_of(query: bytes) -> str | None:
    """The ``api-version`` of a URL's raw query (the first one, as the service reads it), without parsing it all."""
    match = _API_VERSION.search(query)
    if match is None:
        return None
    value = match.group(1) or b""
    return unquote_plus(value.decode("latin-1")) if b"%" in value or b"+" in value else value.decode("latin-1")


def _redact(text: str | None) -> str | None:
    return _SECRET.sub("[redacted]", text) if text else text


@dataclass(slots=True)
class ClientSettings:
    """What a journaled client adds to the SDK client: where and how to journal."""

    journal: Journal
    pricer: Pricer
    enforcer: Enforcer | None = None
    session_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    store_content: bool = False
    inject_stream_usage: bool = True
    azure: bool = False
    api_version: str | None = None
    router: Router | None = None  # the routing / cache layer; None keeps the SDK's own behaviour
    target_auth: dict[str, Any] = field(default_factory=dict)  # each target's auth kwargs, shared by copies


_ISO_SECOND: tuple[int, str] = (0, "1970-01-01T00:00:00")  # the last second formatted (calls come many a second)


def _iso(ts: float) -> str:
    """``2026-12-02T10:31:02.082984Z``: microseconds rounded as ``datetime.fromtimestamp`` rounds them."""
    global _ISO_SECOND
    fraction, whole = math.modf(ts)
    second, micros = int(whole), round(fraction * 1e6)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    cached = _ISO_SECOND
    if cached[0] != second:
        cached = _ISO_SECOND = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{micros:06d}Z"


def _new_id(ts: float) -> str:
    # 48-bit milliseconds then 80 random bits: sortable by time, unique across processes (the random
    # module is seeded from the OS at start and reseeded in a forked child; no syscall per event)
    return f"{int(ts * 1000):012x}{random.getrandbits(80):020x}"


def _decode(body: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return body
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    from httpx2 import _decoders  # brotli / zstd, when httpx2 has them

    decoder = _decoders.SUPPORTED_DECODERS[encoding]()
    return b"".join([*decoder.decode(body), *decoder.flush()])


def _sse_payloads(body: bytes) -> list[bytes]:
    """The ``data:`` payload of every server-sent event, in order."""
    return list(_iter_events(body, reverse=False))


def _stream_text(payloads: list[bytes]) -> str:
    """The generated text of a stream, for estimating completion tokens."""
    parts: list[str] = []
    for payload in payloads:
        if payload.startswith(b"[DONE]"):
            continue
        try:
            obj = json.loads(payload)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        if obj.get("type") == "response.output_text.delta" and isinstance(obj.get("delta"), str):
            parts.append(obj["delta"])
            continue
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if isinstance(delta.get("content"), str):
                    parts.append(delta["content"])
                for call in delta.get("tool_calls") or ():
                    fn = call.get("function") if isinstance(call, dict) else None
                    if isinstance(fn, dict):
                        parts.extend(v for v in (fn.get("name"), fn.get("arguments")) if isinstance(v, str))
            elif isinstance(choice.get("text"), str):
                parts.append(choice["text"])
    return "".join(parts)


def _response_text(obj: Mapping[str, Any]) -> str:
    """Generated text of a non-streamed chat, completions or Responses result (for opt-in content)."""
    parts: list[str] = []
    for choice in obj.get("choices") or ():
        if isinstance(choice, dict):
            message = choice.get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                parts.append(message["content"])
            elif isinstance(choice.get("text"), str):
                parts.append(choice["text"])
    for item in obj.get("output") or ():
        if isinstance(item, dict):
            for part in item.get("content") or ():
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
    return "".join(parts)


class Call:
    """One logical call: created before sending, fed each attempt's response, journaled once."""

    __slots__ = (
        "api_version", "attempts", "audio", "body", "cache_hit", "cached", "chunks", "complete", "content_type",
        "decision", "deployment", "encoding", "endpoint", "enforcement", "error", "error_code", "error_message",
        "finished", "headers", "http_status", "injected_usage", "method", "model_requested", "parsed", "path",
        "picked", "provider", "request", "resource", "returned", "route", "session_id", "settings", "started",
        "status", "stream", "t0", "t_end", "t_first", "tags",
    )

    def __init__(self, settings: ClientSettings, *, method: str, path: str, body: Mapping[str, Any] | None,
                 stream: bool, session_id: str | None, tags: Mapping[str, str]) -> None:
        self.settings = settings
        self.started = time.time()
        self.t0 = time.perf_counter()
        self.t_first: float | None = None
        self.t_end: float | None = None
        self.method = method
        self.path = path
        self.request = body
        self.stream = stream
        self.session_id = session_id
        self.tags = tags
        self.endpoint = endpoint_name(path)
        self.model_requested = body.get("model") if body is not None and isinstance(body.get("model"), str) else None
        self.provider = "azure_openai" if settings.azure else "openai"
        self.api_version = settings.api_version
        self.deployment: str | None = None
        self.resource: str | None = None
        self.injected_usage = False
        self.audio: AudioSource | None = None  # the uploaded audio of a transcription, read only if needed
        self.attempts = 0
        self.http_status: int | None = None
        self.headers: httpx2.Headers | None = None
        self.picked: dict[bytes, str] = {}  # the few headers the event keeps (set_headers)
        self.content_type = ""
        self.encoding: str | None = None
        self.body: bytes | None = None
        self.chunks: list[bytes] | None = None
        self.complete = False
        self.parsed: tuple[Usage, str | None, str | None] | None = None
        self.decision: Decision | None = None
        self.enforcement: list[dict[str, Any]] | None = None
        self.returned = False
        self.finished = False
        self.route: RouteLog | None = None  # set by the router: the targets tried, in order
        self.cache_hit = False
        self.cached: CachedResponse | None = None  # the cached answer to serve instead of sending
        self.status = "ok"
        self.error: str | None = None
        self.error_code: str | None = None
        self.error_message: str | None = None

    # -- fed from the client, on the caller's thread ------------------------------------------
    def attempt(self, request: httpx2.Request) -> int:
        """A request is about to be sent (first try, SDK retry or redirect)."""
        self.attempts += 1
        if self.attempts == 1 or self.route is not None:  # routed calls may change target on any attempt
            url = request.url
            host = url.host
            self.resource = host
            if not self.settings.azure and host.endswith(AZURE_HOST_SUFFIXES):
                self.provider = "azure_openai"
            match = _DEPLOYMENT_IN_PATH.search(url.path)
            if match is not None:
                self.deployment = match.group(1)
                self.provider = "azure_openai"
            elif self.provider == "azure_openai" and self.deployment is None:
                self.deployment = self.model_requested  # /openai/v1/... and /openai/responses take it in the body
            if self.provider == "azure_openai" and (self.api_version is None or b"api-version" in url.query):
                self.api_version = api_version_of(url.query) or self.api_version
        return self.attempts

    def retarget(self, provider: str, api_version: str | None, model: str | None) -> None:
        """The router sends the next attempt to another target: what the event says is served follows it."""
        self.provider = "azure_openai" if provider == "azure" else "openai"
        self.api_version = api_version if provider == "azure" else None
        self.deployment = model if provider == "azure" else None

    def served_from_cache(self, request: httpx2.Request) -> None:
        """A cached answer stands in for a send: describe the target from the URL, count no attempt."""
        self.attempt(request)
        self.attempts -= 1
        self.cache_hit = True

    def response(self, response: httpx2.Response, *, read: bool) -> None:
        """An attempt got a response; ``read`` when its body is already in memory."""
        self.http_status = response.status_code
        self.set_headers(response.headers)
        self.content_type = self.picked.get(b"content-type", "")
        self.encoding = None  # response.content is already decoded
        if read:
            self.body = response.content
            self.chunks = None
            self.complete = True
        else:
            self.body = None
            self.complete = False

    def set_headers(self, headers: httpx2.Headers | None) -> None:
        """The response's headers; the few the event keeps are read now, while they are in the CPU's cache."""
        self.headers = headers
        self.picked = _pick_headers(headers)

    def body_done(self, attempt: int, chunks: list[bytes], complete: bool, encoding: str | None) -> None:
        """A streamed body was read to its end, closed, or abandoned."""
        if attempt != self.attempts or self.finished:
            return  # a retried attempt's body, or already journaled
        self.chunks = chunks
        self.encoding = encoding
        self.complete = complete or _ends_with_done(chunks)
        if not self.complete and self.status == "ok":
            self.status = "aborted"
        if self.returned:
            self.finish()

    def body_failed(self, attempt: int, chunks: list[bytes], error: BaseException) -> None:
        """Reading a streamed body failed (connection dropped, read timeout)."""
        if attempt != self.attempts or self.finished:
            return
        self.chunks = chunks
        self.status = "error"
        self.error = _sdk_error_name(error)
        self.error_message = _redact(str(error) or type(error).__name__)
        self.returned = True
        self.finish()

    def first_byte(self) -> None:
        if self.t_first is None:
            self.t_first = time.perf_counter()

    def returned_ok(self, result: object = None) -> None:
        """``request()`` returned; journal now unless the body is still being streamed.

        When the SDK already parsed the response into a model that carries usage, the counts are read from it
        here, while it is in the CPU's cache (the writer would find it cold), so the body is not decoded again.
        """
        self.returned = True
        if not self.stream and isinstance(result, pydantic.BaseModel):
            try:
                usage = usage_from_json(getattr(result, "usage", None))
                if usage is not None:
                    model = getattr(result, "model", None)
                    tier = getattr(result, "service_tier", None)
                    self.parsed = (usage, model if isinstance(model, str) and model else None,
                                   tier if isinstance(tier, str) else None)
            except Exception as exc:  # a caller's own model type may misbehave: the writer reads the body instead
                log.warning("tokenid: usage not read from the parsed response (%s: %s)", type(exc).__name__, exc)
        if self.complete or self.body is not None:
            self.finish()

    def failed(self, exc: BaseException) -> None:
        """``request()`` or the stream raised."""
        if self.finished:
            return
        self.status = "error"
        self.error = type(exc).__name__
        if isinstance(exc, openai.APIStatusError):
            self.http_status = exc.status_code
            self.set_headers(exc.response.headers)
            body = exc.body
            if isinstance(body, Mapping):
                code = body.get("code") or body.get("type")
                self.error_code = str(code) if code is not None else None
                inner = body.get("innererror")
                if isinstance(inner, Mapping) and inner.get("code"):
                    self.error_code = f"{self.error_code}:{inner['code']}" if self.error_code else str(inner["code"])
        elif isinstance(exc, openai.APIError) and isinstance(exc.body, Mapping):
            code = exc.body.get("code") or exc.body.get("type")
            self.error_code = str(code) if code is not None else None
        self.error_message = _redact(str(exc))[:2000] if str(exc) else None  # type: ignore[index]
        self.returned = True
        self.finish()

    def blocked(self, error: BaseException) -> None:
        """A local rule denied the call: it is journaled as blocked, at no cost, with the rule's actions."""
        decision = getattr(error, "decision", None)
        self.enforcement = list(decision.actions) if decision is not None else None
        self.status = "blocked"
        self.error = type(error).__name__
        self.error_message = str(error)[:2000]
        self.returned = True
        self.finish()

    def abandoned(self, chunks: list[bytes] | None) -> None:
        """The caller stopped iterating a stream before its end (``break``, ``close()``, garbage collection)."""
        if self.finished:
            return
        if chunks is not None:
            self.chunks = list(chunks)
        if not _ends_with_done(self.chunks):
            self.status = "aborted"
        self.returned = True
        self.finish()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.t_end = time.perf_counter()
        try:
            self.settings.journal.record(self)
        except Exception as exc:  # the journal must never break the caller
            log.error("tokenid: could not queue a journal event: %s", exc)

    # -- on the writer thread -----------------------------------------------------------------
    def to_row(self) -> tuple[Any, ...] | list[tuple[Any, ...]]:
        metered = self._meter()
        row = self._row(metered)
        extra: list[tuple[Any, ...]] | None = metered.get("extra_rows")
        return [row, *extra] if extra else row

    def fallback_row(self, error: BaseException) -> tuple[Any, ...]:
        if self.decision is not None and self.settings.enforcer is not None and self.decision.holds:
            # the true cost is unknown: keep what was reserved as spent (never under-count a budget)
            self.settings.enforcer.settle(self.decision, tokens=None, cost_usd=None, failed=False)
        return self._row({"usage_source": "missing", "unpriced_reason": f"metering failed: {type(error).__name__}"})

    def _meter(self) -> dict[str, Any]:
        """Usage, served model, units, price and (opt-in) content from what the response carried."""
        out: dict[str, Any] = {}
        usage: Usage | None = None
        model_served: str | None = None
        service_tier: str | None = None
        text: str | None = None
        payload_obj: Mapping[str, Any] | None = None
        body = self.body
        if body is None and self.chunks is not None:
            body = _decode(b"".join(self.chunks), self.encoding)
        is_sse = "event-stream" in self.content_type or (self.stream and body is not None and body.lstrip()[:5] in (
            b"data:", b"event"))
        endpoint = self.endpoint
        if self.parsed is not None and not self.settings.store_content and not (body and (
                endpoint in _UNIT_ENDPOINTS or endpoint in _FANOUT_ENDPOINTS
                or (endpoint == "responses" and b'_search_call"' in body))):
            usage, model_served, service_tier = self.parsed
        elif body and is_sse:
            usage, model_served, payload_obj = _stream_usage(body)
            if usage is None or self.settings.store_content:
                text = _stream_text(_sse_payloads(body))
        elif body and "json" in self.content_type:
            try:
                obj = json.loads(body)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                payload_obj = obj
                usage = usage_from_json(obj.get("usage"))
                model = obj.get("model")
                model_served = model if isinstance(model, str) and model else None
                if self.settings.store_content:
                    text = _response_text(obj)
        if endpoint == "batches":
            usage = None  # a batch's usage sums its lines, which are journaled (and billed) one by one
        if payload_obj is not None and isinstance(payload_obj.get("service_tier"), str):
            service_tier = payload_obj["service_tier"]
        out["service_tier"] = service_tier
        if usage is not None:
            out["usage_source"] = "reported"
        elif self.stream and self.status != "error" and text is not None:
            usage = self._estimate(text, model_served)
            out["usage_source"] = "estimated" if usage is not None else "missing"
        else:
            out["usage_source"] = "missing"
        out["usage"] = usage
        out["model_served"] = model_served
        units: dict[str, Any] = {}
        if self.status == "ok" and (endpoint in _UNIT_ENDPOINTS or payload_obj is not None):
            units = units_of(endpoint, self.request, payload_obj, self.audio)
            if units:
                out["units"] = units
        if endpoint in _FANOUT_ENDPOINTS and self.status == "ok" and body:
            from . import fanout

            out["extra_rows"], out["unpriced_reason"] = fanout.rows_for(self, endpoint, body, payload_obj)
        if self.status == "blocked":
            out["blocked"] = True
        elif self.status == "error" or (usage is None and not units):
            if "unpriced_reason" not in out or out["unpriced_reason"] is None:
                out["unpriced_reason"] = "error response" if self.status == "error" else "no usage"
        else:
            region = self.picked.get(b"x-ms-region") if self.provider == "azure_openai" else None

            def price(usage: Usage | None) -> PriceResult:
                return self.settings.pricer.price(
                    provider=self.provider, usage=usage, model_served=model_served,
                    model_requested=self.model_requested, deployment=self.deployment,
                    at=datetime.fromtimestamp(self.started, tz=timezone.utc), units=units or None,
                    service_tier=service_tier, region=region)

            try:
                priced = price(usage)
                if priced.cost_usd is None and usage is None and endpoint == "audio.speech" and body:
                    # a token-billed voice (gpt-4o-mini-tts) answered with bare audio: estimate its tokens
                    usage = self._estimate_speech(body, model_served)
                    if usage is not None:
                        out["usage"], out["usage_source"] = usage, "estimated"
                        priced = price(usage)
                out["priced"] = priced
            except Exception as exc:  # keep the usage; only the cost is lost, and the event says why
                log.warning("tokenid: pricing failed (%s: %s); journaled unpriced", type(exc).__name__, exc)
                out["unpriced_reason"] = f"pricing failed: {type(exc).__name__}"
        if self.decision is not None and self.settings.enforcer is not None:
            settled = out.get("priced")
            if self.cache_hit:  # served from the cache: nothing was spent
                self.settings.enforcer.settle(self.decision, tokens=0, cost_usd=Decimal(0), failed=False)
            else:
                self.settings.enforcer.settle(
                    self.decision, tokens=None if usage is None else usage.input_tokens + usage.output_tokens,
                    cost_usd=None if settled is None else settled.cost_usd, failed=self.status == "error")
        if self.settings.store_content:
            out["content"] = {"request": self.request, "response_text": text}
        return out

    def _estimate_speech(self, audio: bytes, model_served: str | None) -> Usage | None:
        """Tokens of a speech call that reported none: its text in, its audio's length out.

        OpenAI prices gpt-4o-mini-tts at $12 per 1M audio output tokens and estimates $0.015 per minute of audio
        (openai.com/api/pricing), i.e. 1,250 audio tokens per minute; the text is counted with the tokenizer.
        """
        from . import tokens
        from .units import audio_seconds

        seconds = audio_seconds(audio)
        request = self.request or {}
        text = " ".join(v for v in (request.get("input"), request.get("instructions")) if isinstance(v, str))
        if seconds is None or not text:
            return None
        prompt = tokens.count_text_tokens(text, model_served or self.model_requested)
        audio_out = round(seconds * _SPEECH_TOKENS_PER_SECOND)
        return Usage(input_tokens=prompt, output_tokens=audio_out, audio_output_tokens=audio_out,
                     total_tokens=prompt + audio_out)

    def _estimate(self, text: str, model_served: str | None) -> Usage | None:
        from . import tokens

        model = model_served or self.model_requested
        try:
            prompt = tokens.count_input_tokens(self.request or {}, model)
            completion = tokens.count_text_tokens(text, model)
        except Exception as exc:
            log.warning("tokenid: token estimate failed: %s", exc)
            return None
        return Usage(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)

    def _row(self, metered: Mapping[str, Any]) -> tuple[Any, ...]:
        t_end = self.t_end if self.t_end is not None else time.perf_counter()
        usage: Usage | None = metered.get("usage")
        priced = metered.get("priced")
        found = self.picked
        region = found.get(b"x-ms-region")
        request_id = found.get(b"x-request-id") or found.get(b"apim-request-id")
        row: dict[str, Any] = {
            "id": _new_id(self.started),
            "started_at": _iso(self.started),
            "ended_at": _iso(self.started + (t_end - self.t0)),
            "latency_ms": round((t_end - self.t0) * 1000, 3),
            "ttft_ms": round((self.t_first - self.t0) * 1000, 3) if self.stream and self.t_first else None,
            "session_id": self.session_id,
            "tags": _tags_json(self.tags),
            "provider": self.provider,
            "endpoint": self.endpoint,
            "method": self.method.upper(),
            "path": self.path,
            "resource": self.resource,
            "region": region,
            "api_version": self.api_version if self.provider == "azure_openai" else None,
            "deployment": self.deployment,
            "model_requested": self.model_requested,
            "model_served": metered.get("model_served"),
            "usage_source": metered["usage_source"],
            "status": self.status,
            "http_status": self.http_status,
            "error_type": self.error,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "request_id": request_id,
            "attempts": self.attempts,
            "stream": int(self.stream),
            "cache_hit": int(self.cache_hit),
            "unpriced_reason": metered.get("unpriced_reason"),
            "service_tier": metered.get("service_tier"),
        }
        units = metered.get("units")
        if usage is not None:
            row.update(usage_columns(usage))
        if priced is not None:
            row.update(price_columns(priced))
            if priced.unpriced_units and units:
                units = {**units, "unpriced": list(priced.unpriced_units)}
        if units:
            row["units"] = json.dumps(units, sort_keys=True)
        if metered.get("blocked"):
            row["cost_usd"], row["cost_nanousd"], row["unpriced_reason"] = "0", 0, None
        if self.cache_hit:  # what the call would have cost is saved, not spent
            row["saved_usd"] = row.get("cost_usd")
            row["cost_usd"], row["cost_nanousd"] = "0", 0
            if row.get("units_cost_usd") is not None:
                row["units_cost_usd"] = "0"
        if self.route is not None:
            row["route"] = json.dumps(self.route.as_json(), default=str)
        if self.enforcement:
            row["enforcement"] = json.dumps(self.enforcement, default=str)
        if "content" in metered:
            row["content"] = json.dumps(metered["content"], default=str)
        return row_tuple(row)


_TAGS_JSON: dict[int, tuple[Mapping[str, str], str]] = {}


def _tags_json(tags: Mapping[str, str]) -> str | None:
    """JSON of a tags map; a client's own tags (one object for all its calls) are encoded once."""
    if not tags:
        return None
    cached = _TAGS_JSON.get(id(tags))
    if cached is not None and cached[0] is tags:
        return cached[1]
    text = json.dumps(dict(tags), sort_keys=True)
    if len(_TAGS_JSON) < 1024:
        _TAGS_JSON[id(tags)] = (tags, text)  # keeps the map alive, so its id cannot be reused
    return text


_WANTED_HEADERS = frozenset({b"x-ms-region", b"x-request-id", b"apim-request-id", b"content-type"})


def _pick_headers(headers: httpx2.Headers | None) -> dict[bytes, str]:
    """The few response headers the event keeps, in one pass (never auth headers: they are request-side)."""
    if headers is None:
        return {}
    items = getattr(headers, "_list", None)
    if type(items) is list and items and len(items[0]) == 3:
        # httpx2 keeps each header as (raw name, lower-cased name, value): no lower() per header (3.9 -> 1.1 µs for
        # a typical Azure response, on the caller's thread); any other Headers goes through the public items
        return {lower: value.decode("latin-1") for _, lower, value in items if lower in _WANTED_HEADERS}
    return {k.lower(): v.decode("latin-1") for k, v in headers.raw if k.lower() in _WANTED_HEADERS}


def _sdk_error_name(error: BaseException) -> str:
    """The SDK error a transport failure surfaces as (the SDK wraps httpx2 errors the same way)."""
    import httpx2

    if isinstance(error, httpx2.TimeoutException):
        return "APITimeoutError"
    if isinstance(error, httpx2.TransportError):
        return "APIConnectionError"
    return type(error).__name__


def _ends_with_done(chunks: list[bytes] | None) -> bool:
    if not chunks:
        return False
    tail = b"".join(chunks[-2:])
    return b"[DONE]" in tail[-64:]


_NULL_USAGE = (b'"usage":null', b'"usage": null')
_MODEL = re.compile(rb'"model"\s*:\s*"[^"]')


def _event_data(event: bytes) -> bytes:
    """The data of one server-sent event (``data:`` lines joined)."""
    if event.startswith(b"data: ") and b"\n" not in event:
        return event[6:]  # the usual one-line event
    return b"\n".join(line[5:].lstrip(b" ") for line in event.splitlines() if line.startswith(b"data:"))


def _iter_events(body: bytes, *, reverse: bool) -> Iterator[bytes]:
    """Event data of an SSE body, from either end, without splitting what is not read."""
    body = body.replace(b"\r\n", b"\n") if b"\r" in body else body
    if not reverse:
        start = 0
        while start < len(body):
            end = body.find(b"\n\n", start)
            end = len(body) if end == -1 else end
            if end > start:
                yield _event_data(body[start:end].strip(b"\n"))
            start = end + 2
        return
    end = len(body)
    while end > 0:
        start = body.rfind(b"\n\n", 0, end)
        chunk = body[start + 2 if start != -1 else 0:end].strip(b"\n")
        if chunk:
            yield _event_data(chunk)
        end = start if start != -1 else 0


def _stream_usage(body: bytes) -> tuple[Usage | None, str | None, dict[str, Any] | None]:
    """(usage, served model, the object carrying the usage) of an SSE body.

    Usage is the last event carrying a non-null ``usage`` (read from the end: it is the last or
    next-to-last event); the model is the terminal Responses event's, else the first non-empty one.
    Only those few events are JSON-decoded.
    """
    usage: Usage | None = None
    model: str | None = None
    found: dict[str, Any] | None = None
    for data in _iter_events(body, reverse=True):
        if b'"usage"' not in data or data.count(b'"usage"') == sum(data.count(n) for n in _NULL_USAGE):
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        holder = _holder(obj)
        usage = usage_from_json(holder.get("usage"))
        if usage is None and holder is not obj:
            usage = usage_from_json(obj.get("usage"))
        if usage is not None:
            if holder is not obj and isinstance(holder.get("model"), str) and holder["model"]:
                model = holder["model"]
            found = holder
            break
    if model is None:
        for data in _iter_events(body, reverse=False):
            if _MODEL.search(data) is None:
                continue
            try:
                obj = json.loads(data)
            except ValueError:
                continue
            if isinstance(obj, dict):
                name = _holder(obj).get("model")
                if isinstance(name, str) and name:
                    model = name
                    break
    return usage, model, found


def _holder(obj: dict[str, Any]) -> dict[str, Any]:
    """Responses API stream events wrap the response object; chat chunks are the object."""
    inner = obj.get("response")
    return inner if isinstance(inner, dict) else obj
