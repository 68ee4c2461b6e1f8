"""TokenID: journaled OpenAI / Azure OpenAI clients that know what every call costs."""

from importlib.metadata import PackageNotFoundError, version

from .clients import AsyncJournaledAzureOpenAI, AsyncJournaledOpenAI, JournaledAzureOpenAI, JournaledOpenAI
from .context import session, tags
from .errors import (
    BudgetExceeded,
    ConfigError,
    EnforcementError,
    JournalError,
    ModelNotAllowed,
    NoHealthyTarget,
    RateLimitExceeded,
    RoutingError,
    TokenIDError,
)
from .journal import Journal, default_journal_target, get_journal
from .usage import Usage

try:
    __version__ = version("tokenid")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AsyncJournaledAzureOpenAI",
    "AsyncJournaledOpenAI",
    "BudgetExceeded",
    "ConfigError",
    "EnforcementError",
    "Journal",
    "JournalError",
    "JournaledAzureOpenAI",
    "JournaledOpenAI",
    "ModelNotAllowed",
    "NoHealthyTarget",
    "RateLimitExceeded",
    "RoutingError",
    "TokenIDError",
    "Usage",
    "__version__",
    "default_journal_target",
    "get_journal",
    "session",
    "tags",
]
