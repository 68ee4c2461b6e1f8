"""The Azure meter-name parser against every name in meters.csv, plus spellings, conflicts and alias files.

The oracle is ``tests/azure/data/meters.csv`` (a copy of the shared reference list; see README-meters.md there).
Its label vocabulary maps onto :class:`MeterInfo` like this:

- ``model``: the same ids, except that the parser spells models the OpenAI way so prices join on them —
  ``gpt-35-turbo`` → ``gpt-3.5-turbo``, ``gpt-35-turbo-16k`` → ``gpt-3.5-turbo-16k``, and Azure's model ``gpt-4``
  version ``turbo-2024-04-09`` → model ``gpt-4-turbo`` version ``2024-04-09``. Model-less rows (tools, PTU) have
  ``model`` None and a ``service``.
- ``model_version``: empty means the labeller made no claim, so it is not checked (four rows, the legacy
  ``Az-GPT35-Turbo-16K-…`` fine-tuning meters, get 0613, the only version that model had; see
  ``test_versions_the_labels_do_not_state``). Otherwise it must equal ``version``.
- ``deployment_type``: ``global`` / ``data_zone`` / ``regional`` → that ``deployment_type`` and billing mode
  ``standard``; ``batch_global`` / ``batch_data_zone`` → scope plus billing mode ``batch``; ``provisioned`` →
  billing mode ``provisioned`` with the scope the row's notes give (``provisioned scope=…``); ``unknown`` (legacy
  names without a scope word) → ``deployment_type`` None, billing mode ``standard``.
- ``direction``: the same words.
- ``unit``: ``1K tokens`` → ``tokens_1k``, ``1 Hour`` and ``1/Hour`` → ``hours``, and so on (``UNITS`` below).

SUSPECT rows (10): the labeller (infracost) mapped several model versions onto one SKU, so their version label
is a ``|``-separated list and is itself the suspect part. Their model, direction, deployment type and unit are
checked like any other row; their version must be None, because the name pins no version and the parser never
picks one of several.
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import pytest

from tokenid.azure import meters as meters_module
from tokenid.azure.meters import (
    ALIASES_ENV,
    DIRECTIONS,
    MeterAliases,
    MeterInfo,
    default_aliases,
    load_aliases,
    parse_meter,
)
from tokenid.errors import ConfigError

DATA = Path(__file__).parent / "data" / "meters.csv"
with DATA.open(encoding="utf-8", newline="") as _f:
    ROWS = list(csv.DictReader(_f))
LABELLED = [r for r in ROWS if r["label_source"]]
UNLABELLED = [r for r in ROWS if not r["label_source"]]

MODELS = {"gpt-35-turbo": "gpt-3.5-turbo", "gpt-35-turbo-16k": "gpt-3.5-turbo-16k"}
MODEL_VERSIONS = {("gpt-4", "turbo-2024-04-09"): ("gpt-4-turbo", "2024-04-09")}
DEPLOYMENTS = {
    "global": ("global", "standard"),
    "data_zone": ("data_zone", "standard"),
    "regional": ("regional", "standard"),
    "batch_global": ("global", "batch"),
    "batch_data_zone": ("data_zone", "batch"),
    "unknown": (None, "standard"),
}
UNITS = {
    "1K tokens": "tokens_1k",
    "1M tokens": "tokens_1m",
    "1 Hour": "hours",
    "1/Hour": "hours",
    "1/Month": "months",
    "1 second (video)": "seconds",
    "100 images": "images_100",
    "1M characters": "characters_1m",
    "1K calls": "calls_1k",
    "1 session": "sessions",
    "1 GB/day": "gb_days",
    "GB/day": "gb_days",
}


def parse_row(row: dict[str, str]) -> MeterInfo:
    return parse_meter(row["meter_name"], row["unit_of_measure_raw"] or None)


def expected(row: dict[str, str]) -> dict[str, object]:
    """The MeterInfo fields a labelled row's labels translate to (see the module docstring)."""
    model = MODELS.get(row["model"], row["model"]) or None
    version: str | None = row["model_version"] or None
    model, version = MODEL_VERSIONS.get((row["model"], row["model_version"]), (model, version))
    if "SUSPECT" in row["notes"]:
        assert version and "|" in version, "a SUSPECT row's doubt is a multi-version label"
        version = None
    label = row["deployment_type"]
    if label == "provisioned":
        scope = re.search(r"provisioned scope=(\w+)", row["notes"])
        assert scope, row["notes"]
        deployment, billing = scope.group(1), "provisioned"
    else:
        deployment, billing = DEPLOYMENTS[label]
    fields: dict[str, object] = {
        "model": model,
        "direction": row["direction"],
        "deployment_type": deployment,
        "billing_mode": billing,
        "unit": UNITS[row["unit"]],
        "unknown": False,
    }
    if row["model_version"]:
        fields["version"] = version
    return fields


def test_the_oracle_is_the_documented_list() -> None:
    assert len(ROWS) == 718
    assert len(LABELLED) == 355
    assert sum("SUSPECT" in r["notes"] for r in LABELLED) == 10


@pytest.mark.parametrize("row", LABELLED, ids=[r["meter_name"] for r in LABELLED])
def test_every_labelled_row_parses_to_its_labels(row: dict[str, str]) -> None:
    info = parse_row(row)
    assert not info.unknown, info.reason
    got = {k: getattr(info, k) for k in expected(row)}
    assert got == expected(row)
    if row["deployment_type"] == "provisioned":
        assert info.pricing_deployment_type == "provisioned" and info.service == "provisioned_throughput"


def test_versions_the_labels_do_not_state() -> None:
    extra = {r["meter_name"]: parse_row(r).version for r in LABELLED if not r["model_version"] and parse_row(r).version}
    assert extra == {
        "Az-GPT35-Turbo-16K-Fine Tuned-Input Tokens": "0613",
        "Az-GPT35-Turbo-16K-Fine Tuned-Output Tokens": "0613",
        "Az-GPT35-Turbo-16K-FTuned Deployment Hosting Unit": "0613",
        "Az-GPT35-Turbo-16K-FTuned Training Unit": "0613",
    }


def test_every_unlabelled_row_is_classified_or_unknown_with_a_reason() -> None:
    classified, unknown = [], []
    for row in UNLABELLED:
        info = parse_row(row)
        assert info.name == row["meter_name"]
        if info.unknown:
            assert info.reason and info.model is None and info.direction is None
            unknown.append(info)
        else:
            assert info.reason is None
            assert (info.model is None) != (info.service is None), info
            assert info.direction in DIRECTIONS and info.billing_mode is not None
            assert info.unit is not None, info  # every unlabelled row carries a unit suffix or unitOfMeasure
            classified.append(info)
    print(f"\nunlabelled meters.csv rows: {len(classified)} classified, {len(unknown)} unknown")
    assert len(UNLABELLED) == 363
    # the Azure OpenAI "Free Meter" names no model, service or anything else the parser could price
    assert [(i.name, i.reason) for i in unknown] == [("Standard Unit", "names no model or service")]
    assert len(classified) == 362


@pytest.mark.parametrize(
    ("name", "uom", "fields"),
    [
        # run-together words and dropped separators
        ("gpt 4o mini0718 BatchOutp DataZone Tokens", "1K",
         dict(model="gpt-4o-mini", version="2024-07-18", direction="output", deployment_type="data_zone",
              billing_mode="batch", unit="tokens_1k")),
        ("gpt4o realtimePrvwAudInp DataZone Tokens", "1K",
         dict(model="gpt-4o-realtime-preview", version="2024-10-01", direction="audio_input")),
        ("gpt-image-1-inp-txt-glbl Tokens", "1K", dict(model="gpt-image-1", direction="input")),
        ("gpt-image-1-inp-cached-img-dzone Tokens", "1K",
         dict(model="gpt-image-1", direction="cached_image_input", deployment_type="data_zone")),
        # 2026 spellings: no "gpt" prefix, pp, ShortCo/LongCo, Cd Wr, Gl/Dz, Std
        ("5.4 mini Inp Gl 1M Tokens", "1M",
         dict(model="gpt-5.4-mini", direction="input", deployment_type="global", unit="tokens_1m")),
        ("5 mini pp cd Inp Gl 1M Tokens", "1M",
         dict(model="gpt-5-mini", direction="cached_input", billing_mode="priority")),
        ("5.5 LongCo Batch cd inp Dz 1M Tokens", "1M",
         dict(model="gpt-5.5", direction="cached_input", deployment_type="data_zone", billing_mode="batch",
              context_tier="long")),
        ("5.5 ShortCo PP opt Dz 1M Tokens", "1M",
         dict(model="gpt-5.5", direction="output", billing_mode="priority", context_tier="short")),
        ("4.1 mini pp cd Inp Gl Tokens", "1K", dict(model="gpt-4.1-mini", billing_mode="priority", unit="tokens_1k")),
        ("gpt rt txt mn cd in gl 1215 1M Tokens", "1M",
         dict(model="gpt-realtime-mini", version="2025-12-15", direction="cached_input", deployment_type="global")),
        ("gpt aud 1.5 opt Gl 1M Tokens", "1M", dict(model="gpt-audio-1.5", direction="audio_output")),
        ("gpt aud mini txt Inp glbl Tokens", "1K", dict(model="gpt-audio-mini", direction="input")),
        ("gpt-realtime-2.1 Image cd inp Gl 1M Tokens", "1M",
         dict(model="gpt-realtime-2.1", direction="cached_image_input")),
        ("gpt4o mn trscb aud in rg 1215 1M Tokens", "1M",
         dict(model="gpt-4o-mini-transcribe", version="2025-12-15", direction="audio_input",
              deployment_type="regional")),
        ("gpt 4o tcrb d txt out dz Tokens", "1K", dict(model="gpt-4o-transcribe-diarize", direction="output")),
        ("gpt-5-codex-ccchd-inp-dzone Tokens", "1K", dict(model="gpt-5-codex", direction="cached_input")),
        ("o4 mini dev RFT cd inp glb Tokens", "1K",
         dict(model="o4-mini", direction="cached_input", billing_mode="developer", deployment_type="global",
              qualifiers=("reinforcement_fine_tuning",))),
        ("4o 0806 ft hosting Dz Unit", "1 Hour",
         dict(model="gpt-4o", version="2024-08-06", direction="hosting", unit="hours", qualifiers=("fine_tuned",))),
        ("Sora 2 pro high res glbl Second", "1", dict(model="sora-2-pro", unit="seconds", qualifiers=("high_res",))),
        ("Sora 1080p Sq 11-15s glbl Video", "1 Second",
         dict(model="sora", unit="seconds", qualifiers=("1080p", "square", "11-15s"))),
        ("OSS-20b FT Deployment Hosting Unit", "1/Hour", dict(model="gpt-oss-20b", direction="hosting")),
        # versions: ISO dates, 3-digit abbreviations, unknown abbreviations kept as written
        ("gpt-4o-2024-11-20 Inp glbl Tokens", None, dict(model="gpt-4o", version="2024-11-20")),
        ("gpt-35-trb16K-Batch-125-Inp-glbl Tokens", "1K", dict(model="gpt-3.5-turbo", version="0125")),
        ("5.2 chat 0210 cd inp Dz 1M Tokens", "1M", dict(model="gpt-5.2-chat", version="0210")),
        # unit from the name alone; unitOfMeasure wins over the name's default block
        ("gpt 4.1 Inp glbl Tokens", None, dict(unit="tokens_1k")),
        ("GPT 5 Inpt Glbl 1M Tokens", None, dict(unit="tokens_1m")),
        ("gpt 4.1 Inp glbl Tokens", "1M", dict(unit="tokens_1m")),
        ("Provisioned Throughput Units", "1/Month", dict(service="provisioned_throughput", unit="months",
                                                       billing_mode="provisioned", direction="other")),
    ],
)
def test_spellings(name: str, uom: str | None, fields: dict[str, object]) -> None:
    info = parse_meter(name, uom)
    assert not info.unknown, info.reason
    assert {k: getattr(info, k) for k in fields} == fields


@pytest.mark.parametrize(
    ("name", "uom", "reason"),
    [
        ("5.6 luna LongCo Inp Std DZ 1M Tokens", "1M", "unrecognised token 'luna'"),  # codename: no public id
        ("chat-latest 05052026 inp Gl 1M Tokens", "1M", "unrecognised tokens 'chat', 'latest'"),
        ("Command A Inp DZ Tokens", "1K", "unrecognised tokens 'Command', 'A'"),  # partner model
        ("gpt 4o 1120 Inpz glbl Tokens", "1K", "unrecognised token 'Inpz'"),
        ("gpt 4o 1120 Inp glbl DZ Tokens", "1K", "conflicting deployment types: 'global' and 'data_zone'"),
        ("gpt 4o o1 Inp glbl Tokens", "1K", "conflicting models: 'gpt-4o' and 'o1'"),
        ("gpt 4o 1120 Batch pp Inp glbl Tokens", "1K", "conflicting billing modes: batch and priority"),
        ("gpt 4o 1120 cached Outp glbl Tokens", "1K", "no direction for cached output"),
        ("gpt 4o 0513 1120 Inp glbl Tokens", "1K", "several versions: 0513, 1120"),
        ("GPT 5 Inpt Glbl 1M Tokens", "1K", "unitOfMeasure '1K' contradicts the name's 1m block"),
        ("gpt 4.1 Inp glbl Tokens", "1 Hour", "unitOfMeasure '1 Hour' does not fit a meter counting tokens"),
        ("gpt 4.1 Inp glbl Tokens", "1 Fortnight", "unrecognised unitOfMeasure '1 Fortnight'"),
        ("Standard Unit", "1/Hour", "names no model or service"),
        ("   ", None, "empty meter name"),
    ],
)
def test_never_a_guess(name: str, uom: str | None, reason: str) -> None:
    info = parse_meter(name, uom)
    assert info.unknown and info.reason == reason
    assert info.to_json() == {"name": name, "unknown": True, "reason": reason}


def test_to_json_shape() -> None:
    info = parse_meter("gpt-4o-mini-0718-Inp-glbl Tokens", "1K")
    assert info.to_json() == {
        "name": "gpt-4o-mini-0718-Inp-glbl Tokens", "model": "gpt-4o-mini", "version": "2024-07-18",
        "direction": "input", "deployment_type": "global", "billing_mode": "standard", "context_tier": None,
        "unit": "tokens_1k", "service": None, "qualifiers": [], "unknown": False,
    }


@pytest.mark.parametrize(
    ("name", "pricing_type"),
    [
        ("gpt 4o 1120 Inp glbl Tokens", "global"),
        ("gpt 4o 1120 Batch Inp DZ Tokens", "data_zone_batch"),
        ("gpt-4-8K-Batch-Inp-regnl Tokens", None),  # the pricing layer has no regional batch type
        ("Provisioned Managed Regional Unit", "provisioned"),
        ("5 mini pp Inp Gl 1M Tokens", None),  # priority: no pricing-layer type
        ("Az-Embeddings-Ada Tokens", None),  # no scope in the name
    ],
)
def test_pricing_deployment_type(name: str, pricing_type: str | None) -> None:
    assert parse_meter(name).pricing_deployment_type == pricing_type


# ---------------------------------------------------------------------------------------------------------------
# alias files


MADE_UP = "gpt four oh 1120 Inpz Glbal Tokens"


def test_a_new_spelling_needs_one_alias_line(tmp_path: Path) -> None:
    assert parse_meter("gpt 4o 1120 Inp Glbal Tokens").reason == "unrecognised token 'Glbal'"
    path = tmp_path / "aliases.toml"
    path.write_text('[deployment_types]\n"Glbal" = "global"\n', encoding="utf-8")
    info = parse_meter("gpt 4o 1120 Inp Glbal Tokens", aliases=load_aliases(path))
    assert (info.model, info.version, info.direction, info.deployment_type) == ("gpt-4o", "2024-11-20", "input",
                                                                                "global")


def test_user_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_meter(MADE_UP).unknown
    path = tmp_path / "mine.toml"
    path.write_text(
        '[models]\n"gpt four oh" = "gpt-4o"\n'
        '[directions]\n"inpz" = "input"\n'
        '[deployment_types]\n"glbal" = "global"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv(ALIASES_ENV, str(path))
    info = parse_meter(MADE_UP)
    assert not info.unknown and (info.model, info.version, info.deployment_type) == ("gpt-4o", "2024-11-20", "global")
    assert str(path) in default_aliases().sources
    monkeypatch.delenv(ALIASES_ENV)
    assert parse_meter(MADE_UP).unknown


def test_later_files_win_even_across_sections(tmp_path: Path) -> None:
    # read "Std" as DALL-E quality instead of the standard billing mode
    path = tmp_path / "std.toml"
    path.write_text('[qualifiers]\n"std" = "standard_quality"\n', encoding="utf-8")
    info = parse_meter("Image-Dall-E-3 Std LowRes-glbl Images", "100", aliases=load_aliases(path))
    assert info.qualifiers == ("standard_quality", "low_res") and info.billing_mode == "standard"


def test_table_entries_and_versions(tmp_path: Path) -> None:
    path = tmp_path / "more.toml"
    path.write_text(
        '[models]\n"gpt 9 flash" = { model = "gpt-9-flash", modality = "audio", qualifiers = ["preview"] }\n'
        '[versions]\n"gpt-9-flash" = ["2031-02-03"]\n'
        '[defaults."gpt-9-flash"]\nunit = "tokens_1m"\n',
        encoding="utf-8",
    )
    aliases = load_aliases(path)
    info = parse_meter("gpt-9-flash 0203 Inp glbl", aliases=aliases)
    assert (info.model, info.version, info.direction, info.unit, info.qualifiers) == (
        "gpt-9-flash", "2031-02-03", "audio_input", "tokens_1m", ("preview",))
    assert parse_meter("gpt-9-flash txt Outp glbl", aliases=aliases).direction == "output"
    assert "gpt 9 flash" in aliases and "GPT-9-Flash" in aliases and "gpt 10" not in aliases


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[modelz]\n"x" = "y"\n', "unknown section [modelz]"),
        ('[deployment_types]\n"glbal" = "globall"\n', "deployment_type must be one of global, data_zone, regional"),
        ('[models]\n"gpt 4o" = "gpt-4o"\n"GPT-4o" = "gpt-4o"\n', "the same spelling as"),
        ('[models]\n"x1" = { modle = "x" }\n', "needs a 'model' key"),
        ('[models]\n"x1" = { model = "x", colour = "red" }\n', "unknown key 'colour'"),
        ('[versions]\n"gpt-4o" = "2024-08-06"\n', "must be a list of version strings"),
        ('[defaults."gpt-4o"]\ndirection = "sideways"\n', "direction must be one of"),
        ('[units.suffixes]\n"tokens" = { kind = "tokens", block = "7k" }\n', "a block must be one of"),
        ("[models\n", "is not valid TOML"),
    ],
)
def test_bad_alias_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load_aliases(path)
    assert str(path) in str(caught.value)


def test_missing_alias_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_aliases(tmp_path / "nope.toml")


# ---------------------------------------------------------------------------------------------------------------
# speed: one parse per distinct (name, unitOfMeasure)


def test_memoised_per_name_and_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    aliases = load_aliases()
    calls = 0
    real = MeterAliases._parse

    def counting(self: MeterAliases, name: str, uom: str | None) -> MeterInfo:
        nonlocal calls
        calls += 1
        return real(self, name, uom)

    monkeypatch.setattr(MeterAliases, "_parse", counting)
    names = [(r["meter_name"], r["unit_of_measure_raw"] or None) for r in ROWS]
    start = time.perf_counter()
    for _ in range(100):
        for name, uom in names:
            parse_meter(name, uom, aliases=aliases)
    elapsed = time.perf_counter() - start
    assert calls == len(set(names))
    first = parse_meter(names[0][0], names[0][1], aliases=aliases)
    assert parse_meter(names[0][0], names[0][1], aliases=aliases) is first
    print(f"\n{100 * len(names):,} parses in {elapsed:.2f}s")


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meters_module, "_MEMO_LIMIT", 8)
    aliases = load_aliases()
    for i in range(50):
        aliases.parse(f"gpt 4o {i} glbl Tokens")
    assert len(aliases._memo) <= 8
