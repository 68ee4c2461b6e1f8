"""One ``openai`` SDK client per target, built at construction, sending through the journaled client.

Each target gets the SDK client that speaks its API (``AzureOpenAI`` with its endpoint, api-version and
auth; ``OpenAI`` with its key), so URLs, auth headers and token providers are exactly the SDK's own.
The target clients do no retries of their own (the router does) and send every request through the
owning journaled client's ``_send_request``: the same connection pool and the same journal hook.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai
from openai._models import FinalRequestOptions

from ..azure.identity import provider_for, static_secret
from ..errors import ConfigError
from .config import Target

__all__ = ["build_target_clients", "target_options"]

# Azure accepts `stream_options` from this api-version on (see clients._AZURE_STREAM_OPTIONS_SINCE)
_AZURE_STREAM_OPTIONS_SINCE = "2024-08-01"


class _Owned:
    """Mixin: hand every HTTP send to the journaled client that owns this target client."""

    _tokenid_owner: Any

    def _send_request(self, request: Any, *, stream: bool, **kwargs: Any) -> Any:
        return self._tokenid_owner._send_request(request, stream=stream, **kwargs)


class _SyncAzure(_Owned, openai.AzureOpenAI):
    pass


class _AsyncAzure(_Owned, openai.AsyncAzureOpenAI):
    pass


class _SyncOpenAI(_Owned, openai.OpenAI):
    pass


class _AsyncOpenAI(_Owned, openai.AsyncOpenAI):
    pass


def _v1(target: Target) -> bool:
    """An Azure ``/openai/v1`` endpoint: spoken to with the OpenAI client class, as Azure documents."""
    return target.provider == "azure" and target.endpoint.endswith("/openai/v1")


def _auth_kwargs(target: Target, *, is_async: bool) -> dict[str, Any]:
    where = f"routing target {target.name!r}['auth']"
    auth = target.auth
    if auth.type == "api_key":
        return {"api_key": static_secret(auth)}
    if _v1(target):  # the OpenAI client takes a bearer token, or a callable giving one, as its api_key
        if auth.type == "azure_ad_token":
            return {"api_key": static_secret(auth)}
        return {"api_key": provider_for(auth, where, is_async=is_async)}
    if auth.type == "azure_ad_token":
        return {"azure_ad_token": static_secret(auth)}
    return {"azure_ad_token_provider": provider_for(auth, where, is_async=is_async)}


def build_target_clients(owner: Any, targets: list[Target], *, is_async: bool,
                         providers: dict[str, Any] | None = None) -> dict[str, Any]:
    """An SDK client per target, sharing ``owner``'s HTTP client, timeout and custom headers.

    ``providers`` caches each target's auth arguments by name, so copies of a client (``with_options()``)
    share one token cache instead of fetching their own.
    """
    clients: dict[str, Any] = {}
    custom_headers = {k: v for k, v in dict(getattr(owner, "_custom_headers", {}) or {}).items()
                      if k.lower() not in ("authorization", "api-key")}
    for target in targets:
        if providers is not None and target.name in providers:
            auth = providers[target.name]
        else:
            auth = _auth_kwargs(target, is_async=is_async)
            if providers is not None:
                providers[target.name] = auth
        common: dict[str, Any] = {
            "max_retries": 0,
            "timeout": target.timeout_s if target.timeout_s is not None else owner.timeout,
            "http_client": owner._client,
            "default_headers": {**custom_headers, **target.headers},
        }
        try:
            if target.provider == "azure" and not _v1(target):
                cls: Any = _AsyncAzure if is_async else _SyncAzure
                client = cls(azure_endpoint=target.endpoint, api_version=target.api_version, **auth, **common)
            else:
                cls = _AsyncOpenAI if is_async else _SyncOpenAI
                if target.api_version is not None:
                    common["default_query"] = {"api-version": target.api_version}
                client = cls(base_url=target.endpoint, **auth, **common)
        except openai.OpenAIError as exc:
            raise ConfigError(f"routing target {target.name!r}: {exc}") from exc
        client._tokenid_owner = owner
        clients[target.name] = client
    return clients


def target_options(options: FinalRequestOptions, target: Target, *, injected_usage: bool) -> FinalRequestOptions:
    """A copy of the call's options for one target: its deployment and ``override_params`` in the body."""
    copied = options.model_copy()
    copied.max_retries = 0  # the router retries; the SDK must not retry on top
    data = options.json_data
    if isinstance(data, Mapping):
        body = dict(data)
        model = body.get("model")
        deployment = target.deployment_for(model if isinstance(model, str) else None)
        if deployment is not None:
            body["model"] = deployment
        if target.override_params:
            body.update(target.override_params)
        if injected_usage and target.provider == "azure" and not target.endpoint.endswith("/openai/v1") \
                and (target.api_version or "")[:10] < _AZURE_STREAM_OPTIONS_SINCE:
            body.pop("stream_options", None)  # this region's api-version would answer 400
        copied.json_data = body
    return copied
