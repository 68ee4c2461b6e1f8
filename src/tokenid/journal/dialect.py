"""The few SQL constructs that differ between the SQLite and PostgreSQL journals, as small named pieces.

The rollups (``rollups.py``) and the dashboard's reader build their SQL once from these, so one definition of
every table, key and metric serves both databases. Everything else they write is common SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["POSTGRES", "SQLITE", "Dialect", "dialect_named"]

# PostgreSQL: a text column as a JSON object or array (``kind``), or NULL when it is not valid JSON of that kind
# (json_valid on SQLite). PostgreSQL 15 has no IS JSON predicate, so migration 4 creates this beside the rollups.
PG_JSON_FUNCTION: Final = """CREATE FUNCTION tokenid_json(doc TEXT, kind TEXT) RETURNS jsonb LANGUAGE plpgsql
IMMUTABLE AS $$
DECLARE
  parsed jsonb;
BEGIN
  IF doc IS NULL THEN
    RETURN NULL;
  END IF;
  parsed := doc::jsonb;
  RETURN CASE WHEN jsonb_typeof(parsed) = kind THEN parsed END;
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$"""


def _pg_scalar_text(value: str) -> str:
    """A JSON scalar as SQLite's ``CAST(json value AS TEXT)`` spells it (true -> '1', strings unquoted)."""
    return (f"(CASE jsonb_typeof({value}) WHEN 'boolean' THEN CASE WHEN {value} = 'true'::jsonb THEN '1' ELSE '0' "
            f"END ELSE {value} #>> '{{}}' END)")


@dataclass(frozen=True)
class Dialect:
    """One database's spelling of what differs. ``alias`` arguments name the JSON table-function rows."""

    name: str
    without_rowid: str  # table option of the rollup tables
    stage_table: str  # the per-connection scratch table a batch is grouped into
    least: str  # two-argument minimum / maximum
    greatest: str

    def tags_join(self, column: str, alias: str) -> str:
        """A FROM item with one row per member of the JSON object in ``column`` (none when it is not JSON)."""
        if self.name == "sqlite":
            return f"json_each(CASE WHEN json_valid({column}) THEN {column} END) AS {alias}"
        return f"jsonb_each(tokenid_json({column}, 'object')) AS {alias}"

    def tag_key(self, alias: str) -> str:
        return f"CAST({alias}.key AS TEXT)"

    def tag_value(self, alias: str) -> str:
        """The member's value as text (numbers and true/false as SQLite casts them: 3, 1, 0)."""
        if self.name == "sqlite":
            return f"CAST({alias}.value AS TEXT)"
        return _pg_scalar_text(f"{alias}.value")

    def is_scalar(self, alias: str) -> str:
        """The member is a scalar with a value: objects, arrays and null are not tag values (and a null would have
        no text for the rollups' NOT NULL key)."""
        if self.name == "sqlite":
            return f"{alias}.type NOT IN ('object', 'array', 'null')"
        return f"jsonb_typeof({alias}.value) NOT IN ('object', 'array', 'null')"

    def tag_equals(self, column: str) -> str:
        """A condition: the JSON object in ``column`` has tag ``?`` (see :meth:`tag_param`) with value text ``?``."""
        if self.name == "sqlite":
            return f"CAST(json_extract({column}, ?) AS TEXT) = ?"
        return (f"EXISTS (SELECT 1 FROM {self.tags_join(column, 'f')} WHERE f.key = ? AND {self.is_scalar('f')} "
                f"AND {self.tag_value('f')} = ?)")

    def tag_param(self, key: str) -> str:
        """The parameter :meth:`tag_equals` takes for a tag key (checked in params.py: no quotes or backslashes)."""
        return f'$."{key}"' if self.name == "sqlite" else key

    def actions_join(self, column: str, alias: str) -> str:
        """A FROM item with one row per element of the JSON list in ``column`` (the enforcement actions)."""
        if self.name == "sqlite":
            return f"json_each(CASE WHEN json_valid({column}) THEN {column} END) AS {alias}"
        return f"jsonb_array_elements(tokenid_json({column}, 'array')) AS {alias}(value)"

    def is_object(self, alias: str) -> str:
        if self.name == "sqlite":
            return f"{alias}.type = 'object'"
        return f"jsonb_typeof({alias}.value) = 'object'"

    def field_text(self, alias: str, name: str) -> str:
        """Member ``name`` of the JSON object ``alias.value``, as text ('' when absent)."""
        if self.name == "sqlite":
            return f"COALESCE(json_extract({alias}.value, '$.{name}'), '')"
        return f"COALESCE({alias}.value ->> '{name}', '')"

    def field_true(self, alias: str, name: str) -> str:
        """Member ``name`` of ``alias.value`` is true: '1', else '0'."""
        if self.name == "sqlite":
            return f"CASE WHEN json_extract({alias}.value, '$.{name}') THEN '1' ELSE '0' END"
        return f"CASE WHEN {alias}.value -> '{name}' = 'true'::jsonb THEN '1' ELSE '0' END"

    def group_concat_distinct(self, expr: str) -> str:
        """The distinct non-null values of ``expr`` joined with commas (order unspecified)."""
        if self.name == "sqlite":
            return f"GROUP_CONCAT(DISTINCT {expr})"
        return f"string_agg(DISTINCT {expr}, ',')"

    def index_hint(self, index: str) -> str:
        """``INDEXED BY`` where the database takes hints (SQLite); PostgreSQL's planner chooses alone."""
        return f" INDEXED BY {index}" if self.name == "sqlite" else ""


SQLITE: Final = Dialect("sqlite", without_rowid=" WITHOUT ROWID", stage_table="temp.rollup_stage", least="min",
                        greatest="max")
POSTGRES: Final = Dialect("postgresql", without_rowid="", stage_table="pg_temp.rollup_stage", least="LEAST",
                          greatest="GREATEST")


def dialect_named(name: str) -> Dialect:
    """The dialect of a store (its ``dialect`` attribute: "sqlite" or "postgresql")."""
    return POSTGRES if name == "postgresql" else SQLITE
