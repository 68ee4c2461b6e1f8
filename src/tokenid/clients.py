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
from typing import TYPE_CHECKING, Any, ClassVar, cast

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

if TYPE_CHECKING:
    from .routing import Router, Target
    from .routing.router import Steps

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
              inject_stream_usage: bool, routing: object = None) -> tuple[ClientSettings, Mapping[str, Any] | None]:
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        raise ConfigError(f"session_id must be a non-empty string, got {session_id!r}")
    enforcement = load_config(enforcement_config)
    routing_raw = load_config(routing, "routing", env=None) if routing is not None else None
    if enforcement is not None and "routing" in enforcement:  # the gateway configured beside the rules
        if routing_raw is not None:
            raise ConfigError("routing is given twice: as routing= and under 'routing' in enforcement_config")
        routing_raw = load_config(enforcement["routing"], "enforcement_config['routing']", env=None)
        enforcement = {k: v for k, v in enforcement.items() if k != "routing"}
    rules = parse_config(enforcement) if enforcement is not None else None
    deployment_map = dict(deployments or {})
    if rules is not None and rules.deployments:
        deployment_map = {**rules.deployments, **deployment_map}
    specs = parse_deployments(deployment_map)
    pricer = Pricer(deployments=specs, overrides=parse_price_overrides(prices))
    routing_config = None
    if routing_raw is not None:
        from .routing import parse_routing

        routing_config = parse_routing(routing_raw, azure_client=azure)
    the_journal = get_journal(journal)
    router = None
    if routing_config is not None:
        from .routing import Router

        router = Router(routing_config, journal_path=the_journal.path)
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
        router=router,
    )
    return settings, dict(enforcement) if enforcement is not None else None


_ROUTED_PLACEHOLDER_KEY = "tokenid-routed-client"


def _replay(options: FinalRequestOptions) -> Any:
    """The SDK's own record of where uploaded files start, to rewind them before sending again."""
    from openai._base_client import _RequestBodyReplay

    return _RequestBodyReplay(options)


def _cache_route() -> Any:
    from .routing import RouteLog

    route = RouteLog("cache")
    route.served_by = "cache"
    return route


def _routed_defaults(kwargs: dict[str, Any], targets: list[Any], *, azure: bool) -> None:
    """A routed client sends through its targets: its own endpoint, api-version and key need not be given.

    The SDK still wants them at construction; they default to the first target's endpoint and api-version
    and a placeholder key that no request ever carries (every send goes through a target's own client).
    """
    import os

    if azure:
        first = next((t for t in targets if t.provider == "azure"), targets[0])
        if "azure_endpoint" not in kwargs and "base_url" not in kwargs and not os.environ.get("AZURE_OPENAI_ENDPOINT"):
            kwargs["azure_endpoint"] = first.endpoint.removesuffix("/openai/v1")
        if "api_version" not in kwargs and not os.environ.get("OPENAI_API_VERSION"):
            kwargs["api_version"] = first.api_version or "2024-10-21"
        given = any(kwargs.get(k) is not None for k in ("api_key", "azure_ad_token", "azure_ad_token_provider"))
        if not given and not os.environ.get("AZURE_OPENAI_API_KEY") and not os.environ.get("AZURE_OPENAI_AD_TOKEN"):
            kwargs["api_key"] = _ROUTED_PLACEHOLDER_KEY
    elif kwargs.get("api_key") is None and not os.environ.get("OPENAI_API_KEY"):
        kwargs["api_key"] = _ROUTED_PLACEHOLDER_KEY


class _Journaling:
    """What the four clients share: settings, describing a call, and the stream-usage rule."""

    _tokenid: ClientSettings
    _tokenid_azure: ClassVar[bool] = False
    _tokenid_async: ClassVar[bool] = False
    enforcement_config: Mapping[str, Any] | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs = self._tokenid_init(kwargs, azure=self._tokenid_azure)
        if self._tokenid.router is not None and self._tokenid.router.root is not None:
            _routed_defaults(kwargs, self._tokenid.router.config.targets(), azure=self._tokenid.azure)
        super().__init__(*args, **kwargs)
        if self._tokenid.azure:
            self._tokenid.api_version = cast(Any, self)._api_version
        self._tokenid_targets: dict[str, Any] = {}
        router = self._tokenid.router
        if router is not None and router.root is not None:
            from .routing.targets import build_target_clients

            self._tokenid_targets = build_target_clients(self, router.config.targets(), is_async=self._tokenid_async,
                                                         providers=self._tokenid.target_auth)

    def copy(self, *args: Any, session_id: Any = _UNSET, tags: Any = _UNSET,
             _extra_kwargs: Mapping[str, Any] = {}, **kwargs: Any) -> Any:
        """The SDK's ``copy()``/``with_options()``, keeping the journal; may also change ``session_id``/``tags``."""
        extra = self._tokenid_copy_kwargs(session_id, tags, _extra_kwargs)
        return super().copy(*args, _extra_kwargs=extra, **kwargs)  # type: ignore[misc]

    with_options = copy

    def _tokenid_init(self, kwargs: dict[str, Any], *, azure: bool) -> dict[str, Any]:
        inherited = kwargs.pop("_tokenid_settings", None)
        options = {k: kwargs.pop(k) for k in ("session_id", "tags", "journal", "deployments", "prices",
                                              "enforcement_config", "store_content", "inject_stream_usage",
                                              "routing")
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
                routing=options.get("routing"),
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

    def routing_health(self) -> list[dict[str, Any]]:
        """Each routing target's circuit breaker in this process: state, seconds to the next probe, transitions.

        Empty without ``routing``. ``tokenid health`` shows what the journal saw, across processes.
        """
        router = self._tokenid.router
        return router.health() if router is not None else []

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

    def _tokenid_cache_key(self, router: Router, options: FinalRequestOptions, stream: bool) -> tuple[str | None, bool]:
        from .routing.cache import request_key

        root = router.root
        namespace = "routing:" + ",".join(t.name for t in router.config.targets()) if root is not None \
            else str(cast(Any, self).base_url)
        return request_key(router.config.cache, namespace, options.method, options.url, options.json_data,
                           stream=stream, has_files=options.files is not None, headers=options.headers,
                           default_headers=cast(Any, self)._custom_headers)

    def _tokenid_from_cache(self, router: Router, call: Call | None, options: FinalRequestOptions,
                            stream: bool) -> str | None:
        """Look the call up in the response cache (a hit is served by ``_send_request``); its key, if cached."""
        if call is None or router.config.cache is None:
            return None
        try:
            key, lookup = self._tokenid_cache_key(router, options, stream)
            from .routing.cache import without_opt_in

            headers = without_opt_in(options.headers, cast(Any, self)._custom_headers)
            if headers is not None:
                options.headers = headers
            if key is not None and lookup:
                call.cached = router.lookup(key)
                if call.cached is not None:
                    call.route = _cache_route()
            return key
        except Exception as exc:  # the cache must never break the call
            log.error("tokenid: response cache skipped (%s: %s)", type(exc).__name__, exc)
            call.cached = None
            return None

    def _tokenid_store(self, router: Router, key: str | None, call: Call | None) -> None:
        if key is not None and call is not None and not call.cache_hit:
            try:
                headers = {k.lower(): v for k, v in call.headers.items()} if call.headers is not None else None
                router.store(key, call.http_status, headers, call.body, call.content_type)
            except Exception as exc:
                log.error("tokenid: response not cached (%s: %s)", type(exc).__name__, exc)

    def _tokenid_plan(self, router: Router, call: Call | None, options: FinalRequestOptions) -> Steps:
        from .call import endpoint_name
        from .routing import RouteLog
        from .routing.router import is_stateless

        assert router.root is not None
        attempts = router.config.retry.attempts or options.get_max_retries(cast(Any, self).max_retries) + 1
        body = options.json_data if isinstance(options.json_data, Mapping) else None
        stateless = is_stateless(options.method, call.endpoint if call is not None else endpoint_name(options.url),
                                 body)
        route = RouteLog(router.root.strategy if stateless else "pinned")
        if call is not None:
            call.route = route
        return router.steps(route, attempts) if stateless else router.pinned_steps(route, attempts)

    def _tokenid_target(self, call: Call | None, options: FinalRequestOptions, target: Target) -> tuple[Any, Any]:
        """The SDK client and the options for one send to ``target``; the call now describes that target."""
        from .routing.targets import target_options

        opts = target_options(options, target, injected_usage=call is not None and call.injected_usage)
        body = opts.json_data
        model = body.get("model") if isinstance(body, Mapping) else None
        if call is not None:
            call.retarget(target.provider, target.api_version, model if isinstance(model, str) else None)
        return self._tokenid_targets[target.name], opts

    def _tokenid_cached_response(self, call: Call, request: httpx2.Request, stream: bool) -> httpx2.Response:
        """Serve the cached answer as if the service had sent it: the SDK parses it as usual."""
        cached = call.cached
        assert cached is not None
        call.served_from_cache(request)
        response = httpx2.Response(cached.status, headers=cached.headers, content=cached.body, request=request)
        self._tokenid_sent(call, 0, response, stream)
        return response

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
            router = self._tokenid.router
            if router is not None and router.root is not None:  # not journaled, but still routed
                return self._tokenid_routed(router, None, cast_to, options, stream, stream_cls)
            return super().request(cast_to, options, stream=stream, stream_cls=stream_cls)  # type: ignore[misc]
        wait = self._tokenid_enforce(call, options)
        if wait > 0:
            time.sleep(wait)  # a rate limit with action "wait"
        if stream and stream_cls is not None:
            stream_cls = journaled_stream_cls(stream_cls)
        router = self._tokenid.router
        token = _CURRENT_CALL.set(call)
        try:
            if router is None:
                result = super().request(cast_to, options, stream=stream, stream_cls=stream_cls)  # type: ignore[misc]
            else:
                result = self._tokenid_routed(router, call, cast_to, options, stream, stream_cls)
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            _CURRENT_CALL.reset(token)
        call.returned_ok(result)
        return result

    def _tokenid_routed(self, router: Router, call: Call | None, cast_to: Any, options: FinalRequestOptions,
                        stream: bool, stream_cls: Any) -> Any:
        """route: the cache, then the targets (loadbalance / fallback / retries), each send journaled."""
        key = self._tokenid_from_cache(router, call, options, stream)
        if (call is not None and call.cached is not None) or router.root is None:
            result = super().request(cast_to, options, stream=stream, stream_cls=stream_cls)  # type: ignore[misc]
        else:
            from .routing import Wait

            steps = self._tokenid_plan(router, call, options)
            replay = _replay(options)
            outcome: BaseException | None = None
            last: BaseException | None = None
            while True:
                try:
                    step = steps.send(outcome)
                except StopIteration:
                    break
                if isinstance(step, Wait):
                    time.sleep(step.seconds)
                    outcome = None
                    continue
                if last is not None and not replay.rewind():
                    raise last  # an upload that cannot be read again cannot be sent again
                client, opts = self._tokenid_target(call, options, step.target)
                try:
                    result = client.request(cast_to, opts, stream=stream, stream_cls=stream_cls)
                    outcome = None
                except Exception as exc:
                    outcome = last = exc
        self._tokenid_store(router, key, call)
        return result

    def _send_request(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> httpx2.Response:
        call = _CURRENT_CALL.get()
        if call is None:
            return cast(httpx2.Response, super()._send_request(request, stream=stream, **kwargs))  # type: ignore[misc]
        if call.cached is not None:
            return self._tokenid_cached_response(call, request, stream)
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
            router = self._tokenid.router
            if router is not None and router.root is not None:  # not journaled, but still routed
                return await self._tokenid_routed(router, None, cast_to, options, stream, stream_cls)
            return await super().request(cast_to, options, stream=stream, stream_cls=stream_cls)  # type: ignore[misc]
        wait = self._tokenid_enforce(call, options)
        if wait > 0:
            await anyio.sleep(wait)
        if stream and stream_cls is not None:
            stream_cls = journaled_stream_cls(stream_cls)
        router = self._tokenid.router
        token = _CURRENT_CALL.set(call)
        try:
            if router is None:
                result = await super().request(  # type: ignore[misc]
                    cast_to, options, stream=stream, stream_cls=stream_cls)
            else:
                result = await self._tokenid_routed(router, call, cast_to, options, stream, stream_cls)
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            _CURRENT_CALL.reset(token)
        call.returned_ok(result)
        return result

    async def _tokenid_routed(self, router: Router, call: Call | None, cast_to: Any, options: FinalRequestOptions,
                              stream: bool, stream_cls: Any) -> Any:
        """The async twin of the sync clients' route step: same walk, ``await`` for sends and sleeps."""
        key = self._tokenid_from_cache(router, call, options, stream)
        if (call is not None and call.cached is not None) or router.root is None:
            result = await super().request(  # type: ignore[misc]
                cast_to, options, stream=stream, stream_cls=stream_cls)
        else:
            from .routing import Wait

            steps = self._tokenid_plan(router, call, options)
            replay = _replay(options)
            outcome: BaseException | None = None
            last: BaseException | None = None
            while True:
                try:
                    step = steps.send(outcome)
                except StopIteration:
                    break
                if isinstance(step, Wait):
                    await anyio.sleep(step.seconds)
                    outcome = None
                    continue
                if last is not None and not replay.rewind():
                    raise last  # an upload that cannot be read again cannot be sent again
                client, opts = self._tokenid_target(call, options, step.target)
                try:
                    result = await client.request(cast_to, opts, stream=stream, stream_cls=stream_cls)
                    outcome = None
                except Exception as exc:
                    outcome = last = exc
        self._tokenid_store(router, key, call)
        return result

    async def _send_request(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> httpx2.Response:
        call = _CURRENT_CALL.get()
        if call is None:
            return cast(httpx2.Response, await super()._send_request(  # type: ignore[misc]
                request, stream=stream, **kwargs))
        if call.cached is not None:
            return self._tokenid_cached_response(call, request, stream)
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
    ``inject_stream_usage``, and ``routing`` (targets, loadbalance / fallback, retries, breakers, cache:
    :mod:`tokenid.routing`).
    """


class AsyncJournaledOpenAI(_AsyncJournaling, openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` that journals every call (same extra arguments as :class:`JournaledOpenAI`)."""

    _tokenid_async = True


class JournaledAzureOpenAI(_SyncJournaling, openai.AzureOpenAI):
    """``openai.AzureOpenAI`` that journals every call; ``deployments`` maps deployment names to models."""

    _tokenid_azure = True


class AsyncJournaledAzureOpenAI(_AsyncJournaling, openai.AsyncAzureOpenAI):
    """``openai.AsyncAzureOpenAI`` that journals every call."""

    _tokenid_azure = True
    _tokenid_async = True
