"""Microsoft Entra ID auth for Azure OpenAI: credentials from config, and a token provider that caches.

:func:`parse_auth` validates a target's ``auth`` mapping at construction (no network, no secrets kept in
messages); :func:`credential_for` builds the azure-identity credential it names (service principal with a
secret or a certificate, managed identity, workload identity, ``DefaultAzureCredential``); and
:class:`TokenProvider` turns any credential into the ``azure_ad_token_provider`` the ``openai`` SDK calls
before every request, fetching a new token only shortly before the cached one expires.

azure-identity is an optional dependency (``pip install "tokenid[azure]"``): it is imported only when a
credential is built.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ConfigError

__all__ = [
    "AUTH_TYPES",
    "AZURE_OPENAI_SCOPE",
    "AsyncTokenProvider",
    "AuthConfig",
    "TokenProvider",
    "credential_for",
    "parse_auth",
    "provider_for",
    "static_secret",
    "token_provider",
]

log = logging.getLogger("tokenid")

AZURE_OPENAI_SCOPE = "https://cognitiveservices.azure.com/.default"
DEFAULT_REFRESH_MARGIN_S = 300.0
_RETRY_REFRESH_AFTER_S = 30.0  # after a failed refresh while the old token is still valid
_EXPIRY_SKEW_S = 30.0  # never hand out a token this close to its expiry

# auth type -> the keys it accepts; which are required is checked in _check_type
_COMMON = frozenset({"type", "scope", "refresh_margin_s", "credential_options"})
AUTH_TYPES: Mapping[str, frozenset[str]] = {
    "api_key": frozenset({"type", "api_key", "api_key_env"}),
    "azure_ad_token": frozenset({"type", "token", "token_env"}),
    "token_provider": frozenset({"type", "provider"}),
    "credential": _COMMON | {"credential"},
    "client_secret": _COMMON | {"tenant_id", "client_id", "client_secret", "client_secret_env", "authority"},
    "certificate": _COMMON | {"tenant_id", "client_id", "certificate_path", "certificate_password",
                              "certificate_password_env",
                              "send_certificate_chain", "authority"},
    "managed_identity": _COMMON | {"client_id", "object_id", "resource_id"},
    "workload_identity": _COMMON | {"tenant_id", "client_id", "token_file_path", "authority"},
    # tenants per sub-credential (workload_identity_tenant_id, ...) go in credential_options
    "default": _COMMON | {"managed_identity_client_id", "workload_identity_client_id", "authority"},
}
_AZURE_ONLY = frozenset(AUTH_TYPES) - {"api_key"}


class _Credential(Protocol):
    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class AuthConfig:
    """A validated ``auth`` mapping: its type and the options that type accepts.

    Secrets are never part of ``repr``: ``options`` is excluded, only the type and the key names show.
    """

    type: str
    options: Mapping[str, Any] = field(repr=False, compare=False)

    def __repr__(self) -> str:
        return f"AuthConfig(type={self.type!r}, keys={sorted(self.options)!r})"

    @property
    def uses_entra(self) -> bool:
        """True when requests carry an Entra bearer token (not an ``api-key``)."""
        return self.type != "api_key"


def parse_auth(raw: object, where: str, *, azure: bool) -> AuthConfig:
    """Validate an ``auth`` value; ``where`` names it in errors (e.g. ``target 'eastus2': auth``).

    Accepts a mapping with ``type`` or the bare type name for types that need no options
    (``"managed_identity"``, ``"default"``, ``"workload_identity"``).
    """
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping with a 'type' (one of {', '.join(AUTH_TYPES)}), "
                          f"got {type(raw).__name__}")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in AUTH_TYPES:
        raise ConfigError(f"{where}['type'] must be one of {', '.join(AUTH_TYPES)}, got {kind!r}")
    if not azure and kind in _AZURE_ONLY:
        raise ConfigError(f"{where}['type'] {kind!r} is for Azure targets; an OpenAI target takes 'api_key'")
    unknown = sorted(str(k) for k in raw if k not in AUTH_TYPES[kind])
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} for type {kind!r}; accepted: "
                          f"{', '.join(sorted(AUTH_TYPES[kind]))}")
    options = {k: v for k, v in raw.items() if k != "type"}
    _check_type(kind, options, where)
    return AuthConfig(kind, options)


def _one_secret(options: Mapping[str, Any], where: str, literal: str, env: str, *, required: bool = True) -> None:
    """Exactly one of a literal secret and the name of an environment variable holding it; the variable is set."""
    if literal in options and env in options:
        raise ConfigError(f"{where}: give {literal!r} or {env!r}, not both")
    if literal in options:
        if not isinstance(options[literal], str) or not options[literal]:
            raise ConfigError(f"{where}[{literal!r}] must be a non-empty string")
        return
    if env in options:
        name = options[env]
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}[{env!r}] must name an environment variable")
        if not os.environ.get(name):
            raise ConfigError(f"{where}[{env!r}]: environment variable {name} is not set")
        return
    if required:
        raise ConfigError(f"{where}: missing credentials: give {literal!r} or {env!r}")


def _need(options: Mapping[str, Any], where: str, key: str, env: str | None = None) -> None:
    value = options.get(key)
    if value is None and env is not None and os.environ.get(env):
        return
    if not isinstance(value, str) or not value:
        hint = f" (or set {env})" if env else ""
        raise ConfigError(f"{where}[{key!r}] is required for this auth type{hint}")


def _check_type(kind: str, options: Mapping[str, Any], where: str) -> None:
    if kind == "api_key":
        _one_secret(options, where, "api_key", "api_key_env")
    elif kind == "azure_ad_token":
        _one_secret(options, where, "token", "token_env")
    elif kind == "token_provider":
        if not callable(options.get("provider")):
            raise ConfigError(f"{where}['provider'] must be a callable returning a bearer token")
    elif kind == "credential":
        if not callable(getattr(options.get("credential"), "get_token", None)):
            raise ConfigError(f"{where}['credential'] must be an azure-identity credential (has get_token)")
    elif kind == "client_secret":
        _need(options, where, "tenant_id")
        _need(options, where, "client_id")
        _one_secret(options, where, "client_secret", "client_secret_env")
    elif kind == "certificate":
        _need(options, where, "tenant_id")
        _need(options, where, "client_id")
        _need(options, where, "certificate_path")
        if not os.path.isfile(os.path.expanduser(options["certificate_path"])):
            raise ConfigError(f"{where}['certificate_path']: no file at {options['certificate_path']}")
        _one_secret(options, where, "certificate_password", "certificate_password_env", required=False)
    elif kind == "managed_identity":
        ids = [k for k in ("client_id", "object_id", "resource_id") if k in options]
        if len(ids) > 1:
            raise ConfigError(f"{where}: a user-assigned identity takes one of client_id, object_id, resource_id; "
                              f"got {', '.join(ids)}")
    elif kind == "workload_identity":
        _need(options, where, "tenant_id", "AZURE_TENANT_ID")
        _need(options, where, "client_id", "AZURE_CLIENT_ID")
        _need(options, where, "token_file_path", "AZURE_FEDERATED_TOKEN_FILE")
    if "scope" in options and (not isinstance(options["scope"], str) or not options["scope"]):
        raise ConfigError(f"{where}['scope'] must be a non-empty string")
    margin = options.get("refresh_margin_s", DEFAULT_REFRESH_MARGIN_S)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or margin < 0:
        raise ConfigError(f"{where}['refresh_margin_s'] must be a number of seconds >= 0, got {margin!r}")
    if not isinstance(options.get("credential_options", {}), Mapping):
        raise ConfigError(f"{where}['credential_options'] must be a mapping of azure-identity keyword arguments")


def _secret(options: Mapping[str, Any], literal: str, env: str) -> str | None:
    if literal in options:
        return str(options[literal])
    if env in options:
        return os.environ.get(str(options[env])) or None
    return None


def static_secret(auth: AuthConfig) -> str:
    """The API key or static token of an ``api_key`` / ``azure_ad_token`` auth (read from its variable now)."""
    if auth.type == "api_key":
        value = _secret(auth.options, "api_key", "api_key_env")
    elif auth.type == "azure_ad_token":
        value = _secret(auth.options, "token", "token_env")
    else:
        raise ValueError(f"auth type {auth.type!r} has no static secret")
    if not value:
        raise ConfigError(f"auth {auth.type!r}: the secret is empty")
    return value


def credential_for(auth: AuthConfig, where: str = "auth") -> Any:
    """The azure-identity credential an Entra auth config names (built now; it fetches no token yet)."""
    options = dict(auth.options)
    extra: dict[str, Any] = dict(options.get("credential_options") or {})
    if auth.type == "credential":
        return options["credential"]
    try:
        import azure.identity as identity
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{where}: auth type {auth.type!r} needs azure-identity: "
                          "pip install \"tokenid[azure]\"") from exc
    if "authority" in options:
        extra.setdefault("authority", options["authority"])
    try:
        if auth.type == "client_secret":
            return identity.ClientSecretCredential(
                options["tenant_id"], options["client_id"],
                _secret(options, "client_secret", "client_secret_env") or "", **extra)
        if auth.type == "certificate":
            password = _secret(options, "certificate_password", "certificate_password_env")
            if "send_certificate_chain" in options:
                extra.setdefault("send_certificate_chain", bool(options["send_certificate_chain"]))
            return identity.CertificateCredential(
                options["tenant_id"], options["client_id"], os.path.expanduser(options["certificate_path"]),
                password=password, **extra)
        if auth.type == "managed_identity":
            if "client_id" in options:
                return identity.ManagedIdentityCredential(client_id=options["client_id"], **extra)
            for key in ("object_id", "resource_id"):
                if key in options:
                    return identity.ManagedIdentityCredential(identity_config={key: options[key]}, **extra)
            return identity.ManagedIdentityCredential(**extra)
        if auth.type == "workload_identity":
            for key in ("tenant_id", "client_id", "token_file_path"):
                if key in options:
                    extra.setdefault(key, options[key])
            return identity.WorkloadIdentityCredential(**extra)
        if auth.type == "default":
            for key in ("managed_identity_client_id", "workload_identity_client_id"):
                if key in options:
                    extra.setdefault(key, options[key])
            return identity.DefaultAzureCredential(**extra)
    except (ValueError, TypeError) as exc:  # azure-identity's own validation (bad tenant id, authority, ...)
        raise ConfigError(f"{where}: {type(exc).__name__}: {exc}") from exc
    raise ConfigError(f"{where}: auth type {auth.type!r} does not build a credential")


class TokenProvider:
    """A bearer-token callable for ``azure_ad_token_provider`` that caches the token until shortly before expiry.

    The ``openai`` SDK calls its provider before every request; azure-identity credentials each keep a
    cache too, but not all (and not a user's own), so this keeps one: a token is reused until
    ``refresh_margin_s`` before it expires (or the ``refresh_on`` the credential gives), then fetched
    again under a lock, so concurrent calls share one fetch. When a refresh fails while the cached token
    is still valid, the cached one is used and the refresh retried 30 s later; an expired token is never
    returned.
    """

    def __init__(self, credential: _Credential, *, scope: str = AZURE_OPENAI_SCOPE,
                 refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S) -> None:
        self.credential = credential
        self.scope = scope
        self.refresh_margin_s = refresh_margin_s
        self.fetches = 0
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_on = 0.0
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return f"TokenProvider(scope={self.scope!r}, credential={type(self.credential).__name__})"

    def __call__(self) -> str:
        token = self._token
        if token is not None and time.time() < self._refresh_at:
            return token
        with self._lock:
            return self._refresh_locked()

    @property
    def expires_on(self) -> float:
        """When the cached token expires (epoch seconds; 0 before the first fetch)."""
        return self._expires_on

    def fresh(self) -> str | None:
        """The cached token when it needs no refresh yet, else None (no fetch)."""
        token = self._token
        return token if token is not None and time.time() < self._refresh_at else None

    def _refresh_locked(self) -> str:
        now = time.time()
        if self._token is not None and now < self._refresh_at:
            return self._token  # another thread refreshed while this one waited
        try:
            token, expires_on, refresh_on = self._fetch()
        except Exception as exc:
            if self._token is not None and now < self._expires_on - _EXPIRY_SKEW_S:
                log.warning("tokenid: token refresh failed (%s); using the cached token until %s",
                            type(exc).__name__, time.strftime("%H:%M:%S", time.gmtime(self._expires_on)))
                self._refresh_at = now + _RETRY_REFRESH_AFTER_S
                return self._token
            raise
        self.fetches += 1
        self._token, self._expires_on = token, expires_on
        latest = expires_on - self.refresh_margin_s
        if refresh_on is not None:
            latest = min(latest, refresh_on)
        # a token shorter-lived than the margin is still reused for half its life
        self._refresh_at = max(latest, now + (expires_on - now) / 2)
        return token

    def _fetch(self) -> tuple[str, float, float | None]:
        info = getattr(self.credential, "get_token_info", None)
        if callable(info):
            got = info(self.scope)
            refresh_on = getattr(got, "refresh_on", None)
            return str(got.token), float(got.expires_on), float(refresh_on) if refresh_on else None
        got = self.credential.get_token(self.scope)
        return str(got.token), float(got.expires_on), None


class AsyncTokenProvider:
    """The async clients' provider: the cached token at once, a refresh in a worker thread.

    Works with the synchronous azure-identity credentials (no aiohttp needed): the blocking fetch runs
    through :func:`anyio.to_thread.run_sync`, at most once per refresh.
    """

    def __init__(self, sync: TokenProvider) -> None:
        self.sync = sync

    def __repr__(self) -> str:
        return f"AsyncTokenProvider({self.sync!r})"

    async def __call__(self) -> str:
        token = self.sync.fresh()
        if token is not None:
            return token
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self.sync)


def token_provider(credential: Any, *, scope: str = AZURE_OPENAI_SCOPE,
                   refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S) -> TokenProvider:
    """A caching ``azure_ad_token_provider`` for ``JournaledAzureOpenAI`` from any azure-identity credential.

    ``AsyncTokenProvider(token_provider(cred))`` is the async clients' equivalent.
    """
    return TokenProvider(credential, scope=scope, refresh_margin_s=refresh_margin_s)


def provider_for(auth: AuthConfig, where: str, *, is_async: bool) -> Callable[[], str | Awaitable[str]]:
    """The ``azure_ad_token_provider`` for an Entra auth config (cached and refreshed before expiry)."""
    if auth.type == "token_provider":
        provider: Callable[[], Any] = auth.options["provider"]
        return provider
    credential = credential_for(auth, where)
    if inspect.iscoroutinefunction(getattr(credential, "get_token", None)):
        raise ConfigError(f"{where}: pass a synchronous azure-identity credential (azure.identity, not "
                          "azure.identity.aio); the async clients refresh it in a worker thread")
    sync = TokenProvider(credential, scope=auth.options.get("scope", AZURE_OPENAI_SCOPE),
                         refresh_margin_s=float(auth.options.get("refresh_margin_s", DEFAULT_REFRESH_MARGIN_S)))
    return AsyncTokenProvider(sync) if is_async else sync
