"""The hook agent runs roll up through: the run current when a call starts gets the call's usage and cost.

`Recorded` reads `CURRENT_RUN` once when a call starts (one context-variable read per call) and, for a chat
call, hands the run what it recorded: the same usage and cost the metrics and the ledger got, so a run's
totals are the exact sum of its calls. The runs themselves live in `anthropic_otel.agents`.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

from ..cost.pricing import Cost
from ..cost.usage import Usage


class RunSink(Protocol):
    """What a chat call made while a run was current tells the run; must not raise and must be thread-safe."""

    def add_call(self, usage: Usage | None, cost: Cost | None, priced: bool, stop_reason: str | None,
                 error_type: str | None) -> None: ...


CURRENT_RUN: ContextVar[RunSink | None] = ContextVar("anthropic_otel_current_run", default=None)
