"""Read-side queries over a journal: totals, sessions, one session's calls, recent calls.

Money is summed in SQL as integer nano-dollars and returned as ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from ..errors import ConfigError
from .core import Journal

__all__ = ["GROUPS", "recent", "session_events", "sessions", "totals"]

_NANO = Decimal("1e-9")
GROUPS: Final[dict[str, str]] = {
    "session": "COALESCE(session_id, '(none)')",
    "model": "COALESCE(canonical_model, model_served, model_requested, '(unknown)')",
    "deployment": "COALESCE(deployment, '(none)')",
    "day": "substr(started_at, 1, 10)",
    "provider": "provider",
    "endpoint": "endpoint",
    "status": "status",
}

_SUMS = """
  COUNT(*) AS calls,
  COALESCE(SUM(input_tokens), 0) AS input_tokens,
  COALESCE(SUM(cached_input_tokens), 0) AS cached_input_tokens,
  COALESCE(SUM(output_tokens), 0) AS output_tokens,
  COALESCE(SUM(reasoning_tokens), 0) AS reasoning_tokens,
  SUM(cost_nanousd) AS cost_nanousd,
  SUM(CASE WHEN cost_nanousd IS NULL AND status != 'blocked' THEN 1 ELSE 0 END) AS unpriced,
  SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
  SUM(CASE WHEN status = 'blocked' THEN 1 ELSE 0 END) AS blocked,
  SUM(CASE WHEN status = 'aborted' THEN 1 ELSE 0 END) AS aborted,
  SUM(CASE WHEN enforcement IS NOT NULL AND enforcement NOT LIKE '%"shadow": true%'
      AND (enforcement LIKE '%"action": "rewrite"%' OR enforcement LIKE '%"action": "downgrade"%')
      THEN 1 ELSE 0 END) AS rewritten,
  SUM(CASE WHEN usage_source = 'estimated' THEN 1 ELSE 0 END) AS estimated
"""


def _where(since: str | None, until: str | None, session_id: str | None = None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if since:
        clauses.append("started_at >= ?")
        params.append(since)
    if until:
        clauses.append("started_at < ?")
        params.append(until)
    if session_id is not None:
        clauses.append("session_id = ?")
        params.append(session_id)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _money(row: dict[str, Any]) -> dict[str, Any]:
    nanos = row.pop("cost_nanousd")
    row["cost_usd"] = None if nanos is None else Decimal(nanos) * _NANO  # None: nothing in the group was priced
    return row


def totals(journal: Journal, by: str, *, since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
    """Calls, tokens and cost grouped by ``session``, ``model``, ``deployment``, ``day``, ``provider``, ..."""
    key = GROUPS.get(by)
    if key is None:
        raise ConfigError(f"unknown grouping {by!r}; accepted: {', '.join(GROUPS)}")
    where, params = _where(since, until)
    sql = (f"SELECT {key} AS key, {_SUMS} FROM events {where} "
           "GROUP BY 1 ORDER BY COALESCE(SUM(cost_nanousd), -1) DESC, COUNT(*) DESC, 1")
    return [_money(dict(r)) for r in journal.store.query(sql, params)]


def sessions(journal: Journal, *, limit: int = 50, since: str | None = None) -> list[dict[str, Any]]:
    """Sessions, most recent first, with their totals."""
    where, params = _where(since, None)
    where = (where + " AND " if where else "WHERE ") + "session_id IS NOT NULL"
    sql = (f"SELECT session_id, MIN(started_at) AS first_call, MAX(started_at) AS last_call, {_SUMS} "
           f"FROM events {where} GROUP BY session_id ORDER BY last_call DESC LIMIT ?")
    return [_money(dict(r)) for r in journal.store.query(sql, [*params, limit])]


def session_events(journal: Journal, session_id: str) -> list[dict[str, Any]]:
    """Every call of one session, in order."""
    return list(journal.store.iter_events("session_id = ?", (session_id,)))


def recent(journal: Journal, *, limit: int = 20, after: str | None = None) -> list[dict[str, Any]]:
    """The newest calls (or those stored after event id ``after``), oldest first."""
    if after is not None:
        return list(journal.store.iter_events("id > ?", (after,), order="id"))
    rows: Sequence[dict[str, Any]] = list(journal.store.iter_events("", (), order=f"id DESC LIMIT {int(limit)}"))
    return list(reversed(rows))
