"""Per-million-token rates, user price overrides, and the cost arithmetic that applies them to a ``Usage``.

Money is exact ``Decimal`` throughout: token count × rate is summed per component, shifted by 10⁻⁶ (rates are per
million tokens) and never rounded, because a single call of a cheap model costs well under a micro-dollar and
rounding per call would lose real money across millions of calls. Round only when displaying.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow

from tokenid.errors import ConfigError
from tokenid.usage import Usage

__all__ = [
    "COMPONENTS",
    "RATE_FIELDS",
    "ComponentCost",
    "MissingRateError",
    "Rates",
    "TieredRates",
    "component_costs",
    "parse_price_overrides",
    "price_tokens",
    "split_tokens",
    "tidy",
    "to_decimal",
]

# Exact arithmetic independent of whatever decimal context the calling thread has set: 60 significant digits hold
# any realistic token count × rate × multiplier without rounding.
_CTX = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])
_ZERO = Decimal(0)
_ONE = Decimal(1)

#: Rate fields of :class:`Rates`, in declaration order (the keys accepted in a price override).
RATE_FIELDS: tuple[str, ...] = (
    "input",
    "output",
    "cached_input",
    "cache_write",
    "audio_input",
    "audio_output",
    "cached_audio_input",
    "image_input",
    "cached_image_input",
)

#: The disjoint token buckets a call is split into; each is billed at the rate of the same name (after fallbacks).
#: The input buckets sum to ``input_tokens`` and the output buckets to ``output_tokens``.
COMPONENTS: tuple[str, ...] = (
    "input",
    "cached_input",
    "cache_write",
    "audio_input",
    "cached_audio_input",
    "image_input",
    "cached_image_input",
    "output",
    "audio_output",
)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens for each kind of token; ``None`` means "no separate rate".

    A missing rate falls back to the nearest more general one, mirroring how a provider that publishes no special
    rate bills those tokens: ``cached_input``, ``cache_write``, ``audio_input`` and ``image_input`` fall back to
    ``input``; ``audio_output`` to ``output``; ``cached_audio_input`` to ``audio_input`` when that is set (no
    published cache discount on audio), else to the cached text rate; ``cached_image_input`` likewise.
    """

    input: Decimal | None = None
    output: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    audio_input: Decimal | None = None
    audio_output: Decimal | None = None
    cached_audio_input: Decimal | None = None
    image_input: Decimal | None = None
    cached_image_input: Decimal | None = None
    # rate per COMPONENTS entry after fallbacks; computed once so pricing a call does no lookups
    _effective: tuple[Decimal | None, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in RATE_FIELDS:
            value = getattr(self, name)
            if value is not None and not (isinstance(value, Decimal) and value.is_finite() and value >= 0):
                raise ConfigError(f"Rates.{name} must be a finite Decimal >= 0 (USD per million tokens); got {value!r}")
        cached = self.cached_input if self.cached_input is not None else self.input
        audio_in = self.audio_input if self.audio_input is not None else self.input
        image_in = self.image_input if self.image_input is not None else self.input
        cached_audio = self.cached_audio_input
        if cached_audio is None:
            cached_audio = self.audio_input if self.audio_input is not None else cached
        cached_image = self.cached_image_input
        if cached_image is None:
            cached_image = self.image_input if self.image_input is not None else cached
        effective = (
            self.input,
            cached,
            self.cache_write if self.cache_write is not None else self.input,
            audio_in,
            cached_audio,
            image_in,
            cached_image,
            self.output,
            self.audio_output if self.audio_output is not None else self.output,
        )
        object.__setattr__(self, "_effective", effective)

    @property
    def effective(self) -> Mapping[str, Decimal | None]:
        """The rate each component of :data:`COMPONENTS` is billed at, after fallbacks."""
        return dict(zip(COMPONENTS, self._effective, strict=True))

    def scaled(self, factor: Decimal) -> Rates:
        """These rates multiplied by ``factor`` (e.g. a deployment-type premium), exactly."""
        values = {name: getattr(self, name) for name in RATE_FIELDS}
        return Rates(**{k: None if v is None else _CTX.multiply(v, factor) for k, v in values.items()})


@dataclass(frozen=True, slots=True)
class TieredRates:
    """Rates that change with the prompt size (long-context pricing).

    ``tiers`` holds ``(threshold, rates)`` in ascending order; a call whose ``input_tokens`` exceed a threshold is
    billed entirely at that tier's rates (the "cliff" model OpenAI and genai-prices use).
    """

    base: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()

    def for_input(self, input_tokens: int) -> Rates:
        """The rates that apply to a call with ``input_tokens`` prompt tokens."""
        chosen = self.base
        for threshold, rates in self.tiers:
            if input_tokens <= threshold:
                break
            chosen = rates
        return chosen


class MissingRateError(LookupError):
    """A call has tokens of a kind the rate card gives no price for (e.g. output tokens, input-only card)."""

    def __init__(self, component: str) -> None:
        super().__init__(f"no {component} rate")
        self.component = component


@dataclass(frozen=True, slots=True)
class ComponentCost:
    """One line of a cost breakdown: ``tokens`` of one kind at ``rate`` USD per million."""

    component: str
    tokens: int
    rate: Decimal | None
    cost_usd: Decimal


def split_tokens(usage: Usage) -> tuple[int, ...]:
    """Split a call's tokens into the disjoint buckets of :data:`COMPONENTS`, so no token is billed twice.

    Cached, cache-write, audio and image tokens are subsets of ``input_tokens``; audio output of ``output_tokens``;
    reasoning tokens are part of output and billed at the output rate. ``Usage`` does not say how the cache
    overlaps the modalities unless it reports ``cached_audio_input_tokens``, so cache reads then cache writes are
    assumed to be text first (the disjoint case); only cached tokens that cannot be text are counted as cached
    audio, then cached image. Counts that exceed their parent (malformed usage) are clipped to it rather than
    producing negative buckets.
    """
    if not (usage.audio_input_tokens or usage.image_input_tokens or usage.cache_write_tokens
            or usage.cached_audio_input_tokens or usage.audio_output_tokens):
        # text only, the usual case: what the general split below gives then, in a quarter of the time
        inp = max(usage.input_tokens, 0)
        cached = min(max(usage.cached_input_tokens, 0), inp)
        return (inp - cached, cached, 0, 0, 0, 0, 0, max(usage.output_tokens, 0), 0)
    return _split_modalities(usage)


def _split_modalities(usage: Usage) -> tuple[int, ...]:
    """:func:`split_tokens` for a call with any non-zero audio, image or cache-write count."""
    inp = max(usage.input_tokens, 0)
    out = max(usage.output_tokens, 0)
    audio = min(max(usage.audio_input_tokens, 0), inp)
    image = min(max(usage.image_input_tokens, 0), inp - audio)
    text = inp - audio - image
    cached = min(max(usage.cached_input_tokens, 0), inp)
    write = min(max(usage.cache_write_tokens, 0), inp - cached)

    if usage.cached_audio_input_tokens > 0:  # the response split the cache by modality: use it
        cached_audio = min(usage.cached_audio_input_tokens, audio, cached)
        cached_text = min(cached - cached_audio, text)
    else:
        cached_text = min(cached, text)
        cached_audio = min(cached - cached_text, audio)
    cached_image = min(cached - cached_text - cached_audio, image)
    cached = cached_text + cached_audio + cached_image
    write = min(write, inp - cached)
    write_text = min(write, text - cached_text)
    write_audio = min(write - write_text, audio - cached_audio)
    write_image = write - write_text - write_audio

    audio_out = min(max(usage.audio_output_tokens, 0), out)
    return (
        text - cached_text - write_text,
        cached_text,
        write,
        audio - cached_audio - write_audio,
        cached_audio,
        image - cached_image - write_image,
        cached_image,
        out - audio_out,
        audio_out,
    )


def price_tokens(rates: Rates, tokens: tuple[int, ...]) -> Decimal:
    """Exact USD cost of ``tokens`` (from :func:`split_tokens`) at ``rates``.

    Raises :class:`MissingRateError` when a non-empty bucket has no rate even after fallbacks.
    """
    total = _ZERO
    for index, count in enumerate(tokens):
        if count:
            rate = rates._effective[index]
            if rate is None:
                raise MissingRateError(COMPONENTS[index])
            total = _CTX.add(total, _CTX.multiply(count, rate))
    return total.scaleb(-6, _CTX)


def tidy(amount: Decimal) -> Decimal:
    """The same amount without trailing fractional zeros (``13.4750000`` -> ``13.475``, ``0E-9`` -> ``0``).

    Exact; it only changes the text ``str()`` gives, never in exponent form (``100``, not ``1E+2``).
    """
    reduced = amount.normalize(_CTX)
    if reduced.as_tuple().exponent > 0:  # type: ignore[operator]
        reduced = reduced.quantize(_ONE, context=_CTX)
    return reduced


def component_costs(rates: Rates, usage: Usage, multiplier: Decimal = Decimal(1)) -> tuple[ComponentCost, ...]:
    """Per-component breakdown (every bucket, including empty ones) whose costs sum exactly to the call's cost.

    ``multiplier`` (a deployment-type factor) is applied to each line, so the lines still add up to the total.
    A bucket with tokens but no rate shows ``rate=None`` and cost 0; :func:`price_tokens` is what refuses it.
    """
    lines = []
    for name, count, rate in zip(COMPONENTS, split_tokens(usage), rates._effective, strict=True):
        cost = _ZERO if rate is None else _CTX.multiply(_CTX.multiply(count, rate), multiplier).scaleb(-6, _CTX)
        lines.append(ComponentCost(name, count, rate, cost))
    return tuple(lines)


def to_decimal(value: object, key: str) -> Decimal:
    """Read a non-negative money amount from config: str, int, Decimal, or float (converted via ``str``)."""
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number such as '2.50'; got {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # str() gives the shortest repr (0.1 -> '0.1'), not the binary expansion Decimal(0.1) would
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number >= 0; got {value!r}")
        number = Decimal(str(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip().replace("_", ""))
        except InvalidOperation:
            raise ConfigError(f"{key} must be a number such as '2.50'; got {value!r}") from None
    else:
        raise ConfigError(f"{key} must be a number (str, int or Decimal) such as '2.50'; got {type(value).__name__}")
    if not number.is_finite() or number < 0:
        raise ConfigError(f"{key} must be a finite number >= 0; got {value!r}")
    return number


def _parse_rates(value: object, where: str) -> Rates:
    if isinstance(value, Rates):
        return value
    if not isinstance(value, Mapping):
        accepted = ", ".join(repr(name) for name in RATE_FIELDS)
        raise ConfigError(f"{where} must be a mapping of rate names ({accepted}) to USD per million tokens")
    known = {f.name for f in fields(Rates) if f.init}
    parsed: dict[str, Decimal | None] = {}
    for name, raw in value.items():
        if name not in known:
            accepted = ", ".join(repr(n) for n in RATE_FIELDS)
            raise ConfigError(f"{where}.{name}: unknown rate; accepted rates are {accepted}")
        parsed[name] = None if raw is None else to_decimal(raw, f"{where}.{name}")
    if parsed.get("input") is None:
        raise ConfigError(f"{where}.input is required (USD per million input tokens, e.g. '2.50')")
    return Rates(**parsed)


def parse_price_overrides(value: Mapping[str, object] | None, *, key: str = "price_overrides") -> dict[str, Rates]:
    """Validate custom prices: ``{name: {"input": "2.00", "cached_input": "1.00", "output": "8.00"}}``.

    ``name`` is a model (any spelling: aliases apply, and an unversioned name covers every version) or an Azure
    deployment name; prefix it with ``model:`` or ``deployment:`` when a deployment is named like a model. Rates
    are USD per million tokens; ``input`` is required, the others fall back as described on :class:`Rates`.
    Keys are returned as given (stripped); the :class:`~tokenid.pricing.Pricer` interprets them.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{key} must be a mapping of model or deployment name to rates, e.g. "
            f"{{'gpt-4o': {{'input': '2.50', 'output': '10.00'}}}}; got {type(value).__name__}"
        )
    result: dict[str, Rates] = {}
    for name, rates in value.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{key}: names must be non-empty model or deployment names; got {name!r}")
        prefix, sep, rest = name.strip().partition(":")
        if sep and prefix in ("model", "deployment") and not rest.strip():
            raise ConfigError(f"{key}[{name!r}]: a name is required after '{prefix}:'")
        result[name.strip()] = _parse_rates(rates, f"{key}[{name!r}]")
    return result
