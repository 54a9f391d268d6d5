"""Dollar cost of one call, from the prices bundled with `genai-prices` (never fetched at run time), or overrides.

The parts are priced one token class at a time so the cost counter can be split by class and the parts
add up exactly (as `Decimal`) to the call's cost. Long-context tiers follow genai-prices' cliff model: the
tier is chosen by the total input, cache included. Overrides (negotiated rates, brand-new models) win over
the bundled data; they are flat per-million-token prices.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, NamedTuple

from .usage import Usage

_log = logging.getLogger("anthropic_otel")

_PER_MTOK: Final = 1_000_000
_PER_K: Final = 1_000
_ZERO: Final = Decimal(0)
_PRICE_TTL_S: Final = 60.0

# gen_ai.provider.name -> genai-prices provider id, then the fallbacks tried in order.
_PROVIDERS: Final[dict[str, tuple[str | None, ...]]] = {
    "anthropic": ("anthropic", None),
    "aws.bedrock": ("aws", "anthropic", None),
    "gcp.vertex_ai": ("google", "anthropic", None),
}
# Anthropic's published structure, used to fill what an override leaves out: cache reads cost 0.1x input,
# 5-minute writes 1.25x, 1-hour writes 2x; web search $10 per 1,000; the Message Batches API 50% of standard.
_READ_FACTOR: Final = Decimal("0.1")
_WRITE_5M_FACTOR: Final = Decimal("1.25")
_WRITE_1H_FACTOR: Final = Decimal("2")
_WEB_SEARCH_PER_K: Final = Decimal("10")
_BATCH_FACTOR: Final = Decimal("0.5")

# Decorations that do not change the model: Bedrock's region/profile prefix and version suffix, Vertex's
# `@date`, a `-YYYYMMDD` date, `-latest`.
_DECORATION = re.compile(r"^(?:[a-z]{2,8}\.)?anthropic\.|-v\d+(?::\d+)?$|[@-]\d{8}$|-latest$")


def canonical_model(model: str) -> str:
    """`claude-sonnet-4-5` for `us.anthropic.claude-sonnet-4-5-20250929-v1:0`, `claude-sonnet-4-5@20250929`, ..."""
    previous = None
    while previous != model:
        previous, model = model, _DECORATION.sub("", model)
    return model


class Cost:
    """A call's cost in USD, by token class; `total` is the exact sum of the parts.

    `cache_savings` is what cache reads saved against the input rate, `write_premium` what cache writes cost
    over it; neither is part of `total`. `net_cache_savings` is the first minus the second.
    """

    __slots__ = ("cache_read", "cache_savings", "cache_write", "input", "output", "total", "web_search",
                 "write_premium")

    def __init__(
        self,
        input: Decimal = _ZERO,
        output: Decimal = _ZERO,
        cache_read: Decimal = _ZERO,
        cache_write: Decimal = _ZERO,
        web_search: Decimal = _ZERO,
        cache_savings: Decimal = _ZERO,
        write_premium: Decimal = _ZERO,
    ) -> None:
        self.input = input
        self.output = output
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.web_search = web_search
        self.cache_savings = cache_savings
        self.write_premium = write_premium
        self.total: Decimal = input + output + cache_read + cache_write + web_search  # summed once, read often

    @property
    def net_cache_savings(self) -> Decimal:
        return self.cache_savings - self.write_premium

    def parts(self) -> tuple[tuple[str, Decimal], ...]:
        """(token class, dollars) pairs, in the names of the `anthropic_otel.token.type` attribute."""
        return (
            ("input", self.input),
            ("output", self.output),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
            ("web_search", self.web_search),
        )

    def __repr__(self) -> str:
        return f"Cost(total={self.total}, {dict(self.parts())!r}, net_cache_savings={self.net_cache_savings})"


class Prices(NamedTuple):
    """One model's prices as used: USD per million tokens (web search: per 1,000), a genai-prices
    `TieredPrices` where the price has long-context tiers."""

    input: Any
    output: Any
    cache_read: Any
    cache_write_5m: Any
    cache_write_1h: Any
    web_search: Any
    source: str  # "genai-prices <model id>", "override" or "genai-prices <id> + 50% batch discount"


_OVERRIDE_KEYS: Final = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "web_search",
                         "batch_factor")


@dataclass(frozen=True)
class PriceOverride:
    """A user's flat prices for one model (USD per million tokens; web search USD per 1,000 searches).

    Only `input` and `output` are required; the rest follow Anthropic's published multipliers of `input`.
    `batch_factor` is what a batch call costs relative to standard (0.5).
    """

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    web_search: Decimal
    batch_factor: Decimal

    @classmethod
    def parse(cls, model: str, raw: Any) -> PriceOverride:
        if not isinstance(raw, Mapping):
            raise ValueError(f"price override for {model!r} must be a table of prices, not {raw!r}")
        unknown = set(raw) - set(_OVERRIDE_KEYS)
        if unknown:
            raise ValueError(f"price override for {model!r}: unknown keys {sorted(unknown)}; "
                             f"known: {', '.join(_OVERRIDE_KEYS)}")
        values: dict[str, Decimal] = {}
        for key, value in raw.items():
            try:
                number = Decimal(str(value)) if isinstance(value, int | float | str | Decimal) else None
            except InvalidOperation:
                number = None
            if isinstance(value, bool) or number is None or not number.is_finite() or number < 0:
                raise ValueError(f"price override for {model!r}: {key} must be a non-negative number, "
                                 f"not {value!r}")
            values[key] = number
        for key in ("input", "output"):
            if key not in values:
                raise ValueError(f"price override for {model!r} needs at least input and output (missing {key})")
        base = values["input"]
        return cls(
            input=base,
            output=values["output"],
            cache_read=values.get("cache_read", base * _READ_FACTOR),
            cache_write_5m=values.get("cache_write_5m", base * _WRITE_5M_FACTOR),
            cache_write_1h=values.get("cache_write_1h", base * _WRITE_1H_FACTOR),
            web_search=values.get("web_search", _WEB_SEARCH_PER_K),
            batch_factor=values.get("batch_factor", _BATCH_FACTOR),
        )

    def prices(self, batch: bool) -> Prices:
        f = self.batch_factor if batch else Decimal(1)
        return Prices(self.input * f, self.output * f, self.cache_read * f, self.cache_write_5m * f,
                      self.cache_write_1h * f, self.web_search, "override")


def load_price_file(path: str | Path) -> dict[str, Any]:
    """The `[models."<id>"]` tables of a TOML or YAML price file; any problem is a ValueError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"{path}: cannot read the price file ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:  # pragma: no cover - PyYAML is a dependency
            raise ValueError(f"{path}: reading YAML needs PyYAML; use a .toml file") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML: {error}") from None
    else:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: {error}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("models", {}), Mapping):
        raise ValueError(f"{path}: expected a 'models' table keyed by model id")
    return dict(data.get("models", {}))


def check_overrides(prices: Mapping[str, Any] | None = None,
                    prices_file: str | Path | None = None) -> dict[str, PriceOverride]:
    """Overrides from the file (default `ANTHROPIC_OTEL_PRICES_FILE`) then the argument, which wins; errors now.

    Every error is a ValueError that names the setting (`prices`, `prices_file` or the variable) and the file.
    """
    import os

    found: dict[str, PriceOverride] = {}
    setting = "prices_file"
    path = prices_file
    if path is None:
        setting, path = "ANTHROPIC_OTEL_PRICES_FILE", os.environ.get("ANTHROPIC_OTEL_PRICES_FILE", "").strip()
    if path:
        try:
            for model, table in load_price_file(path).items():
                found[str(model)] = PriceOverride.parse(str(model), table)
        except ValueError as error:
            message = str(error)
            where = "" if message.startswith(f"{Path(path)}:") else f"{Path(path)}: "
            raise ValueError(f"{setting}: {where}{message}") from None
    if prices is not None:
        if not isinstance(prices, Mapping):
            raise ValueError(f"prices must be a table of model id -> prices (USD per million tokens), "
                             f"not {prices!r}")
        for model, table in prices.items():
            if not isinstance(model, str):
                raise ValueError(f"prices: model ids must be strings, not {model!r}")
            try:
                found[model] = PriceOverride.parse(model, table)
            except ValueError as error:
                raise ValueError(f"prices: {error}") from None
    return found


def _unit_price(price: Any, count: int, total_input: int, per: int) -> Decimal:
    """`count` units at `price` per `per`, the tier chosen by `total_input` (genai-prices' cliff model)."""
    if not count or price is None:
        return _ZERO
    result: Decimal = _tiered(price, total_input) * count / per
    return result


def _tiered(price: Any, total_input: int) -> Decimal:
    """The price that applies at `total_input` (a genai-prices `TieredPrices`: base, tiers sorted by start)."""
    if price is None:
        return _ZERO
    if isinstance(price, Decimal):
        return price
    found: Decimal = price.base
    for tier in reversed(price.tiers):
        if total_input > tier.start:
            found = tier.price
            break
    return found


def _scaled(price: Any, factor: Decimal) -> Any:
    if price is None or isinstance(price, Decimal):
        return None if price is None else price * factor
    from genai_prices.types import Tier, TieredPrices

    return TieredPrices(base=price.base * factor,
                        tiers=[Tier(start=t.start, price=t.price * factor) for t in price.tiers])


class Pricer:
    """Looks up model prices once per model and prices usage; unknown models warn once and cost nothing."""

    def __init__(self, overrides: Mapping[str, PriceOverride] | None = None) -> None:
        from genai_prices import data_snapshot

        self._snapshot = data_snapshot.get_snapshot()
        self.overrides = dict(overrides or {})
        self._canonical_overrides = {canonical_model(model): o for model, o in self.overrides.items()}
        self._models: dict[tuple[str, str], Any] = {}
        self._unknown: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._warned: set[tuple[str, str]] = set()
        self._prices_cache: dict[tuple[str, str, bool], tuple[float, Prices | None]] = {}

    def override(self, model: str) -> PriceOverride | None:
        found = self.overrides.get(model)
        if found is None and self._canonical_overrides:
            found = self._canonical_overrides.get(canonical_model(model))
        return found

    def model(self, model: str, provider: str) -> Any | None:
        """The genai-prices model for `model` as called through `provider`, or None when it has no price there."""
        key = (model, provider)
        found = self._models.get(key)
        if found is not None or key in self._unknown:
            return found
        for provider_id in _PROVIDERS.get(provider, (None,)):
            try:
                found = self._snapshot.find_provider_model(model, None, provider_id, None)[1]
                break
            except LookupError:
                continue
        with self._lock:
            if found is None:
                self._unknown.add(key)
            else:
                self._models[key] = found
        return found

    def prices(self, model: str, provider: str, batch: bool = False) -> Prices | None:
        """The prices that apply now, re-resolved at most once a minute (prices can change on a date)."""
        key = (model, provider, batch)
        now = time.monotonic()
        cached = self._prices_cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._resolve(model, provider, batch)
        if found is None:
            with self._lock:
                if (model, provider) not in self._warned:
                    self._warned.add((model, provider))
                    _log.warning("anthropic_otel: no price known for model %r (%s); its cost is not counted",
                                 model, provider)
            self._prices_cache[key] = (math.inf, None)  # an unknown model stays unknown: no lookup per call
            return None
        self._prices_cache[key] = (now + _PRICE_TTL_S, found)
        return found

    def _resolve(self, model: str, provider: str, batch: bool) -> Prices | None:
        override = self.override(model)
        if override is not None:
            return override.prices(batch)
        info = self.model(model, provider)
        if info is None:
            return None
        moment = datetime.now(tz=UTC)
        found = info.get_prices(moment, {"processing": "batch"} if batch else None)
        source = f"genai-prices {info.id}"
        if batch and provider == "anthropic":
            standard = info.get_prices(moment, None)
            if found.input_mtok == standard.input_mtok and found.output_mtok == standard.output_mtok:
                # No batch variant in the data (it covers the models in Anthropic's current batch table);
                # the Message Batches API is documented as 50% of standard for every model.
                found = _BatchScaled(standard, _BATCH_FACTOR)
                source += " + 50% batch discount"
        write_5m = found.cache_write_5m_mtok
        if write_5m is None:
            write_5m = found.cache_write_mtok
        write_1h = found.cache_write_1h_mtok
        if write_1h is None:
            write_1h = write_5m
        search = found.web_searches_kcount
        if search is None and provider != "anthropic":
            first_party = self.model(canonical_model(model), "anthropic")
            if first_party is not None:
                search = first_party.get_prices(moment, None).web_searches_kcount
        return Prices(found.input_mtok, found.output_mtok, found.cache_read_mtok, write_5m, write_1h, search,
                      source)

    def cost(self, model: str, provider: str, usage: Usage, *, batch: bool = False) -> Cost | None:
        """The cost of `usage`, or None when the model has no known price."""
        prices = self.prices(model, provider, batch or usage.service_tier == "batch")
        if prices is None:
            return None
        total_input = usage.total_input
        unit = _unit_price
        five, hour = usage.split_cache_write()
        read = usage.cache_read
        cost = Cost(
            input=unit(prices.input, usage.input_tokens, total_input, _PER_MTOK),
            output=unit(prices.output, usage.output_tokens, total_input, _PER_MTOK),
            cache_read=unit(prices.cache_read, read, total_input, _PER_MTOK),
            cache_write=unit(prices.cache_write_5m, five, total_input, _PER_MTOK)
            + unit(prices.cache_write_1h, hour, total_input, _PER_MTOK),
            web_search=unit(prices.web_search, usage.web_search_requests, total_input, _PER_K),
        )
        if read or five or hour:
            input_price = _tiered(prices.input, total_input)
            if read:
                cost.cache_savings = input_price * read / _PER_MTOK - cost.cache_read
            if five or hour:
                cost.write_premium = cost.cache_write - input_price * (five + hour) / _PER_MTOK
        return cost

    # -- for `anthropic-otel prices` -----------------------------------------------------------------

    def known_models(self) -> Iterator[str]:
        """Every model id of the bundled Anthropic price list, then the overridden ones."""
        provider = self._snapshot.find_provider(None, "anthropic", None)
        seen = set()
        for info in provider.models:
            seen.add(info.id)
            yield info.id
        for model in self.overrides:
            if model not in seen:
                yield model


class _BatchScaled:
    """A genai-prices `ModelPrice` with the token prices scaled (web search keeps its standard price)."""

    def __init__(self, prices: Any, factor: Decimal) -> None:
        for name in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_5m_mtok",
                     "cache_write_1h_mtok"):
            setattr(self, name, _scaled(getattr(prices, name, None), factor))
        self.web_searches_kcount = prices.web_searches_kcount


def data_source(today: date | None = None) -> tuple[str, date | None, date | None]:
    """The genai-prices version, the date of the latest price change in effect, and the next scheduled one."""
    from importlib.metadata import version

    from genai_prices import data_snapshot

    today = today or datetime.now(tz=UTC).date()
    effective: date | None = None
    scheduled: date | None = None
    for provider in data_snapshot.get_snapshot().providers:
        for info in provider.models:
            for conditional in info.prices if isinstance(info.prices, list) else ():
                start = getattr(getattr(conditional, "constraint", None), "start_date", None)
                if not isinstance(start, date):
                    continue
                if start <= today:
                    effective = start if effective is None else max(effective, start)
                else:
                    scheduled = start if scheduled is None else min(scheduled, start)
    return f"genai-prices {version('genai-prices')}", effective, scheduled
