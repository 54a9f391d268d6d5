"""The budget guard: reserve a call's worst-case cost before sending, settle it with the real cost afterwards.

In memory the spend is the package's `Ledger` (exact `Decimal`, UTC day and month). With Redis it is one integer
key per period in nano-dollars, checked and reserved atomically by a Lua script, so processes and hosts share
it; keys expire a few days after their period ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any, Final

from ..cost.pricing import Pricer
from ..cost.spend import PERIODS, Ledger
from ..cost.usage import Usage
from ._config import Budget
from ._errors import BudgetExceededError
from ._limiter import estimate_input_tokens

_NANO: Final = Decimal(1_000_000_000)
_TTL: Final = {"day": 3 * 86_400, "month": 35 * 86_400}
# KEYS: one key per budgeted period. ARGV: amount, then each key's budget, then each key's TTL (nano-dollars, s).
# Returns 0 when reserved, else the 1-based index of the refusing key (nothing is reserved then).
_RESERVE: Final = """
local amount = tonumber(ARGV[1])
local n = #KEYS
for i = 1, n do
  local spent = tonumber(redis.call('GET', KEYS[i]) or '0')
  local budget = tonumber(ARGV[1 + i])
  if spent >= budget or spent + amount > budget then
    return {i, tostring(spent)}
  end
end
for i = 1, n do
  redis.call('INCRBY', KEYS[i], amount)
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1 + n + i]))
end
return {0, '0'}
"""


class Reservation:
    __slots__ = ("amount", "keys", "model", "provider", "settled")

    def __init__(self, amount: Decimal, keys: tuple[str, ...], model: str, provider: str) -> None:
        self.amount = amount
        self.keys = keys
        self.model = model
        self.provider = provider
        self.settled = False


def _period_ids(now: datetime) -> dict[str, str]:
    return {"day": now.strftime("%Y-%m-%d"), "month": now.strftime("%Y-%m")}


def _nano(dollars: Decimal) -> int:
    return int((dollars * _NANO).to_integral_value(rounding=ROUND_CEILING))


class BudgetGuard:
    def __init__(self, config: Budget, namespace: str, redis_url: str | None, pricer: Pricer | None = None) -> None:
        self.config = config
        self.budgets = {period: Decimal(str(value)) for period, value in config.budgets().items()}
        self.namespace = namespace
        self.redis_url = redis_url
        self.pricer = pricer or Pricer()
        self._lock = threading.Lock()
        self._ledger = Ledger(config.budgets())
        self._redis: Any = None
        self._script: Any = None

    # -- estimates -------------------------------------------------------------------------------------------

    def worst_case(self, model: str, provider: str, kwargs: Mapping[str, Any]) -> Decimal:
        if not self.config.worst_case:
            return Decimal(0)
        max_tokens = kwargs.get("max_tokens")
        usage = Usage(input_tokens=estimate_input_tokens(kwargs),
                      output_tokens=max_tokens if isinstance(max_tokens, int) else 0)
        cost = self.pricer.cost(model, provider, usage)
        return Decimal(0) if cost is None else cost.total

    def cost(self, model: str, provider: str, usage: Usage | None) -> Decimal:
        if usage is None:
            return Decimal(0)
        cost = self.pricer.cost(model, provider, usage)
        return Decimal(0) if cost is None else cost.total

    # -- reserve and settle ----------------------------------------------------------------------------------

    def reserve(self, model: str, provider: str, kwargs: Mapping[str, Any]) -> Reservation:
        estimate = self.worst_case(model, provider, kwargs)
        if self.redis_url is None:
            return self._reserve_memory(estimate, model, provider)
        return self._reserve_redis(estimate, model, provider)

    async def reserve_async(self, model: str, provider: str, kwargs: Mapping[str, Any]) -> Reservation:
        if self.redis_url is None:
            return self.reserve(model, provider, kwargs)
        return await asyncio.to_thread(self.reserve, model, provider, kwargs)

    def settle(self, reservation: Reservation, model: str, usage: Usage | None) -> None:
        """Replaces the reservation by the real cost of `usage` (None: nothing was billed)."""
        if reservation.settled:
            return
        reservation.settled = True
        delta = self.cost(model, reservation.provider, usage) - reservation.amount
        if not delta:
            return
        if self.redis_url is None:
            self._ledger.add(delta)
            return
        client = self._client()
        with client.pipeline(transaction=False) as pipe:
            for key in reservation.keys:
                pipe.incrby(key, _nano(delta) if delta > 0 else -_nano(-delta))
            pipe.execute()

    async def settle_async(self, reservation: Reservation, model: str, usage: Usage | None) -> None:
        if self.redis_url is None or reservation.settled:
            self.settle(reservation, model, usage)
        else:
            await asyncio.to_thread(self.settle, reservation, model, usage)

    def spent(self) -> dict[str, Decimal]:
        """Dollars spent (and reserved by calls in flight) in the current UTC day and month."""
        if self.redis_url is None:
            spend = self._ledger.spend()
            return {"day": spend.day, "month": spend.month}
        ids = _period_ids(datetime.now(UTC))
        values = self._client().mget([self._key(period, ids[period]) for period in PERIODS])
        return {period: Decimal(int(value or 0)) / _NANO for period, value in zip(PERIODS, values, strict=True)}

    def _reserve_memory(self, estimate: Decimal, model: str, provider: str) -> Reservation:
        with self._lock:
            spend = self._ledger.spend()
            for period, budget in self.budgets.items():
                spent = spend.day if period == "day" else spend.month
                if spent >= budget or spent + estimate > budget:
                    raise BudgetExceededError(period, spent, budget, estimate)
            self._ledger.add(estimate)
        return Reservation(estimate, (), model, provider)

    def _reserve_redis(self, estimate: Decimal, model: str, provider: str) -> Reservation:
        client = self._client()
        ids = _period_ids(datetime.now(UTC))
        periods = list(self.budgets)
        keys = [self._key(period, ids[period]) for period in periods]
        amount = _nano(estimate)
        args = [amount, *(_nano(self.budgets[p]) for p in periods), *(_TTL[p] for p in periods)]
        refused, spent = self._script(keys=keys, args=args, client=client)
        if int(refused):
            period = periods[int(refused) - 1]
            raise BudgetExceededError(period, Decimal(int(spent)) / _NANO, self.budgets[period], estimate)
        return Reservation(Decimal(amount) / _NANO, tuple(keys), model, provider)

    def _key(self, period: str, period_id: str) -> str:
        return f"anthropic_otel:budget:{self.namespace}:{period}:{period_id}"

    def _client(self) -> Any:
        if self._redis is None:
            import redis

            with self._lock:
                if self._redis is None:
                    client = redis.Redis.from_url(self.redis_url or "")
                    self._script = client.register_script(_RESERVE)
                    self._redis = client
        return self._redis
