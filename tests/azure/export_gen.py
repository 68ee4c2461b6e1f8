"""Deterministic, realistic Azure Cost Management exports for the tests and the benchmark.

``make_rows`` yields logical invoice rows (:class:`GenRow`) built from real Azure OpenAI meter names; the writers turn
them into every export format the reader supports: legacy EA (2024-08-01 names, and the older names of Microsoft's
own EA sample file), MCA, FOCUS 1.0 / 1.0r2 / 1.2-preview / 1.2, as CSV, gzip CSV or Parquet, and export folders
with ``manifest.json``. ``expected_line`` says what a correct reader returns for a row.

With ``traps=True`` the rows include what makes Azure billing data hard to read (shared/azure-billing/EXPORTS.md
§6 and §1-2): ResourceIds in mixed case and naming a child ``/projects/…`` resource, 1K / 1M / hour / per-100 units,
FOCUS ``PricingQuantity`` and ``ContractedCost`` divided by the block size, ``ConsumedUnit`` "Units", PTU hours
covered by a reservation (billed 0, amortized > 0), a reservation purchase without an account, unused-reservation
rows, fine-tune hosting, other services on the same subscription and on the same AI account, and Tags with commas,
quotes and newlines. Money is ``Decimal`` end to end, so a reader's sums can be compared exactly.
"""

from __future__ import annotations

import csv
import functools
import gzip as gzip_module
import io
import json
import random
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenid.azure.exports import CostLine

# --- real meter names --------------------------------------------------------------------------------------------
# Meter names, units and product names copied from shared/azure-billing/meters.csv (Azure Retail Prices API, 2025-08
# list: guygregory/modelmeters.com @d4a64106). Prices per block are illustrative USD retail figures in the spirit of
# shared/azure-billing/PRICING.md; the reader never looks at them, it only has to carry them exactly.


@dataclass(frozen=True)
class Meter:
    name: str
    unit: str  # UnitOfMeasure as the legacy exports write it
    product: str
    price: Decimal  # USD per block
    block: int  # tokens (or other units) per block: x_PricingBlockSize
    consumed_unit: str  # FOCUS ConsumedUnit / PricingUnit
    openai: bool = True
    category: str = "Cognitive Services"
    subcategory: str = "Azure OpenAI"


TOKEN_METERS = (
    Meter("gpt 4o 0513 Input global Tokens", "1K", "Azure OpenAI", Decimal("0.005"), 1000, "Units"),
    Meter("gpt 4o 0513 Output global Tokens", "1K", "Azure OpenAI", Decimal("0.015"), 1000, "Units"),
    Meter("gpt-4o-mini-0718-Inp-glbl Tokens", "1K", "Azure OpenAI", Decimal("0.00015"), 1000, "Units"),
    Meter("gpt-4o-mini-0718-Outp-glbl Tokens", "1K", "Azure OpenAI", Decimal("0.0006"), 1000, "Units"),
    Meter("gpt 4o 1120 cached Inp Data Zone Tokens", "1K", "Azure OpenAI", Decimal("0.001375"), 1000, "Units"),
    Meter("gpt 4o mini0718 BatchOutp DataZone Tokens", "1K", "Azure OpenAI", Decimal("0.00033"), 1000, "Units"),
    Meter("text-embedding-3-small-glbl Tokens", "1K", "Azure OpenAI", Decimal("0.00002"), 1000, "Units"),
    Meter("gpt-4o-rt-aud-1217 Inp glbl Tokens", "1K", "Azure OpenAI", Decimal("0.04"), 1000, "Units"),
    Meter("GPT 5 Mini Inpt Glbl 1M Tokens", "1M", "Azure OpenAI GPT5", Decimal("0.25"), 1_000_000, "Units"),
    Meter("GPT 5 Mini outpt Glbl 1M Tokens", "1M", "Azure OpenAI GPT5", Decimal("2"), 1_000_000, "Units"),
    Meter("GPT 5 Mini cchd Inpt DZone 1M Tokens", "1M", "Azure OpenAI GPT5", Decimal("0.0275"), 1_000_000, "Units"),
)
PTU_METER = Meter("Provisioned Managed Global Unit", "1/Hour", "Azure OpenAI", Decimal("1"), 1, "Hours")
HOSTING_METER = Meter("gpt-4o-mini-0718-FT-Hstng-glbl Unit", "1 Hour", "Azure OpenAI", Decimal("1.7"), 1, "Hours")
IMAGE_METER = Meter("Image-Dall-E-3 Std LowRes-glbl Images", "100", "Azure OpenAI", Decimal("4"), 100, "Units")
RESERVATION_METER = Meter("Provisioned Managed Global Unit", "1/Month", "Azure AI Foundry Provisioned Throughput "
                          "Reservation", Decimal("260"), 1, "Units")  # fmt: skip
# Other services: a Language meter seen on a real AI Services account (SOURCES.md) and a storage meter from
# Microsoft's EA sample export. A reader keeping only Azure OpenAI must drop both.
LANGUAGE_METER = Meter("Standard Text Records", "1K", "Language", Decimal("0.001"), 1000, "Units", openai=False,
                       category="Foundry Tools", subcategory="Language")  # fmt: skip
STORAGE_METER = Meter("GRS List and Create Container Operations", "10K", "Tiered Block Blob - GRS - List and Create "
                      "Container Operations - US East 2", Decimal("0.1"), 10_000, "Units", openai=False,
                      category="Storage", subcategory="Tiered Block Blob")  # fmt: skip


@dataclass(frozen=True)
class Account:
    subscription: str
    resource_group: str  # as Azure shows it (mixed case)
    name: str  # as Azure shows it (mixed case)
    location: str  # ResourceLocation as EA writes it ("EastUS2")
    region: str  # normalised ("eastus2")
    region_name: str  # FOCUS RegionName ("East US 2")
    category: str = "Cognitive Services"

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.CognitiveServices/accounts/{self.name}")

    @property
    def account_id(self) -> str:
        return self.resource_id.lower()


ACCOUNTS = (
    Account("5f0c1e6a-3b7d-4c1e-9a2f-0d4e6b8c1a23", "RG-AI-Prod", "Contoso-OAI-EastUS2", "EastUS2", "eastus2",
            "East US 2"),
    Account("5f0c1e6a-3b7d-4c1e-9a2f-0d4e6b8c1a23", "RG-AI-Prod", "contoso-oai-swc", "SwedenCentral",
            "swedencentral", "Sweden Central", category="Foundry Models"),
    Account("b2d4f6a8-1c3e-4a5b-8d7f-9e0a1b2c3d4e", "rg-research", "Fabrikam-Research", "westus3", "westus3",
            "West US 3"),
)
STORAGE_ID = "/subscriptions/5f0c1e6a-3b7d-4c1e-9a2f-0d4e6b8c1a23/resourceGroups/RG-AI-Prod/providers/Microsoft.Storage/storageAccounts/contosologs"  # noqa: E501
RESERVATION_ID = "/providers/Microsoft.Capacity/reservationOrders/0f2a9c1e-7b3d-4e5f-8a6b-1c2d3e4f5a6b/reservations/9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a"  # noqa: E501
TAG_SETS: tuple[dict[str, str], ...] = (
    {},
    {"env": "prod", "team": "search"},
    {"cost-center": '42, "north"', "note": "line one\nline two", "env": "prod"},
)


@dataclass(frozen=True)
class GenRow:
    index: int
    day: date
    account: Account | None  # None: not on an AI account (storage, reservation purchase)
    resource_id: str  # as the legacy exports write it (FOCUS lower-cases it)
    meter: Meter
    quantity: Decimal  # blocks
    unit_price: Decimal  # USD per block (effective)
    kind: str  # usage | covered (reservation-covered) | purchase | unused (unused reservation)
    billed_usd: Decimal
    effective_usd: Decimal
    currency: str
    rate: Decimal  # pricing (USD) → billing currency
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def billed(self) -> Decimal:
        return self.billed_usd * self.rate

    @property
    def effective(self) -> Decimal:
        return self.effective_usd * self.rate

    @property
    def openai(self) -> bool:
        return self.meter.openai

    @property
    def home(self) -> Account:
        """The account the row is about, or the subscription's first one for rows on no account."""
        return self.account or ACCOUNTS[0]

    @property
    def meter_id(self) -> str:
        return _meter_id(self.meter.name, self.home.region)

    @property
    def account_id(self) -> str:
        """What the reader must report: the account's id, case-folded, without child resources."""
        return self.account.account_id if self.account else self.resource_id.lower()

    def in_dataset(self, dataset: str) -> bool:
        """Actual cost has purchases and no unused-reservation rows; Amortized the opposite; FOCUS has both."""
        if dataset == "actual":
            return self.kind != "unused"
        if dataset == "amortized":
            return self.kind != "purchase"
        return True

    def cost(self, dataset: str, focus_cost: str = "billed") -> tuple[Decimal, Decimal]:
        """(billing-currency cost, USD cost) as the dataset reports it."""
        if dataset == "amortized" or (dataset == "focus" and focus_cost == "effective"):
            return self.effective, self.effective_usd
        return self.billed, self.billed_usd


@functools.cache
def _meter_id(meter: str, region: str) -> str:
    """A stable GUID per (meter, region), like Azure's MeterId."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"meter:{meter}:{region}"))


def make_rows(n: int, *, seed: int = 7, start: date = date(2025, 3, 1), days: int = 28, traps: bool = True,
              currency: str = "USD", rate: Decimal = Decimal(1)) -> Iterator[GenRow]:
    """``n`` rows spread over ``days`` days from ``start``, deterministic for a seed."""
    rng = random.Random(seed)
    for i in range(n):
        day = start + timedelta(days=i % days)
        account = ACCOUNTS[(i // 3) % len(ACCOUNTS)]
        meter = TOKEN_METERS[rng.randrange(len(TOKEN_METERS))]
        kind = "usage"
        resource_id = account.resource_id
        if traps:
            slot = i % 50
            if slot in (3, 13, 23, 33, 43):
                meter = STORAGE_METER
            elif slot in (7, 37):
                meter = LANGUAGE_METER
            elif slot in (5, 30):
                meter, kind = PTU_METER, "covered" if slot == 5 else "usage"
            elif slot == 11:
                meter = HOSTING_METER
            elif slot == 19:
                meter = IMAGE_METER
            elif slot == 17:
                meter, kind = RESERVATION_METER, "purchase"
            elif slot == 29:
                meter, kind = PTU_METER, "unused"
            variant = (i // 7) % 3  # the same account spelled three ways
            if variant == 1:
                resource_id = resource_id.lower()
            elif variant == 2:
                resource_id = resource_id.upper().replace("/ACCOUNTS/", "/accounts/") + "/projects/Chat-App"
        if meter is STORAGE_METER:
            resource_id, account = STORAGE_ID, None
        elif meter is RESERVATION_METER:
            resource_id, account = RESERVATION_ID, None
        tags = TAG_SETS[i % len(TAG_SETS)] if traps else TAG_SETS[1]
        if meter.block >= 1000:
            quantity = Decimal(rng.randint(1, 40_000_000)).scaleb(-len(str(meter.block)) + 1)
        elif meter is RESERVATION_METER:
            quantity = Decimal(rng.choice((50, 100)))
        else:
            quantity = Decimal(rng.randint(1, 24_000)).scaleb(-3)  # hours, prorated by the minute
        price = meter.price
        billed_usd = effective_usd = quantity * price
        if kind == "covered":
            billed_usd, effective_usd = Decimal(0), quantity * Decimal("0.3561643836")  # $260/PTU-month, hourly
        elif kind == "purchase":
            effective_usd = Decimal(0)
        elif kind == "unused":
            billed_usd, effective_usd = Decimal(0), quantity * Decimal("0.3561643836")
        yield GenRow(i, day, account, resource_id, meter, quantity, price, kind, billed_usd, effective_usd, currency,
                     rate, dict(tags))


# --- column lists (facts: Microsoft's export schemas as listed in shared/azure-billing/EXPORTS.md) ------------------
EA_COLUMNS = (
    "InvoiceSectionName", "AccountName", "AccountOwnerId", "SubscriptionId", "SubscriptionName", "ResourceGroup",
    "ResourceLocation", "Date", "ProductName", "MeterCategory", "MeterSubCategory", "MeterId", "MeterName",
    "MeterRegion", "UnitOfMeasure", "Quantity", "EffectivePrice", "CostInBillingCurrency", "CostCenter",
    "ConsumedService", "ResourceId", "Tags", "OfferId", "AdditionalInfo", "ServiceInfo1", "ServiceInfo2",
    "ResourceName", "ReservationId", "ReservationName", "UnitPrice", "ProductOrderId", "ProductOrderName", "Term",
    "PublisherType", "PublisherName", "ChargeType", "Frequency", "PricingModel", "AvailabilityZone",
    "BillingAccountId", "BillingAccountName", "BillingCurrencyCode", "BillingPeriodStartDate", "BillingPeriodEndDate",
    "BillingProfileId", "BillingProfileName", "InvoiceSectionId", "IsAzureCreditEligible", "PartNumber", "PayGPrice",
    "PlanName", "ServiceFamily", "CostAllocationRuleName", "benefitId", "benefitName", "AccountId",
    "ResourceLocationNormalized",
)
# The header of Microsoft's real EA export in the FinOps toolkit test assets (samples/EA_ActualCost_Small.csv):
# older names Cost, BillingCurrency, Product.
EA_SAMPLE_COLUMNS = (
    "BillingAccountId", "BillingAccountName", "BillingPeriodStartDate", "BillingPeriodEndDate", "BillingProfileId",
    "BillingProfileName", "AccountOwnerId", "AccountName", "SubscriptionId", "SubscriptionName", "Date", "Product",
    "PartNumber", "MeterId", "ServiceFamily", "MeterCategory", "MeterSubCategory", "MeterRegion", "MeterName",
    "Quantity", "EffectivePrice", "Cost", "UnitPrice", "BillingCurrency", "ResourceLocation", "AvailabilityZone",
    "ConsumedService", "ResourceId", "ResourceName", "ServiceInfo1", "ServiceInfo2", "AdditionalInfo", "Tags",
    "InvoiceSectionId", "InvoiceSection", "CostCenter", "UnitOfMeasure", "ResourceGroup", "ReservationId",
    "ReservationName", "ProductOrderId", "ProductOrderName", "OfferId", "IsAzureCreditEligible", "Term",
    "PublisherName", "PlanName", "ChargeType", "Frequency", "PublisherType", "PayGPrice", "PricingModel",
    "CostAllocationRuleName", "benefitId", "benefitName",
)
MCA_COLUMNS = (
    "invoiceId", "previousInvoiceId", "billingAccountId", "billingAccountName", "billingProfileId",
    "billingProfileName", "invoiceSectionId", "invoiceSectionName", "resellerName", "resellerMpnId", "costCenter",
    "billingPeriodEndDate", "billingPeriodStartDate", "servicePeriodEndDate", "servicePeriodStartDate", "date",
    "serviceFamily", "productOrderId", "productOrderName", "consumedService", "meterId", "meterName", "meterCategory",
    "meterSubCategory", "meterRegion", "ProductId", "ProductName", "SubscriptionId", "subscriptionName",
    "publisherType", "publisherId", "publisherName", "resourceGroupName", "ResourceId", "resourceLocation",
    "location", "effectivePrice", "quantity", "unitOfMeasure", "chargeType", "billingCurrency", "pricingCurrency",
    "costInBillingCurrency", "costInPricingCurrency", "costInUsd", "paygCostInBillingCurrency", "paygCostInUsd",
    "exchangeRatePricingToBilling", "exchangeRateDate", "isAzureCreditEligible", "serviceInfo1", "serviceInfo2",
    "additionalInfo", "tags", "PayGPrice", "frequency", "term", "reservationId", "reservationName", "pricingModel",
    "unitPrice", "costAllocationRuleName", "benefitId", "benefitName", "provider",
)
FOCUS_10_COLUMNS = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory", "CommitmentDiscountId",
    "CommitmentDiscountName", "CommitmentDiscountStatus", "CommitmentDiscountType", "ConsumedQuantity",
    "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName",
    "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName", "Tags",
    "x_AccountId", "x_AccountName", "x_AccountOwnerId", "x_BilledCostInUsd", "x_BilledUnitPrice",
    "x_BillingAccountId", "x_BillingAccountName", "x_BillingExchangeRate", "x_BillingExchangeRateDate",
    "x_BillingProfileId", "x_BillingProfileName", "x_ContractedCostInUsd", "x_CostAllocationRuleName",
    "x_CostCenter", "x_CustomerId", "x_CustomerName", "x_EffectiveCostInUsd", "x_EffectiveUnitPrice", "x_InvoiceId",
    "x_InvoiceIssuerId", "x_InvoiceSectionId", "x_InvoiceSectionName", "x_ListCostInUsd", "x_PricingBlockSize",
    "x_PricingCurrency", "x_PricingSubcategory", "x_PricingUnitDescription", "x_PublisherCategory",
    "x_PublisherId", "x_ResourceGroupName", "x_ResourceType", "x_ServicePeriodEnd", "x_ServicePeriodStart",
    "x_SkuDescription", "x_SkuDetails", "x_SkuIsCreditEligible", "x_SkuMeterCategory", "x_SkuMeterId",
    "x_SkuMeterName", "x_SkuMeterSubcategory", "x_SkuOfferId", "x_SkuOrderId", "x_SkuOrderName", "x_SkuPartNumber",
    "x_SkuRegion", "x_SkuServiceFamily", "x_SkuTerm", "x_SkuTier",
)
FOCUS_12_ADDED = (
    "SkuMeter", "InvoiceId", "PricingCurrency", "SubAccountType", "ServiceSubcategory", "CapacityReservationId",
    "CapacityReservationStatus", "CommitmentDiscountQuantity", "CommitmentDiscountUnit", "SkuPriceDetails",
    "x_AmortizationClass", "x_ServiceModel", "x_SkuPlanName",
)
FOCUS_12_PREVIEW_COLUMNS = FOCUS_10_COLUMNS + FOCUS_12_ADDED
FOCUS_12_COLUMNS = tuple(c for c in FOCUS_12_PREVIEW_COLUMNS if c not in ("x_SkuDetails", "x_SkuMeterName"))

FORMATS = ("ea", "ea-sample", "mca", "focus-1.0", "focus-1.0r2", "focus-1.2-preview", "focus-1.2")
COLUMNS = {"ea": EA_COLUMNS, "ea-sample": EA_SAMPLE_COLUMNS, "mca": MCA_COLUMNS, "focus-1.0": FOCUS_10_COLUMNS,
           "focus-1.0r2": FOCUS_10_COLUMNS, "focus-1.2-preview": FOCUS_12_PREVIEW_COLUMNS,
           "focus-1.2": FOCUS_12_COLUMNS}  # fmt: skip
NUMERIC = frozenset({
    "Quantity", "EffectivePrice", "CostInBillingCurrency", "Cost", "UnitPrice", "PayGPrice", "quantity",
    "effectivePrice", "costInBillingCurrency", "costInPricingCurrency", "costInUsd", "paygCostInBillingCurrency",
    "paygCostInUsd", "exchangeRatePricingToBilling", "unitPrice", "BilledCost", "EffectiveCost", "ListCost",
    "ContractedCost", "ConsumedQuantity", "PricingQuantity", "ListUnitPrice", "ContractedUnitPrice",
    "x_BilledCostInUsd", "x_EffectiveCostInUsd", "x_BillingExchangeRate", "x_EffectiveUnitPrice",
    "x_BilledUnitPrice", "x_ListCostInUsd", "x_ContractedCostInUsd", "x_PricingBlockSize",
})  # fmt: skip
TIMESTAMPS = frozenset({"ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"})


def dataset_of(fmt: str, dataset: str) -> str:
    return "focus" if fmt.startswith("focus") else dataset


def _num(value: Decimal) -> str:
    return f"{value:f}"


def _legacy_charge(row: GenRow) -> tuple[str, str]:
    return {"usage": ("Usage", "OnDemand"), "covered": ("Usage", "Reservation"),
            "purchase": ("Purchase", "Reservation"), "unused": ("UnusedReservation", "Reservation")}[row.kind]


def _focus_charge(row: GenRow) -> tuple[str, str, str, str]:
    """ChargeCategory, PricingCategory, CommitmentDiscountStatus, CommitmentDiscountType."""
    return {"usage": ("Usage", "Standard", "", ""), "covered": ("Usage", "Committed", "Used", "Reservation"),
            "purchase": ("Purchase", "", "", "Reservation"),
            "unused": ("Usage", "Committed", "Unused", "Reservation")}[row.kind]


def record(row: GenRow, fmt: str, *, dataset: str = "actual", date_style: str | None = None) -> dict[str, str]:
    """One row as the export of ``fmt`` writes it: column → text."""
    where = row.home
    product = row.meter.product
    section = "AI Platform\n(North)" if row.tags.get("note") else "AI Platform"  # a raw newline inside a field
    category = where.category if row.meter.openai and row.meter.category == "Cognitive Services" else row.meter.category
    tags_json = json.dumps(row.tags, separators=(",", ": ")) if row.tags else ""
    month_start = row.day.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1)
    if fmt.startswith("focus"):
        charge, pricing, status, ctype = _focus_charge(row)
        seconds = ":00" if fmt != "focus-1.0" else ""

        def stamp(d: date) -> str:
            return f"{d.isoformat()}T00:00{seconds}Z"

        sub_category = row.meter.name.removesuffix(" Tokens") if row.meter.openai else row.meter.subcategory
        ptype = "microsoft.cognitiveservices/accounts" if row.account else (
            "microsoft.storage/storageaccounts" if row.meter is STORAGE_METER else "microsoft.capacity/reservations")
        return {
            "BilledCost": _num(row.billed), "EffectiveCost": _num(row.effective),
            "ListCost": _num(row.quantity * row.unit_price * row.rate), "ListUnitPrice": _num(row.unit_price),
            # The §6.2 trap: PricingQuantity (and so ContractedCost) divided by the block size a second time.
            "PricingQuantity": _num(row.quantity / row.meter.block),
            "ContractedCost": _num(row.quantity / row.meter.block * row.unit_price * row.rate),
            "ContractedUnitPrice": _num(row.unit_price), "ConsumedQuantity": _num(row.quantity),
            "ConsumedUnit": row.meter.consumed_unit, "PricingUnit": row.meter.consumed_unit,
            "x_PricingBlockSize": str(row.meter.block), "x_PricingUnitDescription": row.meter.unit,
            "BillingAccountId": "/providers/Microsoft.Billing/billingAccounts/8611537", "BillingAccountName": "Contoso",
            "BillingCurrency": row.currency, "PricingCurrency": "USD", "x_PricingCurrency": "USD",
            "x_BillingExchangeRate": _num(row.rate), "x_BilledCostInUsd": _num(row.billed_usd),
            "x_EffectiveCostInUsd": _num(row.effective_usd), "x_EffectiveUnitPrice": _num(row.unit_price),
            "x_BilledUnitPrice": _num(row.unit_price),
            "BillingPeriodStart": stamp(month_start), "BillingPeriodEnd": stamp(month_end),
            "ChargePeriodStart": stamp(row.day), "ChargePeriodEnd": stamp(row.day + timedelta(days=1)),
            "ChargeCategory": charge, "ChargeFrequency": "Usage-Based" if charge == "Usage" else "Recurring",
            "ChargeDescription": product, "PricingCategory": pricing, "CommitmentDiscountStatus": status,
            "CommitmentDiscountType": ctype, "CommitmentDiscountId": RESERVATION_ID.lower() if ctype else "",
            "ProviderName": "Microsoft", "PublisherName": "Microsoft", "InvoiceIssuerName": "Microsoft",
            "RegionId": where.region, "RegionName": where.region_name, "ResourceId": row.resource_id.lower(),
            "ResourceName": row.resource_id.rsplit("/", 1)[-1], "ResourceType": "Cognitive Services account",
            "x_ResourceType": ptype, "ServiceCategory": "AI and Machine Learning", "ServiceName": "Azure AI Services",
            "SubAccountId": f"/subscriptions/{where.subscription}", "SubAccountName": "Contoso AI",
            "x_ResourceGroupName": where.resource_group if row.account or row.meter is STORAGE_METER else "",
            "x_SkuMeterName": row.meter.name, "SkuMeter": row.meter.name, "x_SkuMeterId": row.meter_id,
            "x_SkuMeterCategory": category, "x_SkuMeterSubcategory": sub_category, "x_SkuDescription": product,
            "x_SkuDetails": "{}", "SkuId": "DZH318Z0BQ4C", "Tags": tags_json, "x_SkuRegion": where.region_name,
            "x_InvoiceSectionName": section,
        }
    charge, pricing = _legacy_charge(row)
    cost, cost_usd = row.cost(dataset)
    style = date_style or ("us" if fmt.startswith("ea") else "iso")

    def day_text(d: date) -> str:
        return f"{d:%m/%d/%Y}" if style == "us" else d.isoformat()

    on_account = row.account is not None or row.meter is STORAGE_METER
    common = {
        "SubscriptionId": where.subscription, "SubscriptionName": "Contoso AI", "MeterCategory": category,
        "MeterSubCategory": row.meter.subcategory, "MeterId": row.meter_id, "MeterName": row.meter.name,
        "MeterRegion": "Global" if "glbl" in row.meter.name.lower() else where.region_name,
        "UnitOfMeasure": row.meter.unit, "ResourceId": row.resource_id,
        "ResourceName": row.resource_id.rsplit("/", 1)[-1], "ChargeType": charge, "PricingModel": pricing,
        "ReservationId": RESERVATION_ID.rsplit("/", 1)[-1] if pricing == "Reservation" else "",
    }
    if fmt == "mca":
        mca = {k[0].lower() + k[1:]: v for k, v in common.items()}
        mca.update({
            "SubscriptionId": where.subscription, "ResourceId": row.resource_id, "ProductName": product,
            "date": day_text(row.day), "billingPeriodStartDate": day_text(month_start),
            "billingPeriodEndDate": day_text(month_end - timedelta(days=1)),
            "servicePeriodStartDate": day_text(month_start), "servicePeriodEndDate": day_text(month_end),
            "resourceGroupName": where.resource_group if on_account else "",
            "resourceLocation": where.location if on_account else "", "location": where.region if on_account else "",
            "consumedService": "Microsoft.CognitiveServices" if row.account else "",
            "quantity": _num(row.quantity), "effectivePrice": _num(row.unit_price), "unitPrice": _num(row.unit_price),
            "PayGPrice": _num(row.meter.price), "billingCurrency": row.currency, "pricingCurrency": "USD",
            "costInBillingCurrency": _num(cost), "costInPricingCurrency": _num(cost_usd), "costInUsd": _num(cost_usd),
            "paygCostInBillingCurrency": _num(cost), "paygCostInUsd": _num(cost_usd),
            "exchangeRatePricingToBilling": _num(row.rate), "exchangeRateDate": day_text(month_start),
            "tags": tags_json, "additionalInfo": "", "provider": "Azure", "billingAccountName": "Contoso",
            "invoiceSectionName": section, "isAzureCreditEligible": "True", "frequency": "UsageBased",
        })
        return mca
    # EA: the 2024-08-01 names, or the older names of Microsoft's sample file; Tags without the outer braces.
    values = dict(common)
    values.update({
        "Date": day_text(row.day), "BillingPeriodStartDate": day_text(month_start),
        "BillingPeriodEndDate": day_text(month_end - timedelta(days=1)),
        "ResourceGroup": where.resource_group if on_account else "",
        "ResourceLocation": where.location if on_account else "",
        "ResourceLocationNormalized": where.region if on_account else "",
        "ConsumedService": "Microsoft.CognitiveServices" if row.account else (
            "Microsoft.Storage" if row.meter is STORAGE_METER else "Microsoft.Capacity"),
        "Quantity": _num(row.quantity), "EffectivePrice": _num(row.unit_price), "UnitPrice": _num(row.unit_price),
        "PayGPrice": _num(row.meter.price), "Tags": tags_json[1:-1], "AccountName": "ACM Team",
        "BillingAccountId": "8611537", "BillingAccountName": "Contoso", "OfferId": "MS-AZR-0017P",
        "IsAzureCreditEligible": "True", "Frequency": "UsageBased" if charge == "Usage" else "Recurring",
        "AdditionalInfo": "", "PublisherType": "Azure",
        "InvoiceSectionName": section, "InvoiceSection": section,
    })
    if fmt == "ea-sample":
        values.update({"Cost": _num(cost), "BillingCurrency": row.currency, "Product": product})
    else:
        values.update({"CostInBillingCurrency": _num(cost), "BillingCurrencyCode": row.currency,
                       "ProductName": product})
    return values


def expected_line(row: GenRow, fmt: str, source: str, *, dataset: str = "actual",
                  focus_cost: str = "billed", unit_from_block: bool = False) -> CostLine:
    """What a correct reader returns for ``row`` written as ``fmt``."""
    focus = fmt.startswith("focus")
    where = row.home
    cost, usd = row.cost(dataset_of(fmt, dataset), focus_cost)
    cost_usd: Decimal | None = usd
    if fmt.startswith("ea") and row.currency != "USD":
        cost_usd = None  # EA has no CostInUsd column and no exchange rate
    if focus:
        charge, pricing, status, _ = _focus_charge(row)
        charge = "UnusedReservation" if status == "Unused" else charge
        pricing = {"Standard": "OnDemand", "Committed": "Reservation"}.get(pricing, pricing)
    else:
        charge, pricing = _legacy_charge(row)
    lower_id = row.resource_id.lower()
    on_account = row.account is not None or row.meter is STORAGE_METER
    category = where.category if row.meter.openai and row.meter.category == "Cognitive Services" else row.meter.category
    unit = row.meter.unit
    if focus and unit_from_block:  # only x_PricingBlockSize and ConsumedUnit to go by
        labels = {1000: "1K", 10_000: "10K", 1_000_000: "1M"}
        block = labels.get(row.meter.block, str(row.meter.block))
        unit = block if row.meter.block != 1 and row.meter.consumed_unit == "Units" else row.meter.consumed_unit
    return CostLine(
        day=row.day,
        account_id=row.account_id,
        account_name=row.account.name.lower() if row.account else lower_id.rsplit("/", 1)[-1],
        resource_group=where.resource_group.lower() if on_account else "",
        subscription_id=where.subscription,
        region=where.region if on_account or focus else "",
        meter_name=row.meter.name,
        meter_id=row.meter_id,
        meter_category=category,
        meter_subcategory=(row.meter.name.removesuffix(" Tokens") if row.meter.openai else row.meter.subcategory)
        if focus else row.meter.subcategory,
        product=row.meter.product,
        unit_of_measure=unit,
        quantity=row.quantity,
        cost=cost,
        cost_usd=cost_usd,
        currency=row.currency,
        exchange_rate=None if fmt.startswith("ea") else row.rate,
        unit_price=row.unit_price,
        charge_type=charge,
        pricing_model=pricing,
        tags=dict(row.tags),
        source=source,
    )


# --- writers ---------------------------------------------------------------------------------------------------------
@dataclass
class Written:
    path: Path
    rows: int = 0
    lines: dict[int, int] = field(default_factory=dict)  # row index → physical line (CSV) or row number (Parquet)
    openai_rows: int = 0
    openai_cost: Decimal = Decimal(0)  # billing currency; actual/amortized as written, FOCUS BilledCost


CORRUPTIONS = {  # kind → (column role, bad text)
    "date": ("date", "31/31/2025"),
    "cost": ("cost", "1.2.3"),
    "quantity": ("quantity", "twelve"),
    "tags": ("tags", '"env": "prod'),
}


def _role_column(fmt: str, role: str) -> str:
    names = {
        "date": {"ea": "Date", "ea-sample": "Date", "mca": "date"},
        "cost": {"ea": "CostInBillingCurrency", "ea-sample": "Cost", "mca": "costInBillingCurrency"},
        "quantity": {"ea": "Quantity", "ea-sample": "Quantity", "mca": "quantity"},
        "tags": {"ea": "Tags", "ea-sample": "Tags", "mca": "tags"},
        "meter": {"ea": "MeterName", "ea-sample": "MeterName", "mca": "meterName"},
    }[role]
    focus = {"date": "ChargePeriodStart", "cost": "BilledCost", "quantity": "ConsumedQuantity", "tags": "Tags",
             "meter": "x_SkuMeterName" if fmt != "focus-1.2" else "SkuMeter"}
    return focus[role] if fmt.startswith("focus") else names[fmt]


def write_csv(path: Path, rows: Iterable[GenRow], fmt: str, *, dataset: str = "actual", gzip: bool = False,
              bom: bool | None = None, date_style: str | None = None, empty: str = "",
              drop_columns: Iterable[str] = (), corrupt: Mapping[int, str] | None = None,
              track_lines: bool = True) -> Written:
    """Write ``rows`` as a ``fmt`` CSV export. EA files start with a BOM like Microsoft's (``bom`` overrides).

    ``empty`` is written for empty values (the FOCUS sample project writes ``NULL``). ``corrupt`` maps row indexes to
    a kind in CORRUPTIONS or ``fields`` (the row three fields short).
    """
    columns = [c for c in COLUMNS[fmt] if c not in set(drop_columns)]
    corrupt = corrupt or {}
    kind = dataset_of(fmt, dataset)
    bom = fmt.startswith("ea") if bom is None else bom
    result = Written(path)
    with (gzip_module.open(path, "wb") if gzip else path.open("wb")) as raw, \
            io.TextIOWrapper(raw, encoding="utf-8-sig" if bom else "utf-8", newline="") as out:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        out.write(buffer.getvalue())
        line = 2
        for row in rows:
            if not row.in_dataset(kind):
                continue
            values = record(row, fmt, dataset=dataset, date_style=date_style)
            damage = corrupt.get(row.index)
            if damage in CORRUPTIONS:
                role, bad = CORRUPTIONS[damage]
                values[_role_column(fmt, role)] = bad
            cells = [values.get(c, "") or empty for c in columns]
            if damage == "fields":
                cells = cells[:-3]
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(cells)
            text = buffer.getvalue()
            out.write(text)
            if track_lines:
                result.lines[row.index] = line
                line += text.count("\n")
            _count(result, row, kind, damage)
    return result


def _count(result: Written, row: GenRow, kind: str, damage: str | None) -> None:
    result.rows += 1
    if row.openai and damage in (None, "tags"):
        result.openai_rows += 1
        result.openai_cost += row.cost(kind)[0]


def write_parquet(path: Path, rows: Iterable[GenRow], fmt: str, *, dataset: str = "actual", numbers: str = "decimal",
                  timestamps: bool = True, batch_rows: int = 50_000, drop_columns: Iterable[str] = ()) -> Written:
    """Write ``rows`` as a ``fmt`` Parquet export (snappy). ``numbers``: ``decimal`` (decimal128, exact), ``float``
    (float64, as some tools write) or ``string``. ``timestamps``: FOCUS periods as UTC timestamps, else text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [c for c in COLUMNS[fmt] if c not in set(drop_columns)]
    kind = dataset_of(fmt, dataset)
    types = {}
    for c in columns:
        if c in NUMERIC and numbers != "string":
            types[c] = pa.decimal128(38, 24) if numbers == "decimal" else pa.float64()
        elif c in TIMESTAMPS and timestamps and fmt.startswith("focus"):
            types[c] = pa.timestamp("us", tz="UTC")
        else:
            types[c] = pa.string()
    schema = pa.schema([(c, types[c]) for c in columns])
    result = Written(path)
    batch: list[dict[str, str]] = []

    def convert(c: str, text: str) -> Any:
        if not text:
            return None
        if pa.types.is_decimal(types[c]):
            return Decimal(text)
        if pa.types.is_floating(types[c]):
            return float(text)
        if pa.types.is_timestamp(types[c]):
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
        return text

    def flush(writer: Any) -> None:
        arrays = [pa.array([convert(c, r.get(c, "")) for r in batch], type=types[c]) for c in columns]
        writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
        batch.clear()

    with pq.ParquetWriter(str(path), schema, compression="snappy") as writer:
        number = 0
        for row in rows:
            if not row.in_dataset(kind):
                continue
            batch.append(record(row, fmt, dataset=dataset))
            number += 1
            result.lines[row.index] = number
            _count(result, row, kind, None)
            if len(batch) >= batch_rows:
                flush(writer)
        if batch:
            flush(writer)
    return result


@dataclass
class Run:
    manifest: Path
    files: list[Path]
    openai_cost: Decimal
    openai_rows: int


def write_run(root: Path, rows: list[GenRow], fmt: str, *, export_name: str, run_id: str, submitted: datetime,
              start: date, end: date, dataset: str = "actual", parts: int = 2, gzip: bool = True,
              parquet: bool = False, scope: str = "/subscriptions/5f0c1e6a-3b7d-4c1e-9a2f-0d4e6b8c1a23",
              time_frame: str = "MonthToDate", guid_folder: bool = True, extra_blobs: Iterable[str] = (),
              container_prefix: str = "exports") -> Run:
    """One export run as Cost Management writes it: ``{exportName}/{yyyyMMdd-yyyyMMdd}/{runId}/{guid}/part_N_NNNN``
    plus ``manifest.json`` in the run folder listing the blobs by their container path (EXPORTS.md §5)."""
    period = f"{start:%Y%m%d}-{end:%Y%m%d}"
    run_dir = root / export_name / period / run_id
    data_dir = run_dir / str(uuid.uuid5(uuid.NAMESPACE_URL, run_id)) if guid_folder else run_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".parquet" if parquet else ".csv.gz" if gzip else ".csv"
    chunks = [rows[i::parts] for i in range(parts)]
    files: list[Path] = []
    cost = Decimal(0)
    count = 0
    for n, chunk in enumerate(chunks):
        path = data_dir / f"part_{n}_{n + 1:04d}{suffix}"
        written = (write_parquet(path, chunk, fmt, dataset=dataset) if parquet
                   else write_csv(path, chunk, fmt, dataset=dataset, gzip=gzip))
        files.append(path)
        cost += written.openai_cost
        count += written.openai_rows
    blobs = [{"blobName": f"{container_prefix}/{p.relative_to(root).as_posix()}", "byteCount": p.stat().st_size}
             for p in files]
    blobs += [{"blobName": name, "byteCount": 10} for name in extra_blobs]
    types = {"actual": "ActualCost", "amortized": "AmortizedCost"}
    manifest = {
        "manifestVersion": "2024-04-01",
        "byteCount": sum(b["byteCount"] for b in blobs),
        "blobCount": len(blobs),
        "dataRowCount": len(rows),
        "exportConfig": {
            "exportName": export_name, "resourceId": f"{scope}/providers/Microsoft.CostManagement/exports/"
            f"{export_name}", "dataVersion": fmt.removeprefix("focus-") if fmt.startswith("focus") else "2024-08-01",
            "apiVersion": "2025-03-01", "type": "FocusCost" if fmt.startswith("focus") else types[dataset],
            "timeFrame": time_frame, "granularity": "Daily",
        },
        "deliveryConfig": {"partitionData": True, "dataOverwriteBehavior": "CreateNewReport",
                           "fileFormat": "Parquet" if parquet else "Csv", "containerUri": "/subscriptions/x/"
                           "resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/exp",
                           "rootFolderPath": container_prefix},
        "runInfo": {"executionType": "Scheduled", "submittedTime": submitted.isoformat().replace("+00:00", "Z"),
                    "runId": run_id, "startDate": f"{start.isoformat()}T00:00:00",
                    "endDate": f"{end.isoformat()}T00:00:00"},
        "blobs": blobs,
    }
    manifest_path = run_dir / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return Run(manifest_path, files, cost, count)
