"""Dollar cost of one call, from the prices bundled with `genai-prices` (never fetched at run time).

The parts are priced one token class at a time so the cost counter can be split by class and the parts
add up exactly (as `Decimal`) to the call's cost. Long-context tiers follow genai-prices' cliff model: the
tier is chosen by the total input, cache included.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from ._usage import Usage

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


class Cost:
    """A call's cost in USD, by token class; `total` is the exact sum of the parts."""

    __slots__ = ("cache_read", "cache_write", "input", "output", "web_search")

    def __init__(
        self,
        input: Decimal = _ZERO,
        output: Decimal = _ZERO,
        cache_read: Decimal = _ZERO,
        cache_write: Decimal = _ZERO,
        web_search: Decimal = _ZERO,
    ) -> None:
        self.input = input
        self.output = output
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.web_search = web_search

    @property
    def total(self) -> Decimal:
        return self.input + self.output + self.cache_read + self.cache_write + self.web_search

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
        return f"Cost(total={self.total}, {dict(self.parts())!r})"


def _unit_price(price: Any, count: int, total_input: int, per: int) -> Decimal:
    """`count` units at `price` per `per`, the tier chosen by `total_input` (genai-prices' cliff model)."""
    if not count or price is None:
        return _ZERO
    if not isinstance(price, Decimal):  # genai-prices TieredPrices: base, tiers sorted by start
        tiered = price
        price = tiered.base
        for tier in reversed(tiered.tiers):
            if total_input > tier.start:
                price = tier.price
                break
    result: Decimal = price * count / per
    return result


class Pricer:
    """Looks up model prices once per model and prices usage; unknown models warn once and cost nothing."""

    def __init__(self) -> None:
        from genai_prices import data_snapshot

        self._snapshot = data_snapshot.get_snapshot()
        self._models: dict[tuple[str, str], Any] = {}
        self._unknown: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._prices_cache: dict[tuple[int, bool], tuple[float, Any]] = {}

    def model(self, model: str, provider: str) -> Any | None:
        """The genai-prices model for `model` as called through `provider`, or None when unpriced."""
        key = (model, provider)
        found = self._models.get(key)
        if found is not None:
            return found
        if key in self._unknown:
            return None
        for provider_id in _PROVIDERS.get(provider, (None,)):
            try:
                found = self._snapshot.find_provider_model(model, None, provider_id, None)[1]
                break
            except LookupError:
                continue
        with self._lock:
            if found is None:
                if key not in self._unknown:
                    self._unknown.add(key)
                    _log.warning("anthropic_otel: no price known for model %r (%s); its cost is not counted",
                                 model, provider)
                return None
            self._models[key] = found
        return found

    def _prices(self, info: Any, batch: bool) -> Any:
        """The model's prices now, re-resolved at most once a minute (prices can change on a date)."""
        key = (id(info), batch)
        now = time.monotonic()
        cached = self._prices_cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = info.get_prices(datetime.now(tz=UTC), {"processing": "batch"} if batch else None)
        write_5m = found.cache_write_5m_mtok
        if write_5m is None:
            write_5m = found.cache_write_mtok
        write_1h = found.cache_write_1h_mtok
        if write_1h is None:
            write_1h = write_5m
        prices = (found.input_mtok, found.output_mtok, found.cache_read_mtok, write_5m, write_1h,
                  found.web_searches_kcount)
        self._prices_cache[key] = (now + _PRICE_TTL_S, prices)
        return prices

    def cost(self, model: str, provider: str, usage: Usage, *, batch: bool = False) -> Cost | None:
        """The cost of `usage`, or None when the model has no known price."""
        info = self.model(model, provider)
        if info is None:
            return None
        batch = batch or usage.service_tier == "batch"
        input_price, output_price, read_price, write_5m_price, write_1h_price, search_price = self._prices(
            info, batch
        )
        total_input = usage.total_input
        unit = _unit_price
        five, hour = usage.split_cache_write()
        return Cost(
            input=unit(input_price, usage.input_tokens, total_input, _PER_MTOK),
            output=unit(output_price, usage.output_tokens, total_input, _PER_MTOK),
            cache_read=unit(read_price, usage.cache_read, total_input, _PER_MTOK),
            cache_write=unit(write_5m_price, five, total_input, _PER_MTOK)
            + unit(write_1h_price, hour, total_input, _PER_MTOK),
            web_search=unit(search_price, usage.web_search_requests, total_input, _PER_K),
        )
