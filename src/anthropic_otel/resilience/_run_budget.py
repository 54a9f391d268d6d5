"""The per-run budget (`Budget.per_run`): a call of an agent run is refused when the run could go past it.

The run is the one current in `CURRENT_RUN` (the instrumentation's tool-runner run, see
`instrumentation/runs.py`); it knows its spend so far, the exact sum of its calls' costs. Before a call is sent
its worst case (the one the day and month budget reserves) is set aside on the run, so calls of one run in
flight at once cannot overshoot together, and given back when the call ends, after its real cost reached the
run. A run lives in one process, so none of this touches Redis. Outside a run nothing happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..cost.pricing import Pricer
from ..instrumentation.runs import CURRENT_RUN, RunSink
from ._budget import unpriced_model, worst_case_cost
from ._errors import BudgetExceededError

PERIOD = "run"  # `BudgetExceededError.period` of a refusal by the per-run budget


class RunHold:
    """What one call set aside on its run; released once."""

    __slots__ = ("amount", "released", "run")

    def __init__(self, run: RunSink, amount: Decimal) -> None:
        self.run = run
        self.amount = amount
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.run.release(self.amount)


class RunBudget:
    def __init__(self, limit: float, pricer: Pricer, worst_case: bool) -> None:
        self.limit = Decimal(str(limit))
        self.pricer = pricer
        self.worst_case = worst_case

    def hold(self, models: tuple[str, ...], provider: str, kwargs: Mapping[str, Any]) -> RunHold | None:
        """Sets the call's worst case aside on the current run (None outside a run); `BudgetExceededError` when
        the run's spend so far plus it would exceed the budget, or when a model has no known price."""
        run = CURRENT_RUN.get()
        if run is None:
            return None
        model = unpriced_model(self.pricer, models, provider)
        if model is not None:
            raise BudgetExceededError(PERIOD, Decimal(0), self.limit, Decimal(0), unpriced=model)
        amount = worst_case_cost(self.pricer, models, provider, kwargs) if self.worst_case else Decimal(0)
        spent = run.hold(amount, self.limit)
        if spent is not None:
            raise BudgetExceededError(PERIOD, spent, self.limit, amount)
        return RunHold(run, amount)
