"""`Policy`: the wrapper's public entry point; its state is `Shared`, its clients come from `_client`."""

from __future__ import annotations

from typing import Any

from ._client import wrap_client
from ._shared import Shared


class Policy(Shared):
    """Everything the wrapper does, and the state it shares: breakers, limits and budget are shared by every
    client the policy wraps (sync and async alike), so wrap both flavours with one policy.

    Each feature is off until configured. With `redis_url`, rate limits and the budget live in Redis, shared by
    every process and host using the same `namespace`; concurrency limits and breakers stay in-process.
    `store_failure` (a `StoreFailure`) says what happens when Redis cannot be reached: by default the limits
    fail open and the budget fails closed. Every setting is checked here, at construction.
    """

    def wrap(self, client: Any) -> Any:
        """`client` (any sync or async Anthropic, Bedrock or Vertex client) under this policy; the client itself
        when nothing is configured."""
        if not self.active:
            return client
        return wrap_client(client, self)

    def circuit_state(self, model: str) -> str:
        """`closed`, `open` or `half_open` (`closed` without a breaker)."""
        return "closed" if self.breakers is None else self.breakers.get(model).state

    def spent(self) -> dict[str, Any]:
        """Dollars spent (and reserved by calls in flight) today and this month (UTC), by the budget's count.
        `StoreUnavailableError` when the budget is in Redis and Redis cannot be reached."""
        if self.budget is None:
            raise RuntimeError("the policy has no budget")
        return self.budget.spent()
