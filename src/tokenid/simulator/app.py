"""The simulator's ASGI application: routes, auth, fault injection, dispatch.

Text generation (chat, completions, embeddings, Responses) is answered here;
images and audio by :mod:`~tokenid.simulator.media`; files, batches and
fine-tuning jobs by :mod:`~tokenid.simulator.batch`.

Checks run in the order the real gateways apply them: the ``api-version``
query parameter (Azure), the key, the body (JSON or multipart), the deployment or model,
injected faults, then per-version argument checks.  Faults are requested per
call with headers so one server can serve every test:

``x-sim-fault``
    ``429``, ``500``, ``503``, ``401``, ``404``, ``content_filter`` answer
    with that error; ``disconnect`` drops the connection mid-response (after
    a few chunks of a stream); ``slow`` sleeps first; ``no_usage`` sends no
    usage at all.
``x-sim-fail-times`` / ``x-sim-fault-key``
    Only the first N requests carrying the same key get the fault; later ones
    succeed (retry tests).  Use a unique key per test.
``x-sim-retry-after-ms``
    The 429's ``retry-after-ms`` (default 1000), to keep retry tests fast.
``x-sim-slow-seconds``
    How long ``slow`` sleeps (default 2).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tokenid.simulator import errors, media, payloads, realtime
from tokenid.simulator.batch import Store
from tokenid.simulator.content import (
    cached_tokens,
    embedding_dimensions,
    make_reply,
    prompt_seed,
    reasoning_tokens,
    requested_length,
)
from tokenid.simulator.errors import ErrorReply
from tokenid.simulator.wire import (
    AZURE_DEPLOYMENT,
    AZURE_RESPONSES,
    AZURE_V1,
    OPENAI,
    Answer,
    Call,
    Upload,
    read_body,
)
from tokenid.tokens import count_input_tokens

_Handler = Callable[[Request], Awaitable[Response]]

MODEL_ENDPOINTS = (
    ("chat/completions", "chat.completions"),
    ("completions", "completions"),
    ("embeddings", "embeddings"),
    ("images/generations", "images.generate"),
    ("images/edits", "images.edit"),
    ("audio/speech", "audio.speech"),
    ("audio/transcriptions", "audio.transcriptions"),
    ("audio/translations", "audio.translations"),
)
"""Path under the route family's prefix -> endpoint, for every model-bound POST (deployment routes on Azure)."""

RESOURCE_ROUTES = (
    ("files", "POST", "files.create"),
    ("files", "GET", "files.list"),
    ("files/{ident}", "GET", "files.retrieve"),
    ("files/{ident}", "DELETE", "files.delete"),
    ("files/{ident}/content", "GET", "files.content"),
    ("batches", "POST", "batches.create"),
    ("batches", "GET", "batches.list"),
    ("batches/{ident}", "GET", "batches.retrieve"),
    ("batches/{ident}/cancel", "POST", "batches.cancel"),
    ("fine_tuning/jobs", "POST", "fine_tuning.jobs.create"),
    ("fine_tuning/jobs", "GET", "fine_tuning.jobs.list"),
    ("fine_tuning/jobs/{ident}", "GET", "fine_tuning.jobs.retrieve"),
    ("fine_tuning/jobs/{ident}/cancel", "POST", "fine_tuning.jobs.cancel"),
    ("fine_tuning/jobs/{ident}/events", "GET", "fine_tuning.jobs.events"),
)
"""Resource routes (no deployment): path, method, operation; served under ``/openai``, ``/openai/v1`` and ``/v1``."""

DEFAULT_MODELS = {"images.generate": "dall-e-2", "images.edit": "dall-e-2", "images.variation": "dall-e-2"}
"""The model OpenAI routes use when the body names none."""

_BATCH_ENDPOINTS = {
    "/chat/completions": "chat.completions",
    "/completions": "completions",
    "/embeddings": "embeddings",
    "/responses": "responses",
}
_RESOURCE_KINDS = {"files": "File", "batches": "Batch", "fine_tuning": "Fine-tuning job"}

STREAM_OPTIONS_MIN_API_VERSION = "2024-08-01"
"""Oldest Azure ``api-version`` date (preview or GA) that accepts ``stream_options``.

Versions are compared by date.  Recorded Azure traffic shows 2024-08-01-preview
accepting ``include_usage`` and sending the usage chunk (the inference spec
gained ``stream_options`` there); older versions answered 400 "Unrecognized
request argument supplied: stream_options" in mid-2024.  The real service also
rolled support out per model, so this is the simulator's simplification.
"""

DISCONNECT_AFTER_EVENTS = 3
DEFAULT_SLOW_SECONDS = 2.0
DEFAULT_RETRY_AFTER_MS = 1000
FAULTS = frozenset({"429", "500", "503", "401", "404", "content_filter", "disconnect", "slow", "no_usage"})

_DATED_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_V1_VERSIONS = frozenset({"v1", "preview", "latest"})

REGION_NAMES = {
    "australiaeast": "Australia East",
    "brazilsouth": "Brazil South",
    "canadaeast": "Canada East",
    "centralus": "Central US",
    "eastus": "East US",
    "eastus2": "East US 2",
    "francecentral": "France Central",
    "germanywestcentral": "Germany West Central",
    "italynorth": "Italy North",
    "japaneast": "Japan East",
    "koreacentral": "Korea Central",
    "northcentralus": "North Central US",
    "norwayeast": "Norway East",
    "polandcentral": "Poland Central",
    "southafricanorth": "South Africa North",
    "southcentralus": "South Central US",
    "southindia": "South India",
    "spaincentral": "Spain Central",
    "swedencentral": "Sweden Central",
    "switzerlandnorth": "Switzerland North",
    "uaenorth": "UAE North",
    "uksouth": "UK South",
    "westeurope": "West Europe",
    "westus": "West US",
    "westus3": "West US 3",
}

REQUEST_LIMIT = 10_000
TOKEN_LIMIT = 10_000_000


class SimulatedDisconnect(Exception):
    """Raised inside a response body to make the server drop the connection."""


class FaultBook:
    """Counts requests per fault key so ``x-sim-fail-times`` can fail only the first N."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}

    def should_fail(self, key: str, times: int | None) -> bool:
        """Record one request for ``key``; True while it is among the first ``times``."""
        if times is None:
            return True
        with self._lock:
            count = self._seen.get(key, 0)
            self._seen[key] = count + 1
        return count < times


class RateWindow:
    """Per-minute request and token counters behind the ``x-ratelimit-remaining-*`` headers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._minute = 0
        self._requests = 0
        self._tokens = 0

    def take(self, tokens: int) -> tuple[int, int]:
        """Count one request of ``tokens`` tokens; return remaining requests and tokens."""
        minute = int(time.time() // 60)
        with self._lock:
            if minute != self._minute:
                self._minute, self._requests, self._tokens = minute, 0, 0
            self._requests += 1
            self._tokens += tokens
            return max(0, REQUEST_LIMIT - self._requests), max(0, TOKEN_LIMIT - self._tokens)


def _api_date(api_version: str | None) -> str:
    return (api_version or "")[:10]


def _int_header(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _float_header(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


def _prompt_count(body: Mapping[str, Any]) -> int:
    """How many prompts a legacy completions body holds (a list of prompts gives one choice each)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and prompt and all(isinstance(p, (str, list)) for p in prompt):
        return len(prompt)
    return 1


def _embedding_keys(value: object) -> list[str]:
    """One cache key per embeddings input: the text, or the token ids joined."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(item, int) for item in value):
            return [",".join(str(item) for item in value)]
        keys: list[str] = []
        for item in value:
            if isinstance(item, str):
                keys.append(item)
            elif isinstance(item, list):
                keys.append(",".join(str(token) for token in item))
        return keys
    return []


async def _drain(events: Iterator[bytes], limit: int | None) -> AsyncIterator[bytes]:
    """Feed precomputed events to the server; raise mid-way when a disconnect was asked for."""
    for count, event in enumerate(events):
        if limit is not None and count >= limit:
            raise SimulatedDisconnect
        yield event


class SimulatorApp:
    """The ASGI app behind :class:`tokenid.simulator.Simulator`."""

    def __init__(
        self,
        *,
        deployments: Mapping[str, str],
        region: str,
        api_keys: Collection[str] | None,
        latency_s: float,
    ) -> None:
        self.deployments = dict(deployments)
        self.region = REGION_NAMES.get(region.lower().replace(" ", ""), region)
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.latency_s = latency_s
        self.faults = FaultBook()
        self.rates = RateWindow()
        self.images = media.ImageShelf()
        self.store = Store(execute=self._run_batch_line, deployments=self.deployments)
        posts = [(f"/openai/deployments/{{deployment}}/{path}", AZURE_DEPLOYMENT, ep) for path, ep in MODEL_ENDPOINTS]
        posts += [(f"/openai/v1/{path}", AZURE_V1, ep) for path, ep in MODEL_ENDPOINTS]
        posts += [(f"/v1/{path}", OPENAI, ep) for path, ep in MODEL_ENDPOINTS]
        posts += [
            ("/openai/v1/responses", AZURE_V1, "responses"),
            ("/openai/responses", AZURE_RESPONSES, "responses"),
            ("/v1/responses", OPENAI, "responses"),
            ("/v1/images/variations", OPENAI, "images.variation"),  # dall-e-2 only: not on Azure
        ]
        routes = [Route(path, self._post(flavor, endpoint), methods=["POST"]) for path, flavor, endpoint in posts]
        for prefix, flavor in (("/openai", AZURE_RESPONSES), ("/openai/v1", AZURE_V1), ("/v1", OPENAI)):
            routes += [
                Route(f"{prefix}/{path}", self._resource(flavor, op), methods=[method])
                for path, method, op in RESOURCE_ROUTES
            ]
        routes += [
            Route("/openai/v1/models", self._models(AZURE_V1), methods=["GET"]),
            Route("/v1/models", self._models(OPENAI), methods=["GET"]),
            Route("/simulator/images/{name:path}", self._image, methods=["GET"]),
            Route("/{path:path}", self._unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]
        self._app = Starlette(routes=[*routes, *realtime.routes(self)])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    # ------------------------------------------------------------------ plumbing

    def _base_headers(self, *, azure: bool, deployment: str | None, started: float) -> dict[str, str]:
        """Headers every answer carries: request ids, region (Azure), processing time (OpenAI)."""
        if azure:
            headers = {
                "apim-request-id": str(uuid.uuid4()),
                "x-request-id": str(uuid.uuid4()),
                "x-ms-region": self.region,
            }
            if deployment is not None:
                headers["x-ms-deployment-name"] = deployment
            return headers
        return {
            "x-request-id": "req_" + uuid.uuid4().hex,
            "openai-organization": "user-simulated",
            "openai-processing-ms": str(max(1, int((time.perf_counter() - started) * 1000))),
            "openai-version": "2020-10-01",
        }

    def _rate_headers(self, *, azure: bool, tokens: int) -> dict[str, str]:
        remaining_requests, remaining_tokens = self.rates.take(tokens)
        headers = {
            "x-ratelimit-limit-requests": str(REQUEST_LIMIT),
            "x-ratelimit-limit-tokens": str(TOKEN_LIMIT),
            "x-ratelimit-remaining-requests": str(remaining_requests),
            "x-ratelimit-remaining-tokens": str(remaining_tokens),
        }
        if not azure:
            headers["x-ratelimit-reset-requests"] = "6ms"
            headers["x-ratelimit-reset-tokens"] = "0s"
        return headers

    def _error(
        self, reply: ErrorReply, *, azure: bool, deployment: str | None = None, started: float = 0.0
    ) -> Response:
        headers = self._base_headers(azure=azure, deployment=deployment, started=started)
        headers.update(reply.headers)
        return Response(reply.body, status_code=reply.status, headers=headers, media_type="application/json")

    def _key(self, request: Request, *, azure: bool) -> str | None:
        """The caller's key: ``api-key`` (Azure) or the bearer token."""
        if azure:
            key = request.headers.get("api-key")
            if key is not None:
                return key
        auth = request.headers.get("authorization")
        if auth is not None and auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    def _unauthorized(self, request: Request, *, azure: bool, forced: bool) -> ErrorReply | None:
        """The 401 to send, or None when the key is accepted."""
        key = self._key(request, azure=azure)
        if not forced and (self.api_keys is None or key in self.api_keys):
            return None
        if azure:
            return errors.azure_unauthorized(missing=key is None)
        return errors.openai_unauthorized(key)

    def admit(self, request: Request, flavor: str, api_version: str | None, *,
              azure: bool) -> tuple[str | None, ErrorReply | None]:
        """The checks every route runs first, in Azure's order: api-version, then the key.

        Returns the injected fault asked for (if any) and the error to answer with (None: admitted).
        """
        fault = self._active_fault(request)
        denied = self._version_error(flavor, api_version) or self._unauthorized(
            request, azure=azure, forced=fault == "401")
        return fault, denied

    def _active_fault(self, request: Request) -> str | None:
        """The fault this request should suffer, honouring ``x-sim-fail-times``."""
        fault = request.headers.get("x-sim-fault")
        if not fault:
            return None
        times_header = request.headers.get("x-sim-fail-times")
        times = _int_header(times_header, 0) if times_header is not None else None
        key = fault + "\0" + request.headers.get("x-sim-fault-key", "")
        return fault if self.faults.should_fail(key, times) else None

    async def _unknown(self, request: Request) -> Response:
        """404 for unrouted paths, worded like the service the path belongs to."""
        if request.url.path.startswith("/openai"):
            return self._error(errors.resource_not_found(), azure=True)
        message = f"Invalid URL ({request.method} {request.url.path})"
        body = json.dumps(
            {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}, indent=2
        )
        return self._error(ErrorReply(404, body.encode()), azure=False)

    def _models(self, flavor: str) -> _Handler:
        async def handler(request: Request) -> Response:
            azure = flavor != OPENAI
            started = time.perf_counter()
            denied = self._unauthorized(request, azure=azure, forced=False)
            if denied is not None:
                return self._error(denied, azure=azure, started=started)
            names = sorted(set(self.deployments) | set(self.deployments.values()))
            headers = self._base_headers(azure=azure, deployment=None, started=started)
            return Response(payloads.models_body(names), headers=headers, media_type="application/json")

        return handler

    # ------------------------------------------------------------------ requests

    def _post(self, flavor: str, endpoint: str) -> _Handler:
        async def handler(request: Request) -> Response:
            return await self._handle(request, flavor, endpoint)

        return handler

    @staticmethod
    def _version_error(flavor: str, api_version: str | None) -> ErrorReply | None:
        """Azure's answer to a missing or unknown ``api-version``, or None when it is fine."""
        if flavor in (AZURE_DEPLOYMENT, AZURE_RESPONSES):
            if api_version is None:
                return errors.resource_not_found()
            if not _DATED_VERSION.match(api_version):
                return errors.api_version_not_supported()
        elif flavor == AZURE_V1 and api_version is not None and api_version not in _V1_VERSIONS:
            return errors.api_version_not_supported()
        return None

    def _unknown_fault(self, fault: str | None) -> ErrorReply | None:
        if fault is None or fault in FAULTS:
            return None
        message = f"Unknown x-sim-fault {fault!r}; expected one of {', '.join(sorted(FAULTS))}."
        return ErrorReply(400, json.dumps({"error": {"message": message, "type": "simulator_error"}}).encode())

    async def _delay(self, request: Request, fault: str | None) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        if fault == "slow":
            await asyncio.sleep(_float_header(request.headers.get("x-sim-slow-seconds"), DEFAULT_SLOW_SECONDS))

    async def _handle(self, request: Request, flavor: str, endpoint: str) -> Response:
        started = time.perf_counter()
        azure = flavor != OPENAI
        path_deployment = request.path_params.get("deployment")
        api_version = request.query_params.get("api-version")

        def fail(reply: ErrorReply, deployment: str | None = path_deployment) -> Response:
            return self._error(reply, azure=azure, deployment=deployment, started=started)

        fault, denied = self.admit(request, flavor, api_version, azure=azure)
        if denied is not None:
            return fail(denied)

        parsed = await read_body(request)
        if parsed is None:
            return fail(errors.invalid_json())
        body, files = parsed

        model_field = body.get("model")
        deployment: str | None = path_deployment
        if azure:
            if deployment is None:
                if not isinstance(model_field, str):
                    return fail(errors.missing_parameter("model"))
                deployment = model_field
            served = self.deployments.get(deployment)
            if served is None or fault == "404":
                return fail(errors.deployment_not_found(), deployment)
        else:
            if not isinstance(model_field, str):
                model_field = DEFAULT_MODELS.get(endpoint)
                if model_field is None:
                    return fail(errors.missing_parameter("model"))
            if fault == "404":
                return fail(errors.model_not_found(model_field))
            served = self.deployments.get(model_field, model_field)

        call = Call(
            flavor=flavor,
            endpoint=endpoint,
            api_version=api_version,
            deployment=deployment if azure else None,
            model=served,
            body=body,
            headers=dict(request.headers),
            started=started,
            files=files,
            origin=str(request.base_url).rstrip("/"),
        )

        rejected = self._unknown_fault(fault) or self._injected_error(call, fault)
        if rejected is not None:
            return fail(rejected, call.deployment)

        if (
            flavor == AZURE_DEPLOYMENT
            and endpoint in ("chat.completions", "completions")
            and "stream_options" in body
            and _api_date(api_version) < STREAM_OPTIONS_MIN_API_VERSION
        ):
            return fail(errors.stream_options_unrecognized(), call.deployment)

        await self._delay(request, fault)
        if endpoint in ("chat.completions", "completions", "embeddings", "responses"):
            return self._generate(call, fault)
        return self._media(call, fault)

    def _generate(self, call: Call, fault: str | None) -> Response:
        """Answer a text endpoint (also used for batch lines)."""
        if call.endpoint == "embeddings":
            return self._embeddings(call, fault)
        if call.endpoint == "responses":
            return self._responses(call, fault)
        return self._completions(call, fault)

    def _media(self, call: Call, fault: str | None) -> Response:
        """Images and audio, answered by :mod:`tokenid.simulator.media`."""
        with_usage = fault != "no_usage"
        result: Answer | ErrorReply
        if call.endpoint.startswith("images."):
            result = media.images(
                call,
                self.images,
                edit=call.endpoint == "images.edit",
                variation=call.endpoint == "images.variation",
                with_usage=with_usage,
            )
        elif call.endpoint == "audio.speech":
            result = media.speech(call, with_usage=with_usage)
        else:
            translate = call.endpoint == "audio.translations"
            result = media.transcription(call, translate=translate, with_usage=with_usage)
        return self._answer(call, result, fault)

    def _answer(self, call: Call, result: Answer | ErrorReply, fault: str | None) -> Response:
        if isinstance(result, ErrorReply):
            return self._error(result, azure=call.azure, deployment=call.deployment, started=call.started)
        body = None if result.events is not None else result.body
        return self._respond(
            call, body=body, events=result.events, tokens=result.tokens, fault=fault, media_type=result.media_type
        )

    # ------------------------------------------------------------ files, batches, fine-tuning

    def _resource(self, flavor: str, op: str) -> _Handler:
        async def handler(request: Request) -> Response:
            return await self._handle_resource(request, flavor, op)

        return handler

    async def _handle_resource(self, request: Request, flavor: str, op: str) -> Response:
        """Files, batches and fine-tuning: the same checks as model calls, then :class:`Store`."""
        started = time.perf_counter()
        azure = flavor != OPENAI
        api_version = request.query_params.get("api-version")

        def fail(reply: ErrorReply) -> Response:
            return self._error(reply, azure=azure, started=started)

        fault, denied = self.admit(request, flavor, api_version, azure=azure)
        if denied is not None:
            return fail(denied)
        body: dict[str, Any] = {}
        files: dict[str, list[Upload]] = {}
        if request.method == "POST":
            parsed = await read_body(request)
            if parsed is None:
                return fail(errors.invalid_json())
            body, files = parsed
        ident = request.path_params.get("ident")
        call = Call(
            flavor=flavor,
            endpoint=op,
            api_version=api_version,
            deployment=None,
            model=str(body.get("model") or op),
            body=body,
            headers=dict(request.headers),
            started=started,
            files=files,
            origin=str(request.base_url).rstrip("/"),
            query=dict(request.query_params),
        )
        if fault == "404":
            return fail(errors.object_not_found(_RESOURCE_KINDS[op.split(".")[0]], ident or "", azure=azure))
        rejected = self._unknown_fault(fault) or self._injected_error(call, fault)
        if rejected is not None:
            return fail(rejected)
        await self._delay(request, fault)
        return self._answer(call, self.store.handle(op, call, ident), fault)

    def _run_batch_line(self, azure: bool, endpoint: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one batch input line with the simulator's own text endpoints; return status and body."""
        model = body.get("model")
        if not isinstance(model, str):
            reply = errors.missing_parameter("model")
            return reply.status, json.loads(reply.body)
        served = self.deployments.get(model) if azure else self.deployments.get(model, model)
        if served is None:
            reply = errors.deployment_not_found()
            return reply.status, json.loads(reply.body)
        call = Call(
            flavor=AZURE_V1 if azure else OPENAI,
            endpoint=_BATCH_ENDPOINTS[endpoint],
            api_version=None,
            deployment=model if azure else None,
            model=served,
            body=body,
            headers={},
            started=time.perf_counter(),
        )
        response = self._generate(call, None)
        return response.status_code, json.loads(bytes(response.body))

    async def _image(self, request: Request) -> Response:
        """The PNG behind an image ``url`` answer."""
        data = self.images.get(request.path_params["name"])
        if data is None:
            return Response(b"", status_code=404)
        return Response(data, media_type="image/png")

    def _injected_error(self, call: Call, fault: str | None) -> ErrorReply | None:
        if fault == "429":
            retry_ms = _int_header(call.headers.get("x-sim-retry-after-ms"), DEFAULT_RETRY_AFTER_MS)
            return errors.rate_limited(
                azure=call.azure,
                endpoint=call.endpoint,
                api_version=call.api_version,
                model=call.model,
                retry_after_ms=max(0, retry_ms),
            )
        if fault == "500":
            return errors.server_error(azure=call.azure, request_id=str(uuid.uuid4()))
        if fault == "503":
            return errors.overloaded(azure=call.azure, request_id=str(uuid.uuid4()))
        if fault == "content_filter":
            return errors.content_filtered()
        return None

    def _respond(
        self,
        call: Call,
        *,
        body: bytes | None,
        events: Iterator[bytes] | None,
        tokens: int,
        fault: str | None,
        media_type: str = "application/json",
    ) -> Response:
        """Send a body (JSON unless told) or an event stream with the service's headers; apply ``disconnect``."""
        headers = self._base_headers(azure=call.azure, deployment=call.deployment, started=call.started)
        headers.update(self._rate_headers(azure=call.azure, tokens=tokens))
        if events is not None:
            limit = DISCONNECT_AFTER_EVENTS if fault == "disconnect" else None
            return StreamingResponse(_drain(events, limit), headers=headers, media_type="text/event-stream")
        assert body is not None
        if fault == "disconnect":
            headers["content-length"] = str(len(body))
            half = body[: len(body) // 2]
            return StreamingResponse(_drain(iter((half, body)), 1), headers=headers, media_type=media_type)
        return Response(body, headers=headers, media_type=media_type)

    def _stream_flags(self, call: Call) -> tuple[bool, bool]:
        """``include_usage`` and whether to add ``obfuscation``, from ``stream_options``."""
        options = call.body.get("stream_options")
        if not isinstance(options, dict):
            return False, not call.azure
        include_usage = options.get("include_usage") is True
        obfuscate = not call.azure and options.get("include_obfuscation") is not False
        return include_usage, obfuscate

    def _choices(self, call: Call) -> int:
        n = call.body.get("n")
        per_prompt = n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 128 else 1
        if call.endpoint == "completions":
            return per_prompt * _prompt_count(call.body)
        return per_prompt

    def _completions(self, call: Call, fault: str | None) -> Response:
        """Chat completions and legacy completions, plain or streamed."""
        seed = prompt_seed(call.body)
        length = requested_length(call.body)
        replies = [make_reply(seed + i, length, call.model) for i in range(self._choices(call))]
        chat = call.endpoint == "chat.completions"
        audio_in = media.chat_input_audio_tokens(call.body) if chat else 0
        spoken = media.chat_audio(replies, call.body) if chat else ()
        prompt_tokens = count_input_tokens(call.body, call.model, endpoint=call.endpoint) + audio_in
        gen = payloads.make_generation(
            azure=call.azure,
            model=call.model,
            replies=replies,
            prompt_tokens=prompt_tokens,
            cached=cached_tokens(prompt_tokens) if chat else 0,
            reasoning=reasoning_tokens(call.model) if chat else 0,
            prefix="chatcmpl-" if chat else "cmpl-",
            audio=spoken,
            audio_prompt_tokens=audio_in,
            detailed_usage=chat and (bool(audio_in or spoken) or "audio" in call.model),
        )
        send_usage = fault != "no_usage"
        tokens = prompt_tokens + gen.completion_tokens
        if call.body.get("stream") is True:
            include_usage, obfuscate = self._stream_flags(call)
            if chat:
                events = payloads.chat_stream(
                    gen, include_usage=include_usage, send_usage=send_usage, obfuscate=obfuscate
                )
            else:
                events = payloads.completions_stream(gen, include_usage=include_usage, send_usage=send_usage)
            return self._respond(call, body=None, events=events, tokens=tokens, fault=fault)
        body = (
            payloads.chat_body(gen, with_usage=send_usage)
            if chat
            else payloads.completions_body(gen, with_usage=send_usage)
        )
        return self._respond(call, body=body, events=None, tokens=tokens, fault=fault)

    def _embeddings(self, call: Call, fault: str | None) -> Response:
        """Deterministic vectors, as float arrays or base64 float32."""
        requested = call.body.get("dimensions")
        if requested is not None and "ada-002" in call.model:
            return self._error(
                errors.dimensions_not_supported(), azure=call.azure, deployment=call.deployment, started=call.started
            )
        if "input" not in call.body:
            return self._error(
                errors.missing_parameter("input"), azure=call.azure, deployment=call.deployment, started=call.started
            )
        keys = _embedding_keys(call.body.get("input"))
        dimensions = embedding_dimensions(call.model, requested)
        prompt_tokens = count_input_tokens(call.body, call.model, endpoint="embeddings")
        body = payloads.embeddings_body(
            call.model,
            keys,
            dimensions,
            prompt_tokens,
            base64=call.body.get("encoding_format") == "base64",
            with_usage=fault != "no_usage",
        )
        return self._respond(call, body=body, events=None, tokens=prompt_tokens, fault=fault)

    def _responses(self, call: Call, fault: str | None) -> Response:
        """The Responses API, plain or as its named event stream."""
        body = call.body
        reply = make_reply(prompt_seed(body), requested_length(body), call.model)
        tools = payloads.plan_tools(body, reply.text)
        prompt_tokens = count_input_tokens(body, call.model, endpoint="responses")
        input_tokens = prompt_tokens + tools.input_tokens
        reasoning = reasoning_tokens(call.model)
        requested_tools = body.get("tools")
        result = payloads.ResponseCall(
            model=call.model,
            reply=reply,
            input_tokens=input_tokens,
            cached_tokens=cached_tokens(prompt_tokens),
            reasoning_tokens=reasoning,
            ident=payloads.new_id("resp_", 50, payloads.HEX),
            message_id=payloads.new_id("msg_", 50, payloads.HEX),
            reasoning_id=payloads.new_id("rs_", 50, payloads.HEX) if reasoning else None,
            created=int(time.time()),
            instructions=body.get("instructions"),
            max_output_tokens=body.get("max_output_tokens"),
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            store=body.get("store"),
            metadata=body.get("metadata"),
            previous_response_id=body.get("previous_response_id"),
            user=body.get("user"),
            tool_calls=tools.calls,
            tools=tuple(map(payloads.echo_tool, requested_tools)) if isinstance(requested_tools, list) else (),
            annotations=tools.annotations,
        )
        with_usage = fault != "no_usage"
        tokens = input_tokens + reply.tokens + reasoning
        if body.get("stream") is True:
            _, obfuscate = self._stream_flags(call)
            events = payloads.responses_stream(result, with_usage=with_usage, obfuscate=obfuscate)
            return self._respond(call, body=None, events=events, tokens=tokens, fault=fault)
        return self._respond(
            call, body=payloads.responses_body(result, with_usage=with_usage), events=None, tokens=tokens, fault=fault
        )
