"""TokenID's exceptions, one small tree.

    TokenIDError
    ├── ConfigError            bad constructor argument or configuration (raised at construction)
    ├── JournalError           the journal store cannot be opened or read (never raised into an LLM call)
    ├── QueryError             a dashboard / API request parameter is invalid (HTTP 400)
    ├── EnforcementError       a local rule denied a call; also an ``openai.OpenAIError``
    │   ├── BudgetExceeded
    │   ├── ModelNotAllowed
    │   └── RateLimitExceeded
    └── RoutingError           the gateway could not place a call; also an ``openai.OpenAIError``
        └── NoHealthyTarget    every target's circuit breaker is open

Denials subclass ``openai.OpenAIError`` so the SDK never retries them and existing
``except openai.OpenAIError`` handlers keep catching them.
"""

from __future__ import annotations

import openai

__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "EnforcementError",
    "JournalError",
    "ModelNotAllowed",
    "NoHealthyTarget",
    "QueryError",
    "RateLimitExceeded",
    "RoutingError",
    "TokenIDError",
]


class TokenIDError(Exception):
    """Base class of every error TokenID raises."""


class ConfigError(TokenIDError, ValueError):
    """A configuration value is wrong; the message names the key and what is accepted."""


class JournalError(TokenIDError):
    """The journal store could not be opened, migrated or read."""


class QueryError(TokenIDError, ValueError):
    """A query parameter is unknown or malformed; the message says which and what is accepted."""


class EnforcementError(TokenIDError, openai.OpenAIError):
    """A local enforcement rule denied the call before it left the process."""


class BudgetExceeded(EnforcementError):
    """A budget's limit would be exceeded by this call."""


class ModelNotAllowed(EnforcementError):
    """The model, deployment or endpoint is not allowed by a ceiling or allow/deny list."""


class RateLimitExceeded(EnforcementError):
    """A local rate limit has no capacity left for this call."""


class RoutingError(TokenIDError, openai.OpenAIError):
    """The routing layer could not send the call to any target (never raised for a target's own error)."""


class NoHealthyTarget(RoutingError):
    """Every target the call could go to has an open circuit breaker; the message says when each re-opens."""
