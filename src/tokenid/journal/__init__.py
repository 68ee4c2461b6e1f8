"""The journal: where every call's event is stored and read back."""

from .core import Journal, Pending, get_journal
from .paths import default_journal_target
from .schema import COLUMNS

__all__ = ["COLUMNS", "Journal", "Pending", "default_journal_target", "get_journal"]
