"""Azure OpenAI meter names → model, version, direction, deployment type, billing mode, unit — or ``unknown``.

Azure bills per meter, and its meter names are irregular: ``gpt-4o-mini-0718-Inp-glbl Tokens``,
``gpt 4o mini0718 BatchOutp DataZone Tokens``, ``5.4 mini pp cd Inp Gl 1M Tokens``. The parser reads a name with a
vocabulary that is data, not code (``meter_aliases.toml`` next to this module, plus user files), so a new spelling
is learnt by adding one line to an alias file.

How a name is read:

1. The unit suffix (``Tokens``, ``1M Tokens``, ``Images``, ``Unit``…) is split off; with the optional
   ``unitOfMeasure`` of the export row it gives the unit (``tokens_1k``, ``hours``…).
2. Whole words shaped like a video resolution (``1080p``) or duration (``1-5s``) become qualifiers, and ISO dates
   become the version.
3. The rest is lower-cased and its separators dropped (``gpt4ominibatchoutpdatazone``), then read left to right:
   at each position the longest known spelling wins; failing that a run of 3, 4 or 8 digits is a version.
   Anything else makes the result ``unknown`` with a reason naming the word: the parser never guesses.
4. The pieces are combined (``cached`` + ``aud`` + ``Inp`` → ``cached_audio_input``); two pieces that disagree
   (two models, ``glbl`` and ``DZ``) make the result unknown too.

Results are memoised per (name, unitOfMeasure), so an export of a million rows costs one parse per distinct meter.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

__all__ = [
    "ALIASES_ENV",
    "BILLING_MODES",
    "DEPLOYMENT_TYPES",
    "DIRECTIONS",
    "MeterAliases",
    "MeterInfo",
    "default_aliases",
    "load_aliases",
    "parse_meter",
]

#: Environment variable naming a user alias file merged over the bundled one.
ALIASES_ENV = "TOKENID_METER_ALIASES"

#: Every direction a parsed meter can have.
DIRECTIONS: tuple[str, ...] = (
    "input",
    "cached_input",
    "output",
    "cache_write",
    "audio_input",
    "cached_audio_input",
    "audio_output",
    "image_input",
    "cached_image_input",
    "image_output",
    "image",
    "training",
    "hosting",
    "other",
)
#: Deployment scope named by a meter. Provisioned meters keep their scope; ``billing_mode`` says "provisioned".
DEPLOYMENT_TYPES: tuple[str, ...] = ("global", "data_zone", "regional")
#: How the meter's usage is billed. "standard" is pay-as-you-go: every name without a batch, priority,
#: provisioned or developer word.
BILLING_MODES: tuple[str, ...] = ("standard", "batch", "priority", "provisioned", "developer")

_BASE_DIRECTIONS = ("input", "output", "training", "hosting")
_CACHE_KINDS = ("cached", "cache_write")
_MODALITIES = ("text", "audio", "image")
_COUNT_BLOCKS = ("1", "100", "1k", "10k", "1m")
_TIME_UNITS = {"hour": "hours", "second": "seconds", "day": "days", "month": "months"}

# Alias-file sections holding spellings, and the field each one sets.
_SECTIONS: dict[str, str] = {
    "models": "model",
    "services": "service",
    "directions": "direction",
    "cache": "cache",
    "modalities": "modality",
    "deployment_types": "deployment_type",
    "billing_modes": "billing_mode",
    "context_tiers": "context_tier",
    "qualifiers": "qualifiers",
}
_ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "direction": _BASE_DIRECTIONS,
    "cache": _CACHE_KINDS,
    "modality": _MODALITIES,
    "deployment_type": DEPLOYMENT_TYPES,
    "billing_mode": BILLING_MODES,
}
_TOP_KEYS = (*_SECTIONS, "ignore", "versions", "defaults", "units")

_SEPARATORS = re.compile(r"[^a-z0-9.]+")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
# Whole words kept as qualifiers: video resolutions (480p, 1080p) and duration bands (1-5s, 11-15s).
_WORD_PATTERNS: tuple[re.Pattern[str], ...] = (re.compile(r"\d{3,4}p"), re.compile(r"\d{1,2}-\d{1,2}s"))
_MEMO_LIMIT = 1 << 16


# --------------------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """What one meter name (and optional unitOfMeasure) means.

    ``model`` is the model family in OpenAI's spelling (``gpt-4o``, ``gpt-3.5-turbo``, ``dall-e-3``), ``service``
    the tool or capacity a model-less meter bills (``code_interpreter``, ``provisioned_throughput``).
    ``qualifiers`` keeps the other words that matter for a price: ``fine_tuned``, ``grader``, ``hd``, ``1080p``…
    When ``unknown`` is true every other field is empty and ``reason`` says which word or conflict stopped it.
    """

    name: str
    model: str | None = None
    version: str | None = None
    direction: str | None = None
    deployment_type: str | None = None
    billing_mode: str | None = None
    context_tier: str | None = None
    unit: str | None = None
    service: str | None = None
    qualifiers: tuple[str, ...] = ()
    unknown: bool = False
    reason: str | None = None

    @property
    def pricing_deployment_type(self) -> str | None:
        """The pricing layer's deployment type (``tokenid.pricing.deployments``) for this meter, if it has one.

        ``global_batch`` / ``data_zone_batch`` for batch meters, ``provisioned`` for PTU meters, the scope for
        standard ones; None for priority and developer meters and for meters that name no scope.
        """
        if self.unknown:
            return None
        if self.billing_mode == "provisioned":
            return "provisioned"
        if self.billing_mode == "batch":
            return f"{self.deployment_type}_batch" if self.deployment_type in ("global", "data_zone") else None
        if self.billing_mode == "standard":
            return self.deployment_type
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the parsed fields, or ``{"name", "unknown": true, "reason"}``."""
        if self.unknown:
            return {"name": self.name, "unknown": True, "reason": self.reason}
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "direction": self.direction,
            "deployment_type": self.deployment_type,
            "billing_mode": self.billing_mode,
            "context_tier": self.context_tier,
            "unit": self.unit,
            "service": self.service,
            "qualifiers": list(self.qualifiers),
            "unknown": False,
        }


# --------------------------------------------------------------------------------------------------------------
# Vocabulary


@dataclass(frozen=True, slots=True)
class _Entry:
    """What one spelling contributes. ``implied_*`` apply only when the name says nothing else."""

    source: str  # "<file>: [section] key", for error messages and debugging
    model: str | None = None
    service: str | None = None
    direction: str | None = None
    cache: str | None = None
    modality: str | None = None
    deployment_type: str | None = None
    billing_mode: str | None = None
    context_tier: str | None = None
    qualifiers: tuple[str, ...] = ()
    implied_version: str | None = None
    implied_modality: str | None = None
    ignore: bool = False


@dataclass(frozen=True, slots=True)
class _Suffix:
    kind: str
    block: str | None = None  # stated by the name ("1M Tokens")
    default_block: str | None = None  # assumed when no unitOfMeasure is given


def _compact(text: str) -> str:
    return _SEPARATORS.sub("", text.lower())


def _words(text: str) -> str:
    return " ".join(text.lower().split())


class MeterAliases:
    """A compiled meter vocabulary: spellings, known versions, per-model defaults and unit tables.

    Build one with :func:`load_aliases` (the bundled table, ``$TOKENID_METER_ALIASES``, then your file) or
    :meth:`from_layers`. Instances are immutable apart from their parse memo.
    """

    def __init__(
        self,
        vocab: Mapping[str, _Entry],
        versions: Mapping[str, tuple[tuple[str, str], ...]],
        defaults: Mapping[str, Mapping[str, str]],
        suffixes: Mapping[str, _Suffix],
        units_of_measure: Mapping[str, str],
        direction_units: Mapping[str, str],
        sources: tuple[str, ...],
    ) -> None:
        self._vocab = dict(vocab)
        self._lengths = sorted({len(k) for k in self._vocab}, reverse=True)
        self._versions = dict(versions)
        self._defaults = {k: dict(v) for k, v in defaults.items()}
        self._suffixes = dict(suffixes)
        self._suffix_words = max((len(k.split()) for k in self._suffixes), default=1)
        self._uom = dict(units_of_measure)
        self._direction_units = dict(direction_units)
        self.sources = sources
        self._memo: dict[tuple[str, str | None], MeterInfo] = {}

    def __repr__(self) -> str:
        return f"MeterAliases({len(self._vocab)} spellings from {', '.join(self.sources)})"

    def __contains__(self, spelling: str) -> bool:
        return _compact(spelling) in self._vocab

    @classmethod
    def from_layers(cls, layers: Iterable[tuple[str, Mapping[str, Any]]]) -> MeterAliases:
        """Merge parsed alias tables, later ones winning key by key. Each layer is ``(source name, table)``."""
        vocab: dict[str, _Entry] = {}
        versions: dict[str, tuple[tuple[str, str], ...]] = {}
        defaults: dict[str, dict[str, str]] = {}
        suffixes: dict[str, _Suffix] = {}
        uom: dict[str, str] = {}
        direction_units: dict[str, str] = {}
        sources: list[str] = []
        for source, table in layers:
            sources.append(source)
            _merge_layer(source, table, vocab, versions, defaults, suffixes, uom, direction_units)
        return cls(vocab, versions, defaults, suffixes, uom, direction_units, tuple(sources))

    # ----------------------------------------------------------------------------------------------------------
    # parsing

    def parse(self, name: str, unit_of_measure: str | None = None) -> MeterInfo:
        """Parse one meter name; memoised per (name, unit_of_measure). See :func:`parse_meter`."""
        key = (name, unit_of_measure)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        info = self._parse(name, unit_of_measure)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = info
        return info

    def _parse(self, name: str, unit_of_measure: str | None) -> MeterInfo:
        if not isinstance(name, str) or not name.strip():
            return _unknown(str(name), "empty meter name")
        ws_words = name.split()

        # 1. unit suffix
        suffix: _Suffix | None = None
        for n in range(min(self._suffix_words, len(ws_words) - 1), 0, -1):
            found = self._suffixes.get(_words(" ".join(ws_words[-n:])))
            if found is not None:
                suffix, ws_words = found, ws_words[:-n]
                break

        # 2. ISO dates become the version; resolutions and durations are read whole in step 3
        body = " ".join(ws_words)
        dates = [m.group(0) for m in _ISO_DATE.finditer(body)]
        body = _ISO_DATE.sub(" ", body)

        # 3. read the compacted rest
        pieces, versions, unrecognised = self._scan(body.split())
        versions = dates + versions
        if unrecognised:
            quoted = ", ".join(repr(w) for w in unrecognised)
            return _unknown(name, f"unrecognised token{'s' if len(unrecognised) > 1 else ''} {quoted}")
        return self._combine(name, pieces, versions, suffix, unit_of_measure)

    def _scan(self, words: list[str]) -> tuple[list[_Entry], list[str], list[str]]:
        """Split the compacted words into known spellings and version numbers.

        Among all ways to cover the text, the one with the fewest unrecognised words wins, then the one with the
        fewest pieces (so ``inptxt`` reads ``inp`` + ``txt``, not ``inpt`` + ``xt``), then the one taking the
        longest spelling first.
        """
        subwords: list[str] = []  # original spelling of every separator-delimited piece
        owner: list[int] = []  # compact index -> subword index
        chunks: list[str] = []
        patterned: dict[str, _Entry] = {}  # placeholder character -> qualifier entry
        for word in words:
            low = word.lower()
            if any(p.fullmatch(low) for p in _WORD_PATTERNS):
                # a whole word such as "1-5s" or "1080p": one placeholder no spelling can run into
                mark = chr(0xE000 + len(patterned))
                patterned[mark] = _Entry(source="word pattern", qualifiers=(low,))
                owner.append(len(subwords))
                subwords.append(word)
                chunks.append(mark)
                continue
            for sub in re.split(r"[^A-Za-z0-9.]+", word):
                if sub:
                    owner.extend([len(subwords)] * len(sub))
                    subwords.append(sub)
                    chunks.append(sub.lower())
        text = "".join(chunks)
        end = len(text)
        # best[pos] = ((unrecognised words, pieces), step length, what the step is) for text[pos:]
        best: list[tuple[tuple[int, int], int, _Entry | str | None]] = [((0, 0), 0, None)] * (end + 1)
        for pos in range(end - 1, -1, -1):
            choice: tuple[tuple[int, int], int, _Entry | str | None] | None = None
            if text[pos] in patterned:
                (bad, count), _, _ = best[pos + 1]
                best[pos] = ((bad, count + 1), 1, patterned[text[pos]])
                continue
            for length in self._lengths:
                if pos + length <= end:
                    entry = self._vocab.get(text[pos : pos + length])
                    if entry is not None:
                        (bad, count), _, _ = best[pos + length]
                        if choice is None or (bad, count + 1) < choice[0]:
                            choice = ((bad, count + 1), length, entry)
            run = 0
            while pos + run < end and text[pos + run].isdigit() and owner[pos + run] == owner[pos]:
                run += 1
            # a version is a whole run of digits: not the tail of a longer number in the same word
            if run in (3, 4, 8) and (pos == 0 or not text[pos - 1].isdigit() or owner[pos - 1] != owner[pos]):
                (bad, count), _, _ = best[pos + run]
                if choice is None or (bad, count + 1) < choice[0]:
                    choice = ((bad, count + 1), run, "version")
            skip = 1
            while pos + skip < end and owner[pos + skip] == owner[pos]:
                skip += 1
            (bad, count), _, _ = best[pos + skip]
            if choice is None or (bad + 1, count + 1) < choice[0]:
                choice = ((bad + 1, count + 1), skip, None)
            best[pos] = choice

        pieces: list[_Entry] = []
        versions: list[str] = []
        unrecognised: list[str] = []
        pos = 0
        while pos < end:
            _, length, step = best[pos]
            if isinstance(step, _Entry):
                if not step.ignore:
                    pieces.append(step)
            elif step == "version":
                versions.append(text[pos : pos + length])
            elif subwords[owner[pos]] not in unrecognised:
                unrecognised.append(subwords[owner[pos]])
            pos += length
        return pieces, versions, unrecognised

    def _combine(
        self,
        name: str,
        pieces: list[_Entry],
        version_tokens: list[str],
        suffix: _Suffix | None,
        unit_of_measure: str | None,
    ) -> MeterInfo:
        single: dict[str, str] = {}
        billing: list[str] = []
        qualifiers: list[str] = []
        implied_version: str | None = None
        implied_modality: str | None = None
        for piece in pieces:
            for field_name in ("model", "service", "direction", "cache", "modality", "deployment_type",
                               "context_tier"):
                value = getattr(piece, field_name)
                if value is None:
                    continue
                if single.setdefault(field_name, value) != value:
                    label = field_name.replace("_", " ")
                    return _unknown(name, f"conflicting {label}s: {single[field_name]!r} and {value!r}")
            if piece.billing_mode is not None and piece.billing_mode not in billing:
                billing.append(piece.billing_mode)
            qualifiers.extend(q for q in piece.qualifiers if q not in qualifiers)
            implied_version = implied_version or piece.implied_version
            implied_modality = implied_modality or piece.implied_modality

        model, service = single.get("model"), single.get("service")
        if model is None and service is None:
            return _unknown(name, "names no model or service")
        if model is not None and service is not None:
            return _unknown(name, f"names both a model ({model!r}) and a service ({service!r})")

        # version: a token in the name wins over one implied by the model's spelling
        distinct = sorted(set(version_tokens))
        if len(distinct) > 1:
            return _unknown(name, f"several versions: {', '.join(distinct)}")
        version: str | None = implied_version
        if distinct and model is not None:
            model, version = self._resolve_version(model, distinct[0])
        elif distinct:
            return _unknown(name, f"version {distinct[0]!r} on a meter that names no model")

        # billing mode: at most one besides an explicit "standard"
        if len(billing) > 1:
            return _unknown(name, f"conflicting billing modes: {' and '.join(billing)}")
        billing_mode = billing[0] if billing else "standard"

        subject = model or service or ""
        defaults = self._defaults.get(subject, {})
        direction = _direction(
            single.get("direction"), single.get("cache"), single.get("modality") or implied_modality,
            defaults.get("direction"),
        )
        if direction is None:
            parts = [p for p in (single.get("cache"), single.get("modality"), single.get("direction")) if p]
            return _unknown(name, f"no direction for {' '.join(parts)}")

        unit, unit_problem = self._unit(suffix, unit_of_measure, direction, defaults.get("unit"))
        if unit_problem is not None:
            return _unknown(name, unit_problem)

        return MeterInfo(
            name=name,
            model=model,
            version=version,
            direction=direction,
            deployment_type=single.get("deployment_type"),
            billing_mode=billing_mode,
            context_tier=single.get("context_tier"),
            unit=unit,
            service=service,
            qualifiers=tuple(qualifiers),
        )

    def _resolve_version(self, model: str, token: str) -> tuple[str, str]:
        """The known version ``token`` abbreviates (maybe on another model), else the token as written."""
        if len(token) not in (3, 4):
            return model, token
        mmdd = token.zfill(4)
        matches = [
            (target, version)
            for target, version in self._versions.get(model, ())
            if version in (token, mmdd) or (len(version) == 10 and version[5:7] + version[8:10] == mmdd)
        ]
        if len(matches) == 1:
            return matches[0]
        return model, token

    def _unit(
        self, suffix: _Suffix | None, unit_of_measure: str | None, direction: str, default: str | None
    ) -> tuple[str | None, str | None]:
        """(unit, None) or (None, the reason the unit contradicts itself)."""
        block: str | None = None
        if unit_of_measure is not None and unit_of_measure.strip():
            block = self._uom.get(_words(unit_of_measure))
            if block is None:
                return None, f"unrecognised unitOfMeasure {unit_of_measure!r}"
        if suffix is not None and suffix.block is not None:
            if block is not None and block != suffix.block:
                return None, f"unitOfMeasure {unit_of_measure!r} contradicts the name's {suffix.block} block"
            block = suffix.block
        kind = suffix.kind if suffix is not None else None

        if kind is None or kind == "unit":
            if block in _TIME_UNITS:
                return _TIME_UNITS[block], None
            if block is None and kind == "unit" and direction in self._direction_units:
                return self._direction_units[direction], None
            if default is not None and (block is None or _block_of(default) == block):
                return default, None
            return None, None
        if kind == "gb":
            if block in (None, "day"):
                return "gb_days", None
        elif kind == "seconds":
            if block in (None, "1", "second"):
                return "seconds", None
        elif suffix is not None:
            block = block or suffix.default_block
            if block in _COUNT_BLOCKS:
                return (kind if block == "1" else f"{kind}_{block}"), None
            if block is None:
                return None, None
        return None, f"unitOfMeasure {unit_of_measure!r} does not fit a meter counting {kind}"


def _block_of(unit: str) -> str | None:
    _, _, block = unit.rpartition("_")
    return block if block in _COUNT_BLOCKS else None


def _direction(base: str | None, cache: str | None, modality: str | None, default: str | None) -> str | None:
    """Compose base direction, cache marker and modality; None when they cannot go together."""
    modality = None if modality == "text" else modality
    if cache == "cache_write":
        return "cache_write" if base in (None, "input") and modality is None else None
    if cache == "cached":
        if base not in (None, "input"):
            return None
        return f"cached_{modality}_input" if modality else "cached_input"
    if base in ("input", "output"):
        return f"{modality}_{base}" if modality else base
    if base is not None:  # training, hosting
        return base if modality is None else None
    if default is not None:
        return default
    return "other"


def _unknown(name: str, reason: str) -> MeterInfo:
    return MeterInfo(name=name, unknown=True, reason=reason)


# --------------------------------------------------------------------------------------------------------------
# Loading


def _merge_layer(
    source: str,
    table: Mapping[str, Any],
    vocab: dict[str, _Entry],
    versions: dict[str, tuple[tuple[str, str], ...]],
    defaults: dict[str, dict[str, str]],
    suffixes: dict[str, _Suffix],
    uom: dict[str, str],
    direction_units: dict[str, str],
) -> None:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: a meter alias table must be a mapping; got {type(table).__name__}")
    for key in table:
        if key not in _TOP_KEYS:
            raise ConfigError(f"{source}: unknown section [{key}]; accepted: {', '.join(_TOP_KEYS)}")

    layer_keys: dict[str, str] = {}  # compact key -> where this layer defined it
    for section, field_name in _SECTIONS.items():
        entries = table.get(section, {})
        if not isinstance(entries, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table of spelling = value")
        for spelling, value in entries.items():
            where = f"{source}: [{section}] {spelling!r}"
            key = _compact(str(spelling))
            if not key:
                raise ConfigError(f"{where}: a spelling needs at least one letter or digit")
            if key in layer_keys:
                raise ConfigError(f"{where}: the same spelling as {layer_keys[key]} once separators are removed")
            layer_keys[key] = where
            vocab[key] = _entry(where, field_name, value)

    ignore = table.get("ignore", {})
    words = ignore.get("words", []) if isinstance(ignore, Mapping) else None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ConfigError(f"{source}: [ignore] words must be a list of strings")
    for word in words:
        key = _compact(word)
        if key in layer_keys:
            raise ConfigError(f"{source}: [ignore] {word!r} is also {layer_keys[key]}")
        layer_keys[key] = f"{source}: [ignore] {word!r}"
        vocab[key] = _Entry(source=layer_keys[key], ignore=True)

    raw_versions = table.get("versions", {})
    if not isinstance(raw_versions, Mapping):
        raise ConfigError(f"{source}: [versions] must map a model to a list of versions")
    for model, listed in raw_versions.items():
        if not isinstance(listed, list) or not all(isinstance(v, str) and v.strip() for v in listed):
            raise ConfigError(f"{source}: [versions] {model!r} must be a list of version strings")
        versions[str(model)] = tuple(
            (v.split("@", 1)[0], v.split("@", 1)[1]) if "@" in v else (str(model), v) for v in listed
        )

    raw_defaults = table.get("defaults", {})
    if not isinstance(raw_defaults, Mapping):
        raise ConfigError(f"{source}: [defaults] must be a table of model or service tables")
    for subject, values in raw_defaults.items():
        where = f"{source}: [defaults.{subject}]"
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where} must be a table with 'direction' and/or 'unit'")
        merged = defaults.setdefault(str(subject), {})
        for key, value in values.items():
            if key not in ("direction", "unit") or not isinstance(value, str) or not value:
                raise ConfigError(f"{where}.{key}: accepted keys are 'direction' and 'unit', with string values")
            if key == "direction" and value not in DIRECTIONS:
                raise ConfigError(f"{where}.direction must be one of {', '.join(DIRECTIONS)}; got {value!r}")
            merged[key] = value

    units = table.get("units", {})
    if not isinstance(units, Mapping):
        raise ConfigError(f"{source}: [units] must be a table")
    for key, sub in units.items():
        if key not in ("suffixes", "unit_of_measure", "direction_defaults"):
            raise ConfigError(f"{source}: unknown table [units.{key}]")
        if not isinstance(sub, Mapping):
            raise ConfigError(f"{source}: [units.{key}] must be a table")
    for spelling, spec in units.get("suffixes", {}).items():
        where = f"{source}: [units.suffixes] {spelling!r}"
        if not isinstance(spec, Mapping) or not isinstance(spec.get("kind"), str):
            raise ConfigError(f"{where} must be a table with a 'kind' (and optionally 'block' or 'default_block')")
        suffixes[_words(spelling)] = _Suffix(
            kind=spec["kind"],
            block=_block(where, spec.get("block")),
            default_block=_block(where, spec.get("default_block")),
        )
    for spelling, block in units.get("unit_of_measure", {}).items():
        checked = _block(f"{source}: [units.unit_of_measure] {spelling!r}", block)
        if checked is None:
            raise ConfigError(f"{source}: [units.unit_of_measure] {spelling!r} needs a block")
        uom[_words(spelling)] = checked
    for direction, unit in units.get("direction_defaults", {}).items():
        if direction not in DIRECTIONS or not isinstance(unit, str):
            raise ConfigError(f"{source}: [units.direction_defaults] {direction!r} must name a direction and a unit")
        direction_units[direction] = unit


def _block(where: str, value: object) -> str | None:
    if value is None:
        return None
    accepted = (*_COUNT_BLOCKS, *_TIME_UNITS)
    if value not in accepted:
        raise ConfigError(f"{where}: a block must be one of {', '.join(accepted)}; got {value!r}")
    return str(value)


def _entry(where: str, field_name: str, value: object) -> _Entry:
    fields: dict[str, Any] = {}
    if isinstance(value, str):
        fields[field_name] = value
    elif isinstance(value, Mapping):
        fields = dict(value)
        if field_name not in fields:
            raise ConfigError(f"{where}: a table here needs a {field_name!r} key")
    else:
        raise ConfigError(f"{where}: expected a string or a table; got {type(value).__name__}")
    kwargs: dict[str, Any] = {}
    for key, raw in fields.items():
        if key == "qualifiers":
            items = [raw] if isinstance(raw, str) else raw
            if not isinstance(items, list) or not all(isinstance(q, str) and q for q in items):
                raise ConfigError(f"{where}: qualifiers must be a string or a list of strings")
            kwargs["qualifiers"] = tuple(items)
            continue
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(f"{where}: {key} must be a non-empty string; got {raw!r}")
        if key == "version":
            kwargs["implied_version"] = raw
        elif key == "modality" and field_name != "modality":
            _check(where, "modality", raw)
            kwargs["implied_modality"] = raw
        elif key in _SECTIONS.values():
            _check(where, key, raw)
            kwargs[key] = raw
        else:
            accepted = ", ".join([*sorted(set(_SECTIONS.values()) - {"qualifiers"}), "qualifiers", "version"])
            raise ConfigError(f"{where}: unknown key {key!r}; accepted: {accepted}")
    return _Entry(source=where, **kwargs)


def _check(where: str, key: str, value: str) -> None:
    allowed = _ALLOWED_VALUES.get(key)
    if allowed is not None and value not in allowed:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(allowed)}; got {value!r}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"meter aliases: cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"meter aliases: {path} is not valid TOML: {exc}") from exc


def _bundled() -> tuple[str, dict[str, Any]]:
    text = resources.files(__package__).joinpath("meter_aliases.toml").read_text(encoding="utf-8")
    return "meter_aliases.toml (bundled)", tomllib.loads(text)


def _layers(path: str | os.PathLike[str] | None, env_path: str | None) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield _bundled()
    for extra in (env_path, path):
        if extra:
            file = Path(extra).expanduser()
            yield str(file), _read_toml(file)


def load_aliases(path: str | os.PathLike[str] | None = None) -> MeterAliases:
    """The bundled vocabulary, then the file named by ``$TOKENID_METER_ALIASES``, then ``path``; later wins.

    A malformed file raises :class:`~tokenid.errors.ConfigError` naming the file, section and key.
    """
    return MeterAliases.from_layers(_layers(path, os.environ.get(ALIASES_ENV)))


_DEFAULTS: dict[str | None, MeterAliases] = {}


def default_aliases() -> MeterAliases:
    """The vocabulary :func:`parse_meter` uses when given none: bundled plus ``$TOKENID_METER_ALIASES``.

    Loaded once per value of the environment variable.
    """
    env_path = os.environ.get(ALIASES_ENV) or None
    aliases = _DEFAULTS.get(env_path)
    if aliases is None:
        aliases = _DEFAULTS[env_path] = MeterAliases.from_layers(_layers(None, env_path))
    return aliases


def parse_meter(name: str, unit_of_measure: str | None = None, *, aliases: MeterAliases | None = None) -> MeterInfo:
    """Parse an Azure meter name (``MeterName`` / ``x_SkuMeterName`` / ``SkuMeter``) into a :class:`MeterInfo`.

    ``unit_of_measure`` is the row's ``UnitOfMeasure`` / ``unitOfMeasure`` (``1K``, ``1M``, ``1 Hour``…) when
    known. An unrecognised word, or two words that disagree, gives ``unknown=True`` with a reason — never a guess.
    """
    return (aliases or default_aliases()).parse(name, unit_of_measure)

