"""A circuit breaker per target: stop sending to a target that keeps failing, probe it again later."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .config import BreakerPolicy

__all__ = ["BreakerState", "CircuitBreaker"]

logger = logging.getLogger("tokenid")

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class Transition:
    """One change of a breaker's state, kept for health reports."""

    at: float
    state: BreakerState
    reason: str


class CircuitBreaker:
    """Closed → open after ``failures`` failures in a row → half-open after ``cooldown_s`` → one probe.

    In half-open state exactly one caller is let through; its success closes the breaker, its failure
    re-opens it for another cooldown. Thread-safe; shared by every copy of a client (``with_options()``).
    """

    def __init__(self, name: str, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.transitions: list[Transition] = []

    @property
    def state(self) -> BreakerState:
        """The state a caller would see now (an open breaker past its cooldown reads as half-open)."""
        with self._lock:
            if self._state == "open" and self._clock() - self._opened_at >= self.policy.cooldown_s:
                return "half_open"
            return self._state

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when it is not open)."""
        with self._lock:
            if self._state != "open":
                return 0.0
            return max(0.0, self.policy.cooldown_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call be sent now? In half-open state only the first asker (the probe) gets True."""
        with self._lock:
            if self._state == "closed":
                return True
            if self._state == "open":
                if self._clock() - self._opened_at < self.policy.cooldown_s:
                    return False
                self._move("half_open", "cooldown over")
            if self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._probing = False
            if self._state != "closed":
                self._move("closed", "probe succeeded")

    def failure(self, reason: str) -> None:
        with self._lock:
            self._probing = False
            if self._state == "half_open":
                self._opened_at = self._clock()
                self._move("open", f"probe failed: {reason}")
                return
            self._failures += 1
            if self._state == "closed" and self._failures >= self.policy.failures:
                self._opened_at = self._clock()
                self._move("open", f"{self._failures} failures in a row, last: {reason}")

    def release(self) -> None:
        """A let-through call ended neither as a success nor as a counted failure (e.g. a 400)."""
        with self._lock:
            self._probing = False
            if self._state == "half_open":
                self._failures = 0
                self._move("closed", "probe answered")

    def abandon(self) -> None:
        """A let-through call was given up before it ended (cancelled, interrupted): free the probe slot."""
        with self._lock:
            self._probing = False

    def _move(self, state: BreakerState, reason: str) -> None:
        level = logging.WARNING if state == "open" else logging.INFO
        logger.log(level, "tokenid: circuit breaker of routing target %r is %s (%s)", self.name,
                   state.replace("_", "-"), reason)
        self._state = state
        if state == "closed":
            self._failures = 0
        self.transitions.append(Transition(time.time(), state, reason))
        del self.transitions[:-50]
