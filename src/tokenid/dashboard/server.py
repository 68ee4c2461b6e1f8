"""Running the dashboard: open the journal, settle the access token, serve with uvicorn.

The library API behind ``tokenid dashboard``; the CLI command only parses options and prints.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..enforce.rules import Budget
from ..errors import ConfigError, JournalError
from ..journal.schema import SCHEMA_VERSION
from ..journal.sqlite import SQLiteStore
from .app import create_app
from .auth import TOKEN_ENV, is_loopback, new_token
from .reader import Reader, is_postgres_url

__all__ = ["Access", "access_for", "prepare_journal", "serve"]


@dataclass(frozen=True)
class Access:
    """The token the server requires (None: localhost only), and whether it was generated here."""

    token: str | None
    generated: bool

    def url(self, host: str, port: int) -> str:
        shown = f"[{host}]" if ":" in host else host
        base = f"http://{shown}:{port}/"
        return base + (f"?token={self.token}" if self.token and self.generated else "")


def access_for(host: str, env: dict[str, str] | None = None) -> Access:
    """Loopback: no token unless ``$TOKENID_DASHBOARD_TOKEN`` sets one. Any other address: that, or a new one."""
    given = (env if env is not None else dict(os.environ)).get(TOKEN_ENV) or None
    if given is not None and len(given) < 16:
        raise ConfigError(f"{TOKEN_ENV} must be at least 16 characters")
    if given is not None:
        return Access(given, generated=False)
    if is_loopback(host):
        return Access(None, generated=False)
    return Access(new_token(), generated=True)


def prepare_journal(journal: Path | str, say: Callable[[str], None] = print) -> None:
    """Check the journal exists (a SQLite path or a ``postgresql://`` URL); upgrade an older schema once (building
    its rollups) before serving read-only."""
    if is_postgres_url(journal):
        _prepare_postgres(str(journal), say)
        return
    path = Path(journal)
    if not path.exists():
        raise JournalError(f"no journal at {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read the journal at {path}: {exc}") from exc
    if version < SCHEMA_VERSION:
        say(f"Upgrading {path} from journal schema v{version} to v{SCHEMA_VERSION} (building the dashboard's "
            "rollups; this runs once)…")
        SQLiteStore(path).close()


def _prepare_postgres(url: str, say: Callable[[str], None]) -> None:
    """The PostgreSQL half of :func:`prepare_journal`: read the version read-only, migrate through the store."""
    from ..journal.postgres import PostgresStore, redact_url

    reader = Reader(url, check_version=False)
    try:
        version = reader.schema_version()
        # v4 without rollups: made by the first PostgreSQL store, which skipped them
        skipped = version >= 4 and not reader.has_table("rollup_hourly")
    finally:
        reader.close()
    if version == 0:
        raise JournalError(f"no journal at {redact_url(url)}")
    if version < SCHEMA_VERSION or skipped:
        say(f"Upgrading {redact_url(url)} from journal schema v{version} to v{SCHEMA_VERSION} (building the "
            "dashboard's rollups; this runs once)…")
        PostgresStore(url).close()


def serve(journal: Path | str, *, host: str = "127.0.0.1", port: int = 8050, access: Access,
          budgets: Sequence[Budget] = (), log_level: str = "warning") -> None:
    """Serve the dashboard until interrupted (uvicorn, its access log off: URLs may carry the token)."""
    import uvicorn

    app = create_app(journal, token=access.token, budgets=budgets)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, server_header=False)
