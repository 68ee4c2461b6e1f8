"""Where the journal lives by default: ``TOKENID_JOURNAL``, else a per-user data directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["default_journal_target"]


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
