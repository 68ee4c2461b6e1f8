"""Query-string parsing for the dashboard API: every parameter is checked here and turned into typed values.

Anything unknown or malformed raises :class:`~tokenid.errors.QueryError` (an HTTP 400 with its message),
so the query layer only ever sees valid, bounded values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

from ..errors import QueryError

__all__ = [
    "BUCKETS",
    "FILTER_PARAMS",
    "GROUPS",
    "Filters",
    "Query",
    "hour_floor",
    "valid_tag_key",
]

UTC: Final = timezone.utc
FILTER_PARAMS: Final[tuple[str, ...]] = ("session", "tag", "provider", "deployment", "model", "status")
RANGE_PARAMS: Final[tuple[str, ...]] = ("from", "to", "range")
# accepted on every endpoint: output format, and the access token (consumed by the auth layer)
COMMON_PARAMS: Final[tuple[str, ...]] = ("format", "token")
PRESETS: Final[dict[str, timedelta]] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24),
                                        "7d": timedelta(days=7), "30d": timedelta(days=30),
                                        "90d": timedelta(days=90), "365d": timedelta(days=365)}
GROUPS: Final[tuple[str, ...]] = ("model", "deployment", "provider", "status", "session")
BUCKETS: Final[dict[str, int]] = {"hour": 13, "day": 10, "month": 7}  # prefix length of an ISO timestamp
MAX_SPAN: Final = timedelta(days=3660)
MAX_BUCKETS: Final = 2500
STATUSES: Final[tuple[str, ...]] = ("ok", "error", "blocked", "aborted")
_TAG_KEY = re.compile(r"[A-Za-z0-9_.\-:/ ]{1,64}")
_MAX_TEXT = 200


def valid_tag_key(key: str) -> bool:
    """Tag keys the API accepts: letters, digits and ``_.-:/`` and spaces (never quotes: they go in a JSON path)."""
    return bool(_TAG_KEY.fullmatch(key))


def hour_floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _hour_ceil(at: datetime) -> datetime:
    floor = hour_floor(at)
    return floor if floor == at else floor + timedelta(hours=1)


def iso_hour(at: datetime) -> str:
    """The rollups' hour key (and a prefix every ISO ``started_at`` in that hour compares above)."""
    return at.strftime("%Y-%m-%dT%H")


@dataclass(frozen=True)
class Filters:
    """A time range (whole UTC hours: the rollups' grain) and at most one value per filter."""

    since: datetime
    until: datetime
    session: str | None = None
    tag: tuple[str, str] | None = None
    provider: str | None = None
    deployment: str | None = None
    model: str | None = None
    status: str | None = None

    @property
    def since_key(self) -> str:
        return iso_hour(self.since)

    @property
    def until_key(self) -> str:
        return iso_hour(self.until)

    def dims(self) -> dict[str, str]:
        """The dimension filters that are set (rollup column -> value)."""
        out = {"provider": self.provider, "deployment": self.deployment, "model": self.model, "status": self.status}
        return {k: v for k, v in out.items() if v is not None}

    def as_dict(self) -> dict[str, object]:
        return {"from": self.since.isoformat().replace("+00:00", "Z"),
                "to": self.until.isoformat().replace("+00:00", "Z"), "session": self.session,
                "tag": f"{self.tag[0]}:{self.tag[1]}" if self.tag else None, **self.dims()}


class Query:
    """One request's query string, checked against the parameters its endpoint accepts."""

    def __init__(self, params: Mapping[str, str] | Iterable[tuple[str, str]], accepted: Iterable[str]) -> None:
        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        allowed = set(accepted) | set(COMMON_PARAMS)
        seen: dict[str, str] = {}
        for name, value in items:
            if name not in allowed:
                raise QueryError(f"unknown parameter {name!r}; this endpoint accepts: {', '.join(sorted(allowed))}")
            if name in seen:
                raise QueryError(f"parameter {name!r} was given more than once; give one value")
            if len(value) > _MAX_TEXT:
                raise QueryError(f"parameter {name!r} is longer than {_MAX_TEXT} characters")
            seen[name] = value
        self.values = seen

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if value else None

    def choice(self, name: str, accepted: Iterable[str], default: str) -> str:
        options = list(accepted)
        value = self.values.get(name) or default
        if value not in options:
            raise QueryError(f"{name}={value!r} is not accepted; choose one of: {', '.join(options)}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.values.get(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise QueryError(f"{name}={raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise QueryError(f"{name}={value} is out of range; accepted: {low}..{high}")
        return value

    def fmt(self) -> str:
        return self.choice("format", ("json", "csv"), "json")

    def filters(self, now: datetime, bounds: tuple[datetime, datetime] | None) -> Filters:
        """The time range and filters. Default range: the last 30 days; ``range=all``: the journal's whole span."""
        since, until = self._range(now, bounds)
        tag = None
        raw_tag = self.text("tag")
        if raw_tag is not None:
            key, sep, value = raw_tag.partition(":")
            if not sep or not key or not _TAG_KEY.fullmatch(key):
                raise QueryError(f"tag={raw_tag!r} is not KEY:VALUE (a key of letters, digits and _.-:/)")
            tag = (key, value)
        status = self.text("status")
        if status is not None and status not in STATUSES:
            raise QueryError(f"status={status!r} is not accepted; choose one of: {', '.join(STATUSES)}")
        return Filters(since=since, until=until, session=self.text("session"), tag=tag,
                       provider=self.text("provider"), deployment=self._dim("deployment"),
                       model=self._dim("model"), status=status)

    def _dim(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        return "" if value == "(none)" else value or None  # "(none)": calls without a deployment / model

    def _range(self, now: datetime, bounds: tuple[datetime, datetime] | None) -> tuple[datetime, datetime]:
        preset = self.text("range")
        start, end = self.text("from"), self.text("to")
        if preset is not None and (start or end):
            raise QueryError("give either range= or from=/to=, not both")
        until = _hour_ceil(now)
        if preset == "all":
            if bounds is None:
                return until - timedelta(hours=1), until
            return hour_floor(bounds[0]), _hour_ceil(bounds[1] + timedelta(microseconds=1))
        if preset is not None:
            span = PRESETS.get(preset)
            if span is None:
                raise QueryError(f"range={preset!r} is not accepted; choose one of: {', '.join([*PRESETS, 'all'])}")
            return hour_floor(now - span), until
        if end:
            until = _hour_ceil(parse_time(end, "to"))
        since = hour_floor(parse_time(start, "from")) if start else until - PRESETS["30d"]
        if since >= until:
            raise QueryError(f"from ({since:%Y-%m-%d %H:%M}) must be before to ({until:%Y-%m-%d %H:%M})")
        if until - since > MAX_SPAN:
            raise QueryError(f"the range is {(until - since).days} days; at most {MAX_SPAN.days} days are accepted")
        return since, until


def parse_time(raw: str, name: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is UTC."""
    text = raw.strip().replace(" ", "T")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{name}={raw!r} is not an ISO 8601 date or date-time (e.g. 2026-11-30 or "
                         "2026-11-30T14:00Z)") from None
    if not 1970 <= value.year <= 9998:
        raise QueryError(f"{name}={raw!r} is out of range")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def check_buckets(filters: Filters, bucket: str) -> None:
    """Refuse a chart with more points than a screen can show (hourly over years)."""
    hours = (filters.until - filters.since) / timedelta(hours=1)
    points = hours if bucket == "hour" else hours / 24 if bucket == "day" else hours / 730
    if points > MAX_BUCKETS:
        raise QueryError(f"{int(points):,} {bucket}ly buckets is too many (at most {MAX_BUCKETS:,}); "
                         "choose a larger bucket or a shorter range")
