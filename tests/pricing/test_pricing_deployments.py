"""Deployment map validation: accepted shapes, type spellings, and errors that name the offending key."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from tokenid.errors import ConfigError
from tokenid.pricing import DEPLOYMENT_TYPES, DeploymentSpec, parse_deployments


def test_shorthand_string_means_model_with_default_type() -> None:
    specs = parse_deployments({"my-dep": "gpt-4o-mini"})
    assert specs == {"my-dep": DeploymentSpec(model="gpt-4o-mini", version=None, type="global")}


def test_full_entry_is_parsed() -> None:
    specs = parse_deployments({"my-gpt4-deployment": {"model": "gpt-4o", "version": "2024-08-06", "type": "data_zone"}})
    spec = specs["my-gpt4-deployment"]
    assert (spec.model, spec.version, spec.type) == ("gpt-4o", "2024-08-06", "data_zone")
    assert spec.model_ref == "gpt-4o-2024-08-06"


def test_none_and_empty_give_no_deployments() -> None:
    assert parse_deployments(None) == {}
    assert parse_deployments({}) == {}


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("global", "global"),
        ("Global", "global"),
        ("GlobalStandard", "global"),
        ("standard", "regional"),
        ("Standard", "regional"),
        ("regional", "regional"),
        ("data-zone", "data_zone"),
        ("DataZoneStandard", "data_zone"),
        ("data zone", "data_zone"),
        ("GlobalBatch", "global_batch"),
        ("DataZoneBatch", "data_zone_batch"),
        ("data_zone_batch", "data_zone_batch"),
        ("ProvisionedManaged", "provisioned"),
        ("GlobalProvisionedManaged", "provisioned"),
        ("provisioned", "provisioned"),
    ],
)
def test_type_spellings_normalise(spelling: str, expected: str) -> None:
    assert parse_deployments({"d": {"model": "gpt-4o", "type": spelling}})["d"].type == expected


def test_missing_or_null_type_defaults_to_global() -> None:
    specs = parse_deployments({"a": {"model": "gpt-4o"}, "b": {"model": "gpt-4o", "type": None}})
    assert specs["a"].type == specs["b"].type == "global"


def test_yaml_date_version_becomes_iso_string() -> None:
    spec = parse_deployments({"d": {"model": "gpt-4o", "version": dt.date(2024, 8, 6)}})["d"]
    assert spec.version == "2024-08-06"


def test_unknown_key_names_the_key_and_accepted_keys() -> None:
    with pytest.raises(ConfigError) as err:
        parse_deployments({"my-dep": {"model": "gpt-4o", "typ": "global"}})
    message = str(err.value)
    assert "deployments['my-dep'].typ" in message
    for accepted in ("'model'", "'version'", "'type'"):
        assert accepted in message


def test_unknown_type_names_the_key_and_every_accepted_type() -> None:
    with pytest.raises(ConfigError) as err:
        parse_deployments({"my-dep": {"model": "gpt-4o", "type": "regionl"}})
    message = str(err.value)
    assert "deployments['my-dep'].type" in message
    assert "'regionl'" in message
    for accepted in DEPLOYMENT_TYPES:
        assert repr(accepted) in message


@pytest.mark.parametrize(
    ("entry", "key_in_message"),
    [
        ({"version": "2024-08-06"}, "deployments['d'].model"),
        ({"model": ""}, "deployments['d'].model"),
        ({"model": 4}, "deployments['d'].model"),
        ({"model": "gpt-4o", "version": 613}, "deployments['d'].version"),
        ({"model": "gpt-4o", "version": ""}, "deployments['d'].version"),
        ({"model": "gpt-4o", "type": 1}, "deployments['d'].type"),
        (["gpt-4o"], "deployments['d']"),
        (42, "deployments['d']"),
        ("", "deployments['d']"),
    ],
)
def test_wrong_types_name_the_key(entry: object, key_in_message: str) -> None:
    with pytest.raises(ConfigError, match=r".*") as err:
        parse_deployments({"d": entry})
    assert key_in_message in str(err.value)


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="deployments must be a mapping"):
        parse_deployments(["gpt-4o"])  # type: ignore[arg-type]


def test_deployment_names_must_be_non_empty_strings() -> None:
    with pytest.raises(ConfigError, match="deployment names"):
        parse_deployments({"": "gpt-4o"})
    with pytest.raises(ConfigError, match="deployment names"):
        parse_deployments({3: "gpt-4o"})  # type: ignore[dict-item]


def test_caller_chooses_the_config_key_name() -> None:
    with pytest.raises(ConfigError, match=r"azure\.deployments\['x'\]\.type"):
        parse_deployments({"x": {"model": "gpt-4o", "type": "nope"}}, key="azure.deployments")


def test_spec_values_pass_through_and_validate_on_construction() -> None:
    spec = DeploymentSpec("gpt-4o", "2024-11-20", "Standard")
    assert spec.type == "regional"
    assert parse_deployments({"d": spec})["d"] is spec
    with pytest.raises(ConfigError, match=r"DeploymentSpec\.type"):
        DeploymentSpec("gpt-4o", type="cheap")
    with pytest.raises(ConfigError, match=r"DeploymentSpec\.model"):
        DeploymentSpec("  ")


def test_spec_is_frozen() -> None:
    spec = DeploymentSpec("gpt-4o")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.model = "gpt-4"  # type: ignore[misc]


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_deployments({"d": {"model": "gpt-4o", "type": "x"}})
