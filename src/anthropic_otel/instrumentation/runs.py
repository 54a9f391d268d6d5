"""The hook agent runs roll up through: the run current when a call starts gets the call's usage and cost.

`Recorded` reads `CURRENT_RUN` once when a call starts (one context-variable read per call) and, for a chat
call, hands the run what it recorded: the same usage and cost the metrics and the ledger got, so a run's
totals are the exact sum of its calls. The resilience wrapper's per-run budget reads the run's spend through
`hold` / `release`. The runs themselves live in `anthropic_otel.agents`.
"""

from __future__ import annotations

from contextvars import ContextVar
from decimal import Decimal
from typing import Protocol

from ..cost.pricing import Cost
from ..cost.usage import Usage


class RunSink(Protocol):
    """What a chat call made while a run was current tells the run; must not raise and must be thread-safe."""

    def add_call(self, usage: Usage | None, cost: Cost | None, priced: bool, stop_reason: str | None,
                 error_type: str | None) -> None: ...

    def hold(self, amount: Decimal, limit: Decimal) -> Decimal | None:
        """Sets `amount` aside for a call about to be sent, unless the run's spend so far plus what is set aside
        (plus `amount`) reaches past `limit`: None when set aside, else that spend, which refused it."""
        ...

    def release(self, amount: Decimal) -> None:
        """Gives back what `hold` set aside: the call ended (its real cost came through `add_call` first)."""
        ...


CURRENT_RUN: ContextVar[RunSink | None] = ContextVar("anthropic_otel_current_run", default=None)
