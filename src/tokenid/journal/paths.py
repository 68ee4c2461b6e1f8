"""Where the journal lives by default: ``TOKENID_JOURNAL``, else a per-user data directory."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

__all__ = ["default_journal_target", "local_state_path"]


def _user_data_dir() -> Path:
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "tokenid"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "tokenid"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tokenid"


def default_journal_target() -> str:
    """``$TOKENID_JOURNAL`` if set, else ``<user data dir>/tokenid/journal.db``.

    Linux: ``$XDG_DATA_HOME/tokenid`` (``~/.local/share/tokenid``); macOS:
    ``~/Library/Application Support/tokenid``; Windows: ``%LOCALAPPDATA%\\tokenid``.
    """
    return os.environ.get("TOKENID_JOURNAL") or str(_user_data_dir() / "journal.db")


def local_state_path(location: str) -> Path:
    """A per-user local file standing for a shared (PostgreSQL) journal: its spool folder and local budget
    counters sit beside it. One per database URL (without the password)."""
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    return _user_data_dir() / f"postgresql-{digest}.db"
