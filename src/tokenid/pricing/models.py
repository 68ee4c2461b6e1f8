"""Canonical model names: Azure spellings, version suffixes and unversioned names mapped to one name per model.

A canonical name is lower-case, spelled the OpenAI way and dated where a date is known, so ``gpt-4o`` (requested),
``gpt-4o-2024-08-06`` (served by OpenAI) and an Azure ``gpt-4o`` / ``2024-08-06`` deployment all journal as
``gpt-4o-2024-08-06``. Both tables below are plain data; ``Pricer(aliases=...)`` adds to or replaces entries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from tokenid.errors import ConfigError
from tokenid.pricing import catalog

__all__ = [
    "DEFAULT_ALIASES",
    "DEFAULT_VERSIONS",
    "ModelNames",
    "canonical_model",
    "parse_aliases",
]

#: Spelling -> name. A key ending in ``*`` rewrites a prefix (the value must end in ``*`` too), so
#: ``gpt-35-turbo-16k-0613`` becomes ``gpt-3.5-turbo-16k-0613``. Aliases are applied repeatedly (a chain is fine).
DEFAULT_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        # Azure drops the dot: gpt-35-turbo, gpt-35-turbo-16k, gpt-35-turbo-instruct and every versioned form
        "gpt-35-*": "gpt-3.5-*",
        # On Azure "ada" is the embeddings model (the GPT-3 "ada" completion model is retired everywhere)
        "ada": "text-embedding-ada-002",
        "text-embedding-ada-002-v2": "text-embedding-ada-002",
        # Azure's model names for the audio models (the deployment's model, e.g. "whisper" version "001")
        "whisper": "whisper-1",
        "tts": "tts-1",
        "tts-hd": "tts-1-hd",
    }
)

#: Unversioned name -> the dated version it points to (OpenAI's current alias targets; Azure's defaults agree).
#: Applied after aliases, only to exact names; served responses usually carry the dated name already.
DEFAULT_VERSIONS: Mapping[str, str] = MappingProxyType(
    {
        "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
        "gpt-3.5-turbo-16k": "gpt-3.5-turbo-16k-0613",
        "gpt-3.5-turbo-instruct": "gpt-3.5-turbo-instruct-0914",
        "gpt-4": "gpt-4-0613",
        "gpt-4-32k": "gpt-4-32k-0613",
        "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
        "gpt-4o": "gpt-4o-2024-08-06",
        "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
        "gpt-4.1": "gpt-4.1-2025-04-14",
        "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
        "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
        "o1": "o1-2024-12-17",
        "o1-mini": "o1-mini-2024-09-12",
        "o3": "o3-2025-04-16",
        "o3-mini": "o3-mini-2025-01-31",
        "o4-mini": "o4-mini-2025-04-16",
        "gpt-5": "gpt-5-2025-08-07",
        "gpt-5-mini": "gpt-5-mini-2025-08-07",
        "gpt-5-nano": "gpt-5-nano-2025-08-07",
    }
)

# A trailing version: -YYYY-MM-DD (OpenAI dates) or -MMDD (gpt-3.5/gpt-4 snapshots such as -0613).
_VERSION_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")
_MAX_ALIAS_STEPS = 16


def parse_aliases(value: Mapping[str, str] | None, *, key: str = "aliases") -> dict[str, str]:
    """Validate user aliases (spelling -> model name); names are lower-cased. ``*`` may end a key and its value."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping of model spelling to model name; got {type(value).__name__}")
    result: dict[str, str] = {}
    for spelling, target in value.items():
        where = f"{key}[{spelling!r}]"
        if not isinstance(spelling, str) or not spelling.strip():
            raise ConfigError(f"{key}: spellings must be non-empty strings; got {spelling!r}")
        if not isinstance(target, str) or not target.strip():
            raise ConfigError(f"{where} must be a non-empty model name; got {target!r}")
        src, dst = spelling.strip().lower(), target.strip().lower()
        if "*" in src[:-1] or "*" in dst[:-1] or src.endswith("*") != dst.endswith("*"):
            raise ConfigError(
                f"{where}: '*' is only allowed as the last character of both the spelling and the name "
                f"(a prefix rewrite such as 'gpt-35-*': 'gpt-3.5-*'); got {target!r}"
            )
        result[src] = dst
    return result


class ModelNames:
    """An alias table plus default versions, compiled for fast repeated normalisation."""

    __slots__ = ("_default_versions", "_exact", "_prefixes")

    def __init__(
        self,
        aliases: Mapping[str, str] | None = None,
        default_versions: Mapping[str, str] = DEFAULT_VERSIONS,
    ) -> None:
        merged = {**DEFAULT_ALIASES, **parse_aliases(aliases)}
        self._exact = {src: dst for src, dst in merged.items() if not src.endswith("*")}
        # longest prefix first, so a specific rule beats a general one
        self._prefixes = sorted(
            ((src[:-1], dst[:-1]) for src, dst in merged.items() if src.endswith("*")),
            key=lambda pair: -len(pair[0]),
        )
        self._default_versions = dict(default_versions)

    def spell(self, name: str) -> tuple[str, bool]:
        """``name`` with aliases applied (no default version), and whether any alias matched."""
        current = name.strip().lower()
        aliased = False
        for _ in range(_MAX_ALIAS_STEPS):  # bounded: a cyclic user table stops instead of looping
            if current in self._exact:
                target = self._exact[current]
            else:
                target = current
                for prefix, replacement in self._prefixes:
                    if current.startswith(prefix) and not current.startswith(replacement):
                        target = replacement + current[len(prefix) :]
                        break
            if target == current:
                break
            current, aliased = target, True
        return current, aliased

    def normalize(self, name: str) -> str:
        """The canonical spelling of ``name``: aliases, then the default version of an unversioned name."""
        spelled, _ = self.spell(name)
        return self._default_versions.get(spelled, spelled)

    def is_aliased(self, name: str) -> bool:
        """True when an alias (not just lower-casing or a default version) rewrote ``name``."""
        return self.spell(name)[1]

    @staticmethod
    def unversioned(name: str) -> str:
        """``name`` without a trailing date/snapshot suffix: ``gpt-4o-2024-08-06`` -> ``gpt-4o``."""
        return _VERSION_SUFFIX.sub("", name)


@lru_cache(maxsize=1)
def _default_names() -> ModelNames:
    return ModelNames()


def canonical_model(name: str, *, aliases: Mapping[str, str] | None = None, provider: str = "openai") -> str | None:
    """The canonical name of model ``name``, or None when neither an alias nor genai-prices knows it.

    ``provider`` ("openai" or "azure_openai") selects which genai-prices catalogue decides "known". A deployment
    name such as ``my-prod-4o`` is not a model and gives None.
    """
    names = _default_names() if aliases is None else ModelNames(aliases)
    canonical = names.normalize(name)
    if not canonical:
        return None
    if names.is_aliased(name):
        return canonical
    if catalog.find_model(catalog.current_snapshot(), canonical, provider) is not None:
        return canonical
    return None
