"""Cost Management export readers: every format and container, the EXPORTS.md §6 traps, malformed input reported
with file and line, filters, manifest run selection and exact Decimal sums. Exports come from ``export_gen``."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import export_gen as gen
import pytest

from tokenid.azure.exports import CostLine, ReadIssue, ReadSummary, read_export
from tokenid.errors import ConfigError

ROWS = list(gen.make_rows(300))
EUR = Decimal("0.9214")


def read_all(path: Path, **kw: Any) -> tuple[list[CostLine], ReadSummary]:
    lines, summary = read_export(path, **kw)
    out = list(lines)
    assert summary.complete
    assert summary.rows_read == summary.rows_kept + summary.rows_filtered_out + summary.rows_malformed
    assert summary.rows_kept == len(out)
    assert summary.rows_filtered_out == sum(summary.filtered.values())
    return out, summary


def expected(rows: Iterable[gen.GenRow], fmt: str, written: gen.Written, **kw: Any) -> list[CostLine]:
    kind = gen.dataset_of(fmt, kw.get("dataset", "actual"))
    return [gen.expected_line(r, fmt, f"{written.path}:{written.lines[r.index]}", **kw)
            for r in rows if r.openai and r.in_dataset(kind)]


def write(tmp_path: Path, rows: list[gen.GenRow], fmt: str, container: str, **kw: Any) -> gen.Written:
    if container == "parquet":
        pytest.importorskip("pyarrow")
        return gen.write_parquet(tmp_path / f"{fmt}.parquet", rows, fmt, **kw)
    suffix = ".csv.gz" if container == "csv.gz" else ".csv"
    return gen.write_csv(tmp_path / f"{fmt}{suffix}", rows, fmt, gzip=container == "csv.gz", **kw)


# --- every format, container and dataset -------------------------------------------------------------------------
CASES = [(fmt, container, dataset) for fmt in gen.FORMATS for container in ("csv", "csv.gz", "parquet")
         for dataset in (("actual", "amortized") if not fmt.startswith("focus") else ("actual",))]


@pytest.mark.parametrize(("fmt", "container", "dataset"), CASES)
def test_every_format_reads_every_row_exactly(tmp_path: Path, fmt: str, container: str, dataset: str) -> None:
    written = write(tmp_path, ROWS, fmt, container, dataset=dataset)
    lines, summary = read_all(written.path)

    assert lines == expected(ROWS, fmt, written, dataset=dataset)
    detected = "ea" if fmt == "ea-sample" else fmt
    if container == "parquet" and fmt == "focus-1.0r2":
        detected = "focus-1.0"  # typed timestamps: 1.0 and 1.0r2 differ only in how CSV writes dates
    assert summary.files == [str(written.path)]
    assert summary.formats == {str(written.path): detected}
    assert summary.currencies == {"USD"}
    assert summary.cost_kept == {"USD": written.openai_cost}
    assert sum((line.cost for line in lines), Decimal(0)) == written.openai_cost
    assert summary.rows_read == written.rows
    assert summary.filtered == {"not_openai": written.rows - written.openai_rows}
    assert (summary.rows_malformed, summary.files_malformed, summary.issues) == (0, 0, [])


@pytest.mark.parametrize("fmt", ["mca", "focus-1.0r2", "focus-1.2"])
@pytest.mark.parametrize("container", ["csv", "parquet"])
def test_billing_currency_with_usd_and_exchange_rate(tmp_path: Path, fmt: str, container: str) -> None:
    rows = list(gen.make_rows(200, seed=3, currency="EUR", rate=EUR))
    written = write(tmp_path, rows, fmt, container)
    lines, summary = read_all(written.path)

    assert lines == expected(rows, fmt, written)
    assert summary.currencies == {"EUR"}
    usage = next(line for line in lines if line.cost)
    assert usage.currency == "EUR" and usage.exchange_rate == EUR
    assert usage.cost == usage.cost_usd * EUR  # type: ignore[operator]


def test_cost_usd_derived_from_exchange_rate_when_not_exported(tmp_path: Path) -> None:
    rows = list(gen.make_rows(120, seed=4, currency="EUR", rate=EUR))
    written = gen.write_csv(tmp_path / "mca.csv", rows, "mca", drop_columns=["costInUsd"])
    lines, _ = read_all(written.path)

    assert lines == expected(rows, "mca", written)  # cost ÷ exchangeRatePricingToBilling, exactly


def test_ea_billing_in_another_currency_has_no_usd(tmp_path: Path) -> None:
    rows = list(gen.make_rows(60, seed=5, currency="EUR", rate=EUR))
    written = gen.write_csv(tmp_path / "ea.csv", rows, "ea")
    lines, summary = read_all(written.path)

    assert lines == expected(rows, "ea", written)
    assert {line.cost_usd for line in lines} == {None}  # EA has no CostInUsd: never guessed
    assert summary.currencies == {"EUR"}


def test_focus_effective_cost_is_the_amortized_view(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "focus.csv", ROWS, "focus-1.2")
    lines, summary = read_all(written.path, focus_cost="effective")

    assert lines == expected(ROWS, "focus-1.2", written, focus_cost="effective")
    covered = [line for line in lines if line.pricing_model == "Reservation" and line.charge_type == "Usage"]
    assert covered and all(line.cost > 0 for line in covered)
    assert summary.cost_kept["USD"] == sum((r.effective for r in ROWS if r.openai), Decimal(0))


# --- the traps (EXPORTS.md §6 and §1-2) --------------------------------------------------------------------------
def test_ea_sample_style_bom_us_dates_and_tags_without_braces(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "ea.csv", ROWS[:12], "ea-sample")
    raw = written.path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfBillingAccountId,")
    assert b',03/01/2025,' in raw and b'"""env"": ""prod"",""team"": ""search"""' in raw
    lines, summary = read_all(written.path)

    first = lines[0]
    assert first.day == date(2025, 3, 1)
    tagged = next(line for line in lines if line.tags)
    assert tagged.tags == {"env": "prod", "team": "search"}
    assert summary.formats == {str(written.path): "ea"}


def test_resource_ids_are_case_folded_to_the_account(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "ea.csv", ROWS, "ea")
    spellings = {r.resource_id for r in ROWS if r.account is gen.ACCOUNTS[0]}
    assert len(spellings) == 3 and any("/projects/" in s for s in spellings)  # mixed case, and a child resource
    lines, _ = read_all(written.path)

    accounts = {line.account_id for line in lines if line.meter_category != "" and line.account_name != ""}
    assert gen.ACCOUNTS[0].account_id in accounts
    assert not any(a.endswith("/projects/chat-app") or a != a.lower() for a in accounts)
    same = [line for line in lines if line.account_name == "contoso-oai-eastus2"]
    assert {line.account_id for line in same} == {gen.ACCOUNTS[0].account_id}
    assert {line.resource_group for line in same} == {"rg-ai-prod"}


@pytest.mark.parametrize("account", [
    gen.ACCOUNTS[0].resource_id.upper(),
    gen.ACCOUNTS[0].resource_id + "/deployments/gpt-4o",
    "CONTOSO-OAI-EASTUS2",
])
def test_account_filter_matches_id_child_or_name_in_any_case(tmp_path: Path, account: str) -> None:
    written = gen.write_csv(tmp_path / "focus.csv", ROWS, "focus-1.0r2")
    lines, summary = read_all(written.path, account=account)

    want = [line for line in expected(ROWS, "focus-1.0r2", written) if line.account_id == gen.ACCOUNTS[0].account_id]
    assert lines == want and want
    assert summary.filtered["other_account"] == sum(1 for r in ROWS if r.openai) - len(want)


def test_focus_quantity_is_consumed_blocks_not_pricing_quantity(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "focus.csv", ROWS, "focus-1.0")
    text = written.path.read_text(encoding="utf-8")
    header = next(csv.reader(io.StringIO(text)))
    sample = next(csv.DictReader(io.StringIO(text)))
    # The trap as Microsoft's FOCUS sample shows it: PricingQuantity = ConsumedQuantity / block, unit "Units".
    assert "PricingQuantity" in header and sample["ConsumedUnit"] == "Units"
    assert Decimal(sample["PricingQuantity"]) * Decimal(sample["x_PricingBlockSize"]) == Decimal(
        sample["ConsumedQuantity"])
    lines, _ = read_all(written.path)

    by_source = {line.source: line for line in lines}
    for row in ROWS:
        if row.openai:
            line = by_source[f"{written.path}:{written.lines[row.index]}"]
            assert line.quantity == row.quantity and line.cost == row.billed
            assert line.unit_of_measure == row.meter.unit  # 1K / 1M / 1/Hour from x_PricingUnitDescription
    assert {"1K", "1M", "1/Hour", "1 Hour", "100"} <= {line.unit_of_measure for line in lines}


def test_focus_unit_from_block_size_when_no_unit_description(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "focus.csv", ROWS, "focus-1.2", drop_columns=["x_PricingUnitDescription"])
    lines, _ = read_all(written.path)

    assert lines == expected(ROWS, "focus-1.2", written, unit_from_block=True)
    assert {"1K", "1M", "100", "Hours", "Units"} == {line.unit_of_measure for line in lines}


@pytest.mark.parametrize(("fmt", "dataset"), [("ea", "actual"), ("mca", "amortized"), ("focus-1.2", "actual")])
def test_capacity_and_commitment_rows_are_kept_and_labelled(tmp_path: Path, fmt: str, dataset: str) -> None:
    written = gen.write_csv(tmp_path / "x.csv", ROWS, fmt, dataset=dataset)
    lines, _ = read_all(written.path)

    kinds = {(line.meter_name, line.charge_type, line.pricing_model) for line in lines
             if line.unit_of_measure not in ("1K", "1M")}
    ptu, hosting = gen.PTU_METER.name, gen.HOSTING_METER.name
    assert (ptu, "Usage", "OnDemand") in kinds and (ptu, "Usage", "Reservation") in kinds
    assert (hosting, "Usage", "OnDemand") in kinds
    assert (gen.IMAGE_METER.name, "Usage", "OnDemand") in kinds
    if dataset == "actual":  # the purchase sits on the reservation, not on an account
        purchase = next(line for line in lines if line.charge_type == "Purchase")
        assert purchase.account_id == gen.RESERVATION_ID.lower() and purchase.cost > 0
    if dataset == "amortized" or fmt.startswith("focus"):
        assert (ptu, "UnusedReservation", "Reservation") in kinds
    covered = [line for line in lines if line.pricing_model == "Reservation" and line.charge_type == "Usage"]
    assert covered and all((line.cost == 0) == (dataset == "actual") for line in covered)


def test_other_services_are_counted_when_dropped_and_kept_on_request(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "mca.csv", ROWS, "mca")
    openai_lines, summary = read_all(written.path)
    every_line, everything = read_all(written.path, openai_only=False)

    others = [r for r in ROWS if not r.openai and r.in_dataset("actual")]
    assert {r.meter.category for r in others} == {"Storage", "Foundry Tools"}  # same subscription, same AI account
    assert summary.filtered == {"not_openai": len(others)}
    assert len(every_line) == len(openai_lines) + len(others)
    assert everything.filtered == {}
    language = next(line for line in every_line if line.meter_category == "Foundry Tools")
    assert language.account_id in {a.account_id for a in gen.ACCOUNTS}


def test_focus_null_literals_read_as_empty(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "focus.csv", ROWS, "focus-1.0", empty="NULL")
    assert ",NULL," in written.path.read_text(encoding="utf-8")
    lines, _ = read_all(written.path)

    assert lines == expected(ROWS, "focus-1.0", written)


FOCUS_SAMPLE_LIKE = (
    # Header and row shapes of the FinOps Foundation's FOCUS 1.0 multi-cloud sample (no Microsoft x_ columns,
    # NULL literals, quoted values, "YYYY-MM-DD hh:mm:ss" dates); values invented for an Azure OpenAI account.
    '"BilledCost","BillingCurrency","ChargeCategory","ChargeDescription","ChargePeriodEnd","ChargePeriodStart",'
    '"ConsumedQuantity","ConsumedUnit","EffectiveCost","PricingCategory","ProviderName","RegionId","ResourceId",'
    '"SubAccountId","Tags"\n'
    '-2.61370000000,"USD","Credit","AWS Open Source Promotional Credits","2024-09-24 04:00:00",'
    '"2024-09-24 03:00:00",NULL,NULL,-3.00000000000,"Other","AWS","us-east-1",NULL,"11353890204",NULL\n'
    '0.01250000000,"USD","Usage","gpt-4o-mini-0718-Inp-glbl Tokens","2024-09-05 00:00:00","2024-09-04 00:00:00",'
    '83.333000000000000,"Units",0.01250000000,"Standard","Microsoft","eastus",'
    '"/subscriptions/64e355d7-997c-491d-b0c1-8414dccfcf42/resourcegroups/ftk/providers/'
    'microsoft.cognitiveservices/accounts/oai-ftk","/subscriptions/64e355d7-997c-491d-b0c1-8414dccfcf42",'
    '"{""env"": ""prod"", "" org"": ""trey""}"\n'
)


def test_focus_without_microsoft_columns_multi_cloud(tmp_path: Path) -> None:
    path = tmp_path / "focus_sample.csv"
    path.write_text(FOCUS_SAMPLE_LIKE, encoding="utf-8")
    lines, summary = read_all(path)

    assert summary.filtered == {"not_openai": 1}  # the AWS credit
    (line,) = lines
    assert (line.day, line.account_name, line.subscription_id) == (
        date(2024, 9, 4), "oai-ftk", "64e355d7-997c-491d-b0c1-8414dccfcf42")
    assert (line.meter_name, line.unit_of_measure, line.quantity) == (
        "gpt-4o-mini-0718-Inp-glbl Tokens", "Units", Decimal("83.333"))
    assert line.tags == {"env": "prod", " org": "trey"}
    assert summary.issues == [ReadIssue(str(path), 1, "no x_SkuMeterName or SkuMeter column: meter names are taken "
                                        "from ChargeDescription and will not match Azure meter names", "warning")]
    every, _ = read_all(path, openai_only=False)
    assert every[0].quantity == 0 and every[0].charge_type == "Credit"  # null ConsumedQuantity off a Usage row


@pytest.mark.parametrize(("text", "day"), [
    ("03/01/2025", date(2025, 3, 1)),
    ("3/1/2025 12:00:00 AM", date(2025, 3, 1)),
    ("2025-03-01", date(2025, 3, 1)),
    ("2025-03-01T00:00Z", date(2025, 3, 1)),  # FOCUS 1.0
    ("2025-03-01T00:00:00Z", date(2025, 3, 1)),  # FOCUS 1.0r2 / 1.2
    ("2025-03-01T00:00:00.0000000Z", date(2025, 3, 1)),
    ("2025-03-01 00:00:00", date(2025, 3, 1)),  # the FOCUS sample project's rendering
    ("2025-03-01T23:30:00-02:00", date(2025, 3, 2)),  # a UTC day
    ("20250301", date(2025, 3, 1)),  # Query API UsageDate
])
def test_date_forms(tmp_path: Path, text: str, day: date) -> None:
    written = gen.write_csv(tmp_path / "mca.csv", ROWS[:1], "mca")
    path = tmp_path / "dated.csv"
    path.write_text(_with_first_date(written.path, "date", text), encoding="utf-8")
    (line,), _ = read_all(path)

    assert line.day == day


def _with_first_date(path: Path, column: str, text: str) -> str:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    rows[0][column] = text
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_utf16_and_gzip_found_by_content_not_name(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "ea.csv", ROWS[:40], "ea")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(written.path.read_text(encoding="utf-8-sig").encode("utf-16"))
    disguised = tmp_path / "export.csv"  # gzip without .gz
    disguised.write_bytes(gzip.compress(written.path.read_bytes()))

    base, _ = read_all(written.path)
    for path in (utf16, disguised):
        lines, summary = read_all(path)
        assert [line.__class__(**{**_fields(line), "source": ""}) for line in lines] == [
            line.__class__(**{**_fields(line), "source": ""}) for line in base]
        assert summary.formats == {str(path): "ea"}


def _fields(line: CostLine) -> dict[str, Any]:
    return {name: getattr(line, name) for name in CostLine.__slots__}


# --- malformed input ------------------------------------------------------------------------------------------------
def _openai_usage_indexes(count: int, start: int = 0) -> list[int]:
    return [r.index for r in ROWS[start:] if r.openai and r.kind == "usage" and r.meter in gen.TOKEN_METERS][:count]


@pytest.mark.parametrize("fmt", ["ea", "ea-sample", "mca", "focus-1.0", "focus-1.2"])
def test_malformed_rows_are_reported_with_file_and_line(tmp_path: Path, fmt: str) -> None:
    bad_date, bad_cost, bad_quantity, short, bad_tags = _openai_usage_indexes(5, start=30)
    corrupt = {bad_date: "date", bad_cost: "cost", bad_quantity: "quantity", short: "fields", bad_tags: "tags"}
    written = gen.write_csv(tmp_path / "x.csv", ROWS, fmt, corrupt=corrupt)
    lines, summary = read_all(written.path)

    file, at = str(written.path), written.lines
    columns = {"date": "ChargePeriodStart", "cost": "BilledCost", "quantity": "ConsumedQuantity", "tags": "Tags"} \
        if fmt.startswith("focus") else {"date": "Date", "cost": "Cost" if fmt == "ea-sample" else
                                         "CostInBillingCurrency", "quantity": "Quantity", "tags": "Tags"}
    if fmt == "mca":
        columns = {"date": "date", "cost": "costInBillingCurrency", "quantity": "quantity", "tags": "tags"}
    width = len(gen.COLUMNS[fmt])
    assert summary.issues == [
        ReadIssue(file, at[bad_date], f"{columns['date']}: '31/31/2025' is not a valid date (month must be in 1..12)"),
        ReadIssue(file, at[bad_cost], f"{columns['cost']} '1.2.3' is not a number"),
        ReadIssue(file, at[bad_quantity], f"{columns['quantity']} 'twelve' is not a number"),
        ReadIssue(file, at[short], f"expected {width} fields, found {width - 3}"),
        ReadIssue(file, at[bad_tags], f"{columns['tags']}: Tags not readable as JSON (Unterminated string starting "
                  "at: line 1 column 9 (char 8)); row kept without tags", "warning"),
    ]
    assert (summary.rows_malformed, summary.warnings, summary.files_malformed) == (4, 1, 0)
    dropped = {bad_date, bad_cost, bad_quantity, short}
    assert lines == [line if line.source != f"{file}:{at[bad_tags]}" else CostLine(**{**_fields(line), "tags": {}})
                     for line in expected([r for r in ROWS if r.index not in dropped], fmt, written)]
    assert summary.cost_kept["USD"] == written.openai_cost


def test_csv_syntax_error_is_one_row_and_reading_goes_on(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "ea.csv", ROWS[:20], "ea")
    text = written.path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    huge = gen.record(ROWS[0], "ea") | {"AdditionalInfo": "x" * 200_000}
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([huge.get(c, "") for c in gen.EA_COLUMNS])
    path = tmp_path / "huge.csv"
    path.write_text(text[0] + out.getvalue() + "".join(text[1:]), encoding="utf-8")
    lines, summary = read_all(path)

    assert summary.issues == [ReadIssue(str(path), 2, "CSV syntax error: field larger than field limit (131072)")]
    base, _ = read_all(written.path)
    assert [line.cost for line in lines] == [line.cost for line in base]
    assert lines[0].source == f"{path}:{int(base[0].source.rsplit(':', 1)[1]) + 1}"


def test_truncated_gzip_reports_the_file_and_keeps_what_was_read(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "x.csv.gz", ROWS, "mca", gzip=True)
    data = written.path.read_bytes()
    written.path.write_bytes(data[: len(data) // 2])
    lines, summary = read_all(written.path)

    assert 0 < len(lines) < written.openai_rows
    (issue,) = [i for i in summary.issues if i.severity == "error" and "unreadable" in i.reason]
    assert issue.file == str(written.path) and issue.line > 2
    assert issue.reason.startswith(f"unreadable after line {issue.line - 1}: Compressed file ended")
    assert summary.files_malformed == 1


def test_damaged_files_do_not_stop_the_folder(tmp_path: Path) -> None:
    good = gen.write_csv(tmp_path / "b_good.csv", ROWS[:50], "ea")
    (tmp_path / "a_empty.csv").write_bytes(b"")
    (tmp_path / "c_other.csv").write_text("Name,Value\nx,1\n", encoding="utf-8")
    (tmp_path / "d_broken.parquet").write_bytes(b"PAR1 not really parquet")
    (tmp_path / "e_bad.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    lines, summary = read_all(tmp_path)

    assert lines == expected(ROWS[:50], "ea", good)
    errors = {Path(i.file).name: (i.line, i.reason.split(":")[0]) for i in summary.issues}
    assert errors == {"a_empty.csv": (0, "empty file"),
                      "c_other.csv": (1, "header not recognised as an EA/MCA cost export or a FOCUS export (no "
                                         "MeterName with CostInBillingCurrency/Cost, nor ChargePeriodStart with "
                                         "BilledCost/EffectiveCost)"),
                      "d_broken.parquet": (0, "unreadable"), "e_bad.gz": (0, "unreadable")}
    assert summary.files_malformed == 4


def test_invalid_utf8_is_a_warning_on_its_line(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "ea.csv", ROWS[:10], "ea")
    raw = written.path.read_bytes().replace(b"ACM Team", b"ACM \xff Team", 1)
    path = tmp_path / "latin.csv"
    path.write_bytes(raw)
    lines, summary = read_all(path)

    assert summary.issues == [ReadIssue(str(path), 2, "invalid UTF-8 on line(s) 2, replaced with U+FFFD", "warning")]
    assert len(lines) == len(expected(ROWS[:10], "ea", written))


def test_an_unforeseen_failure_is_one_bad_row_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tokenid.azure.exports as exports

    real = exports._region

    def region(text: str) -> str:
        if text == "westus3":
            raise OverflowError("boom")
        return real(text)

    monkeypatch.setattr(exports, "_region", region)
    written = gen.write_csv(tmp_path / "ea.csv", ROWS, "ea")
    lines, summary = read_all(written.path)

    hit = [r for r in ROWS if r.openai and r.account is gen.ACCOUNTS[2] and r.in_dataset("actual")]
    assert summary.rows_malformed == len(hit) > 0
    first = ReadIssue(str(written.path), written.lines[hit[0].index], "unexpected OverflowError: boom")
    assert summary.issues[0] == first
    assert lines == [line for line in expected(ROWS, "ea", written) if line.account_id != gen.ACCOUNTS[2].account_id]


def test_issues_are_capped_but_all_counted(tmp_path: Path) -> None:
    bad = _openai_usage_indexes(10)
    written = gen.write_csv(tmp_path / "x.csv", ROWS, "ea", corrupt=dict.fromkeys(bad, "cost"))
    _, summary = read_all(written.path, max_issues=3)

    assert len(summary.issues) == 3 and summary.issues_omitted == 7 and summary.rows_malformed == 10


# --- filters ----------------------------------------------------------------------------------------------------------
def test_date_range_is_inclusive(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "focus.csv", ROWS, "focus-1.2")
    start, end = date(2025, 3, 5), date(2025, 3, 9)
    lines, summary = read_all(written.path, start=start, end=end)

    assert lines == [line for line in expected(ROWS, "focus-1.2", written) if start <= line.day <= end]
    assert {line.day for line in lines} == {date(2025, 3, d) for d in range(5, 10)}
    assert summary.filtered["out_of_range"] == sum(1 for r in ROWS if r.openai) - len(lines)


def test_bad_arguments_raise_at_the_call(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_export(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="start"):
        read_export(tmp_path, start=date(2025, 3, 2), end=date(2025, 3, 1))
    with pytest.raises(ConfigError, match="focus_cost"):
        read_export(tmp_path, focus_cost="list")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="account"):
        read_export(tmp_path, account=" ")


# --- folders and manifests ------------------------------------------------------------------------------------------
def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


def test_manifest_keeps_only_the_latest_month_to_date_run(tmp_path: Path) -> None:
    feb = list(gen.make_rows(80, seed=11, start=date(2025, 2, 1), days=28))
    march_early = list(gen.make_rows(60, seed=12, start=date(2025, 3, 1), days=10))
    march_late = list(gen.make_rows(90, seed=13, start=date(2025, 3, 1), days=20))  # restates days 1-10
    root = tmp_path / "exports"
    gen.write_run(root, feb, "ea", export_name="daily", run_id="run-feb", submitted=_utc(2025, 3, 1, 6),
                  start=date(2025, 2, 1), end=date(2025, 2, 28), time_frame="TheLastMonth")
    early = gen.write_run(root, march_early, "ea", export_name="daily", run_id="run-0311",
                          submitted=_utc(2025, 3, 11, 6), start=date(2025, 3, 1), end=date(2025, 3, 31))
    late = gen.write_run(root, march_late, "ea", export_name="daily", run_id="run-0321",
                         submitted=_utc(2025, 3, 21, 6), start=date(2025, 3, 1), end=date(2025, 3, 31), parts=3)
    (root / "daily" / "stray.csv").write_bytes(early.files[0].read_bytes())  # not in any manifest
    lines, summary = read_all(root)

    feb_run = gen.write_run(tmp_path / "again", feb, "ea", export_name="daily", run_id="run-feb",
                            submitted=_utc(2025, 3, 1, 6), start=date(2025, 2, 1), end=date(2025, 2, 28))
    assert summary.superseded == [str(early.manifest)]
    assert len(summary.files) == 2 + 3
    assert all("run-0311" not in f and "stray" not in f for f in summary.files)
    assert summary.cost_kept == {"USD": feb_run.openai_cost + late.openai_cost}
    assert len(lines) == feb_run.openai_rows + late.openai_rows
    assert set(summary.datasets.values()) == {"ActualCost"}
    assert summary.issues == []


def test_manifest_without_export_config_groups_runs_by_export_folder(tmp_path: Path) -> None:
    runs = []
    for name, run_id, day in (("one", "r1", 10), ("one", "r2", 20), ("two", "r1", 10)):
        runs.append(gen.write_run(tmp_path, ROWS[:60], "ea", export_name=name, run_id=run_id,
                                  submitted=_utc(2025, 3, day), start=date(2025, 3, 1), end=date(2025, 3, 31)))
    for run in runs:
        manifest = json.loads(run.manifest.read_text(encoding="utf-8"))
        del manifest["exportConfig"]
        run.manifest.write_text(json.dumps(manifest), encoding="utf-8")
    _, summary = read_all(tmp_path)

    assert summary.superseded == [str(runs[0].manifest)]
    assert summary.files == [str(p) for p in runs[1].files + runs[2].files]


def test_manifest_given_directly_and_parquet_blobs(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    run = gen.write_run(tmp_path, ROWS, "focus-1.0r2", export_name="focus", run_id="r1",
                        submitted=_utc(2025, 3, 29), start=date(2025, 3, 1), end=date(2025, 3, 31), parquet=True,
                        guid_folder=False)
    lines, summary = read_all(run.manifest)

    assert summary.files == [str(p) for p in run.files]
    assert set(summary.formats.values()) == {"focus-1.0r2"}  # the manifest's dataVersion names the schema
    assert summary.cost_kept["USD"] == run.openai_cost and len(lines) == run.openai_rows


def test_manifest_problems_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    run = gen.write_run(root, ROWS[:40], "mca", export_name="mca", run_id="r1", submitted=_utc(2025, 3, 5),
                        start=date(2025, 3, 1), end=date(2025, 3, 31), dataset="amortized",
                        extra_blobs=["exports/mca/20250301-20250331/r1/part_9_0010.csv.gz"])
    manifest = json.loads(run.manifest.read_text(encoding="utf-8"))
    manifest["blobs"][0]["byteCount"] += 1
    run.manifest.write_text(json.dumps(manifest), encoding="utf-8")
    actual = gen.write_run(root, ROWS[:40], "mca", export_name="mca-actual", run_id="r2",
                           submitted=_utc(2025, 3, 5), start=date(2025, 3, 1), end=date(2025, 3, 31))
    broken = root / "old" / "manifest.json"
    broken.parent.mkdir()
    broken.write_text("{not json", encoding="utf-8")
    _, summary = read_all(root)

    reasons = [(i.severity, Path(i.file).name, i.reason.split(":")[0].split(" (")[0]) for i in summary.issues]
    assert ("error", "manifest.json", "manifest not readable, none of its files were read") in reasons
    assert ("error", "part_9_0010.csv.gz",
            f"listed in {run.manifest} but not found under {run.manifest.parent} or {root}") in reasons
    assert ("warning", run.files[0].name, f"manifest byteCount is {manifest['blobs'][0]['byteCount']} but the "
            f"file has {run.files[0].stat().st_size} bytes") in reasons
    assert any(i.severity == "warning" and "several datasets (ActualCost, AmortizedCost)" in i.reason
               for i in summary.issues)
    assert summary.files_malformed == 2
    assert summary.cost_kept["USD"] == run.openai_cost + actual.openai_cost


def test_folder_without_manifest_reads_every_export_file(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = gen.write_csv(tmp_path / "a" / "part_0.csv", ROWS[:100], "mca")
    two = gen.write_csv(tmp_path / "a" / "part_1.csv.gz", ROWS[100:200], "mca", gzip=True)
    three = gen.write_parquet(tmp_path / "b" / "part_0.parquet", ROWS[200:], "focus-1.2")
    (tmp_path / "b" / "notes.txt").write_text("not an export", encoding="utf-8")
    lines, summary = read_all(tmp_path)

    assert summary.files == [str(one.path), str(two.path), str(three.path)]
    assert summary.formats == {str(one.path): "mca", str(two.path): "mca", str(three.path): "focus-1.2"}
    assert lines == (expected(ROWS[:100], "mca", one) + expected(ROWS[100:200], "mca", two)
                     + expected(ROWS[200:], "focus-1.2", three))


# --- exactness and streaming ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("container", ["csv", "parquet"])
def test_costs_sum_exactly_in_decimal(tmp_path: Path, container: str) -> None:
    rows = list(gen.make_rows(5000, seed=21, currency="EUR", rate=EUR))
    written = write(tmp_path, rows, "mca", container)
    lines, summary = read_all(written.path)

    want = sum((r.billed for r in rows if r.openai and r.in_dataset("actual")), Decimal(0))
    assert sum((line.cost for line in lines), Decimal(0)) == want == written.openai_cost
    assert summary.cost_kept == {"EUR": want}
    assert sum((line.quantity for line in lines), Decimal(0)) == sum(
        (r.quantity for r in rows if r.openai and r.in_dataset("actual")), Decimal(0))
    assert all(type(v) is Decimal for line in lines for v in (line.quantity, line.cost, line.cost_usd))


def test_summary_fills_in_as_lines_are_consumed(tmp_path: Path) -> None:
    written = gen.write_csv(tmp_path / "ea.csv", ROWS, "ea")
    lines, summary = read_export(written.path)

    assert (summary.files, summary.rows_read, summary.complete) == ([str(written.path)], 0, False)
    next(lines)
    assert summary.rows_kept == 1 and not summary.complete
    rest = list(lines)
    assert summary.complete and summary.rows_kept == len(rest) + 1
