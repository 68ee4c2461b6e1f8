"""The gateway inside the client: targets, weighted loadbalance, fallback, retries, circuit breakers, cache.

Configured with ``routing=`` on a journaled client (or a ``routing`` key in the enforcement file); it sits
between enforcement and send in a call's lifecycle. A client without it behaves as the plain SDK does.
"""

from .breaker import BreakerState, CircuitBreaker
from .cache import CACHE_HEADER, CachedResponse, MemoryCache, RedisCache, SQLiteCache, cache_key, open_cache
from .config import (
    BreakerPolicy,
    CachePolicy,
    Group,
    Node,
    RetryPolicy,
    RoutingConfig,
    Target,
    parse_routing,
)
from .retry import backoff, matches, server_wait
from .router import RouteLog, Router, Send, Wait

__all__ = [
    "CACHE_HEADER",
    "BreakerPolicy",
    "BreakerState",
    "CachePolicy",
    "CachedResponse",
    "CircuitBreaker",
    "Group",
    "MemoryCache",
    "Node",
    "RedisCache",
    "RetryPolicy",
    "RouteLog",
    "Router",
    "RoutingConfig",
    "SQLiteCache",
    "Send",
    "Target",
    "Wait",
    "backoff",
    "cache_key",
    "matches",
    "open_cache",
    "parse_routing",
    "server_wait",
]
