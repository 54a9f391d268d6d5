"""Dollar cost of one call, from the prices bundled with `genai-prices` (never fetched at run time), or overrides.

The parts are priced one token class at a time so the cost counter can be split by class and the parts
add up exactly (as `Decimal`) to the call's cost. Long-context tiers follow genai-prices' cliff model: the
tier is chosen by the total input, cache included. Overrides (negotiated rates, brand-new models) win over
the bundled data; they are flat per-million-token prices.

Billing dimensions beyond the token classes (docs/telemetry.md, "Cost"):
- speed `fast`: the data's fast rows (`when={'speed': 'fast'}`); a model without one is priced at its standard
  rate (the API only offers fast mode where Anthropic publishes a fast price).
- inference geo `us`: Anthropic prices US-only inference at 1.1x every token price on Opus 4.6, Sonnet 4.6
  and later models (first-party API only). genai-prices has no geo rows, so the factor is applied here, like
  the batch 50% rule, and stacks with the others (long context x geo = 2.2x input). An override's
  `us_geo_factor` replaces it.
- service tier `priority`: committed capacity with no public per-token list price, so standard rates unless
  an override gives a `priority` table.
- cache reads and writes: the data's own per-model prices (some models read the cache at 0.025x or 0.05x of
  input); an override that leaves them out gets that model's own ratios when the data knows the model, else
  Anthropic's default multipliers.
- web fetch: priced per 1,000 requests where the data has a fee (it has none today: zero); code-execution
  container hours are billed per organization, not per call, so they are not priced here.
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
# US-only inference (`inference_geo="us"`): 1.1x every token price on models from Opus/Sonnet 4.6 on.
_US_GEO_FACTOR: Final = Decimal("1.1")
_US_GEO_SINCE: Final = (4, 6)
_WARN_LIMIT: Final = 20  # distinct unknown models warned about one by one; then one summary, then silence
_VERSION = re.compile(r"^claude-(?:[a-z]+-)?(\d+)(?:-(\d{1,2}))?(?:-|$)")

# Decorations that do not change the model: Bedrock's region/profile prefix and version suffix, Vertex's
# `@date`, a `-YYYYMMDD` date, `-latest`.
_DECORATION = re.compile(r"^(?:[a-z]{2,8}\.)?anthropic\.|-v\d+(?::\d+)?$|[@-]\d{8}$|-latest$")


def canonical_model(model: str) -> str:
    """`claude-sonnet-4-5` for `us.anthropic.claude-sonnet-4-5-20250929-v1:0`, `claude-sonnet-4-5@20250929`, ..."""
    previous = None
    while previous != model:
        previous, model = model, _DECORATION.sub("", model)
    return model


def model_version(model: str) -> tuple[int, int] | None:
    """(major, minor) of a Claude model id (`claude-opus-4-6` -> (4, 6), `claude-fable-5` -> (5, 0)), or None."""
    found = _VERSION.match(canonical_model(model))
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2) or 0)


def default_geo_factor(model: str) -> Decimal:
    """The US-only inference factor Anthropic publishes for `model`: 1.1 from the 4.6 models on, else 1."""
    version = model_version(model)
    return _US_GEO_FACTOR if version is not None and version >= _US_GEO_SINCE else Decimal(1)


class Cost:
    """A call's cost in USD, by token class; `total` is the exact sum of the parts.

    `cache_savings` is what cache reads saved against the input rate, `write_premium` what cache writes cost
    over it; neither is part of `total`. `net_cache_savings` is the first minus the second.
    """

    __slots__ = ("cache_read", "cache_savings", "cache_write", "input", "output", "total", "web_fetch",
                 "web_search", "write_premium")

    def __init__(
        self,
        input: Decimal = _ZERO,
        output: Decimal = _ZERO,
        cache_read: Decimal = _ZERO,
        cache_write: Decimal = _ZERO,
        web_search: Decimal = _ZERO,
        cache_savings: Decimal = _ZERO,
        write_premium: Decimal = _ZERO,
        web_fetch: Decimal = _ZERO,
    ) -> None:
        self.input = input
        self.output = output
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.web_search = web_search
        self.cache_savings = cache_savings
        self.write_premium = write_premium
        self.web_fetch = web_fetch
        # summed once, read often
        self.total: Decimal = input + output + cache_read + cache_write + web_search + web_fetch

    @property
    def net_cache_savings(self) -> Decimal:
        return self.cache_savings - self.write_premium

    def parts(self) -> tuple[tuple[str, Decimal], ...]:
        """(token class, dollars) pairs, in the names of the `anthropic_otel.token.type` attribute.

        `web_fetch` is a part only when it cost something (no model has a web fetch fee in today's data), so
        a zero series is not made for every call."""
        parts = (
            ("input", self.input),
            ("output", self.output),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
            ("web_search", self.web_search),
        )
        if self.web_fetch:
            return (*parts, ("web_fetch", self.web_fetch))
        return parts

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
    web_fetch: Any = None  # USD per 1,000 web fetch requests; None (no fee) unless the data or an override has one


_OVERRIDE_KEYS: Final = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "web_search",
                         "batch_factor", "web_fetch", "us_geo_factor", "priority", "fast")
_CACHE_KEYS: Final = ("cache_read", "cache_write_5m", "cache_write_1h")
_DIMENSION_TABLES: Final = ("priority", "fast")


@dataclass(frozen=True)
class PriceOverride:
    """A user's flat prices for one model (USD per million tokens; web search USD per 1,000 searches).

    Only `input` and `output` are required; the rest follow Anthropic's published multipliers of `input`
    (the `Pricer` uses the model's own cache ratios instead when the bundled data knows the model: `given`
    says which prices were written out). `batch_factor` is what a batch call costs relative to standard (0.5).
    Optional: `web_fetch` (USD per 1,000 requests, default 0), `us_geo_factor` (US-only inference; default
    1.1 from the 4.6 models on, else 1), and the tables `priority` and `fast` (their own input/output/cache
    prices for `service_tier="priority"` and `speed="fast"` calls). A table with only `priority`, `fast` or
    `us_geo_factor` keeps the bundled data's standard prices and overrides just that dimension.
    """

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    web_search: Decimal
    batch_factor: Decimal
    web_fetch: Decimal = _ZERO
    us_geo_factor: Decimal | None = None
    priority: PriceOverride | None = None
    fast: PriceOverride | None = None
    given: frozenset[str] = frozenset()  # the keys the user wrote (the rest are derived)

    @property
    def partial(self) -> bool:
        """True when only dimensions were given: the standard prices come from the bundled data."""
        return "input" not in self.given

    @classmethod
    def parse(cls, model: str, raw: Any, *, nested: bool = False) -> PriceOverride:
        if not isinstance(raw, Mapping):
            raise ValueError(f"price override for {model!r} must be a table of prices, not {raw!r}")
        unknown = set(raw) - set(_OVERRIDE_KEYS)
        if unknown:
            raise ValueError(f"price override for {model!r}: unknown keys {sorted(unknown)}; "
                             f"known: {', '.join(_OVERRIDE_KEYS)}")
        values: dict[str, Decimal] = {}
        tables: dict[str, PriceOverride] = {}
        for key, value in raw.items():
            if key in _DIMENSION_TABLES:
                if nested:
                    raise ValueError(f"price override for {model!r}: {key} cannot be nested")
                tables[key] = cls.parse(f"{model}.{key}", value, nested=True)
                continue
            if nested and key not in ("input", "output", *_CACHE_KEYS):
                raise ValueError(f"price override for {model!r}: only input, output and cache prices go in this "
                                 f"table, not {key}")
            try:
                number = Decimal(str(value)) if isinstance(value, int | float | str | Decimal) else None
            except InvalidOperation:
                number = None
            if isinstance(value, bool) or number is None or not number.is_finite() or number < 0:
                raise ValueError(f"price override for {model!r}: {key} must be a non-negative number, "
                                 f"not {value!r}")
            values[key] = number
        dimension_only = not nested and ("input" not in values and "output" not in values) and (
            tables or "us_geo_factor" in values)
        for key in ("input", "output"):
            if key not in values and not dimension_only:
                raise ValueError(f"price override for {model!r} needs at least input and output (missing {key})")
        base = values.get("input", _ZERO)
        return cls(
            input=base,
            output=values.get("output", _ZERO),
            cache_read=values.get("cache_read", base * _READ_FACTOR),
            cache_write_5m=values.get("cache_write_5m", base * _WRITE_5M_FACTOR),
            cache_write_1h=values.get("cache_write_1h", base * _WRITE_1H_FACTOR),
            web_search=values.get("web_search", _WEB_SEARCH_PER_K),
            batch_factor=values.get("batch_factor", _BATCH_FACTOR),
            web_fetch=values.get("web_fetch", _ZERO),
            us_geo_factor=values.get("us_geo_factor"),
            priority=tables.get("priority"),
            fast=tables.get("fast"),
            given=frozenset(values) | frozenset(tables),
        )

    def with_ratios(self, ratios: tuple[Decimal, Decimal, Decimal] | None) -> PriceOverride:
        """This override with the cache prices it left out derived from `ratios` (read, 5m, 1h of input)."""
        if ratios is None or all(key in self.given for key in _CACHE_KEYS):
            return self
        read, five, hour = (None if key in self.given else ratio * self.input
                            for key, ratio in zip(_CACHE_KEYS, ratios, strict=True))
        return PriceOverride(
            self.input, self.output, self.cache_read if read is None else read,
            self.cache_write_5m if five is None else five, self.cache_write_1h if hour is None else hour,
            self.web_search, self.batch_factor, self.web_fetch, self.us_geo_factor,
            None if self.priority is None else self.priority.with_ratios(ratios),
            None if self.fast is None else self.fast.with_ratios(ratios), self.given)

    def prices(self, batch: bool) -> Prices:
        f = self.batch_factor if batch else Decimal(1)
        return Prices(self.input * f, self.output * f, self.cache_read * f, self.cache_write_5m * f,
                      self.cache_write_1h * f, self.web_search, "override", self.web_fetch or None)


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
        self._warned_summary = False
        self._prices_cache: dict[tuple[str, str, bool, bool, bool, bool], tuple[float, Prices | None]] = {}

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

    def prices(self, model: str, provider: str, batch: bool = False, *, fast: bool = False, us: bool = False,
               priority: bool = False) -> Prices | None:
        """The prices that apply now, re-resolved at most once a minute (prices can change on a date).

        `fast`: `speed="fast"`; `us`: `inference_geo="us"` (first-party API only); `priority`: the priority tier.
        """
        key = (model, provider, batch, fast, us, priority)
        now = time.monotonic()
        cached = self._prices_cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._resolve(model, provider, batch, fast, us, priority)
        if found is None:
            self._warn_unknown(model, provider)
            self._prices_cache[key] = (math.inf, None)  # an unknown model stays unknown: no lookup per call
            return None
        self._prices_cache[key] = (now + _PRICE_TTL_S, found)
        return found

    def _warn_unknown(self, model: str, provider: str) -> None:
        """One warning per unknown model for the first `_WARN_LIMIT` of them, then one summary, then none:
        thousands of unknown model strings must not make thousands of warnings."""
        with self._lock:
            if (model, provider) in self._warned or self._warned_summary:
                return
            if len(self._warned) >= _WARN_LIMIT:
                self._warned_summary = True
                _log.warning("anthropic_otel: %d models without a known price so far; further ones are not "
                             "logged (their calls are counted in anthropic_otel_unpriced_requests_total)",
                             _WARN_LIMIT + 1)
                return
            self._warned.add((model, provider))
        _log.warning("anthropic_otel: no price known for model %r (%s); its cost is not counted", model, provider)

    def _resolve(self, model: str, provider: str, batch: bool, fast: bool = False, us: bool = False,
                 priority: bool = False) -> Prices | None:
        override = self.override(model)
        info = self.model(model, provider)
        moment = datetime.now(tz=UTC)
        if override is not None:
            override = override.with_ratios(None if info is None else _ratios(info.get_prices(moment, None)))
        if override is not None and not override.partial:
            found = override.prices(batch)
        elif info is None:
            return None
        else:
            found = self._from_data(info, model, provider, batch, fast, moment)
        if override is not None:
            table = override.priority if priority else override.fast if fast else None
            if table is not None:
                f = override.batch_factor if batch else Decimal(1)
                found = Prices(table.input * f, table.output * f, table.cache_read * f, table.cache_write_5m * f,
                               table.cache_write_1h * f, found.web_search,
                               f"override ({'priority' if priority else 'fast'})", found.web_fetch)
        if us and provider == "anthropic":
            factor = None if override is None else override.us_geo_factor
            if factor is None:
                factor = default_geo_factor(model)
            if factor != 1:
                found = _scale_tokens(found, factor, f"{found.source} x {factor} US inference")
        return found

    def _from_data(self, info: Any, model: str, provider: str, batch: bool, fast: bool, moment: datetime) -> Prices:
        context: dict[str, str] = {"speed": "fast"} if fast else {}
        standard = info.get_prices(moment, context or None)
        found = info.get_prices(moment, {"processing": "batch", **context}) if batch else standard
        source = f"genai-prices {info.id}"
        if fast:
            plain = info.get_prices(moment, None)
            if standard.input_mtok == plain.input_mtok and standard.output_mtok == plain.output_mtok:
                source += " (no fast row: standard rate)"
            else:
                source += " fast"
        if (batch and provider == "anthropic" and found.input_mtok == standard.input_mtok
                and found.output_mtok == standard.output_mtok):
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
                      source, getattr(found, "web_fetches_kcount", None))

    def cost(self, model: str, provider: str, usage: Usage, *, batch: bool = False) -> Cost | None:
        """The cost of `usage`, or None when the model has no known price."""
        tier = usage.service_tier
        prices = self.prices(model, provider, batch or tier == "batch", fast=usage.speed == "fast",
                             us=usage.inference_geo == "us", priority=tier == "priority")
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
            web_fetch=unit(prices.web_fetch, usage.web_fetch_requests, total_input, _PER_K),
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


def _base(price: Any) -> Decimal | None:
    """The base price of a flat or tiered genai-prices price."""
    if price is None or isinstance(price, Decimal):
        return price
    base: Decimal = price.base
    return base


def _ratios(prices: Any) -> tuple[Decimal, Decimal, Decimal]:
    """A model's own cache prices as multiples of its input price (read, 5m write, 1h write), from the data;
    Anthropic's defaults for any the data lacks."""
    base = _base(prices.input_mtok)
    if not base:
        return _READ_FACTOR, _WRITE_5M_FACTOR, _WRITE_1H_FACTOR
    read = _base(prices.cache_read_mtok)
    five = _base(prices.cache_write_5m_mtok if getattr(prices, "cache_write_5m_mtok", None) is not None
                 else prices.cache_write_mtok)
    hour = _base(prices.cache_write_1h_mtok)
    return (_READ_FACTOR if read is None else read / base, _WRITE_5M_FACTOR if five is None else five / base,
            _WRITE_1H_FACTOR if hour is None else hour / base)


def _scale_tokens(prices: Prices, factor: Decimal, source: str) -> Prices:
    """`prices` with every token price times `factor` (tiers included); per-request fees unchanged."""
    return Prices(_scaled(prices.input, factor), _scaled(prices.output, factor), _scaled(prices.cache_read, factor),
                  _scaled(prices.cache_write_5m, factor), _scaled(prices.cache_write_1h, factor), prices.web_search,
                  source, prices.web_fetch)


class _BatchScaled:
    """A genai-prices `ModelPrice` with the token prices scaled (web search keeps its standard price)."""

    def __init__(self, prices: Any, factor: Decimal) -> None:
        for name in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_5m_mtok",
                     "cache_write_1h_mtok"):
            setattr(self, name, _scaled(getattr(prices, name, None), factor))
        self.web_searches_kcount = prices.web_searches_kcount
        self.web_fetches_kcount = getattr(prices, "web_fetches_kcount", None)


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
