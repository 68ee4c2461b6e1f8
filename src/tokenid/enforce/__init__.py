"""Enforcement: local rules that decide, before a call leaves the process, whether it may go and where."""

from .counters import (
    DEFAULT_RESERVATION_TTL,
    Counters,
    LocalCounters,
    RedisCounters,
    Reservation,
    SQLiteCounters,
    Window,
    open_counters,
    parse_window,
)
from .engine import CallSpec, Decision, Enforcer
from .rules import EnforcementConfig, load_config, parse_config

__all__ = [
    "DEFAULT_RESERVATION_TTL",
    "CallSpec",
    "Counters",
    "Decision",
    "EnforcementConfig",
    "Enforcer",
    "LocalCounters",
    "RedisCounters",
    "Reservation",
    "SQLiteCounters",
    "Window",
    "load_config",
    "open_counters",
    "parse_config",
    "parse_window",
]
