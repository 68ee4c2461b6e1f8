"""Canonical model names: Azure spellings, default versions, user aliases, and agreement with genai-prices."""

from __future__ import annotations

import pytest
from genai_prices.data_snapshot import get_snapshot

from tokenid.errors import ConfigError
from tokenid.pricing import DEFAULT_VERSIONS, ModelNames, canonical_model, parse_aliases


def _catalog_id(name: str, provider_id: str) -> str | None:
    try:
        return get_snapshot().find_provider_model(name, None, provider_id, None)[1].id
    except LookupError:
        return None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-35-turbo", "gpt-3.5-turbo-0125"),
        ("gpt-35-turbo-16k", "gpt-3.5-turbo-16k-0613"),
        ("gpt-35-turbo-instruct", "gpt-3.5-turbo-instruct-0914"),
        ("gpt-35-turbo-0613", "gpt-3.5-turbo-0613"),
        ("gpt-35-turbo-16k-0613", "gpt-3.5-turbo-16k-0613"),
        ("ada", "text-embedding-ada-002"),
        ("text-embedding-ada-002", "text-embedding-ada-002"),
        ("gpt-4-32k", "gpt-4-32k-0613"),
        ("gpt-4", "gpt-4-0613"),
        ("gpt-4o", "gpt-4o-2024-08-06"),
        ("GPT-4o ", "gpt-4o-2024-08-06"),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("o3-mini", "o3-mini-2025-01-31"),
        ("o3-mini-2025-01-31", "o3-mini-2025-01-31"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo-2024-04-09"),
    ],
)
def test_known_spellings_resolve(name: str, expected: str) -> None:
    assert canonical_model(name) == expected
    assert canonical_model(name, provider="azure_openai") == expected


@pytest.mark.parametrize("name", ["my-prod-4o", "prod", "", "   "])
def test_deployment_style_names_are_unknown(name: str) -> None:
    assert canonical_model(name) is None
    assert canonical_model(name, provider="azure_openai") is None


@pytest.mark.parametrize(("unversioned", "dated"), sorted(DEFAULT_VERSIONS.items()))
def test_default_versions_price_like_the_unversioned_name(unversioned: str, dated: str) -> None:
    # the table must not move a name onto a different catalogue entry (a different price)
    for provider_id in ("openai", "azure"):
        assert _catalog_id(dated, provider_id) is not None, (dated, provider_id)
        assert _catalog_id(dated, provider_id) == _catalog_id(unversioned, provider_id)


@pytest.mark.parametrize("azure_name", ["gpt-35-turbo-0613", "gpt-35-turbo-instruct", "gpt-35-turbo-0301"])
def test_azure_spellings_genai_prices_misses_are_covered(azure_name: str) -> None:
    # genai-prices alone does not know these Azure spellings; the alias table makes them priceable
    assert _catalog_id(azure_name, "azure") is None
    canonical = canonical_model(azure_name, provider="azure_openai")
    assert canonical is not None
    assert _catalog_id(canonical, "azure") is not None


def test_user_aliases_extend_the_defaults() -> None:
    aliases = {"my-house-4o": "gpt-4o", "house-*": "gpt-4.1-*"}
    assert canonical_model("my-house-4o", aliases=aliases) == "gpt-4o-2024-08-06"
    assert canonical_model("house-mini", aliases=aliases) == "gpt-4.1-mini-2025-04-14"
    assert canonical_model("gpt-35-turbo", aliases=aliases) == "gpt-3.5-turbo-0125"  # defaults still apply


def test_user_alias_replaces_a_default_entry() -> None:
    assert canonical_model("ada", aliases={"ada": "text-embedding-3-small"}) == "text-embedding-3-small"


def test_aliased_name_is_known_even_if_genai_prices_lacks_the_target() -> None:
    # the user said what it is; pricing will then report that genai-prices has no price for it
    assert canonical_model("internal", aliases={"internal": "our-finetune-v2"}) == "our-finetune-v2"


def test_cyclic_aliases_terminate() -> None:
    names = ModelNames({"a": "b", "b": "a"})
    assert names.normalize("a") in {"a", "b"}


def test_longest_prefix_rule_wins() -> None:
    names = ModelNames({"x-*": "gpt-4o-*", "x-mini-*": "gpt-4.1-mini-*"})
    assert names.spell("x-mini-2025-04-14")[0] == "gpt-4.1-mini-2025-04-14"
    assert names.spell("x-2024-11-20")[0] == "gpt-4o-2024-11-20"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-3.5-turbo-0613", "gpt-3.5-turbo"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-4-1106-preview", "gpt-4-1106-preview"),
        ("text-embedding-ada-002", "text-embedding-ada-002"),
        ("gpt-4-32k", "gpt-4-32k"),
    ],
)
def test_unversioned(name: str, expected: str) -> None:
    assert ModelNames.unversioned(name) == expected


@pytest.mark.parametrize(
    "aliases",
    [
        {"gpt-35-*": "gpt-3.5"},
        {"gpt-*-x": "gpt-4"},
        {"": "gpt-4o"},
        {"x": ""},
        {"x": 3},
    ],
)
def test_bad_aliases_raise_config_error(aliases: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="aliases"):
        parse_aliases(aliases)  # type: ignore[arg-type]


def test_alias_errors_name_the_entry() -> None:
    with pytest.raises(ConfigError, match=r"aliases\['gpt-35-\*'\]"):
        parse_aliases({"gpt-35-*": "gpt-3.5"})
