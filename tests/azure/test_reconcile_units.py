"""Meters billed per image, per character and for fine-tuned models, reconciled against real journaled calls."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from tokenid import Journal
from tokenid.azure.exports import CostLine
from tokenid.azure.reconcile import reconcile
from tokenid.simulator import Simulator

from conftest import make_client

ACCOUNT_ID = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/media-oai"
DEPLOYMENTS: dict[str, Any] = {
    "dall-e-3": {"model": "dall-e-3", "type": "global"},
    "tts": {"model": "tts-1"},
    "gpt-4o-mini": {"model": "gpt-4o-mini", "version": "2024-07-18", "type": "global"},
}
# DALL·E 3 per image and tts-1 per 1M characters: openai.com/api/pricing, the prices Azure lists for these meters
STANDARD_1024 = Decimal("0.04")
HD_1792 = Decimal("0.12")
TTS_PER_MILLION = Decimal("15")


def line(day: date, meter: str, unit: str, quantity: Decimal, cost: Decimal) -> CostLine:
    return CostLine(day=day, account_id=ACCOUNT_ID, account_name="media-oai", resource_group="rg",
                    subscription_id="s1", region="swedencentral", meter_name=meter, meter_id="", meter_category="",
                    meter_subcategory="", product="Azure OpenAI", unit_of_measure=unit, quantity=quantity, cost=cost,
                    cost_usd=cost, currency="USD", exchange_rate=None, unit_price=None, charge_type="Usage",
                    pricing_model="OnDemand", tags={}, source="t:2")


def test_images_and_characters_are_matched_to_journaled_units(sim: Simulator, journal: Journal) -> None:
    client = make_client("azure", sim, journal, deployments=DEPLOYMENTS, session_id="marketing")
    for _ in range(3):
        client.images.generate(model="dall-e-3", prompt="a lighthouse", size="1024x1024", quality="standard")
    client.images.generate(model="dall-e-3", prompt="a storm", size="1024x1792", quality="hd")
    texts = ["Welcome to the quarterly review.", "Thank you for listening, and goodbye."]
    for text in texts:
        client.audio.speech.create(model="tts", voice="alloy", input=text).read()
    client.close()
    journal.flush()
    day = datetime.now(timezone.utc).date()
    characters = Decimal(sum(len(t) for t in texts))
    lines = [
        line(day, "Az-Image-Dall-E-3 Standard LowRes Images", "100", Decimal("0.03"), 3 * STANDARD_1024),
        line(day, "Az-Image-Dall-E-3 HD HighRes Images", "100", Decimal("0.01"), HD_1792),
        line(day, "Az-Speech-Text to Speech Characters", "1M", characters / 1_000_000,
             characters * TTS_PER_MILLION / 1_000_000),
    ]
    result = reconcile(lines, journal, accounts={"127.0.0.1": "media-oai"})
    by_meter = {ln.meter_name: ln for ln in result.lines}
    assert {ln.status for ln in result.lines} == {"matched"}, [(ln.meter_name, ln.status, ln.note)
                                                               for ln in result.lines]
    standard = by_meter["Az-Image-Dall-E-3 Standard LowRes Images"]
    assert standard.journal_quantity == Decimal("0.03") and standard.variance_pct == 0
    assert [(a.deployment, a.session_id, a.cost_usd, a.basis) for a in standard.allocations] == [
        ("dall-e-3", "marketing", 3 * STANDARD_1024, "units")]
    assert by_meter["Az-Image-Dall-E-3 HD HighRes Images"].journal_quantity == Decimal("0.01")
    speech = by_meter["Az-Speech-Text to Speech Characters"]
    assert speech.journal_quantity == characters / 1_000_000
    assert speech.journal_cost_usd is not None and abs(speech.variance_pct or 0) <= Decimal("0.5")

    # the same images billed on the wrong quality: not matched, reported as billed-not-journaled and journal-only
    wrong = reconcile([line(day, "Az-Image-Dall-E-3 HD LowRes Images", "100", Decimal("0.03"), Decimal("0.24"))],
                      journal, accounts={"127.0.0.1": "media-oai"})
    statuses = sorted(ln.status for ln in wrong.lines)
    assert statuses.count("invoice_only") == 1 and "journal_only" in statuses


def test_fine_tuned_meters_take_only_fine_tuned_deployments(sim: Simulator, journal: Journal) -> None:
    deployments = {**DEPLOYMENTS, "support-ft": {"model": "gpt-4o-mini", "version": "2024-07-18", "type": "global"}}
    client = make_client("azure", sim, journal, deployments=deployments)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "base model"}])
    journal.flush()
    base_tokens = journal.events()[0]["input_tokens"]
    client.close()
    # a fine-tuned deployment: journaled with the ft model the simulator does not serve, inserted as the writer would
    from tokenid.call import row_tuple

    day = datetime.now(timezone.utc).date()
    journal.store.insert([row_tuple({
        "id": "ft-1", "started_at": f"{day.isoformat()}T12:00:00Z", "provider": "azure_openai",
        "endpoint": "chat.completions", "resource": "127.0.0.1", "deployment": "support-ft",
        "model_served": "gpt-4o-mini-2024-07-18.ft-abc123", "canonical_model": "gpt-4o-mini-2024-07-18",
        "deployment_type": "global", "input_tokens": 2000, "output_tokens": 0, "usage_source": "reported",
        "status": "ok", "cost_usd": "0.0003", "cost_nanousd": 300_000})])
    lines = [line(day, "gpt-4o-mini-0718-Inp-glbl Tokens", "1K", Decimal(base_tokens) / 1000,
                  Decimal(base_tokens) * Decimal("0.00000015")),
             line(day, "gpt 4o mini 0718 Inp glbl FT Tokens", "1K", Decimal(2), Decimal("0.00033"))]
    result = reconcile(lines, journal, accounts={"127.0.0.1": "media-oai"})
    by_meter = {ln.meter_name: ln for ln in result.lines}
    assert by_meter["gpt-4o-mini-0718-Inp-glbl Tokens"].journal_tokens == base_tokens
    tuned = by_meter["gpt 4o mini 0718 Inp glbl FT Tokens"]
    assert tuned.journal_tokens == 2000 and [a.deployment for a in tuned.allocations] == ["support-ft"]
