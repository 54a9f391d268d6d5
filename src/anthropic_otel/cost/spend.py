"""Running spend per calendar period (UTC day and month), for applications that act on it.

Kept as exact `Decimal` sums under a lock. Periods roll over at UTC midnight and on the first of the month;
the ledger lives in this process (Prometheus' `increase()` over the cost counter is the cross-process view).
A child process forked after calls starts from zero (`os.register_at_fork`): it reports only its own spend,
so adding up processes never counts the parent's calls twice.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

PERIODS = ("day", "month")


def _today() -> date:
    return datetime.now(tz=UTC).date()


@dataclass(frozen=True)
class Spend:
    """Dollars spent in the current UTC day and month, the configured budgets, and what is left of them."""

    day: Decimal
    month: Decimal
    total: Decimal
    budgets: Mapping[str, Decimal] = field(default_factory=dict)
    as_of: date = field(default_factory=_today)

    def remaining(self, period: str) -> Decimal | None:
        """Budget left in `period` (negative once exceeded), or None without a budget for it."""
        budget = self.budgets.get(period)
        if budget is None:
            return None
        return budget - (self.day if period == "day" else self.month)

    def exceeded(self) -> list[str]:
        """The periods whose budget is used up."""
        return [period for period in PERIODS if (left := self.remaining(period)) is not None and left <= 0]


class Ledger:
    """Adds each call's cost to the current day and month; thread-safe and exact.

    The date is looked up only when the clock passes the next UTC midnight, so `add()` costs a clock read,
    a comparison and two additions under a lock.
    """

    def __init__(self, budgets: Mapping[str, float] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.budgets = {period: Decimal(str(dollars)) for period, dollars in (budgets or {}).items()}
        self._clock = clock
        self._start()
        _LIVE.add(self)

    def _start(self) -> None:
        """Zero sums and a fresh lock: at creation and in a forked child (whose lock may be held forever)."""
        self._lock = threading.Lock()
        self._day_of = _date(self._clock())
        self._roll_at = _next_midnight(self._day_of)
        self._day = Decimal(0)
        self._month = Decimal(0)
        self._total = Decimal(0)

    def _roll(self, now: float) -> None:
        if now < self._roll_at:
            return
        today = _date(now)
        if (today.year, today.month) != (self._day_of.year, self._day_of.month):
            self._month = Decimal(0)
        if today != self._day_of:
            self._day = Decimal(0)
        self._day_of = today
        self._roll_at = _next_midnight(today)

    def add(self, dollars: Decimal) -> None:
        now = self._clock()
        with self._lock:
            self._roll(now)
            self._day += dollars
            self._month += dollars
            self._total += dollars

    def spend(self) -> Spend:
        now = self._clock()
        with self._lock:
            self._roll(now)
            return Spend(self._day, self._month, self._total, dict(self.budgets), self._day_of)


def _date(timestamp: float) -> date:
    return datetime.fromtimestamp(timestamp, tz=UTC).date()


def _next_midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + 86400


_LIVE: weakref.WeakSet[Ledger] = weakref.WeakSet()


def _forked() -> None:
    for ledger in list(_LIVE):
        ledger._start()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
