"""The budget guard: reserve a call's worst-case cost before sending, settle it with the real cost afterwards.

In memory the spend is the package's `Ledger` (exact `Decimal`, UTC day and month). With Redis it is one integer
key per period in nano-dollars, checked and reserved atomically by a Lua script, so processes and hosts share
it; keys expire a few days after their period ends.

The worst case prices every estimated input token at the dearest class the request can incur (a 1-hour cache
write is 2x the input price, a 5-minute one 1.25x, at the model's real rates), plus `max_tokens` of output, for
the dearest of the model and the fallback model. A model with no known price cannot be bounded, so it is
refused. When Redis fails, `StoreFailure.budget` decides: "closed" refuses before sending, "open" sends without a
reservation. A call that was sent is never failed for the store: its settlement is kept in this process and
added to Redis by the next settlement that reaches it.
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
from ._config import STORE_OPEN, Budget
from ._errors import BudgetExceededError, StoreUnavailableError
from ._limiter import estimate_input_tokens
from ._store import StoreListener, is_store_error

_NANO: Final = Decimal(1_000_000_000)
_TTL: Final = {"day": 3 * 86_400, "month": 35 * 86_400}
# Redis keeps an "epoch" per namespace: the server time when the budget keys were first written in this Redis. A
# Redis that restarted empty has a new one, so a refund of a reservation it lost is not applied (it would eat the
# spend settled since).
# KEYS: one key per budgeted period, then the epoch key. ARGV: amount, then each key's budget, then each key's TTL
# (nano-dollars, s). Returns {0 when reserved or the 1-based index of the refusing key, its spend, the epoch}.
_RESERVE: Final = """
local n = #KEYS - 1
local epoch = redis.call('GET', KEYS[n + 1])
if not epoch then
  local now = redis.call('TIME')
  epoch = now[1] .. '.' .. now[2]
  redis.call('SET', KEYS[n + 1], epoch)
end
local amount = tonumber(ARGV[1])
for i = 1, n do
  local spent = tonumber(redis.call('GET', KEYS[i]) or '0')
  local budget = tonumber(ARGV[1 + i])
  if spent >= budget or spent + amount > budget then
    return {i, tostring(spent), epoch}
  end
end
for i = 1, n do
  redis.call('INCRBY', KEYS[i], amount)
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1 + n + i]))
end
return {0, '0', epoch}
"""
# KEYS: the period keys to settle, then the epoch key. ARGV: the real cost, the reservation to refund (nano-dollars),
# the epoch the reservation was made in, then each key's TTL. The refund applies only in that same epoch.
_SETTLE: Final = """
local n = #KEYS - 1
local delta = tonumber(ARGV[1])
if ARGV[3] ~= '' and redis.call('GET', KEYS[n + 1]) == ARGV[3] then
  delta = delta - tonumber(ARGV[2])
end
for i = 1, n do
  local value = redis.call('INCRBY', KEYS[i], delta)
  if value < 0 then redis.call('SET', KEYS[i], 0) end
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3 + i]))
end
return 0
"""
_WRITE_CLASSES: Final = ("5m", "1h")


class Reservation:
    """A call's reserved worst case; `keys` is empty when nothing is held in Redis (in memory, or failed open), and
    `epoch` names the Redis incarnation that holds it."""

    __slots__ = ("amount", "epoch", "keys", "model", "provider", "settled")

    def __init__(self, amount: Decimal, keys: tuple[str, ...], model: str, provider: str, epoch: str = "") -> None:
        self.amount = amount
        self.keys = keys
        self.model = model
        self.provider = provider
        self.epoch = epoch
        self.settled = False


class _Settlement:
    """One settlement for Redis: the real cost to add, the reservation to give back (if Redis still holds it)."""

    __slots__ = ("cost", "epoch", "keys", "refund")

    def __init__(self, keys: tuple[str, ...], cost: int, refund: int, epoch: str) -> None:
        self.keys = keys
        self.cost = cost
        self.refund = refund
        self.epoch = epoch


def _period_ids(now: datetime) -> dict[str, str]:
    return {"day": now.strftime("%Y-%m-%d"), "month": now.strftime("%Y-%m")}


def _nano(dollars: Decimal) -> int:
    return int((dollars * _NANO).to_integral_value(rounding=ROUND_CEILING))


def cache_write_classes(kwargs: Mapping[str, Any]) -> set[str]:
    """The cache-write classes ("5m", "1h") a request's `cache_control` markers can incur."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            control = value.get("cache_control")
            if isinstance(control, Mapping):
                found.add("1h" if control.get("ttl") == "1h" else "5m")
            for item in value.values():
                if isinstance(item, Mapping | list | tuple):
                    walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk({key: kwargs.get(key) for key in ("system", "messages", "tools", "cache_control")})
    return found


def unpriced_model(pricer: Pricer, models: tuple[str, ...], provider: str) -> str | None:
    """The first of `models` with no known price (a budget cannot bound its cost), or None."""
    return next((model for model in models if pricer.prices(model, provider) is None), None)


def worst_case_cost(pricer: Pricer, models: tuple[str, ...], provider: str, kwargs: Mapping[str, Any]) -> Decimal:
    """The most a request can cost: its estimated input at the dearest class it can incur plus `max_tokens` of
    output, for the dearest of `models` (those with a price)."""
    max_tokens = kwargs.get("max_tokens")
    output = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0
    tokens = estimate_input_tokens(kwargs)
    usages = [Usage(input_tokens=tokens, output_tokens=output)]
    for kind in cache_write_classes(kwargs):
        usages.append(Usage(output_tokens=output, cache_write=tokens,
                            cache_write_5m=tokens if kind == "5m" else 0,
                            cache_write_1h=tokens if kind == "1h" else 0))
    worst = Decimal(0)
    for model in models:
        for usage in usages:
            cost = pricer.cost(model, provider, usage)
            if cost is not None and cost.total > worst:
                worst = cost.total
    return worst


class BudgetGuard:
    def __init__(self, config: Budget, namespace: str, redis_url: str | None, pricer: Pricer | None = None,
                 on_store_failure: str = "closed", listener: StoreListener | None = None) -> None:
        self.config = config
        self.budgets = {period: Decimal(str(value)) for period, value in config.budgets().items()}
        self.namespace = namespace
        self.redis_url = redis_url
        self.pricer = pricer or Pricer()
        self.fail_open = on_store_failure == STORE_OPEN
        self._listener = listener
        self._lock = threading.Lock()
        self._ledger = Ledger(config.budgets())
        self._redis: Any = None
        self._script: Any = None
        self._settle_script: Any = None
        self._pending: list[_Settlement] = []  # settlements Redis has not taken yet (it was unreachable)

    # -- estimates -------------------------------------------------------------------------------------------

    def worst_case(self, models: tuple[str, ...], provider: str, kwargs: Mapping[str, Any]) -> Decimal:
        """The most the call can cost; `BudgetExceededError` when a model has no known price."""
        model = unpriced_model(self.pricer, models, provider)
        if model is not None:
            raise BudgetExceededError("day" if "day" in self.budgets else "month", self._spent_for_error(),
                                      self._a_budget(), Decimal(0), unpriced=model)
        return worst_case_cost(self.pricer, models, provider, kwargs) if self.config.worst_case else Decimal(0)

    def _a_budget(self) -> Decimal:
        return self.budgets.get("day", self.budgets.get("month", Decimal(0)))

    def _spent_for_error(self) -> Decimal:
        if self.redis_url is not None:
            return Decimal(0)  # not worth a round trip for a refusal that does not depend on it
        spend = self._ledger.spend()
        return spend.day if "day" in self.budgets else spend.month

    def cost(self, model: str, provider: str, usage: Usage | None) -> Decimal:
        if usage is None:
            return Decimal(0)
        cost = self.pricer.cost(model, provider, usage)
        return Decimal(0) if cost is None else cost.total

    # -- reserve and settle ----------------------------------------------------------------------------------

    def reserve(self, models: tuple[str, ...], provider: str, kwargs: Mapping[str, Any]) -> Reservation:
        estimate = self.worst_case(models, provider, kwargs)
        if self.redis_url is None:
            return self._reserve_memory(estimate, models[0], provider)
        try:
            return self._reserve_redis(estimate, models[0], provider)
        except BudgetExceededError:
            raise
        except Exception as error:
            if not is_store_error(error):
                raise
            self._failed("reserve")
            if self.fail_open:
                return Reservation(Decimal(0), (), models[0], provider)
            raise StoreUnavailableError("budget", error) from error

    async def reserve_async(self, models: tuple[str, ...], provider: str,
                            kwargs: Mapping[str, Any]) -> Reservation:
        if self.redis_url is None:
            return self.reserve(models, provider, kwargs)
        return await asyncio.to_thread(self.reserve, models, provider, kwargs)

    def settle(self, reservation: Reservation, model: str, usage: Usage | None) -> None:
        """Replaces the reservation by the real cost of `usage` (None: nothing was billed). Never raises for the
        store: a settlement Redis does not take is kept and sent again with the next one."""
        if reservation.settled:
            return
        reservation.settled = True
        cost = self.cost(model, reservation.provider, usage)
        if self.redis_url is None:
            delta = cost - reservation.amount
            if delta:
                self._ledger.add(delta)
            return
        settlement = _Settlement(reservation.keys or self._current_keys(), _nano(cost),
                                 _nano(reservation.amount) if reservation.keys else 0, reservation.epoch)
        with self._lock:
            pending, self._pending = [*self._pending, settlement], []
        try:
            with self._client().pipeline(transaction=False) as pipe:
                for item in pending:
                    if item.cost or item.refund:
                        self._settle_script(keys=[*item.keys, self._epoch_key()],
                                            args=[item.cost, item.refund, item.epoch,
                                                  *(_TTL[key.split(":")[-2]] for key in item.keys)], client=pipe)
                pipe.execute()
        except Exception as error:
            if not is_store_error(error):
                raise
            with self._lock:
                self._pending[:0] = pending
            self._failed("settle")

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
        keys = [self._key(period, ids[period]) for period in PERIODS]
        try:
            values = self._client().mget(keys)
        except Exception as error:
            if not is_store_error(error):
                raise
            raise StoreUnavailableError("budget", error) from error
        return {period: Decimal(int(value or 0)) / _NANO for period, value in zip(PERIODS, values, strict=True)}

    def _failed(self, stage: str) -> None:
        if self._listener is not None:
            self._listener("budget", stage)

    def _current_keys(self) -> tuple[str, ...]:
        ids = _period_ids(datetime.now(UTC))
        return tuple(self._key(period, ids[period]) for period in self.budgets)

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
        refused, spent, epoch = self._script(keys=[*keys, self._epoch_key()], args=args, client=client)
        if int(refused):
            period = periods[int(refused) - 1]
            raise BudgetExceededError(period, Decimal(int(spent)) / _NANO, self.budgets[period], estimate)
        epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
        return Reservation(Decimal(amount) / _NANO, tuple(keys), model, provider, epoch)

    def _key(self, period: str, period_id: str) -> str:
        return f"anthropic_otel:budget:{self.namespace}:{period}:{period_id}"

    def _epoch_key(self) -> str:
        return f"anthropic_otel:budget:{self.namespace}:epoch"

    def _client(self) -> Any:
        if self._redis is None:
            import redis

            with self._lock:
                if self._redis is None:
                    client = redis.Redis.from_url(self.redis_url or "", socket_connect_timeout=2, socket_timeout=5)
                    self._script = client.register_script(_RESERVE)
                    self._settle_script = client.register_script(_SETTLE)
                    self._redis = client
        return self._redis
