"""Enforcement rules and their configuration: parsed and validated once, at construction.

Every rule is a small frozen dataclass; :func:`parse_config` turns the user's mapping (or a TOML /
YAML file) into them and raises :class:`~tokenid.errors.ConfigError` naming the exact key for
anything it cannot accept, so a bad rule never fails open at call time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from .counters import Window, parse_window

__all__ = [
    "AccessList",
    "Budget",
    "EnforcementConfig",
    "MaxTokens",
    "ModelCeiling",
    "RateLimit",
    "Route",
    "load_config",
    "parse_config",
]

SCOPES = ("global", "session", "deployment", "model", "endpoint", "tag:<name>", "deployment:<name>", "model:<name>")
_TOP_KEYS = frozenset({"mode", "counters", "reservation_ttl_s", "deployments", "budgets", "model_ceiling", "routes",
                       "rate_limits",
                       "max_tokens", "allow", "deny",
                       "routing"})  # the gateway's targets, validated by tokenid.routing, not here


@dataclass(frozen=True)
class Budget:
    """A spend (USD) or token limit over a scope and a window."""

    name: str
    scope: str
    window: Window
    limit_usd: Decimal | None = None
    limit_tokens: int | None = None
    action: Literal["block", "warn", "downgrade"] = "block"
    downgrade_to: str | None = None

    @property
    def unit(self) -> str:
        return "usd" if self.limit_usd is not None else "tokens"

    @property
    def limit(self) -> int:
        """The limit in counter units: nano-dollars or tokens."""
        if self.limit_usd is not None:
            return int(self.limit_usd * 1_000_000_000)
        return int(self.limit_tokens or 0)


@dataclass(frozen=True)
class ModelCeiling:
    """Models above a ceiling (by name list or by price) are rewritten to ``target`` or blocked."""

    name: str
    max_model: str | None = None
    allowed: frozenset[str] = frozenset()
    action: Literal["rewrite", "block"] = "rewrite"
    target: str | None = None


@dataclass(frozen=True)
class Route:
    """First matching route chooses the deployment / model a call goes to."""

    name: str
    to: str
    model: frozenset[str] = frozenset()
    endpoint: frozenset[str] = frozenset()
    prompt_tokens_over: int | None = None
    max_tokens_over: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    has_tools: bool | None = None
    has_images: bool | None = None


@dataclass(frozen=True)
class RateLimit:
    """Requests and/or tokens per minute over a scope (token bucket)."""

    name: str
    scope: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    action: Literal["block", "wait"] = "block"
    max_wait_s: float = 30.0


@dataclass(frozen=True)
class MaxTokens:
    """Clamp the output-token limit a call asks for (and set one when it asks for none)."""

    limit: int


@dataclass(frozen=True)
class AccessList:
    models: frozenset[str] = frozenset()
    deployments: frozenset[str] = frozenset()
    endpoints: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.models or self.deployments or self.endpoints)


@dataclass(frozen=True)
class EnforcementConfig:
    mode: Literal["enforce", "shadow"] = "enforce"
    counters: str = "sqlite"
    reservation_ttl_s: float = 900.0
    budgets: tuple[Budget, ...] = ()
    ceiling: ModelCeiling | None = None
    routes: tuple[Route, ...] = ()
    rate_limits: tuple[RateLimit, ...] = ()
    max_tokens: MaxTokens | None = None
    allow: AccessList = AccessList()
    deny: AccessList = AccessList()
    deployments: Mapping[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.budgets or self.ceiling or self.routes or self.rate_limits or self.max_tokens
                    or self.allow or self.deny)


# -- parsing ------------------------------------------------------------------------------------------

def _mapping(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping, got {type(value).__name__}")
    return value


def _list(value: object, key: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{key} must be a list, got {type(value).__name__}")
    return value


def _only(m: Mapping[str, Any], key: str, allowed: set[str]) -> None:
    unknown = sorted(set(m) - allowed)
    if unknown:
        raise ConfigError(
            f"{key}: unknown key(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(sorted(allowed))}")


def _str(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _positive_int(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a positive whole number, got {value!r}")
    return value


def _money(value: object, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ConfigError(f"{key} must be an amount in USD, got {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{key} must be an amount in USD, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{key} must be zero or more, got {value!r}")
    return amount


def _names(value: object, key: str) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(_str(v, f"{key}[{i}]") for i, v in enumerate(_list(value, key)))


def _scope(value: object, key: str) -> str:
    scope = _str(value, key)
    base, sep, rest = scope.partition(":")
    if scope in ("global", "session", "deployment", "model", "endpoint") or (
            sep and rest and base in ("tag", "deployment", "model", "session", "endpoint")):
        return scope
    raise ConfigError(f"{key}: unknown scope {scope!r}; accepted: {', '.join(SCOPES)}")


def _action(value: object, key: str, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _budget(raw: object, key: str) -> Budget:
    m = _mapping(raw, key)
    _only(m, key, {"name", "scope", "window", "limit_usd", "limit_tokens", "action", "downgrade_to"})
    if ("limit_usd" in m) == ("limit_tokens" in m):
        raise ConfigError(f"{key} needs exactly one of limit_usd or limit_tokens")
    try:
        window = parse_window(m.get("window", "lifetime"))
    except ConfigError as exc:
        raise ConfigError(f"{key}.window: {exc}") from None
    action = _action(m.get("action", "block"), f"{key}.action", ("block", "warn", "downgrade"))
    downgrade_to = _str(m["downgrade_to"], f"{key}.downgrade_to") if "downgrade_to" in m else None
    if action == "downgrade" and downgrade_to is None:
        raise ConfigError(f"{key}: action 'downgrade' needs downgrade_to (a cheaper deployment or model)")
    return Budget(
        name=_str(m.get("name", key), f"{key}.name"), scope=_scope(m.get("scope", "global"), f"{key}.scope"),
        window=window,
        limit_usd=_money(m["limit_usd"], f"{key}.limit_usd") if "limit_usd" in m else None,
        limit_tokens=_positive_int(m["limit_tokens"], f"{key}.limit_tokens") if "limit_tokens" in m else None,
        action=action, downgrade_to=downgrade_to,
    )


def _ceiling(raw: object, key: str) -> ModelCeiling:
    m = _mapping(raw, key)
    _only(m, key, {"name", "max_model", "allowed", "action", "target"})
    if "max_model" not in m and "allowed" not in m:
        raise ConfigError(f"{key} needs max_model (a price ceiling) or allowed (a list of models)")
    action = _action(m.get("action", "rewrite"), f"{key}.action", ("rewrite", "block"))
    target = _str(m["target"], f"{key}.target") if "target" in m else None
    if action == "rewrite" and target is None:
        raise ConfigError(f"{key}: action 'rewrite' needs target (the deployment or model to use instead)")
    return ModelCeiling(name=_str(m.get("name", key), f"{key}.name"),
                        max_model=_str(m["max_model"], f"{key}.max_model") if "max_model" in m else None,
                        allowed=_names(m.get("allowed", []), f"{key}.allowed"), action=action, target=target)


def _route(raw: object, key: str) -> Route:
    m = _mapping(raw, key)
    _only(m, key, {"name", "when", "to"})
    when = _mapping(m.get("when", {}), f"{key}.when")
    _only(when, f"{key}.when", {"model", "endpoint", "prompt_tokens_over", "max_tokens_over", "tags", "has_tools",
                                "has_images"})
    tags = _mapping(when.get("tags", {}), f"{key}.when.tags")
    for flag in ("has_tools", "has_images"):
        if flag in when and not isinstance(when[flag], bool):
            raise ConfigError(f"{key}.when.{flag} must be true or false, got {when[flag]!r}")
    return Route(
        name=_str(m.get("name", key), f"{key}.name"), to=_str(m.get("to"), f"{key}.to"),
        model=_names(when.get("model", []), f"{key}.when.model"),
        endpoint=_names(when.get("endpoint", []), f"{key}.when.endpoint"),
        prompt_tokens_over=_positive_int(when["prompt_tokens_over"], f"{key}.when.prompt_tokens_over")
        if "prompt_tokens_over" in when else None,
        max_tokens_over=_positive_int(when["max_tokens_over"], f"{key}.when.max_tokens_over")
        if "max_tokens_over" in when else None,
        tags={str(k): str(v) for k, v in tags.items()},
        has_tools=when.get("has_tools"), has_images=when.get("has_images"),
    )


def _rate_limit(raw: object, key: str) -> RateLimit:
    m = _mapping(raw, key)
    _only(m, key, {"name", "scope", "requests_per_minute", "tokens_per_minute", "action", "max_wait_s"})
    if "requests_per_minute" not in m and "tokens_per_minute" not in m:
        raise ConfigError(f"{key} needs requests_per_minute and/or tokens_per_minute")
    wait = m.get("max_wait_s", 30.0)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
        raise ConfigError(f"{key}.max_wait_s must be a number of seconds >= 0, got {wait!r}")
    return RateLimit(
        name=_str(m.get("name", key), f"{key}.name"), scope=_scope(m.get("scope", "global"), f"{key}.scope"),
        requests_per_minute=_positive_int(m["requests_per_minute"], f"{key}.requests_per_minute")
        if "requests_per_minute" in m else None,
        tokens_per_minute=_positive_int(m["tokens_per_minute"], f"{key}.tokens_per_minute")
        if "tokens_per_minute" in m else None,
        action=_action(m.get("action", "block"), f"{key}.action", ("block", "wait")), max_wait_s=float(wait))


def _access(raw: object, key: str) -> AccessList:
    m = _mapping(raw, key)
    _only(m, key, {"models", "deployments", "endpoints"})
    return AccessList(models=_names(m.get("models", []), f"{key}.models"),
                      deployments=_names(m.get("deployments", []), f"{key}.deployments"),
                      endpoints=_names(m.get("endpoints", []), f"{key}.endpoints"))


def load_config(value: object, key: str = "enforcement_config",
                env: str | None = "TOKENID_ENFORCEMENT") -> Mapping[str, Any] | None:
    """A mapping as given, or the mapping in a TOML / YAML / JSON file; None reads the file named by ``env``.

    ``key`` names the argument in errors (``enforcement_config``, ``routing``).
    """
    if value is None:
        value = (os.environ.get(env) if env else None) or None
        if value is None:
            return None
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str | os.PathLike):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"{key}: no file at {path}")
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        try:
            if suffix == ".toml":
                if sys.version_info >= (3, 11):
                    import tomllib
                else:  # Python 3.10: the same parser, from PyPI
                    import tomli as tomllib
                loaded = tomllib.loads(text)
            elif suffix in (".yaml", ".yml"):
                import yaml  # type: ignore[import-untyped]

                loaded = yaml.safe_load(text)
            else:
                import json

                loaded = json.loads(text)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"{key}: reading {suffix} files needs the {exc.name!r} package") from exc
        except ValueError as exc:
            raise ConfigError(f"{key}: {path} is not valid {suffix[1:].upper()}: {exc}") from exc
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{key}: {path} must hold a mapping at the top level")
        return loaded
    raise ConfigError(f"{key} must be a mapping or a file path, got {type(value).__name__}")


def parse_config(raw: Mapping[str, Any]) -> EnforcementConfig:
    """Validate every key of ``enforcement_config``; the error names the first one that is wrong."""
    unknown = sorted(str(k) for k in raw if k not in _TOP_KEYS)
    if unknown:
        raise ConfigError(f"enforcement_config: unknown key(s) {', '.join(map(repr, unknown))}; accepted: "
                          f"{', '.join(sorted(_TOP_KEYS))}")
    mode = raw.get("mode", "enforce")
    if mode not in ("enforce", "shadow"):
        raise ConfigError(f"enforcement_config['mode'] must be 'enforce' or 'shadow', got {mode!r}")
    counters = raw.get("counters", "sqlite")
    if not isinstance(counters, str) or not (counters in ("local", "sqlite") or counters.startswith("redis://")):
        raise ConfigError(
            f"enforcement_config['counters'] must be 'local', 'sqlite' or a redis:// URL, got {counters!r}")
    ttl = raw.get("reservation_ttl_s", 900.0)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
        raise ConfigError(f"enforcement_config['reservation_ttl_s'] must be a number of seconds > 0, got {ttl!r}")
    max_tokens = raw.get("max_tokens")
    if isinstance(max_tokens, Mapping):
        _only(max_tokens, "enforcement_config['max_tokens']", {"limit"})
        max_tokens = max_tokens.get("limit")
    return EnforcementConfig(
        mode=mode, counters=counters, reservation_ttl_s=float(ttl),
        budgets=tuple(_budget(b, f"budgets[{i}]") for i, b in enumerate(_list(raw.get("budgets", []), "budgets"))),
        ceiling=_ceiling(raw["model_ceiling"], "model_ceiling") if raw.get("model_ceiling") else None,
        routes=tuple(_route(r, f"routes[{i}]") for i, r in enumerate(_list(raw.get("routes", []), "routes"))),
        rate_limits=tuple(_rate_limit(r, f"rate_limits[{i}]")
                          for i, r in enumerate(_list(raw.get("rate_limits", []), "rate_limits"))),
        max_tokens=MaxTokens(_positive_int(max_tokens, "max_tokens")) if max_tokens is not None else None,
        allow=_access(raw["allow"], "allow") if raw.get("allow") else AccessList(),
        deny=_access(raw["deny"], "deny") if raw.get("deny") else AccessList(),
        deployments=_mapping(raw.get("deployments", {}), "deployments"),
    )
