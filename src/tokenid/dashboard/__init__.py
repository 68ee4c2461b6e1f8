"""``tokenid dashboard``: a local, read-only web app over a journal, backed by a documented JSON API."""

from .app import create_app
from .server import Access, access_for, prepare_journal, serve

__all__ = ["Access", "access_for", "create_app", "prepare_journal", "serve"]
