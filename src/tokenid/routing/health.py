"""Each target's health as the journal saw it: sends, failures, fallbacks, latency, last breaker state.

Breakers live in the memory of each process; every routed event records what its sends met (the
outcome and the breaker state after it), so any process — the CLI included — can read health back from
the journal without a shared store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

__all__ = ["TargetHealth", "target_health"]


@dataclass
class TargetHealth:
    """What the journal says about one target over a window."""

    target: str
    sends: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0  # calls that passed it by because its breaker was open
    served: int = 0
    fallbacks_from: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # outcome -> count
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    last_failure: str | None = None
    last_failure_at: str | None = None
    breaker: str | None = None  # the state after its latest send, or "open" when last skipped
    last_seen_at: str | None = None

    @property
    def success_rate(self) -> float | None:
        return self.ok / self.sends if self.sends else None

    @property
    def p50_ms(self) -> float | None:
        return round(median(self.latencies_ms), 1) if self.latencies_ms else None

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "sends": self.sends, "ok": self.ok, "failed": self.failed,
                "skipped": self.skipped, "served": self.served, "fallbacks_from": self.fallbacks_from,
                "success_rate": self.success_rate, "p50_ms": self.p50_ms, "failures": self.failures,
                "last_failure": self.last_failure, "last_failure_at": self.last_failure_at,
                "breaker": self.breaker, "last_seen_at": self.last_seen_at}


def _at(started_at: str, offset_ms: object) -> str:
    try:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
        offset = float(offset_ms) if isinstance(offset_ms, int | float) else 0.0
        return (start + timedelta(milliseconds=offset)).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (ValueError, AttributeError):
        return started_at


def target_health(events: Iterable[Mapping[str, Any]], targets: Iterable[str] = ()) -> list[TargetHealth]:
    """Fold routed events (oldest first) into one :class:`TargetHealth` per target; ``targets`` are listed too."""
    out: dict[str, TargetHealth] = {name: TargetHealth(name) for name in targets}
    for event in events:
        route = event.get("route")
        if not isinstance(route, Mapping) or not isinstance(route.get("attempts"), list):
            continue
        started = str(event.get("started_at") or "")
        for attempt in route["attempts"]:
            if not isinstance(attempt, Mapping) or not isinstance(attempt.get("target"), str):
                continue
            health = out.setdefault(attempt["target"], TargetHealth(attempt["target"]))
            at = _at(started, attempt.get("at_ms"))
            health.last_seen_at = at
            if attempt.get("skipped"):
                health.skipped += 1
                health.breaker = "open"
                continue
            health.sends += 1
            if isinstance(attempt.get("ms"), int | float):
                health.latencies_ms.append(float(attempt["ms"]))
            outcome = str(attempt.get("outcome", "?"))
            if outcome == "ok":
                health.ok += 1
            else:
                health.failed += 1
                health.failures[outcome] = health.failures.get(outcome, 0) + 1
                health.last_failure, health.last_failure_at = outcome, at
            if isinstance(attempt.get("breaker"), str):
                health.breaker = attempt["breaker"]
        served = route.get("served_by")
        if isinstance(served, str) and served in out:
            out[served].served += 1
        for fallback in route.get("fallbacks") or ():
            if not isinstance(fallback, Mapping) or fallback.get("not_taken"):
                continue
            source = fallback.get("from")
            if isinstance(source, str) and source in out:
                out[source].fallbacks_from += 1
    return list(out.values())
