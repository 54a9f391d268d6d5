"""Limits that make calls wait: concurrency, requests / input tokens / output tokens per minute (the `limits`
library: a moving window for requests, a sliding-window counter for tokens, in memory or in Redis), and the
API's own `anthropic-ratelimit-*` headers."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from anthropic import Middleware

from ..cost.usage import Usage
from ..instrumentation.context import current as current_attributes
from ._config import Limits
from ._errors import LimitTimeoutError, StoreUnavailableError
from ._slots import Slots
from ._store import StoreListener, is_store_error

_IMAGE_TOKENS: Final = 1_600  # Anthropic's upper estimate for one image (about 1.15 megapixels)
_UNLIMITED: Final = 2**53  # a limit no charge can reach: records what a call used beyond its reservation
_NO_KEY: Final = "-"
HEADER_RESOURCES: Final = ("requests", "input-tokens", "output-tokens", "tokens")

# (the call's metric attributes, resource, seconds waited)
WaitListener = Callable[[Mapping[str, Any], str, float], None]


def estimate_input_tokens(kwargs: Mapping[str, Any]) -> int:
    """A cheap upper-ish estimate of a request's input tokens: characters / 4, 1,600 per image or document."""
    counter = _Counter()
    counter.walk(kwargs.get("system"))
    counter.walk(kwargs.get("messages"))
    counter.walk(kwargs.get("tools"))
    return counter.chars // 4 + counter.extra + 1


class _Counter:
    __slots__ = ("chars", "extra")

    def __init__(self) -> None:
        self.chars = 0
        self.extra = 0

    def walk(self, value: Any) -> None:
        if isinstance(value, str):
            self.chars += len(value)
        elif isinstance(value, Mapping):
            source = value.get("source")
            if value.get("type") in ("image", "document") and isinstance(source, Mapping) \
                    and source.get("type") in ("base64", "url", "file"):
                self.extra += _IMAGE_TOKENS
                return
            for item in value.values():
                self.walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                self.walk(item)


class Stores:
    """`limits` storages: one in-memory storage for sync and async callers alike, or Redis (a sync client, and an
    async one per event loop, since a `redis.asyncio` pool belongs to its loop)."""

    def __init__(self, redis_url: str | None, fail_open: bool = True, listener: StoreListener | None = None) -> None:
        self.redis_url = redis_url
        self.fail_open = fail_open
        self._listener = listener
        self._lock = threading.Lock()
        self._sync: Any = None
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    @property
    def shared_memory(self) -> bool:
        return self.redis_url is None

    def failed(self, error: Exception, stage: str) -> None:
        """Counts a store failure; re-raises `error` when it is not one (a bug is not ours to absorb)."""
        if not is_store_error(error):
            raise error
        if self._listener is not None:
            self._listener("limits", stage)

    def refuse_or_skip(self, error: Exception) -> None:
        """On a store failure while acquiring: returns to skip the rate limits (fail open) or raises."""
        self.failed(error, "acquire")
        if not self.fail_open:
            raise StoreUnavailableError("limits", error) from error

    def sync(self) -> Any:
        if self._sync is None:
            from limits.storage import storage_from_string

            with self._lock:
                if self._sync is None:
                    self._sync = storage_from_string(self.redis_url or "memory://")
        return self._sync

    def for_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            from limits.storage import storage_from_string

            with self._lock:
                found = self._by_loop.get(loop)
                if found is None:
                    found = self._by_loop[loop] = storage_from_string(f"async+{self.redis_url}",
                                                                       implementation="redispy")
        return found


class _Resource:
    """One rate limit: the `limits` item and the strategy class it uses."""

    __slots__ = ("item", "moving", "name")

    def __init__(self, name: str, per_minute: int, window: int, moving: bool) -> None:
        from limits import RateLimitItemPerSecond

        self.name = name
        self.moving = moving
        self.item = RateLimitItemPerSecond(max(1, int(per_minute * window / 60)), window, namespace="ANTHROPIC_OTEL")

    def clamp(self, cost: int) -> int:
        return max(1, min(cost, int(self.item.amount)))


class RateLimiter:
    """The limits of one `Limits` object."""

    def __init__(self, config: Limits, namespace: str, stores: Stores) -> None:
        self.config = config
        self.namespace = namespace
        self.stores = stores
        self.slots = Slots(config.concurrency) if config.concurrency else None
        w = config.window_seconds
        self.requests = _Resource("requests", config.requests_per_minute, w, True) \
            if config.requests_per_minute else None
        self.input = _Resource("input_tokens", config.input_tokens_per_minute, w, False) \
            if config.input_tokens_per_minute else None
        self.output = _Resource("output_tokens", config.output_tokens_per_minute, w, False) \
            if config.output_tokens_per_minute else None
        self.rates = tuple(r for r in (self.requests, self.input, self.output) if r is not None)
        self._sync_strategies: dict[bool, Any] = {}
        self._async_strategies: weakref.WeakKeyDictionary[Any, dict[bool, Any]] = weakref.WeakKeyDictionary()

    def identifiers(self, resource: str, model: str, context: Mapping[str, Any] | None) -> tuple[str, ...]:
        key = _NO_KEY
        if self.config.per_key is not None and context:
            value = context.get(self.config.per_key)
            if value is not None:
                key = str(value)
        return (self.namespace, resource, model if self.config.per_model else "*", key)

    def key_label(self, context: Mapping[str, Any] | None) -> str | None:
        if self.config.per_key is None:
            return None
        value = context.get(self.config.per_key) if context else None
        return None if value is None else str(value)

    def cost(self, resource: _Resource, need: Need) -> int:
        if resource is self.requests:
            return 1
        if resource is self.input:
            return resource.clamp(need.input_tokens)
        reserve = need.max_tokens
        if self.config.output_estimate is not None:
            reserve = min(reserve, self.config.output_estimate)
        return resource.clamp(reserve)

    def sync_strategy(self, moving: bool) -> Any:
        found = self._sync_strategies.get(moving)
        if found is None:
            from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

            cls = MovingWindowRateLimiter if moving else SlidingWindowCounterRateLimiter
            found = self._sync_strategies[moving] = cls(self.stores.sync())
        return found

    def async_strategy(self, moving: bool) -> tuple[Any, bool]:
        """(strategy, is_async): the in-memory storage is used directly from coroutines (it never blocks)."""
        if self.stores.shared_memory:
            return self.sync_strategy(moving), False
        storage = self.stores.for_loop()
        per_storage = self._async_strategies.get(storage)
        if per_storage is None:
            per_storage = self._async_strategies[storage] = {}
        found = per_storage.get(moving)
        if found is None:
            from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

            cls = MovingWindowRateLimiter if moving else SlidingWindowCounterRateLimiter
            found = per_storage[moving] = cls(storage)
        return found, True


class Need:
    """What a call asks of the limits."""

    __slots__ = ("attrs", "context", "input_tokens", "max_tokens", "model")

    def __init__(self, model: str, kwargs: Mapping[str, Any], attrs: Mapping[str, Any]) -> None:
        self.model = model
        self.attrs = attrs
        self.input_tokens = estimate_input_tokens(kwargs)
        max_tokens = kwargs.get("max_tokens")
        self.max_tokens = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else 1
        self.context = current_attributes()


class Charge:
    """A token reservation to settle against the real usage when the call ends."""

    __slots__ = ("amount", "identifiers", "limiter", "resource")

    def __init__(self, limiter: RateLimiter, resource: _Resource, identifiers: tuple[str, ...], amount: int) -> None:
        self.limiter = limiter
        self.resource = resource
        self.identifiers = identifiers
        self.amount = amount

    def excess(self, usage: Usage) -> int:
        if self.resource is self.limiter.input:
            return usage.input_tokens + usage.cache_write - self.amount  # cache reads do not count against ITPM
        return usage.output_tokens - self.amount


class Lease:
    """What one attempt holds: concurrency slots (released once) and token reservations (settled once)."""

    __slots__ = ("_lock", "charges", "slots", "waited")

    def __init__(self) -> None:
        self.slots: list[Slots] = []
        self.charges: list[Charge] = []
        self.waited = 0.0
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            slots, self.slots = self.slots, []
        for slot in slots:
            slot.release()

    def _take_excess(self, usage: Usage | None) -> list[tuple[Charge, int]]:
        with self._lock:
            charges, self.charges = self.charges, []
        if usage is None:
            return []
        return [(charge, extra) for charge in charges if (extra := charge.excess(usage)) > 0]

    def settle(self, usage: Usage | None) -> None:
        """Charges what the call used beyond its reservation. Never raises for the store: an excess Redis does not
        take is dropped (the window forgets it within `window_seconds` anyway) and counted."""
        for charge, extra in self._take_excess(usage):
            try:
                _force(charge.limiter.stores.sync(), charge, extra)
            except Exception as error:
                charge.limiter.stores.failed(error, "settle")

    async def settle_async(self, usage: Usage | None) -> None:
        for charge, extra in self._take_excess(usage):
            try:
                if charge.limiter.stores.shared_memory:
                    _force(charge.limiter.stores.sync(), charge, extra)
                else:
                    item = charge.resource.item
                    await charge.limiter.stores.for_loop().acquire_sliding_window_entry(
                        item.key_for(*charge.identifiers), _UNLIMITED, item.get_expiry(), extra)
            except Exception as error:
                charge.limiter.stores.failed(error, "settle")


def _force(storage: Any, charge: Charge, extra: int) -> None:
    item = charge.resource.item
    storage.acquire_sliding_window_entry(item.key_for(*charge.identifiers), _UNLIMITED, item.get_expiry(), extra)


class HeaderGate:
    """The API's view of the rate limits from the latest `anthropic-ratelimit-*` headers, per model.

    The API refills its limits continuously (a token bucket: `limit` per minute, full again at `-reset`), so a
    call that needs more than is left waits for the missing part to refill: `(need - remaining) / (limit / 60 s)`,
    never past the reset time. Each admitted call takes its share from the remaining counts at once (going below
    zero), so concurrent callers queue behind each other instead of all seeing the same snapshot.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, list[float]]] = {}

    def observe(self, model: str, headers: Any) -> None:
        found: dict[str, list[float]] = {}
        for resource in HEADER_RESOURCES:
            remaining = headers.get(f"anthropic-ratelimit-{resource}-remaining")
            reset = headers.get(f"anthropic-ratelimit-{resource}-reset")
            if remaining is None or reset is None:
                continue
            limit = headers.get(f"anthropic-ratelimit-{resource}-limit")
            try:
                found[resource] = [float(remaining), _epoch(reset), float(limit) if limit is not None else 0.0]
            except ValueError:
                continue
        if found:
            with self._lock:
                self._state[model] = found

    def take(self, model: str, need: Need, output: int, max_wait: float) -> tuple[str, float, bool]:
        """(most limiting resource, seconds to wait, taken): the call's share is taken only when the wait fits
        in `max_wait`."""
        if model not in self._state:
            return "", 0.0, True
        costs = {"requests": 1, "input-tokens": need.input_tokens, "output-tokens": output,
                 "tokens": need.input_tokens + output}
        now = time.time()
        worst, wait = "", 0.0
        with self._lock:
            state = self._state.get(model)
            if not state:
                return "", 0.0, True
            for resource in list(state):
                remaining, reset, limit = state[resource]
                if reset <= now:
                    del state[resource]
                    continue
                missing = costs[resource] - remaining
                if missing > 0:
                    refill = missing * 60.0 / limit if limit > 0 else reset - now
                    seconds = min(refill, reset - now)
                    if seconds > wait:
                        worst, wait = resource.replace("-", "_"), seconds
            if wait > max_wait:
                return worst, wait, False
            for resource, entry in state.items():
                entry[0] -= costs[resource]
        return worst, wait, True


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class HeaderObserver(Middleware):
    """SDK middleware (runs once per HTTP attempt, errors included) that feeds the gate."""

    def __init__(self, gate: HeaderGate) -> None:
        self.gate = gate

    def handle(self, request: Any, call_next: Any) -> Any:
        response = call_next(request)
        self._observe(request, response)
        return response

    async def handle_async(self, request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        self._observe(request, response)
        return response

    def _observe(self, request: Any, response: Any) -> None:
        try:
            body = request.json
            model = body.get("model") if isinstance(body, Mapping) else None
            if isinstance(model, str):
                self.gate.observe(model, response.headers)
        except Exception:  # observing must never break a call
            pass


class Limiters:
    """Every limit of a policy, acquired in a fixed order: concurrency, the API's headers, then the rates."""

    def __init__(self, configs: Sequence[Limits], namespace: str, stores: Stores,
                 on_wait: WaitListener | None = None) -> None:
        self.limiters = tuple(RateLimiter(config, namespace, stores) for config in configs)
        self.gate = HeaderGate() if any(config.from_headers for config in configs) else None
        self.header_wait = max((c.max_wait for c in configs if c.from_headers), default=0.0)
        self.on_wait = on_wait

    def _waited(self, lease: Lease, resource: str, seconds: float, need: Need) -> None:
        lease.waited += seconds
        if seconds > 0.001 and self.on_wait is not None:
            self.on_wait(need.attrs, resource, seconds)

    @staticmethod
    def _budget(start: float, deadline: float | None, max_wait: float) -> float:
        end = start + max_wait
        return end if deadline is None else min(end, deadline)

    # -- sync ------------------------------------------------------------------------------------------------

    def acquire(self, need: Need, deadline: float | None) -> Lease:
        lease = Lease()
        try:
            self._acquire(lease, need, deadline)
        except BaseException:
            lease.release()
            raise
        return lease

    def _acquire(self, lease: Lease, need: Need, deadline: float | None) -> None:
        start = time.monotonic()
        for limiter in self.limiters:
            if limiter.slots is not None:
                until = self._budget(start, deadline, limiter.config.max_wait)
                t0 = time.monotonic()
                if not limiter.slots.acquire(until - t0):
                    raise LimitTimeoutError("concurrency", time.monotonic() - start, limiter.config.max_wait)
                lease.slots.append(limiter.slots)
                self._waited(lease, "concurrency", time.monotonic() - t0, need)
        if self.gate is not None:
            self._wait_headers(lease, need, start, deadline)
        try:
            self._acquire_rates(lease, need, start, deadline)
        except Exception as error:
            if isinstance(error, LimitTimeoutError) or not self.limiters:
                raise
            self.limiters[0].stores.refuse_or_skip(error)

    def _acquire_rates(self, lease: Lease, need: Need, start: float, deadline: float | None) -> None:
        for limiter in self.limiters:
            until = self._budget(start, deadline, limiter.config.max_wait)
            for resource in limiter.rates:
                ids = limiter.identifiers(resource.name, need.model, need.context)
                cost = limiter.cost(resource, need)
                t0 = time.monotonic()
                strategy = limiter.sync_strategy(resource.moving)
                while not strategy.hit(resource.item, *ids, cost=cost):
                    pause = _pause(strategy.get_window_stats(resource.item, *ids), resource)
                    now = time.monotonic()
                    if now >= until or (resource.moving and now + pause > until):
                        raise LimitTimeoutError(resource.name, now - start, limiter.config.max_wait,
                                                limiter.key_label(need.context), pause)
                    time.sleep(min(pause, until - now))
                if not resource.moving:
                    lease.charges.append(Charge(limiter, resource, ids, cost))
                self._waited(lease, resource.name, time.monotonic() - t0, need)

    def _wait_headers(self, lease: Lease, need: Need, start: float, deadline: float | None) -> None:
        assert self.gate is not None
        until = self._budget(start, deadline, self.header_wait)
        now = time.monotonic()
        used_up, pause, taken = self.gate.take(need.model, need, need.max_tokens, until - now)
        if not taken:
            raise LimitTimeoutError(f"headers:{used_up}", now - start, self.header_wait, None, pause)
        if pause > 0:
            time.sleep(pause)
            self._waited(lease, "headers", pause, need)

    # -- async -----------------------------------------------------------------------------------------------

    async def acquire_async(self, need: Need, deadline: float | None) -> Lease:
        lease = Lease()
        try:
            await self._acquire_async(lease, need, deadline)
        except BaseException:
            lease.release()
            raise
        return lease

    async def _acquire_async(self, lease: Lease, need: Need, deadline: float | None) -> None:
        start = time.monotonic()
        for limiter in self.limiters:
            if limiter.slots is not None:
                until = self._budget(start, deadline, limiter.config.max_wait)
                t0 = time.monotonic()
                if not await limiter.slots.acquire_async(until - t0):
                    raise LimitTimeoutError("concurrency", time.monotonic() - start, limiter.config.max_wait)
                lease.slots.append(limiter.slots)
                self._waited(lease, "concurrency", time.monotonic() - t0, need)
        if self.gate is not None:
            until = self._budget(start, deadline, self.header_wait)
            now = time.monotonic()
            used_up, pause, taken = self.gate.take(need.model, need, need.max_tokens, until - now)
            if not taken:
                raise LimitTimeoutError(f"headers:{used_up}", now - start, self.header_wait, None, pause)
            if pause > 0:
                await asyncio.sleep(pause)
                self._waited(lease, "headers", pause, need)
        try:
            await self._acquire_rates_async(lease, need, start, deadline)
        except Exception as error:
            if isinstance(error, LimitTimeoutError) or not self.limiters:
                raise
            self.limiters[0].stores.refuse_or_skip(error)

    async def _acquire_rates_async(self, lease: Lease, need: Need, start: float, deadline: float | None) -> None:
        for limiter in self.limiters:
            until = self._budget(start, deadline, limiter.config.max_wait)
            for resource in limiter.rates:
                ids = limiter.identifiers(resource.name, need.model, need.context)
                cost = limiter.cost(resource, need)
                t0 = time.monotonic()
                strategy, is_async = limiter.async_strategy(resource.moving)
                while not (await strategy.hit(resource.item, *ids, cost=cost) if is_async
                           else strategy.hit(resource.item, *ids, cost=cost)):
                    stats = (await strategy.get_window_stats(resource.item, *ids) if is_async
                             else strategy.get_window_stats(resource.item, *ids))
                    pause = _pause(stats, resource)
                    now = time.monotonic()
                    if now >= until or (resource.moving and now + pause > until):
                        raise LimitTimeoutError(resource.name, now - start, limiter.config.max_wait,
                                                limiter.key_label(need.context), pause)
                    await asyncio.sleep(min(pause, until - now))
                if not resource.moving:
                    lease.charges.append(Charge(limiter, resource, ids, cost))
                self._waited(lease, resource.name, time.monotonic() - t0, need)


def _pause(stats: Any, resource: _Resource) -> float:
    """Seconds until the window frees room: exact for the moving window (its oldest entry expires), a poll
    interval for the token counters (they free room gradually)."""
    pause = max(0.0, float(stats.reset_time) - time.time())
    window = float(resource.item.get_expiry())
    if not resource.moving:
        pause = min(max(pause, window / 100), window / 10)
    return pause + random.uniform(0, min(0.02, window / 100))

