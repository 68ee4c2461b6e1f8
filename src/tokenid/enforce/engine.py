"""The enforcer: decides, before a call is sent, whether it may go and where; settles budgets after.

Order of evaluation: allow/deny lists, routes, model ceiling, max-tokens clamp, rate limits, then
budget reservations (the only step that touches shared counters). Every step appends an action to
the decision, which the journal stores on the call's event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

from ..errors import BudgetExceeded, ConfigError, EnforcementError, ModelNotAllowed, RateLimitExceeded
from ..pricing import DeploymentSpec, Pricer
from ..usage import Usage
from .counters import Counters, Reservation
from .rules import Budget, EnforcementConfig, RateLimit, Route

__all__ = ["CallSpec", "Decision", "Enforcer"]

log = logging.getLogger("tokenid.enforce")

_OUTPUT_PARAMS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
DEFAULT_OUTPUT_LIMIT = 16_384  # worst case when a call sets no output limit and the model's is unknown
_PER_MILLION = Decimal(1_000_000)


@dataclass(slots=True)
class CallSpec:
    """What the enforcer sees of a call before it is sent."""

    provider: str
    endpoint: str
    model: str | None  # the request's `model`: a deployment name on Azure
    session_id: str | None
    tags: Mapping[str, str]
    body: Mapping[str, Any] | None
    deployment: str | None = None  # set when the client is bound to one Azure deployment


@dataclass(slots=True)
class Decision:
    """What to change in the request, what was done (journaled), and which budget holds to settle."""

    model: str | None = None
    output_param: tuple[str, int] | None = None
    wait_s: float = 0.0
    actions: list[dict[str, Any]] = field(default_factory=list)
    holds: list[tuple[Budget, Reservation | None, str]] = field(default_factory=list)
    estimate: int = 0  # worst-case tokens used for reservations

    def act(self, rule: str, kind: str, action: str, reason: str, *, shadow: bool, **extra: Any) -> None:
        entry = {"rule": rule, "type": kind, "action": action, "reason": reason, **extra}
        if shadow:
            entry["shadow"] = True
        if shadow:
            log.warning("tokenid: %s %r would %s this call: %s", kind, rule, action, reason)
        elif action == "warn":
            log.warning("tokenid: %s %r: %s (call allowed)", kind, rule, reason)
        self.actions.append(entry)


class _Bucket:
    __slots__ = ("level", "updated")

    def __init__(self, capacity: float) -> None:
        self.level = capacity
        self.updated = time.monotonic()


class Enforcer:
    """Applies one client's enforcement rules. Construct once; ``decide`` costs microseconds."""

    def __init__(self, config: EnforcementConfig, *, pricer: Pricer, azure: bool,
                 deployments: Mapping[str, DeploymentSpec], counters: Counters) -> None:
        self.config = config
        self.pricer = pricer
        self.azure = azure
        self.deployments = dict(deployments)
        self.counters = counters
        self.shadow = config.mode == "shadow"
        self._buckets: dict[str, _Bucket] = {}
        self._bucket_lock = threading.Lock()
        self._price_cache: dict[str, Decimal | None] = {}
        self._rates: dict[str, tuple[int | None, int | None]] = {}
        self._validate_targets()
        self._ceiling_price = (self._unit_price(config.ceiling.max_model)
                               if config.ceiling is not None and config.ceiling.max_model else None)
        if config.ceiling is not None and config.ceiling.max_model and self._ceiling_price is None:
            raise ConfigError(f"model_ceiling.max_model: no price known for {config.ceiling.max_model!r}")

    def _validate_targets(self) -> None:
        """On Azure every rewrite target must be a deployment of this client: a rewrite to nothing never ships."""
        targets: list[tuple[str, str]] = []
        if self.config.ceiling is not None and self.config.ceiling.target:
            targets.append(("model_ceiling.target", self.config.ceiling.target))
        targets += [(f"routes[{i}].to", r.to) for i, r in enumerate(self.config.routes)]
        targets += [(f"budgets[{i}].downgrade_to", b.downgrade_to) for i, b in enumerate(self.config.budgets)
                    if b.downgrade_to]
        for key, target in targets:
            if self.azure and target not in self.deployments:
                known = ", ".join(sorted(self.deployments)) or "none: pass deployments={...}"
                raise ConfigError(f"{key}: {target!r} is not a deployment of this client (known deployments: {known})")
            if not self.azure and self._unit_price(target) is None:
                raise ConfigError(f"{key}: {target!r} is not a model with a known price")

    # -- helpers ------------------------------------------------------------------------------------
    def _canonical(self, name: str | None) -> str | None:
        if name is None:
            return None
        spec = self.deployments.get(name)
        return spec.model if spec is not None else name

    def _unit_price(self, name: str | None) -> Decimal | None:
        """Input + output list price per million tokens of a model or deployment (cached)."""
        if name is None:
            return None
        if name not in self._price_cache:
            result = self.pricer.price(
                provider="azure_openai" if self.azure else "openai",
                usage=Usage(input_tokens=1_000_000, output_tokens=1_000_000), model_served=None,
                model_requested=name, deployment=name if self.azure else None)
            self._price_cache[name] = result.cost_usd
        return self._price_cache[name]

    def _cost_nanos(self, name: str | None, tokens_in: int, tokens_out: int) -> int | None:
        """Worst-case cost in nano-dollars: per-token rates rounded up, so a reservation never falls short."""
        rates = self._rates.get(name or "")
        if rates is None:
            per_token = []
            for usage in (Usage(input_tokens=1_000_000), Usage(output_tokens=1_000_000)):
                result = self.pricer.price(
                    provider="azure_openai" if self.azure else "openai", usage=usage, model_served=None,
                    model_requested=name, deployment=name if self.azure else None)
                per_token.append(None if result.cost_usd is None else
                                 int((result.cost_usd * 1000).to_integral_value(ROUND_CEILING)))  # $/M -> n$/token
            rates = self._rates[name or ""] = (per_token[0], per_token[1])
        if rates[0] is None or rates[1] is None:
            return None
        return tokens_in * rates[0] + tokens_out * rates[1]

    @staticmethod
    def _output_limit(body: Mapping[str, Any] | None) -> tuple[str | None, int | None]:
        if body:
            for param in _OUTPUT_PARAMS:
                value = body.get(param)
                if isinstance(value, int) and not isinstance(value, bool):
                    return param, value
        return None, None

    @staticmethod
    def _prompt_bound(body: Mapping[str, Any] | None) -> int:
        """A cheap upper bound of prompt tokens: characters of text (a token is at least one character)."""
        if not body:
            return 0
        total = 0
        stack: list[Any] = [body.get(k) for k in ("messages", "input", "prompt", "instructions") if k in body]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                total += len(item)
            elif isinstance(item, Mapping):
                total += 4
                stack.extend(v for k, v in item.items() if k in ("content", "text", "name", "arguments", "input"))
            elif isinstance(item, list | tuple):
                stack.extend(item)
        return total + 3

    def _scope_key(self, scope: str, spec: CallSpec, model: str | None) -> str | None:
        """The counter key a rule's scope gives this call; None when the rule does not apply to it."""
        if scope == "global":
            return "global"
        kind, _, value = scope.partition(":")
        if kind == "tag":
            tag = spec.tags.get(value)
            return None if tag is None else f"tag:{value}={tag}"
        if kind == "session":
            current = spec.session_id or "(none)"
            return None if value and value != current else f"session:{current}"
        if kind == "deployment":
            current = spec.deployment or (model if self.azure else None) or "(none)"
            return None if value and value != current else f"deployment:{current}"
        if kind == "model":
            current = self._canonical(model) or "(none)"
            return None if value and value != current else f"model:{current}"
        if kind == "endpoint":
            return None if value and value != spec.endpoint else f"endpoint:{spec.endpoint}"
        return None

    # -- the decision --------------------------------------------------------------------------------
    def decide(self, spec: CallSpec) -> Decision:
        """Run every rule; raise an :class:`EnforcementError` to block (never in shadow mode)."""
        d = Decision()
        cfg = self.config
        shadow = self.shadow
        model = spec.model
        self._access(spec, model, d)
        for route in cfg.routes:
            if self._matches(route, spec, model):
                if model != route.to:
                    d.act(route.name, "route", "rewrite", "route matched", shadow=shadow,
                          **{"from": model, "to": route.to})
                    if not shadow:
                        model = route.to
                break
        model = self._ceiling(model, d)
        param, asked = self._output_limit(spec.body)
        if cfg.max_tokens is not None and (asked is None or asked > cfg.max_tokens.limit):
            limit = cfg.max_tokens.limit
            name = param or self._default_output_param(spec.endpoint, model)
            d.act("max_tokens", "max_tokens", "clamp", f"output limit {asked} above {limit}" if asked else
                  f"no output limit set; {limit} applied", shadow=shadow, **{"from": asked, "to": limit})
            if not shadow:
                d.output_param = (name, limit)
                asked = limit
        prompt = self._prompt_bound(spec.body)
        d.estimate = prompt + (asked if asked is not None else DEFAULT_OUTPUT_LIMIT)
        for limit_rule in cfg.rate_limits:
            self._rate_limit(limit_rule, spec, model, d)
        if cfg.budgets:
            model = self._budgets(spec, model, prompt, asked, d)
        if model != spec.model:
            d.model = model
        return d

    def _access(self, spec: CallSpec, model: str | None, d: Decision) -> None:
        cfg = self.config
        canonical = self._canonical(model)
        names = {n for n in (model, canonical) if n}
        deployment = spec.deployment or (model if self.azure else None)
        reason = None
        if cfg.deny and (names & cfg.deny.models or (deployment in cfg.deny.deployments)
                         or spec.endpoint in cfg.deny.endpoints):
            reason = "denied by the deny list"
        elif cfg.allow and not (
                (not cfg.allow.models or names & cfg.allow.models)
                and (not cfg.allow.deployments or deployment in cfg.allow.deployments)
                and (not cfg.allow.endpoints or spec.endpoint in cfg.allow.endpoints)):
            reason = "not on the allow list"
        if reason is not None:
            message = (f"TokenID rule 'allow/deny' blocked {spec.endpoint} on {model or '(no model)'}: {reason} "
                       f"(scope: model/deployment/endpoint)")
            d.act("allow/deny", "access", "block", reason, shadow=self.shadow, model=model)
            if not self.shadow:
                raise _blocked(ModelNotAllowed(message), d)

    def _matches(self, route: Route, spec: CallSpec, model: str | None) -> bool:
        body = spec.body or {}
        if route.model and not ({model, self._canonical(model)} & route.model):
            return False
        if route.endpoint and spec.endpoint not in route.endpoint:
            return False
        if any(spec.tags.get(k) != v for k, v in route.tags.items()):
            return False
        if route.max_tokens_over is not None:
            _, asked = self._output_limit(body)
            if asked is None or asked <= route.max_tokens_over:
                return False
        if route.has_tools is not None and bool(body.get("tools") or body.get("functions")) != route.has_tools:
            return False
        if route.has_images is not None and _has_images(body) != route.has_images:
            return False
        if route.prompt_tokens_over is not None:
            from .. import tokens

            if self._prompt_bound(body) <= route.prompt_tokens_over:  # cheap bound first: exact only if needed
                return False
            if tokens.count_input_tokens(body, self._canonical(model)) <= route.prompt_tokens_over:
                return False
        return True

    def _ceiling(self, model: str | None, d: Decision) -> str | None:
        ceiling = self.config.ceiling
        if ceiling is None or model is None:
            return model
        above = False
        if ceiling.allowed:
            above = not ({model, self._canonical(model)} & ceiling.allowed)
        if not above and self._ceiling_price is not None:
            price = self._unit_price(model)
            above = price is None or price > self._ceiling_price
        if not above:
            return model
        reason = f"{model} is above the ceiling ({ceiling.max_model or 'allowed list'})"
        if ceiling.action == "block":
            d.act(ceiling.name, "model_ceiling", "block", reason, shadow=self.shadow, model=model)
            if not self.shadow:
                raise _blocked(ModelNotAllowed(
                    f"TokenID rule {ceiling.name!r} blocked {model}: above the model ceiling "
                    f"{ceiling.max_model or sorted(ceiling.allowed)} (scope: model)"), d)
            return model
        d.act(ceiling.name, "model_ceiling", "rewrite", reason, shadow=self.shadow,
              **{"from": model, "to": ceiling.target})
        return model if self.shadow else ceiling.target

    def _default_output_param(self, endpoint: str, model: str | None) -> str:
        if endpoint == "responses":
            return "max_output_tokens"
        canonical = self._canonical(model) or ""
        if endpoint == "chat.completions" and canonical.startswith(_REASONING_PREFIXES):
            return "max_completion_tokens"
        return "max_tokens"

    def _rate_limit(self, rule: RateLimit, spec: CallSpec, model: str | None, d: Decision) -> None:
        scope = self._scope_key(rule.scope, spec, model)
        if scope is None:
            return
        waits: list[float] = []
        with self._bucket_lock:
            for per_minute, cost, unit in ((rule.requests_per_minute, 1, "requests"),
                                           (rule.tokens_per_minute, d.estimate, "tokens")):
                if per_minute is None:
                    continue
                bucket = self._buckets.setdefault(f"{rule.name}|{unit}|{scope}", _Bucket(per_minute))
                now = time.monotonic()
                bucket.level = min(per_minute, bucket.level + (now - bucket.updated) * per_minute / 60)
                bucket.updated = now
                deficit = cost - bucket.level
                wait = max(0.0, deficit * 60 / per_minute)
                if wait > 0 and (rule.action == "block" or wait > rule.max_wait_s) and not self.shadow:
                    d.act(rule.name, "rate_limit", "block", f"{unit} per minute exhausted", shadow=False, scope=scope)
                    raise _blocked(RateLimitExceeded(
                        f"TokenID rule {rule.name!r} blocked the call: scope {scope}, limit {per_minute} {unit}/min, "
                        f"{max(0, int(bucket.level))} left, this call needs {cost}"), d)
                if wait > 0:
                    d.act(rule.name, "rate_limit", "wait", f"{unit} per minute exhausted", shadow=self.shadow,
                          scope=scope, wait_s=round(wait, 3))
                if not self.shadow:
                    bucket.level -= cost
                waits.append(wait)
        if waits and not self.shadow:
            d.wait_s = max(d.wait_s, *waits)

    def _budgets(self, spec: CallSpec, model: str | None, prompt: int, asked: int | None, d: Decision) -> str | None:
        output = asked if asked is not None else DEFAULT_OUTPUT_LIMIT
        downgraded = False
        for budget in self.config.budgets:
            scope = self._scope_key(budget.scope, spec, model)
            if scope is None:
                continue
            key = f"{budget.name}|{scope}"
            amount = self._worst_case(budget, model, prompt, output)
            if amount is None:
                d.act(budget.name, "budget", "warn", f"cannot price {model}: budget not checked", shadow=self.shadow,
                      scope=scope)
                continue
            if budget.window.kind == "call":
                ok, current = amount <= budget.limit, amount
                reservation = None
            elif self.shadow or budget.action == "warn":
                spent, reserved = self.counters.usage(key, budget.window)
                ok, current, reservation = spent + reserved + amount <= budget.limit, spent + reserved, None
            else:
                reservation, current = self.counters.reserve(key, budget.window, amount, budget.limit)
                ok = reservation is not None
            if ok:
                d.holds.append((budget, reservation, key))
                continue
            reason = (f"limit {_fmt(budget, budget.limit)}, current {_fmt(budget, current)}, "
                      f"this call up to {_fmt(budget, amount)}")
            if budget.action == "warn" or self.shadow:
                d.act(budget.name, "budget", "warn" if budget.action == "warn" else budget.action, reason,
                      shadow=self.shadow, scope=scope)
                d.holds.append((budget, None, key))
                continue
            if budget.action == "downgrade" and not downgraded and budget.downgrade_to:
                d.act(budget.name, "budget", "downgrade", reason, shadow=False, scope=scope,
                      **{"from": model, "to": budget.downgrade_to})
                model = budget.downgrade_to
                downgraded = True
                new_scope = self._scope_key(budget.scope, spec, model)
                if new_scope != scope:  # the cheaper target is outside this budget's scope (e.g. deployment:X)
                    continue
                cheaper = self._worst_case(budget, model, prompt, output)
                if cheaper is not None and budget.window.kind != "call":
                    reservation, current = self.counters.reserve(key, budget.window, cheaper, budget.limit)
                    if reservation is not None:
                        d.holds.append((budget, reservation, key))
                        continue
                elif cheaper is not None and cheaper <= budget.limit:
                    d.holds.append((budget, None, key))
                    continue
            d.act(budget.name, "budget", "block", reason, shadow=False, scope=scope)
            self.release(d)
            unit = "" if budget.unit == "usd" else " tokens"
            raise _blocked(BudgetExceeded(
                f"TokenID budget {budget.name!r} blocked the call: scope {scope}, window {budget.window.kind}, "
                f"limit {_fmt(budget, budget.limit)}{unit}, spent+reserved {_fmt(budget, current)}, "
                f"this call could cost up to {_fmt(budget, amount)}"), d)
        return model

    def _worst_case(self, budget: Budget, model: str | None, prompt: int, output: int) -> int | None:
        if budget.unit == "tokens":
            return prompt + output
        return self._cost_nanos(model, prompt, output)

    # -- after the call ------------------------------------------------------------------------------
    def settle(self, d: Decision, *, tokens: int | None, cost_usd: Decimal | None, failed: bool) -> None:
        """Turn reservations into what the call really used (0 for a failed call; the reservation when unpriced)."""
        for budget, reservation, key in d.holds:
            if budget.window.kind == "call":
                continue
            if budget.unit == "tokens":
                actual = 0 if failed else tokens
            else:
                actual = 0 if failed else (None if cost_usd is None else int(cost_usd * 1_000_000_000))
            if reservation is not None:
                self.counters.settle(reservation, reservation.amount if actual is None else actual)
            elif actual:
                self.counters.add(key, budget.window, actual)
        d.holds = []

    def release(self, d: Decision) -> None:
        """Give back every reservation of a call that will not be sent."""
        for _, reservation, _ in d.holds:
            if reservation is not None:
                self.counters.settle(reservation, 0)
        d.holds = []


def _fmt(budget: Budget, amount: int) -> str:
    if budget.unit == "usd":
        return f"${Decimal(amount) / 1_000_000_000:.6f}".rstrip("0").rstrip(".")
    return f"{amount:,}"


def _has_images(body: Mapping[str, Any]) -> bool:
    for message in body.get("messages") or body.get("input") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(
                isinstance(p, Mapping) and p.get("type") in ("image_url", "input_image") for p in content):
            return True
    return False


def _blocked(error: EnforcementError, d: Decision) -> EnforcementError:
    error.decision = d  # type: ignore[attr-defined]
    return error
