"""Entra ID auth end to end: azure-identity credentials against a local fake Entra / IMDS, tokens cached.

Each auth method gets a token from the fake (HTTPS with a certificate made in the test, or IMDS over
HTTP), and the simulator accepts exactly the bearer token the fake issued, so a call that succeeds proves
the token was fetched and sent. No live Azure endpoint is ever contacted.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from azure.core.credentials import AccessToken
from entra import EntraServer, decode_jwt, self_signed, token_for

from tokenid import AsyncJournaledAzureOpenAI, Journal, JournaledAzureOpenAI
from tokenid.azure.identity import AsyncTokenProvider, TokenProvider, token_provider
from tokenid.simulator import Simulator

from conftest import AZURE_VERSION, DEPLOYMENTS

TENANT = "11111111-2222-3333-4444-555555555555"
SECRET = "sp-client-SECRET-value-0123456789"
MSG = [{"role": "user", "content": "hello"}]
CLIENTS = ("sp-secret", "sp-cert", "workload-app", "system-assigned", "user-mi", "default-app", "async-mi")
ENV_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
            "AZURE_FEDERATED_TOKEN_FILE", "AZURE_POD_IDENTITY_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "MSI_ENDPOINT",
            "IDENTITY_HEADER", "IMDS_ENDPOINT", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME")


@pytest.fixture(scope="module")
def entra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraServer]:
    server = EntraServer(tmp_path_factory.mktemp("entra")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(api_keys={token_for(c) for c in CLIENTS}) as simulator:  # only Entra-issued tokens pass
        yield simulator


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, entra: EntraServer) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(entra.cert))  # trust the fake's self-signed certificate
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", entra.imds)  # where azure-identity finds IMDS


def client_for(sim: Simulator, journal: Journal, auth: dict[str, Any] | str, cls: Any = JournaledAzureOpenAI) -> Any:
    return cls(journal=journal, deployments=DEPLOYMENTS, max_retries=0, routing={"targets": [
        {"name": "sweden", "azure_endpoint": sim.azure_endpoint, "api_version": AZURE_VERSION, "auth": auth}]})


def new_requests(entra: EntraServer, since: int) -> list[dict[str, Any]]:
    return entra.token_requests()[since:]


def assert_nothing_secret_stored(journal: Journal, *secrets: str) -> None:
    journal.flush()
    con = sqlite3.connect(journal.path)
    dump = "\n".join(con.iterdump())
    con.close()
    assert "Bearer" not in dump
    for secret in secrets:
        assert secret not in dump


def test_service_principal_with_a_secret(entra: EntraServer, sim: Simulator, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SP_SECRET", SECRET)
    journal = Journal(tmp_path / "j.db")
    before = len(entra.token_requests())
    client = client_for(sim, journal, {
        "type": "client_secret", "tenant_id": TENANT, "client_id": "sp-secret", "client_secret_env": "SP_SECRET",
        "authority": entra.authority, "credential_options": {"disable_instance_discovery": True}})
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            assert client.chat.completions.create(model="gpt-4o", messages=MSG).choices
    client.close()
    [request] = new_requests(entra, before)  # one token for three calls
    assert request["tenant"] == TENANT
    assert request["form"]["grant_type"] == "client_credentials"
    assert request["form"]["client_id"] == "sp-secret" and request["form"]["client_secret"] == SECRET
    assert "https://cognitiveservices.azure.com/.default" in request["form"]["scope"].split()
    rows = journal.events()
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert_nothing_secret_stored(journal, SECRET, token_for("sp-secret"))
    assert SECRET not in caplog.text and token_for("sp-secret") not in caplog.text


def test_a_rejected_secret_fails_the_call_without_leaking_it(entra: EntraServer, sim: Simulator, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    wrong = "sp-WRONG-secret-9876543210"
    entra.reject_secret = wrong
    journal = Journal(tmp_path / "j.db")
    client = client_for(sim, journal, {
        "type": "client_secret", "tenant_id": TENANT, "client_id": "sp-secret", "client_secret": wrong,
        "authority": entra.authority, "credential_options": {"disable_instance_discovery": True}})
    try:
        with pytest.raises(ClientAuthenticationError) as err:
            client.chat.completions.create(model="gpt-4o", messages=MSG)
    finally:
        entra.reject_secret = None
    client.close()
    assert "AADSTS7000215" in str(err.value) and wrong not in str(err.value)
    [row] = journal.events()
    assert row["status"] == "error" and row["error_type"] == "ClientAuthenticationError" and row["attempts"] == 0
    assert_nothing_secret_stored(journal, wrong)


def test_service_principal_with_a_certificate(entra: EntraServer, sim: Simulator, tmp_path: Path) -> None:
    cert, key = self_signed("sp-cert", tmp_path / "client", server=False)
    pem = tmp_path / "client.pem"
    pem.write_bytes(key.read_bytes() + cert.read_bytes())
    journal = Journal(tmp_path / "j.db")
    before = len(entra.token_requests())
    client = client_for(sim, journal, {
        "type": "certificate", "tenant_id": TENANT, "client_id": "sp-cert", "certificate_path": str(pem),
        "authority": entra.authority, "credential_options": {"disable_instance_discovery": True}})
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    [request] = new_requests(entra, before)
    form = request["form"]
    assert form["grant_type"] == "client_credentials" and "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    claims = decode_jwt(form["client_assertion"])  # signed by the certificate's key
    assert claims["iss"] == claims["sub"] == "sp-cert"
    assert claims["aud"].endswith(f"/{TENANT}/oauth2/v2.0/token")
    assert journal.events()[0]["status"] == "ok"


def test_workload_identity_from_the_environment(entra: EntraServer, sim: Simulator, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    federated = tmp_path / "azure-identity-token"
    federated.write_text("kubernetes-service-account-token")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(federated))
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", "workload-app")
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", entra.authority)
    journal = Journal(tmp_path / "j.db")
    before = len(entra.token_requests())
    client = client_for(sim, journal, {"type": "workload_identity",
                                       "credential_options": {"disable_instance_discovery": True}})
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    [request] = new_requests(entra, before)
    assert request["tenant"] == TENANT
    assert request["form"]["client_id"] == "workload-app"
    assert request["form"]["client_assertion"] == "kubernetes-service-account-token"
    assert journal.events()[0]["status"] == "ok"


def test_workload_identity_needs_its_environment(sim: Simulator, tmp_path: Path) -> None:
    from tokenid import ConfigError

    with pytest.raises(ConfigError, match=r"\['auth'\]\['tenant_id'\] is required for this auth type "
                                          r"\(or set AZURE_TENANT_ID\)"):
        client_for(sim, Journal(tmp_path / "j.db"), "workload_identity")


@pytest.mark.parametrize(("auth", "client_id"), [
    ("managed_identity", "system-assigned"),
    ({"type": "managed_identity", "client_id": "user-mi"}, "user-mi"),
])
def test_managed_identity_through_imds(entra: EntraServer, sim: Simulator, tmp_path: Path, auth: Any,
                                       client_id: str) -> None:
    journal = Journal(tmp_path / "j.db")
    before = len(entra.token_requests())
    client = client_for(sim, journal, auth)
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    [request] = new_requests(entra, before)
    assert request["kind"] == "imds"
    assert request["headers"].get("Metadata") == "true"
    assert request["query"]["resource"] == "https://cognitiveservices.azure.com"
    assert request["query"].get("client_id") == (None if client_id == "system-assigned" else client_id)
    assert [r["status"] for r in journal.events()] == ["ok", "ok"]
    assert_nothing_secret_stored(journal, token_for(client_id))


def test_default_azure_credential_uses_the_environment(entra: EntraServer, sim: Simulator, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", "default-app")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", entra.authority)
    journal = Journal(tmp_path / "j.db")
    before = len(entra.token_requests())
    client = client_for(sim, journal, {"type": "default", "credential_options": {
        "disable_instance_discovery": True, "exclude_managed_identity_credential": True,
        "exclude_cli_credential": True, "exclude_powershell_credential": True,
        "exclude_developer_cli_credential": True, "exclude_visual_studio_code_credential": True}})
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    [request] = new_requests(entra, before)
    assert request["form"]["client_id"] == "default-app" and request["form"]["client_secret"] == SECRET
    assert journal.events()[0]["status"] == "ok"
    assert_nothing_secret_stored(journal, SECRET, token_for("default-app"))


async def test_async_client_refreshes_in_a_worker_thread(entra: EntraServer, sim: Simulator, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    before = len(entra.token_requests())
    client = client_for(sim, journal, {"type": "managed_identity", "client_id": "async-mi"},
                        cls=AsyncJournaledAzureOpenAI)
    for _ in range(3):
        await client.chat.completions.create(model="gpt-4o", messages=MSG)
    await client.close()
    assert len(new_requests(entra, before)) == 1
    assert [r["status"] for r in journal.events()] == ["ok"] * 3


def test_token_provider_on_a_plain_client_and_a_static_token(entra: EntraServer, sim: Simulator,
                                                             tmp_path: Path) -> None:
    from azure.identity import ManagedIdentityCredential

    journal = Journal(tmp_path / "j.db")
    provider = token_provider(ManagedIdentityCredential(client_id="user-mi"))
    client = JournaledAzureOpenAI(azure_endpoint=sim.azure_endpoint, api_version=AZURE_VERSION, journal=journal,
                                  azure_ad_token_provider=provider, max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    static = client_for(sim, journal, {"type": "azure_ad_token", "token": token_for("user-mi")})
    static.chat.completions.create(model="gpt-4o", messages=MSG)
    wrong = client_for(sim, journal, {"type": "azure_ad_token", "token": "not-a-token-from-entra"})
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="gpt-4o", messages=MSG)
    for c in (client, static, wrong):
        c.close()
    assert provider.fetches == 1
    assert [r["status"] for r in journal.events()] == ["ok", "ok", "error"]
    assert_nothing_secret_stored(journal, token_for("user-mi"), "not-a-token-from-entra")


class CountingCredential:
    """A TokenCredential of our own: hands out numbered tokens that live ``lifetime`` seconds, or fails."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.calls = 0
        self.fail = False

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        if self.fail:
            raise RuntimeError("token endpoint unreachable")
        return AccessToken(f"token-{self.calls}", int(time.time() + self.lifetime))


def test_token_is_reused_until_the_refresh_margin() -> None:
    credential = CountingCredential(lifetime=3600)
    provider = TokenProvider(credential, refresh_margin_s=300)
    assert [provider() for _ in range(50)] == ["token-1"] * 50
    assert credential.calls == 1
    # a token inside the margin is refreshed before it expires
    provider._refresh_at = time.time() - 1
    assert provider() == "token-2" and credential.calls == 2


def test_short_lived_tokens_are_refreshed_at_half_life() -> None:
    credential = CountingCredential(lifetime=2)
    provider = TokenProvider(credential, refresh_margin_s=300)
    assert provider() == "token-1"
    assert provider() == "token-1"
    time.sleep(1.1)
    assert provider() == "token-2"


def test_a_failed_refresh_keeps_a_valid_token_and_never_an_expired_one() -> None:
    credential = CountingCredential(lifetime=3600)
    provider = TokenProvider(credential, refresh_margin_s=300)
    assert provider() == "token-1"
    credential.fail = True
    provider._refresh_at = time.time() - 1
    assert provider() == "token-1"  # still valid: used, refresh retried later
    assert provider._refresh_at > time.time() + 20
    provider._refresh_at = time.time() - 1
    provider._expires_on = time.time() + 10  # about to expire: not handed out
    with pytest.raises(RuntimeError, match="unreachable"):
        provider()


async def test_async_provider_returns_the_cached_token_without_a_thread() -> None:
    credential = CountingCredential(lifetime=3600)
    provider = AsyncTokenProvider(TokenProvider(credential))
    assert [await provider() for _ in range(5)] == ["token-1"] * 5
    assert credential.calls == 1


def test_a_token_is_fetched_again_before_it_expires(entra: EntraServer, sim: Simulator, tmp_path: Path) -> None:
    entra.expires_in = 4  # short-lived: refreshed at half its life, never used past expiry
    try:
        journal = Journal(tmp_path / "j.db")
        before = len(entra.token_requests())
        client = client_for(sim, journal, {"type": "managed_identity", "client_id": "user-mi"})
        client.chat.completions.create(model="gpt-4o", messages=MSG)
        client.chat.completions.create(model="gpt-4o", messages=MSG)
        assert len(new_requests(entra, before)) == 1
        time.sleep(2.2)
        client.chat.completions.create(model="gpt-4o", messages=MSG)
        client.close()
    finally:
        entra.expires_in = 3599
    assert len(new_requests(entra, before)) == 2
    assert [r["status"] for r in journal.events()] == ["ok"] * 3
