"""Bad routing configuration fails at construction, naming the target and the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tokenid import ConfigError, Journal, JournaledAzureOpenAI, JournaledOpenAI
from tokenid.routing import parse_routing

from conftest import AZURE_VERSION


def target(name: str = "sweden", **kw: Any) -> dict[str, Any]:
    return {"name": name, "azure_endpoint": "https://sweden.openai.azure.com", "api_version": AZURE_VERSION,
            "auth": {"type": "api_key", "api_key": "k"}, **kw}


@pytest.mark.parametrize(("routing", "message"), [
    ({"strategy": "roundrobin", "targets": [target()]}, "routing['strategy'] must be one of loadbalance, fallback"),
    ({"strategy": "loadbalance", "targets": [target("a", weight=0), target("b", weight=0)]},
     "weights of a loadbalance group must sum to a positive number (got a=0, b=0)"),
    ({"strategy": "loadbalance", "targets": [target("a", weight=-1)]}, "routing target 'a'['weight'] must be"),
    ({"strategy": "loadbalance", "targets": [target("a", weight=float("nan"))]}, "routing target 'a'['weight']"),
    ({"targets": [{**target("nokey"), "auth": None}]}, "routing target 'nokey'['auth'] must be a mapping"),
    ({"targets": [{k: v for k, v in target("nokey").items() if k != "auth"}]},
     "routing target 'nokey': missing credentials: 'auth' is required"),
    ({"targets": [target("a", auth={"type": "api_key"})]},
     "routing target 'a'['auth']: missing credentials: give 'api_key' or 'api_key_env'"),
    ({"targets": [target("a", auth={"type": "api_key", "api_key_env": "TOKENID_TEST_UNSET_VAR"})]},
     "routing target 'a'['auth']['api_key_env']: environment variable TOKENID_TEST_UNSET_VAR is not set"),
    ({"strategy": "fallback", "targets": [target("a"), {**target("b"), "api_version": ""}]},
     "routing target 'b'['api_version'] must be a non-empty string"),
    ({"strategy": "fallback", "targets": [target("a"), {k: v for k, v in target("b").items() if k != "api_version"}]},
     "routing target 'b'['api_version'] is required for an Azure target"),
    ({"targets": [target("a", region="x")]}, "routing target 'a': unknown key(s) 'region'"),
    ({"targets": [target("a"), target("a")]}, "routing target 'a': two targets have this name"),
    ({"targets": [target("a", azure_endpoint="sweden.openai.azure.com")]},
     "routing target 'a'['azure_endpoint'] must be an http(s) URL"),
    ({"targets": [target("a", auth={"type": "client_secret", "client_id": "c", "client_secret": "s"})]},
     "routing target 'a'['auth']['tenant_id'] is required"),
    ({"targets": [target("a", auth={"type": "managed_identity", "client_id": "c", "object_id": "o"})]},
     "a user-assigned identity takes one of client_id, object_id, resource_id"),
    ({"targets": [target("a", auth={"type": "kerberos"})]}, "routing target 'a'['auth']['type'] must be one of"),
    ({"targets": [{"name": "oai", "provider": "openai", "auth": {"type": "managed_identity"}}]},
     "routing target 'oai'['auth']['type'] 'managed_identity' is for Azure targets"),
    ({"targets": [{"name": "oai", "provider": "openai", "auth": "api_key", "deployment": "x"}]},
     "routing target 'oai'['deployment'] is for Azure targets; set the model with override_params"),
    ({"targets": [{"name": "oai", "provider": "openai", "auth": "api_key"}]},
     "routing target 'oai'['auth']: missing credentials"),
    ({"targets": [target("a", headers={"api-key": "x"})]}, "credentials go in 'auth', not in headers"),
    ({"targets": [target("a")], "retry": {"attempts": 0}}, "routing['retry']['attempts'] must be an integer >= 1"),
    ({"targets": [target("a")], "retry": {"tries": 2}}, "routing['retry']: unknown key(s) 'tries'"),
    ({"targets": [target("a")], "breaker": {"cooldown_s": 0}}, "routing['breaker']['cooldown_s'] must be"),
    ({"targets": [target("a")], "cache": {"backend": "memcached"}}, "routing['cache']['backend'] must be"),
    ({"targets": [target("a")], "on_status": [700]}, "routing['on_status']: 700 is not an HTTP status code"),
    ({"strategy": "fallback", "targets": [{"strategy": "weighted", "name": "eu", "targets": [target("a")]}]},
     "routing group 'eu'['strategy'] must be one of loadbalance, fallback, got 'weighted'"),
    ({"targets": []}, "routing['targets'] must be a non-empty list"),
])
def test_bad_config_fails_at_construction(tmp_path: Path, routing: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        JournaledAzureOpenAI(journal=Journal(tmp_path / "j.db"), routing=routing)
    assert message in str(err.value)


def test_secret_values_never_appear_in_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENID_TEST_KEY", "sk-live-VERY-SECRET-123")
    bad = {"targets": [target("a", auth={"type": "api_key", "api_key_env": "TOKENID_TEST_KEY"}, weight="x")]}
    with pytest.raises(ConfigError) as err:
        JournaledAzureOpenAI(journal=Journal(tmp_path / "j.db"), routing=bad)
    assert "VERY-SECRET" not in str(err.value)
    config = parse_routing({"targets": [target("a", auth={"type": "api_key", "api_key": "sk-live-SECRET-9"})]},
                           azure_client=True)
    assert "SECRET-9" not in repr(config)


def test_nested_config_resolves_every_target(tmp_path: Path) -> None:
    config = parse_routing({
        "strategy": "fallback", "on_status": [429, 503],
        "targets": [
            {"strategy": "loadbalance", "name": "eu", "targets": [target("a", weight=3), target("b", weight=1)]},
            {"name": "openai", "provider": "openai", "auth": {"type": "api_key", "api_key": "k"},
             "override_params": {"model": "gpt-4o-2024-08-06"}},
        ],
    }, azure_client=True)
    assert config.root is not None
    assert config.root.strategy == "fallback"
    assert config.root.on_status == frozenset({429, 503})
    assert [t.name for t in config.targets()] == ["a", "b", "openai"]
    eu = config.root.members[0]
    assert eu.name == "eu" and eu.strategy == "loadbalance"  # type: ignore[union-attr]
    openai_target = config.targets()[2]
    assert openai_target.provider == "openai" and openai_target.endpoint == "https://api.openai.com/v1"
    assert openai_target.override_params == {"model": "gpt-4o-2024-08-06"}


def test_routing_from_the_enforcement_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"max_tokens": 100, "routing": {"targets": [target("from-file")]}}))
    client = JournaledAzureOpenAI(journal=Journal(tmp_path / "j.db"), enforcement_config=str(path))
    assert client._tokenid.router is not None
    assert [t.name for t in client._tokenid.router.config.targets()] == ["from-file"]
    assert client._tokenid.enforcer is not None  # the rules beside it still apply
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"routing": {"strategy": "random", "targets": [target()]}}))
    with pytest.raises(ConfigError, match=r"routing\['strategy'\] must be one of"):
        JournaledAzureOpenAI(journal=Journal(tmp_path / "j.db"), enforcement_config=str(bad))
    with pytest.raises(ConfigError, match="routing is given twice"):
        JournaledAzureOpenAI(journal=Journal(tmp_path / "j.db"), enforcement_config=str(path),
                             routing={"targets": [target()]})


def test_routing_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.toml"
    path.write_text(f'''
strategy = "loadbalance"
[[targets]]
name = "swe"
azure_endpoint = "https://swe.openai.azure.com"
api_version = "{AZURE_VERSION}"
weight = 2
auth = {{ type = "api_key", api_key = "k" }}
[[targets]]
name = "oai"
provider = "openai"
weight = 1
auth = {{ type = "api_key", api_key = "k" }}
''')
    client = JournaledOpenAI(journal=Journal(tmp_path / "j.db"), routing=str(path))
    assert client._tokenid.router is not None
    assert [(t.name, t.provider, t.weight) for t in client._tokenid.router.config.targets()] == [
        ("swe", "azure", 2.0), ("oai", "openai", 1.0)]


def test_a_routed_client_needs_no_endpoint_or_key_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    client = JournaledAzureOpenAI(journal=Journal(tmp_path / "j.db"), routing={"targets": [target()]})
    assert str(client.base_url).startswith("https://sweden.openai.azure.com/openai")
    with pytest.raises(Exception, match="Missing credentials"):
        JournaledAzureOpenAI(journal=Journal(tmp_path / "j.db"), azure_endpoint="https://x", api_version="v")


def test_the_readme_example_is_a_valid_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    [toml] = [block for block in re.findall(r"```toml\n(.*?)```", readme, re.S) if "# routing.toml" in block]
    for name, value in {"AZURE_FEDERATED_TOKEN_FILE": str(tmp_path / "token"), "AZURE_TENANT_ID": "t",
                        "AZURE_CLIENT_ID": "c", "OPENAI_API_KEY": "sk-x"}.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "routing.toml"
    path.write_text(toml)
    client = JournaledAzureOpenAI(journal=Journal(tmp_path / "j.db"), routing=str(path))
    config = client._tokenid.router.config
    assert [(t.name, t.weight, t.auth.type) for t in config.targets()] == [
        ("swedencentral", 3.0, "workload_identity"), ("francecentral", 1.0, "managed_identity"),
        ("openai", 1.0, "api_key")]
    assert config.retry.attempts == 3 and config.breaker is not None and config.breaker.failures == 5
    assert config.cache is not None and config.cache.backend == "sqlite"
    assert str(client.base_url).startswith("https://contoso-swc.openai.azure.com/openai")
    assert client._tokenid.router.cache is not None
    assert Path(str(tmp_path / "j.db") + ".cache").exists()


def test_tokenid_budgets_reads_a_file_that_also_holds_routing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tokenid.cli import app

    journal = Journal(tmp_path / "j.db")
    journal.close()
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"budgets": [{"name": "daily", "scope": "global", "limit_usd": "5", "window": "day"}],
                                "routing": {"targets": [target()]}}))
    result = CliRunner(env={"COLUMNS": "220"}).invoke(
        app, ["budgets", "--journal", str(tmp_path / "j.db"), "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "no budget counters" in result.output
