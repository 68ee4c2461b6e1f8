"""The ``routing`` configuration: targets, strategies, retries, circuit breakers and cache, validated once.

:func:`parse_routing` turns the user's mapping (given to a client as ``routing=``, or under a ``routing``
key of the enforcement file) into frozen dataclasses and raises :class:`~tokenid.errors.ConfigError` for
anything it cannot accept, naming the target and the key, so a fallback target that could never work
fails at construction rather than at 3 a.m. as a 404.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from ..azure.identity import AuthConfig, parse_auth
from ..errors import ConfigError

__all__ = [
    "DEFAULT_FALLBACK_ON_STATUS",
    "STRATEGIES",
    "BreakerPolicy",
    "CachePolicy",
    "Group",
    "Node",
    "RetryPolicy",
    "RoutingConfig",
    "Target",
    "parse_routing",
]

STRATEGIES = ("loadbalance", "fallback")
ERROR_KINDS = ("timeout", "connection")
DEFAULT_FALLBACK_ON_STATUS = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_RETRY_ON_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
DEFAULT_BREAKER_ON_STATUS = frozenset({429, 500, 502, 503, 504})
_TOP_KEYS = frozenset({"strategy", "targets", "on_status", "on_errors", "failover", "name", "retry", "breaker",
                       "cache"})
_GROUP_KEYS = frozenset({"strategy", "targets", "on_status", "on_errors", "failover", "name", "weight"})
_TARGET_KEYS = frozenset({"name", "provider", "azure_endpoint", "base_url", "api_version", "deployment", "weight",
                          "auth", "override_params", "headers", "timeout_s"})
_RETRY_KEYS = frozenset({"attempts", "initial_delay_s", "max_delay_s", "jitter", "on_status", "on_errors",
                         "max_retry_after_s", "max_elapsed_s"})
_BREAKER_KEYS = frozenset({"failures", "cooldown_s", "on_status", "on_errors"})
_CACHE_KEYS = frozenset({"backend", "ttl_s", "max_entries", "mode"})


@dataclass(frozen=True)
class Target:
    """One place a call can go: an Azure OpenAI resource (a region) and deployment, or OpenAI."""

    name: str
    provider: Literal["azure", "openai"]
    endpoint: str
    auth: AuthConfig
    api_version: str | None = None
    deployment: str | Mapping[str, str] | None = None
    weight: float = 1.0
    override_params: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float | None = None

    def deployment_for(self, model: str | None) -> str | None:
        """The deployment (Azure) this target calls for the caller's ``model``; None keeps the caller's."""
        if isinstance(self.deployment, str):
            return self.deployment
        if self.deployment is not None and model is not None:
            return self.deployment.get(model)
        return None


@dataclass(frozen=True)
class Group:
    """Members tried by a strategy: ``loadbalance`` (weighted random order) or ``fallback`` (as listed).

    A member's failure moves on to the next member when its status is in ``on_status`` or its exception
    matches ``on_errors`` (``"timeout"``, ``"connection"`` or an exception class name); otherwise it is
    raised. ``failover=False`` makes a loadbalance group try only the member it picked.
    """

    name: str
    strategy: Literal["loadbalance", "fallback"]
    members: tuple[Node, ...]
    on_status: frozenset[int] = DEFAULT_FALLBACK_ON_STATUS
    on_errors: frozenset[str] = frozenset(ERROR_KINDS)
    failover: bool = True
    weight: float = 1.0

    def targets(self) -> list[Target]:
        """Every target below this group, depth first."""
        out: list[Target] = []
        for member in self.members:
            out.extend(member.targets() if isinstance(member, Group) else [member])
        return out


Node = Target | Group


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one target: exponential backoff with jitter, or the wait the server asks for.

    ``attempts`` None means the client's ``max_retries`` + 1 (the SDK's own rule). A server asking to wait
    longer than ``max_retry_after_s`` is not waited for: the call falls over to the next target. Past
    ``max_elapsed_s`` since the call began, no new send is started (no retry, no fallback): the call fails
    with the last error.
    """

    attempts: int | None = None
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0
    jitter: float = 0.25
    on_status: frozenset[int] = DEFAULT_RETRY_ON_STATUS
    on_errors: frozenset[str] = frozenset(ERROR_KINDS)
    max_retry_after_s: float = 30.0
    max_elapsed_s: float | None = None


@dataclass(frozen=True)
class BreakerPolicy:
    """Each target's circuit breaker: open after ``failures`` failures in a row, probe after ``cooldown_s``."""

    failures: int = 5
    cooldown_s: float = 30.0
    on_status: frozenset[int] = DEFAULT_BREAKER_ON_STATUS
    on_errors: frozenset[str] = frozenset(ERROR_KINDS)


@dataclass(frozen=True)
class CachePolicy:
    """The exact-match response cache: where it lives, how long entries live, and whether calls opt in."""

    backend: str = "memory"
    ttl_s: float = 3600.0
    max_entries: int = 1024
    mode: Literal["opt_in", "all"] = "opt_in"


@dataclass(frozen=True)
class RoutingConfig:
    """A validated ``routing`` mapping. ``root`` is None when only the cache is configured."""

    root: Group | None
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy | None = BreakerPolicy()
    cache: CachePolicy | None = None

    def targets(self) -> list[Target]:
        return self.root.targets() if self.root is not None else []


def _only(m: Mapping[str, Any], where: str, allowed: frozenset[str]) -> None:
    unknown = sorted(str(k) for k in m if k not in allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; accepted: "
                          f"{', '.join(sorted(allowed))}")


def _number(value: object, where: str, *, minimum: float = 0.0, strict: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or value < minimum or (strict and value <= minimum):  # type: ignore[operator]
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ConfigError(f"{where} must be a finite number {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _count(value: object, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _statuses(value: object, where: str) -> frozenset[int]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ConfigError(f"{where} must be a list of HTTP status codes, got {value!r}")
    out: set[int] = set()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
            raise ConfigError(f"{where}: {item!r} is not an HTTP status code (100-599)")
        out.add(item)
    return frozenset(out)


def _errors(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ConfigError(f"{where} must be a list of 'timeout', 'connection' or exception class names, "
                          f"got {value!r}")
    for item in value:
        if not isinstance(item, str) or not item.isidentifier():
            raise ConfigError(f"{where}: {item!r} is not 'timeout', 'connection' or an exception class name")
    return frozenset(value)


def _target(raw: Mapping[str, Any], path: str, azure_client: bool) -> Target:
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"routing {path}['name'] must be a non-empty string, got {name!r}")
    provider = raw.get("provider")
    if provider is None:
        provider = "openai" if "base_url" in raw and "azure_endpoint" not in raw and "api_version" not in raw \
            else ("azure" if azure_client or "azure_endpoint" in raw else "openai")
    label = f"routing target {name!r}" if name else f"routing {path}"
    if provider not in ("azure", "openai"):
        raise ConfigError(f"{label}['provider'] must be 'azure' or 'openai', got {provider!r}")
    _only(raw, label, _TARGET_KEYS)
    if "azure_endpoint" in raw and "base_url" in raw:
        raise ConfigError(f"{label}: give 'azure_endpoint' or 'base_url', not both")
    endpoint = raw.get("azure_endpoint", raw.get("base_url"))
    if provider == "openai" and endpoint is None:
        endpoint = "https://api.openai.com/v1"
    key = "base_url" if "base_url" in raw or provider == "openai" else "azure_endpoint"
    if not isinstance(endpoint, str) or urlparse(endpoint).scheme not in ("http", "https") \
            or not urlparse(endpoint).netloc:
        raise ConfigError(f"{label}[{key!r}] must be an http(s) URL, got {endpoint!r}")
    api_version = raw.get("api_version")
    if provider == "azure":
        v1 = endpoint.rstrip("/").endswith("/openai/v1")
        if api_version is None and not v1:
            raise ConfigError(f"{label}['api_version'] is required for an Azure target (e.g. '2024-10-21')")
        if api_version is not None and (not isinstance(api_version, str) or not api_version):
            raise ConfigError(f"{label}['api_version'] must be a non-empty string, got {api_version!r}")
    elif api_version is not None:
        raise ConfigError(f"{label}['api_version'] is for Azure targets; an OpenAI target has none")
    deployment = raw.get("deployment")
    if deployment is not None:
        if provider != "azure":
            raise ConfigError(f"{label}['deployment'] is for Azure targets; set the model with override_params")
        if isinstance(deployment, Mapping):
            ok = bool(deployment) and all(isinstance(k, str) and isinstance(v, str) and v
                                          for k, v in deployment.items())
        else:
            ok = isinstance(deployment, str) and bool(deployment)
        if not ok:
            raise ConfigError(f"{label}['deployment'] must be a deployment name or a non-empty map of "
                              f"requested model -> deployment, got {deployment!r}")
        if isinstance(deployment, Mapping):
            deployment = dict(deployment)
    if "auth" not in raw:
        raise ConfigError(f"{label}: missing credentials: 'auth' is required "
                          "(e.g. {'type': 'api_key', 'api_key_env': 'AZURE_OPENAI_API_KEY'})")
    auth = parse_auth(raw["auth"], f"{label}['auth']", azure=provider == "azure")
    override = raw.get("override_params", {})
    if not isinstance(override, Mapping) or not all(isinstance(k, str) for k in override):
        raise ConfigError(f"{label}['override_params'] must be a mapping of request parameters, got {override!r}")
    headers = raw.get("headers", {})
    if not isinstance(headers, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in headers.items()):
        raise ConfigError(f"{label}['headers'] must be a mapping of header name -> string value")
    if any(k.lower() in ("authorization", "api-key") for k in headers):
        raise ConfigError(f"{label}['headers']: credentials go in 'auth', not in headers")
    timeout = raw.get("timeout_s")
    weight = _number(raw.get("weight", 1.0), f"{label}['weight']")
    if not name:
        host = urlparse(endpoint).netloc
        name = f"{host}/{deployment}" if isinstance(deployment, str) else host
    return Target(
        name=name, provider="azure" if provider == "azure" else "openai", endpoint=endpoint.rstrip("/"), auth=auth,
        api_version=api_version,
        deployment=deployment, weight=weight, override_params=dict(override), headers=dict(headers),
        timeout_s=None if timeout is None else _number(timeout, f"{label}['timeout_s']", strict=True),
    )


def _group(raw: Mapping[str, Any], path: str, azure_client: bool, keys: frozenset[str]) -> Group:
    name = raw.get("name", path)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"routing {path}['name'] must be a non-empty string, got {name!r}")
    label = f"routing group {name!r}" if "name" in raw else f"routing {path}"
    _only(raw, label, keys)
    members_raw = raw.get("targets")
    if not isinstance(members_raw, Sequence) or isinstance(members_raw, str | bytes) or not members_raw:
        raise ConfigError(f"{label}['targets'] must be a non-empty list of targets or groups")
    strategy = raw.get("strategy", "fallback" if len(members_raw) > 1 else "loadbalance")
    if strategy not in STRATEGIES:
        raise ConfigError(f"{label}['strategy'] must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    members: list[Node] = []
    for i, item in enumerate(members_raw):
        where = f"{path}.targets[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"routing {where} must be a mapping, got {type(item).__name__}")
        if "targets" in item or "strategy" in item:
            members.append(_group(item, where, azure_client, _GROUP_KEYS))
        else:
            members.append(_target(item, where, azure_client))
    if strategy == "loadbalance":
        total = sum(m.weight for m in members)
        if not total > 0:
            raise ConfigError(f"{label}: the weights of a loadbalance group must sum to a positive number "
                              f"(got {', '.join(f'{m.name}={m.weight:g}' for m in members)})")
    failover = raw.get("failover", True)
    if not isinstance(failover, bool):
        raise ConfigError(f"{label}['failover'] must be true or false, got {failover!r}")
    return Group(
        name=name, strategy=strategy, members=tuple(members),
        on_status=_statuses(raw["on_status"], f"{label}['on_status']") if "on_status" in raw
        else DEFAULT_FALLBACK_ON_STATUS,
        on_errors=_errors(raw["on_errors"], f"{label}['on_errors']") if "on_errors" in raw
        else frozenset(ERROR_KINDS),
        failover=failover,
        weight=_number(raw.get("weight", 1.0), f"{label}['weight']"),
    )


def _retry(raw: object) -> RetryPolicy:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"routing['retry'] must be a mapping, got {type(raw).__name__}")
    _only(raw, "routing['retry']", _RETRY_KEYS)
    base = RetryPolicy()
    policy = RetryPolicy(
        attempts=_count(raw["attempts"], "routing['retry']['attempts']", 1) if "attempts" in raw else None,
        initial_delay_s=_number(raw.get("initial_delay_s", base.initial_delay_s),
                                "routing['retry']['initial_delay_s']"),
        max_delay_s=_number(raw.get("max_delay_s", base.max_delay_s), "routing['retry']['max_delay_s']"),
        jitter=_number(raw.get("jitter", base.jitter), "routing['retry']['jitter']"),
        on_status=_statuses(raw["on_status"], "routing['retry']['on_status']") if "on_status" in raw
        else base.on_status,
        on_errors=_errors(raw["on_errors"], "routing['retry']['on_errors']") if "on_errors" in raw
        else base.on_errors,
        max_retry_after_s=_number(raw.get("max_retry_after_s", base.max_retry_after_s),
                                  "routing['retry']['max_retry_after_s']"),
        max_elapsed_s=None if raw.get("max_elapsed_s") is None else _number(
            raw["max_elapsed_s"], "routing['retry']['max_elapsed_s']", strict=True),
    )
    if policy.jitter > 1:
        raise ConfigError(f"routing['retry']['jitter'] is a fraction between 0 and 1, got {policy.jitter!r}")
    if policy.max_delay_s < policy.initial_delay_s:
        raise ConfigError("routing['retry']['max_delay_s'] must be >= initial_delay_s")
    return policy


def _breaker(raw: object) -> BreakerPolicy | None:
    if raw is False or raw is None:
        return None
    if raw is True:
        return BreakerPolicy()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"routing['breaker'] must be a mapping or false, got {type(raw).__name__}")
    _only(raw, "routing['breaker']", _BREAKER_KEYS)
    base = BreakerPolicy()
    return BreakerPolicy(
        failures=_count(raw.get("failures", base.failures), "routing['breaker']['failures']", 1),
        cooldown_s=_number(raw.get("cooldown_s", base.cooldown_s), "routing['breaker']['cooldown_s']", strict=True),
        on_status=_statuses(raw["on_status"], "routing['breaker']['on_status']") if "on_status" in raw
        else base.on_status,
        on_errors=_errors(raw["on_errors"], "routing['breaker']['on_errors']") if "on_errors" in raw
        else base.on_errors,
    )


def _cache(raw: object) -> CachePolicy | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        return CachePolicy()
    if isinstance(raw, str):
        raw = {"backend": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"routing['cache'] must be a mapping, a backend name or false, got {type(raw).__name__}")
    _only(raw, "routing['cache']", _CACHE_KEYS)
    backend = raw.get("backend", "memory")
    if not isinstance(backend, str) or not (backend in ("memory", "sqlite") or backend.startswith(
            ("sqlite:///", "redis://", "rediss://"))):
        raise ConfigError(f"routing['cache']['backend'] must be 'memory', 'sqlite', 'sqlite:///PATH' or a "
                          f"redis:// URL, got {backend!r}")
    mode = raw.get("mode", "opt_in")
    if mode not in ("opt_in", "all"):
        raise ConfigError(f"routing['cache']['mode'] must be 'opt_in' or 'all', got {mode!r}")
    return CachePolicy(
        backend=backend,
        ttl_s=_number(raw.get("ttl_s", 3600.0), "routing['cache']['ttl_s']", strict=True),
        max_entries=_count(raw.get("max_entries", 1024), "routing['cache']['max_entries']", 1),
        mode=mode,
    )


def parse_routing(raw: Mapping[str, Any], *, azure_client: bool) -> RoutingConfig:
    """Validate a ``routing`` mapping; the error names the first target and key that are wrong.

    ``azure_client`` says which client it configures: targets without a ``provider`` are Azure on the
    Azure clients and OpenAI on the OpenAI clients (unless they give ``azure_endpoint``).
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"routing must be a mapping, got {type(raw).__name__}")
    _only(raw, "routing", _TOP_KEYS)
    root: Group | None = None
    if "targets" in raw or "strategy" in raw:
        root = _group(raw, "routing", azure_client, _TOP_KEYS)
        names: set[str] = set()
        for target in root.targets():
            if target.name in names:
                raise ConfigError(f"routing target {target.name!r}: two targets have this name; give each a "
                                  "unique 'name'")
            names.add(target.name)
    elif any(k in raw for k in ("on_status", "on_errors", "failover")):
        raise ConfigError("routing: 'on_status' / 'on_errors' / 'failover' need 'targets'")
    return RoutingConfig(
        root=root,
        retry=_retry(raw["retry"]) if "retry" in raw else RetryPolicy(),
        breaker=_breaker(raw["breaker"]) if "breaker" in raw else BreakerPolicy(),
        cache=_cache(raw.get("cache")),
    )
