"""The journal event: its columns, in order, and the SQL migrations that create them.

One row per logical call. Field names follow ``shared/DESIGN.md``; other tools read them from
``tokenid export``, so a rename is a breaking change. Money is stored twice: ``cost_usd`` as the
exact decimal text and ``cost_nanousd`` as an integer so SQL can sum it without floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .dialect import POSTGRES
from .rollups import ROLLUP_MIGRATION, rollup_migration

__all__ = ["COLUMNS", "INT_COLUMNS", "JSON_COLUMNS", "MIGRATIONS", "PG_MIGRATIONS", "SCHEMA_VERSION",
           "SQLITE_ONLY_MIGRATIONS", "batch_carries"]

# (name, SQL type) in storage order
_COLUMN_TYPES: tuple[tuple[str, str], ...] = (
    ("id", "TEXT PRIMARY KEY"),
    ("started_at", "TEXT NOT NULL"),
    ("ended_at", "TEXT"),
    ("latency_ms", "REAL"),
    ("ttft_ms", "REAL"),
    ("session_id", "TEXT"),
    ("tags", "TEXT"),
    ("provider", "TEXT NOT NULL"),
    ("endpoint", "TEXT NOT NULL"),
    ("method", "TEXT"),
    ("path", "TEXT"),
    ("resource", "TEXT"),
    ("region", "TEXT"),
    ("api_version", "TEXT"),
    ("deployment", "TEXT"),
    ("model_requested", "TEXT"),
    ("model_served", "TEXT"),
    ("canonical_model", "TEXT"),
    ("deployment_type", "TEXT"),
    ("model_resolved_by", "TEXT"),
    ("input_tokens", "INTEGER"),
    ("cached_input_tokens", "INTEGER"),
    ("output_tokens", "INTEGER"),
    ("reasoning_tokens", "INTEGER"),
    ("audio_input_tokens", "INTEGER"),
    ("audio_output_tokens", "INTEGER"),
    ("cache_write_tokens", "INTEGER"),
    ("total_tokens", "INTEGER"),
    ("units", "TEXT"),
    ("usage_source", "TEXT NOT NULL"),
    ("cost_usd", "TEXT"),
    ("cost_nanousd", "INTEGER"),
    ("price_source", "TEXT"),
    ("unpriced_reason", "TEXT"),
    ("status", "TEXT NOT NULL"),
    ("http_status", "INTEGER"),
    ("error_type", "TEXT"),
    ("error_code", "TEXT"),
    ("error_message", "TEXT"),
    ("request_id", "TEXT"),
    ("enforcement", "TEXT"),
    ("attempts", "INTEGER"),
    ("route", "TEXT"),
    ("stream", "INTEGER"),
    ("cache_hit", "INTEGER"),
    ("content", "TEXT"),
)
_V1_COLUMN_COUNT: Final = len(_COLUMN_TYPES)

# Added by migration 2 (every billable endpoint): the token kinds image and realtime models report, the
# service tier that selects priority/flex prices, the batch a line of batch output belongs to, and the
# non-token share of cost_usd (images, characters, audio seconds, tool calls, training tokens).
_COLUMN_TYPES += (
    ("image_input_tokens", "INTEGER"),
    ("cached_audio_input_tokens", "INTEGER"),
    ("service_tier", "TEXT"),
    ("batch_id", "TEXT"),
    ("units_cost_usd", "TEXT"),
)

_V2_COLUMN_COUNT: Final = len(_COLUMN_TYPES)

# Added by migration 3: what a response-cache hit saved (the cost the call would have had), and the cost of the
# call re-priced at the invoice-calibrated rates of the last reconciliation run that covered it (the list-price
# cost stays in cost_usd).
_COLUMN_TYPES += (
    ("saved_usd", "TEXT"),
    ("invoice_cost_usd", "TEXT"),
    ("invoice_cost_nanousd", "INTEGER"),
    ("invoice_run_id", "TEXT"),
)

COLUMNS: Final[tuple[str, ...]] = tuple(name for name, _ in _COLUMN_TYPES)
JSON_COLUMNS: Final[frozenset[str]] = frozenset({"tags", "units", "enforcement", "route", "content"})
INT_COLUMNS: Final[frozenset[str]] = frozenset(n for n, t in _COLUMN_TYPES if t.startswith("INTEGER"))
BOOL_COLUMNS: Final[frozenset[str]] = frozenset({"stream", "cache_hit"})
_TAGS, _ENFORCEMENT = COLUMNS.index("tags"), COLUMNS.index("enforcement")


def batch_carries(rows: Sequence[Sequence[object]]) -> tuple[bool, bool]:
    """(some row has tags, some row has enforcement actions): which rollups a batch of rows can add to."""
    return (any(row[_TAGS] is not None for row in rows), any(row[_ENFORCEMENT] is not None for row in rows))


_CREATE_EVENTS = "CREATE TABLE events (\n  " + ",\n  ".join(
    f"{n} {t}" for n, t in _COLUMN_TYPES[:_V1_COLUMN_COUNT]) + "\n)"

# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        _CREATE_EVENTS,
        "CREATE INDEX events_started_at ON events (started_at)",
        "CREATE INDEX events_session ON events (session_id, started_at)",
    ),
    (
        *(f"ALTER TABLE events ADD COLUMN {n} {t}" for n, t in _COLUMN_TYPES[_V1_COLUMN_COUNT:_V2_COLUMN_COUNT]),
        "CREATE INDEX events_batch ON events (batch_id) WHERE batch_id IS NOT NULL",
    ),
    (
        *(f"ALTER TABLE events ADD COLUMN {n} {t}" for n, t in _COLUMN_TYPES[_V2_COLUMN_COUNT:]),
        # One row per `tokenid reconcile` run; `summary` is a JSON object of the run's totals and read issues.
        """CREATE TABLE reconcile_runs (
  id TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  source TEXT NOT NULL,
  period_from TEXT,
  period_to TEXT,
  account TEXT,
  currency TEXT,
  summary TEXT
)""",
        # One row per (run, day, account, meter): the invoice line beside what the journal says about it.
        # status: matched | variance | invoice_only | journal_only | capacity | unknown_meter.
        """CREATE TABLE reconcile_lines (
  run_id TEXT NOT NULL,
  day TEXT NOT NULL,
  account_id TEXT NOT NULL,
  account_name TEXT,
  meter_name TEXT NOT NULL,
  meter_id TEXT,
  model TEXT,
  version TEXT,
  direction TEXT,
  deployment_type TEXT,
  unit TEXT,
  currency TEXT,
  invoice_quantity TEXT,
  invoice_cost TEXT,
  invoice_cost_usd TEXT,
  journal_tokens INTEGER,
  journal_quantity TEXT,
  journal_cost_usd TEXT,
  variance_usd TEXT,
  variance_pct REAL,
  quantity_variance_pct REAL,
  status TEXT NOT NULL,
  note TEXT
)""",
        "CREATE INDEX reconcile_lines_run ON reconcile_lines (run_id, day, account_id)",
        # Each invoice line split across deployments and sessions by journaled token share (capacity lines: by
        # capacity-time share). basis: tokens | capacity | time.
        """CREATE TABLE reconcile_allocations (
  run_id TEXT NOT NULL,
  day TEXT NOT NULL,
  account_id TEXT NOT NULL,
  meter_name TEXT NOT NULL,
  deployment TEXT,
  session_id TEXT,
  tokens INTEGER,
  share TEXT,
  cost_usd TEXT,
  basis TEXT NOT NULL
)""",
        "CREATE INDEX reconcile_allocations_run ON reconcile_allocations (run_id, deployment, session_id)",
        # What the invoices showed each deployment to be, and the effective rates they imply.
        """CREATE TABLE deployment_mappings (
  account_id TEXT NOT NULL,
  deployment TEXT NOT NULL,
  model TEXT,
  version TEXT,
  deployment_type TEXT,
  evidence TEXT,
  run_id TEXT,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (account_id, deployment)
)""",
        """CREATE TABLE calibrated_rates (
  account_id TEXT NOT NULL,
  deployment TEXT NOT NULL,
  direction TEXT NOT NULL,
  day TEXT NOT NULL,
  usd_per_million TEXT NOT NULL,
  list_usd_per_million TEXT,
  run_id TEXT NOT NULL,
  PRIMARY KEY (account_id, deployment, direction, day)
)""",
    ),
    # Migration 4: the dashboard's rollups (hourly, per session, per tag), backfilled from the events already
    # stored; kept current by the writer in each insert's transaction (see rollups.py).
    ROLLUP_MIGRATION,
)
SCHEMA_VERSION: Final[int] = len(MIGRATIONS)
#: Migrations (by number, from 1) that only a SQLite journal runs: a PostgreSQL journal records the version but
#: skips them. None today: PostgreSQL runs its own spelling of migration 4 (``PG_MIGRATIONS``).
SQLITE_ONLY_MIGRATIONS: Final[frozenset[int]] = frozenset()
#: The migrations a PostgreSQL journal runs instead of the common text (by number): the same rollups, generated
#: for PostgreSQL from the one definition in rollups.py.
PG_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {4: rollup_migration(POSTGRES)}
