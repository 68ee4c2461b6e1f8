"""Where one call goes: the walk over targets (loadbalance, fallback, retries, breakers), as plain steps.

The walk is a generator that yields :class:`Send` (send to this target) and :class:`Wait` (sleep this
long) and is told each send's outcome, so one piece of logic drives both the sync and the async
clients: their drivers only send and sleep. Every step is written to a :class:`RouteLog`, which becomes
the event's ``route``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from ..errors import NoHealthyTarget
from .breaker import CircuitBreaker
from .cache import Cache, CachedResponse, open_cache
from .config import Group, Node, RetryPolicy, RoutingConfig, Target
from .retry import backoff, failure_status, matches, server_wait

__all__ = ["STATELESS_ENDPOINTS", "RouteLog", "Router", "Send", "Steps", "Wait", "is_stateless"]

# endpoints whose answer does not depend on objects stored in one resource: any target may serve them
STATELESS_ENDPOINTS = frozenset({
    "chat.completions", "completions", "embeddings", "responses", "moderations", "images.generate", "images.edit",
    "images.variation", "audio.speech", "audio.transcriptions", "audio.translations",
})
_STATEFUL_KEYS = ("previous_response_id", "conversation")


def is_stateless(method: str, endpoint: str, body: Mapping[str, Any] | None) -> bool:
    """May this call go to any target? Files, batches, fine-tuning, vector stores, reads of stored objects and
    Responses that continue a stored one (``previous_response_id``) are pinned to the first target."""
    if method.lower() != "post" or endpoint not in STATELESS_ENDPOINTS:
        return False
    return not (endpoint == "responses" and body is not None and any(body.get(k) for k in _STATEFUL_KEYS))

logger = logging.getLogger("tokenid")


@dataclass(frozen=True, slots=True)
class Send:
    """Send the call to ``target``; the driver answers with None (success) or the exception raised."""

    target: Target


@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep ``seconds`` before the next send (a retry's backoff or the server's ``retry-after``)."""

    seconds: float


Steps = Generator[Send | Wait, BaseException | None, None]


def _describe(exc: BaseException) -> str:
    status = failure_status(exc)
    if status is not None:
        return f"status {status}"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    return type(exc).__name__


class RouteLog:
    """What the walk did, in order: each send with its outcome, each wait, each fallback and why."""

    __slots__ = ("attempts", "fallbacks", "served_by", "strategy", "t0")

    def __init__(self, strategy: str) -> None:
        self.strategy = strategy
        self.attempts: list[dict[str, Any]] = []
        self.fallbacks: list[dict[str, str]] = []
        self.served_by: str | None = None
        self.t0 = time.perf_counter()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"strategy": self.strategy, "served_by": self.served_by, "attempts": self.attempts}
        if self.fallbacks:
            out["fallbacks"] = self.fallbacks
        return out


class Router:
    """A client's routing: the validated config, one breaker per target, the cache, a random source.

    Shared by every copy of the client, so ``with_options()`` copies see the same breaker states.
    """

    def __init__(self, config: RoutingConfig, *, journal_path: Path | None = None,
                 rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        policy = config.breaker
        self.breakers: dict[str, CircuitBreaker] = {}
        if policy is not None:
            self.breakers = {t.name: CircuitBreaker(t.name, policy) for t in config.targets()}
        self.cache: Cache | None = open_cache(config.cache, journal_path) if config.cache is not None else None

    @property
    def root(self) -> Group | None:
        return self.config.root

    def health(self) -> list[dict[str, Any]]:
        """Each target's breaker state now, with its last transitions (for logs and the CLI)."""
        out = []
        for target in self.config.targets():
            breaker = self.breakers.get(target.name)
            out.append({"target": target.name, "state": breaker.state if breaker else "disabled",
                        "retry_in_s": round(breaker.retry_in(), 3) if breaker else 0.0,
                        "transitions": [(t.at, t.state, t.reason) for t in breaker.transitions] if breaker else []})
        return out

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def lookup(self, key: str) -> CachedResponse | None:
        """The cached answer for ``key``, or None (also when the cache store fails: it is logged, never raised)."""
        if self.cache is None:
            return None
        try:
            return self.cache.get(key)
        except Exception as exc:
            logger.warning("tokenid: response cache lookup failed (%s: %s); calling the service",
                        type(exc).__name__, exc)
            return None

    def store(self, key: str, status: int | None, headers: Mapping[str, str] | None, body: bytes | None,
              content_type: str) -> bool:
        """Keep a complete, successful JSON answer for the policy's TTL; False when it is not kept."""
        policy = self.config.cache
        if self.cache is None or policy is None or status != 200 or body is None or "json" not in content_type:
            return False
        try:
            self.cache.put(key, CachedResponse.of(200, headers or {}, body), policy.ttl_s)
            return True
        except Exception as exc:
            logger.warning("tokenid: response cache store failed (%s: %s)", type(exc).__name__, exc)
            return False

    # -- the walk -------------------------------------------------------------------------------
    def steps(self, log: RouteLog, attempts: int) -> Steps:
        """The walk over the whole config for one call; ``attempts`` sends per target at most."""
        assert self.root is not None
        yield from self._group(self.root, log, attempts)

    def pinned_steps(self, log: RouteLog, attempts: int) -> Steps:
        """The walk for a call that only makes sense on one resource: the first target, retried, never moved."""
        yield from self._target(self.config.targets()[0], log, attempts)

    def _order(self, group: Group) -> list[Node]:
        """Fallback: as listed. Loadbalance: a weighted random order (weight 0 members only as a last resort).

        Each member's key is ``u ** (1 / weight)`` (Efraimidis-Spirakis): sorting by it descending picks the
        first member with probability weight / total, and the rest in the same way.
        """
        members = list(group.members)
        if group.strategy == "fallback":
            return members
        with self._rng_lock:
            keys = [self.rng.random() ** (1.0 / m.weight) if m.weight > 0 else -1.0 for m in members]
        ranked = [members[i] for i in sorted(range(len(members)), key=keys.__getitem__, reverse=True)]
        open_last = [m for m in ranked if not self._open(m)] + [m for m in ranked if self._open(m)]
        return open_last if group.failover else open_last[:1]

    def _open(self, node: Node) -> bool:
        """Is every target below ``node`` behind an open breaker (so a loadbalance pick should avoid it)?"""
        targets = node.targets() if isinstance(node, Group) else [node]
        return all(self.breakers.get(t.name) is not None and self.breakers[t.name].state == "open"
                   for t in targets)

    def _group(self, group: Group, log: RouteLog, attempts: int) -> Steps:
        last: BaseException | None = None
        for index, member in enumerate(order := self._order(group)):
            try:
                if isinstance(member, Group):
                    yield from self._group(member, log, attempts)
                else:
                    yield from self._target(member, log, attempts)
                return
            except NoHealthyTarget:
                reason = "circuit breaker open"
            except Exception as exc:
                if not (group.failover and matches(exc, group.on_status, group.on_errors)):
                    raise
                last = exc
                reason = _describe(exc)
                if index + 1 < len(order) and self._out_of_time(log, 0.0):
                    log.fallbacks.append({"group": group.name, "from": member.name, "to": order[index + 1].name,
                                          "reason": reason, "not_taken": "max_elapsed_s reached"})
                    raise
            if index + 1 < len(order):
                log.fallbacks.append({"group": group.name, "from": member.name, "to": order[index + 1].name,
                                      "reason": reason})
                logger.info("tokenid: routing group %r: %s -> %s (%s)", group.name, member.name,
                            order[index + 1].name, reason)
        if last is not None:
            raise last
        names = [t.name for t in group.targets()]
        waits = [self.breakers[n].retry_in() for n in names if n in self.breakers]
        when = f"; the first may be probed in {min(waits):.1f}s" if waits else ""
        raise NoHealthyTarget(f"routing group {group.name!r}: every target's circuit breaker is open "
                              f"({', '.join(names)}){when}")

    def _target(self, target: Target, log: RouteLog, attempts: int) -> Steps:
        breaker = self.breakers.get(target.name)
        policy = self.config.retry
        failed: BaseException | None = None
        for n in range(attempts):
            if breaker is not None and not breaker.allow():
                log.attempts.append({"target": target.name, "skipped": "breaker open",
                                     "at_ms": _ms(log.t0)})
                if failed is not None:  # opened by other calls while this one waited to retry
                    raise failed
                raise NoHealthyTarget(f"routing target {target.name!r}: circuit breaker open, next probe in "
                                      f"{breaker.retry_in():.1f}s")
            entry: dict[str, Any] = {"target": target.name, "at_ms": _ms(log.t0)}
            log.attempts.append(entry)
            started = time.perf_counter()
            try:
                outcome = yield Send(target)
            except GeneratorExit:  # the caller gave up mid-send (cancelled): a half-open probe must not stay taken
                if breaker is not None:
                    breaker.abandon()
                entry["outcome"] = "abandoned"
                raise
            entry["ms"] = round((time.perf_counter() - started) * 1000, 3)
            if outcome is None:
                entry["outcome"] = "ok"
                if breaker is not None:
                    breaker.success()
                    entry["breaker"] = "closed"
                log.served_by = target.name
                return
            exc = failed = outcome
            entry["outcome"] = _describe(exc)
            entry["error"] = type(exc).__name__
            if breaker is not None:
                if matches(exc, breaker.policy.on_status, breaker.policy.on_errors):
                    breaker.failure(_describe(exc))
                else:
                    breaker.release()
                entry["breaker"] = breaker.state
            if n + 1 >= attempts or not _retryable(exc, policy):
                raise exc
            if breaker is not None and breaker.state == "open":
                entry["next"] = "not retried: circuit breaker opened"
                raise exc
            wait = self._wait(exc, policy, n)
            entry["wait_s"], entry["wait_from"] = round(wait[0], 3), wait[1]
            if wait[0] > policy.max_retry_after_s:
                entry["next"] = f"not retried: {wait[1]} asks {wait[0]:.1f}s > max_retry_after_s"
                raise exc
            if self._out_of_time(log, wait[0]):
                entry["next"] = "not retried: max_elapsed_s reached"
                raise exc
            yield Wait(wait[0])

    def _out_of_time(self, log: RouteLog, wait_s: float) -> bool:
        """Would a new send (after ``wait_s``) start past the call's ``max_elapsed_s``?"""
        limit = self.config.retry.max_elapsed_s
        return limit is not None and time.perf_counter() - log.t0 + wait_s >= limit

    def _wait(self, exc: BaseException, policy: RetryPolicy, retry: int) -> tuple[float, str]:
        headers = exc.response.headers if isinstance(exc, openai.APIStatusError) else None
        asked = server_wait(headers)
        if asked is not None:
            return asked
        with self._rng_lock:
            return backoff(policy, retry, self.rng), "backoff"


def _retryable(exc: BaseException, policy: RetryPolicy) -> bool:
    if isinstance(exc, openai.APIStatusError):
        should = exc.response.headers.get("x-should-retry")
        if should in ("true", "false"):
            return should == "true"
    return matches(exc, policy.on_status, policy.on_errors)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)
