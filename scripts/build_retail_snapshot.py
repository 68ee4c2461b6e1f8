"""Build TokenID's bundled Azure OpenAI retail-price snapshot from raw Azure Retail Prices API dumps.

    python scripts/build_retail_snapshot.py DUMP [DUMP ...] [--out src/tokenid/pricing/data/azure_retail.json]

A DUMP is any of the shapes people save the Retail Prices API in:

* one API page or a merged response: ``{"Items": [...], "NextPageLink": ...}``;
* a JSON array of items, or NDJSON (one item per line), e.g. ``guygregory/modelmeters.com`` ``monthly/full/*.ndjson``;
* the ``nikklavzar/azure-genai-prices`` snapshot: ``{"fetched_at": ..., "items": [...], "source": ...}``, whose
  items keep only productName / meterName / unitOfMeasure / retailPrice / effectiveStartDate, with the regions
  that share a price merged into one row (so its rows have no region).

Dumps whose SHA-256 is in ``KNOWN_SOURCES`` get their provenance (repository, path, commit, fetch date) from
there; any other dump is labelled with its file name and a warning is printed. Only Azure OpenAI pay-as-you-go
items are kept (``tokenid.pricing.retail.is_azure_openai_item``). Prices are read as ``Decimal`` (``parse_float``)
and written as exact decimal strings. The raw dumps are not committed; see docs/pricing-azure.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenid.pricing.retail import dump_document, is_azure_openai_item, row_from_item

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "src" / "tokenid" / "pricing" / "data" / "azure_retail.json"

#: Provenance of the dumps the bundled snapshot was built from, by SHA-256 of the raw file.
KNOWN_SOURCES: Mapping[str, Mapping[str, str]] = {
    "f7e6d61392060801591dcbd4c2da03918216d0f8a88e3c525efcd5ceeb8f2512": {
        "id": "azure-genai-prices",
        "label": "Azure Retail Prices API via nikklavzar/azure-genai-prices@2d3ab76 (fetched 2026-07-31)",
        "repo": "nikklavzar/azure-genai-prices",
        "path": "src/azure_genai_prices/data/snapshot.json",
        "commit": "2d3ab76287bd2002426d31f0910a0c1be30f78c0",
        "fetched": "2026-07-31",
        "currency": "USD",
        "notes": "every Azure region; rows that share a price are merged, so armRegionName and skuName are empty",
    },
    "892643940f6f6f85d82adddf9ce7a4d7b485729473572ef01e307be029c6660c": {
        "id": "modelmeters-2024-08",
        "label": "Azure Retail Prices API via guygregory/modelmeters.com@144004a (fetched 2026-03-07)",
        "repo": "guygregory/modelmeters.com",
        "path": "monthly/full/2024-08-01.ndjson",
        "commit": "144004aa839baa4b20bbbee5fc649fe544ac4db4",
        "fetched": "2026-03-07",
        "notes": "full API items (with region) whose effectiveStartDate is 2024-08-01",
    },
}


def read_items(path: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The items of a dump, and what the dump says about itself (fetch time)."""
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _dicts(json.loads(text, parse_float=Decimal)), {}
    if stripped.startswith("{"):
        try:
            doc = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError:
            doc = None  # NDJSON: several objects, one per line
        if isinstance(doc, dict):
            if isinstance(doc.get("Items"), list):
                return _dicts(doc["Items"]), {}
            if isinstance(doc.get("items"), list):
                fetched_at = str(doc.get("fetched_at") or "")
                return _dicts(doc["items"]), ({"fetched": fetched_at[:10]} if fetched_at else {})
            return [doc], {}
    return list(_ndjson(text, path)), {}


def _dicts(items: list[Any]) -> list[dict[str, Any]]:
    return [i for i in items if isinstance(i, dict)]


def _ndjson(text: str, path: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                item = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{number}: not JSON ({exc})") from None
            if isinstance(item, dict):
                yield item


def provenance(path: Path, digest: str, self_description: Mapping[str, str]) -> dict[str, str]:
    known = KNOWN_SOURCES.get(digest)
    if known is not None:
        return {**known, "sha256": digest}
    fetched = self_description.get("fetched") or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).date(
    ).isoformat()
    print(f"warning: {path.name} is not a known dump (sha256 {digest}); labelled by file name", file=sys.stderr)
    return {"id": path.stem, "label": f"Azure Retail Prices API dump {path.name} (fetched {fetched})",
            "file": path.name, "fetched": fetched, "sha256": digest}


def build(dumps: list[Path], out: Path) -> None:
    sources: list[dict[str, str]] = []
    rows: list[list[object]] = []
    for path in dumps:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        items, self_description = read_items(path)
        meta = provenance(path, digest, self_description)
        index = len(sources)
        sources.append(meta)
        kept = dropped = 0
        for item in items:
            if not is_azure_openai_item(item):
                dropped += 1
                continue
            if not item.get("currencyCode") and meta.get("currency"):
                item = {**item, "currencyCode": meta["currency"]}
            rows.append(row_from_item(item, index))
            kept += 1
        print(f"{path.name}: {len(items)} items, {kept} Azure OpenAI kept, {dropped} other dropped "
              f"[{meta['label']}]")
    fetched = max(date.fromisoformat(s["fetched"]) for s in sources)
    text = dump_document(rows, sources=sources, fetched=fetched)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8", newline="\n")
    written = json.loads(text)["rows"]
    regions = Counter(r[3] for r in written if r[3])
    print(f"wrote {out} ({len(text.encode()):,} bytes): {len(written)} rows, "
          f"{len({r[0] for r in written})} meter names, {len(regions)} regions, fetched {fetched}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dumps", nargs="+", type=Path, help="raw Retail Prices API dumps (JSON, NDJSON)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    build(args.dumps, args.out)


if __name__ == "__main__":
    main()
