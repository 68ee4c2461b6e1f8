"""The four journaled clients: the ``openai`` clients with one hook at the SDK's request chokepoint.

Every resource method of the SDK — today's and future ones, raw and streaming-response variants,
``with_options()`` copies — ends in ``request()``; every HTTP attempt (retries included) in
``_send_request()``. Overriding those two, once, journals everything without listing endpoints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextvars import ContextVar
from functools import cached_property
from typing import Any, ClassVar, cast

import anyio
import httpx2
import openai
from openai._models import FinalRequestOptions

from .call import Call, ClientSettings
from .context import _clean_tags, current_session, current_tags
from .enforce import CallSpec, Enforcer, load_config, open_counters, parse_config
from .errors import ConfigError, EnforcementError
from .journal import Journal, get_journal
from .pricing import Pricer, parse_deployments, parse_price_overrides
from .streams import journaled_stream_cls, tap_response
from .units import audio_source

__all__ = ["AsyncJournaledAzureOpenAI", "AsyncJournaledOpenAI", "JournaledAzureOpenAI", "JournaledOpenAI"]

log = logging.getLogger("tokenid")

_CURRENT_CALL: ContextVar[Call | None] = ContextVar("tokenid_call", default=None)
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
_STREAM_USAGE_ENDPOINTS = frozenset({"chat.completions", "completions"})
_AUDIO_UPLOAD_ENDPOINTS = frozenset({"audio.transcriptions", "audio.translations"})
# Azure accepts `stream_options` from api-version 2024-08-01-preview on (a real recording shows it; GA from
# 2024-10-21); the /openai/v1 API always. Older versions answer 400 "Unrecognized request argument".
_AZURE_STREAM_OPTIONS_SINCE = "2024-08-01"
_UNSET: Any = object()


def _settings(*, azure: bool, session_id: str | None, tags: Mapping[str, object] | None,
              journal: Journal | str | None, deployments: Mapping[str, object] | None,
              prices: Mapping[str, object] | None, enforcement_config: object, store_content: bool,
              inject_stream_usage: bool) -> tuple[ClientSettings, Mapping[str, Any] | None]:
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        raise ConfigError(f"session_id must be a non-empty string, got {session_id!r}")
    enforcement = load_config(enforcement_config)
    rules = parse_config(enforcement) if enforcement is not None else None
    deployment_map = dict(deployments or {})
    if rules is not None and rules.deployments:
        deployment_map = {**rules.deployments, **deployment_map}
    specs = parse_deployments(deployment_map)
    pricer = Pricer(deployments=specs, overrides=parse_price_overrides(prices))
    the_journal = get_journal(journal)
    enforcer = None
    if rules is not None and not rules.empty:
        enforcer = Enforcer(rules, pricer=pricer, azure=azure, deployments=specs,
                            counters=open_counters(rules.counters, the_journal.path,
                                                   reservation_ttl=rules.reservation_ttl_s))
    settings = ClientSettings(
        journal=the_journal,
        enforcer=enforcer,
        pricer=pricer,
        session_id=session_id,
        tags=_clean_tags(tags or {}, "tags"),
        store_content=bool(store_content),
        inject_stream_usage=bool(inject_stream_usage),
        azure=azure,
    )
    return settings, dict(enforcement) if enforcement is not None else None


class _Journaling:
    """What the four clients share: settings, describing a call, and the stream-usage rule."""

    _tokenid: ClientSettings
    _tokenid_azure: ClassVar[bool] = False
    enforcement_config: Mapping[str, Any] | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs = self._tokenid_init(kwargs, azure=self._tokenid_azure)
        super().__init__(*args, **kwargs)
        if self._tokenid.azure:
            self._tokenid.api_version = cast(Any, self)._api_version

    def copy(self, *args: Any, session_id: Any = _UNSET, tags: Any = _UNSET,
             _extra_kwargs: Mapping[str, Any] = {}, **kwargs: Any) -> Any:
        """The SDK's ``copy()``/``with_options()``, keeping the journal; may also change ``session_id``/``tags``."""
        extra = self._tokenid_copy_kwargs(session_id, tags, _extra_kwargs)
        return super().copy(*args, _extra_kwargs=extra, **kwargs)  # type: ignore[misc]

    with_options = copy

    def _tokenid_init(self, kwargs: dict[str, Any], *, azure: bool) -> dict[str, Any]:
        inherited = kwargs.pop("_tokenid_settings", None)
        options = {k: kwargs.pop(k) for k in ("session_id", "tags", "journal", "deployments", "prices",
                                              "enforcement_config", "store_content", "inject_stream_usage")
                   if k in kwargs}
        if inherited is not None:
            settings, enforcement = inherited
        else:
            settings, enforcement = _settings(
                azure=azure, session_id=options.get("session_id"), tags=options.get("tags"),
                journal=options.get("journal"), deployments=options.get("deployments"), prices=options.get("prices"),
                enforcement_config=options.get("enforcement_config"),
                store_content=options.get("store_content", False),
                inject_stream_usage=options.get("inject_stream_usage", True),
            )
        self._tokenid = settings
        self.enforcement_config = enforcement
        return kwargs

    @property
    def journal(self) -> Journal:
        """The journal this client writes to."""
        return self._tokenid.journal

    @property
    def session_id(self) -> str | None:
        return self._tokenid.session_id

    @cached_property
    def realtime(self) -> Any:
        """The SDK's ``realtime`` resource; its WebSocket sessions are journaled (:mod:`tokenid.realtime`)."""
        from .realtime import journaled_realtime

        return journaled_realtime(self)

    @cached_property
    def beta(self) -> Any:
        """The SDK's ``beta`` resource, with ``beta.realtime`` sessions journaled."""
        from .realtime import journaled_beta

        return journaled_beta(self)

    def _tokenid_copy_kwargs(self, session_id: Any, tags: Any, extra: Mapping[str, Any]) -> dict[str, Any]:
        settings = self._tokenid
        if session_id is not _UNSET or tags is not _UNSET:
            from dataclasses import replace

            settings = replace(
                settings,
                session_id=settings.session_id if session_id is _UNSET else session_id,
                tags=settings.tags if tags is _UNSET else {**settings.tags, **_clean_tags(tags or {}, "tags")},
            )
        return {**extra, "_tokenid_settings": (settings, self.enforcement_config)}

    def _supports_stream_usage(self) -> bool:
        if not self._tokenid.azure:
            return True
        if "/openai/v1" in str(cast(Any, self).base_url):
            return True
        version = self._tokenid.api_version or ""
        return version[:10] >= _AZURE_STREAM_OPTIONS_SINCE or not version[:1].isdigit()

    def _tokenid_begin(self, options: FinalRequestOptions, stream: bool) -> Call | None:
        """Describe a call and, for streams, ask for usage when the caller did not say."""
        try:
            settings = self._tokenid
            data = options.json_data
            body: Mapping[str, Any] | None = data if isinstance(data, Mapping) else None
            extra = options.extra_json
            if extra:
                body = {**(body or {}), **extra}
            session = current_session() or settings.session_id
            scoped = current_tags()
            tags = {**settings.tags, **scoped} if scoped else settings.tags
            call = Call(settings, method=options.method, path=options.url, body=body, stream=stream,
                        session_id=session, tags=tags)
            if options.files is not None and call.endpoint in _AUDIO_UPLOAD_ENDPOINTS:
                call.audio = audio_source(options.files)  # references only: read on the writer if ever needed
            if (stream and settings.inject_stream_usage and body is not None and "stream_options" not in body
                    and call.endpoint in _STREAM_USAGE_ENDPOINTS and self._supports_stream_usage()):
                headers = options.headers if isinstance(options.headers, Mapping) else {}
                if headers.get(_RAW_RESPONSE_HEADER) != "stream":  # raw bytes readers would see the extra chunk
                    options.json_data = {**(data if isinstance(data, Mapping) else {}),
                                         "stream_options": {"include_usage": True}}
                    call.injected_usage = True
            return call
        except Exception as exc:  # describing must never break the call
            log.error("tokenid: cannot journal this call (%s: %s)", type(exc).__name__, exc)
            return None

    def _tokenid_enforce(self, call: Call, options: FinalRequestOptions) -> float:
        """Apply the enforcement rules; raise their denial, rewrite the request; returns seconds to wait."""
        enforcer = self._tokenid.enforcer
        if enforcer is None:
            return 0.0
        spec = CallSpec(provider=call.provider, endpoint=call.endpoint, model=call.model_requested,
                        session_id=call.session_id, tags=call.tags, body=call.request,
                        deployment=getattr(self, "_azure_deployment", None))
        try:
            decision = enforcer.decide(spec)
        except EnforcementError as exc:
            call.blocked(exc)
            raise
        except Exception as exc:  # a bug in a rule lets the call through, and the event says so
            log.error("tokenid: enforcement failed (%s: %s); call allowed", type(exc).__name__, exc)
            call.enforcement = [{"rule": "enforcement", "action": "error", "reason": f"{type(exc).__name__}: {exc}"}]
            return 0.0
        call.decision = decision
        call.enforcement = decision.actions
        if decision.model is not None or decision.output_param is not None:
            data = dict(options.json_data) if isinstance(options.json_data, Mapping) else {}
            if decision.model is not None:
                data["model"] = decision.model
            if decision.output_param is not None:
                name, value = decision.output_param
                data[name] = value
            options.json_data = data
        return decision.wait_s

    def _tokenid_sent(self, call: Call, attempt: int, response: httpx2.Response, stream: bool) -> None:
        try:
            call.response(response, read=not stream)
            if stream:
                tap_response(call, attempt, response)
        except Exception as exc:
            log.error("tokenid: cannot watch this response (%s: %s)", type(exc).__name__, exc)


class _SyncJournaling(_Journaling):
    def request(self, cast_to: Any, options: FinalRequestOptions, *, stream: bool = False,
                stream_cls: Any = None) -> Any:
        call = self._tokenid_begin(options, stream)
        if call is None:
            return super().request(cast_to, options, stream=stream, stream_cls=stream_cls)  # type: ignore[misc]
        wait = self._tokenid_enforce(call, options)
        if wait > 0:
            time.sleep(wait)  # a rate limit with action "wait"
        if stream and stream_cls is not None:
            stream_cls = journaled_stream_cls(stream_cls)
        token = _CURRENT_CALL.set(call)
        try:
            result = super().request(cast_to, options, stream=stream, stream_cls=stream_cls)  # type: ignore[misc]
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            _CURRENT_CALL.reset(token)
        call.returned_ok(result)
        return result

    def _send_request(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> httpx2.Response:
        call = _CURRENT_CALL.get()
        if call is None:
            return cast(httpx2.Response, super()._send_request(request, stream=stream, **kwargs))  # type: ignore[misc]
        attempt = call.attempt(request)
        response = cast(httpx2.Response, super()._send_request(request, stream=stream, **kwargs))  # type: ignore[misc]
        self._tokenid_sent(call, attempt, response, stream)
        return response

    def close(self) -> None:
        """Close the HTTP client and write this client's queued journal events."""
        try:
            super().close()  # type: ignore[misc]
        finally:
            self._tokenid.journal.flush()


class _AsyncJournaling(_Journaling):
    async def request(self, cast_to: Any, options: FinalRequestOptions, *, stream: bool = False,
                      stream_cls: Any = None) -> Any:
        call = self._tokenid_begin(options, stream)
        if call is None:
            return await super().request(cast_to, options, stream=stream, stream_cls=stream_cls)  # type: ignore[misc]
        wait = self._tokenid_enforce(call, options)
        if wait > 0:
            await anyio.sleep(wait)
        if stream and stream_cls is not None:
            stream_cls = journaled_stream_cls(stream_cls)
        token = _CURRENT_CALL.set(call)
        try:
            result = await super().request(  # type: ignore[misc]
                cast_to, options, stream=stream, stream_cls=stream_cls)
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            _CURRENT_CALL.reset(token)
        call.returned_ok(result)
        return result

    async def _send_request(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> httpx2.Response:
        call = _CURRENT_CALL.get()
        if call is None:
            return cast(httpx2.Response, await super()._send_request(  # type: ignore[misc]
                request, stream=stream, **kwargs))
        attempt = call.attempt(request)
        response = cast(httpx2.Response, await super()._send_request(  # type: ignore[misc]
            request, stream=stream, **kwargs))
        self._tokenid_sent(call, attempt, response, stream)
        return response

    async def close(self) -> None:
        """Close the HTTP client and write this client's queued journal events."""
        try:
            await super().close()  # type: ignore[misc]
        finally:
            self._tokenid.journal.flush()


class JournaledOpenAI(_SyncJournaling, openai.OpenAI):
    """``openai.OpenAI`` that journals every call.

    Takes every ``openai.OpenAI`` argument plus ``session_id``, ``tags``, ``journal`` (path, ``sqlite:///`` URL
    or :class:`~tokenid.Journal`), ``deployments``, ``prices``, ``enforcement_config``, ``store_content`` and
    ``inject_stream_usage``.
    """


class AsyncJournaledOpenAI(_AsyncJournaling, openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` that journals every call (same extra arguments as :class:`JournaledOpenAI`)."""


class JournaledAzureOpenAI(_SyncJournaling, openai.AzureOpenAI):
    """``openai.AzureOpenAI`` that journals every call; ``deployments`` maps deployment names to models."""

    _tokenid_azure = True


class AsyncJournaledAzureOpenAI(_AsyncJournaling, openai.AsyncAzureOpenAI):
    """``openai.AsyncAzureOpenAI`` that journals every call."""

    _tokenid_azure = True
