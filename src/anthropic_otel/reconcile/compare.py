"""The comparison: per model and bucket, computed vs billed dollars, the drift, tokens side by side, a verdict."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from .buckets import Bucket
from .figures import Figures, Side

CENT = Decimal("0.01")


class Status(StrEnum):
    OK = "ok"
    DRIFT = "drift"  # a closed, final bucket off by more than --max-drift: the run fails
    OPEN = "open"  # the bucket has not ended: shown, never failing
    PENDING = "pending"  # closed, but the bill for it is not final yet: shown, never failing


@dataclass(frozen=True)
class Row:
    bucket: Bucket
    model: str
    computed: Figures
    billed: Figures
    status: Status

    @property
    def drift_usd(self) -> Decimal:
        """Billed minus computed: positive when Anthropic charged more than the package counted."""
        return self.billed.total_usd - self.computed.total_usd

    @property
    def drift_pct(self) -> Decimal | None:
        """Drift as a percentage of the computed cost; None when nothing was counted (any billed dollar is drift)."""
        computed = self.computed.total_usd
        return None if not computed else self.drift_usd / computed * 100


def drifted(computed: Decimal, billed: Decimal, max_drift_pct: Decimal, min_usd: Decimal) -> bool:
    """Off by more than the percentage, and by more than `min_usd` (float noise and fractions of a cent aside)."""
    drift = abs(billed - computed)
    if drift <= min_usd:
        return False
    return not computed or drift / computed * 100 > max_drift_pct


def compare(buckets: Sequence[Bucket], counted: Side, billed: Side, now: datetime, final: Callable[[Bucket], bool],
            max_drift_pct: Decimal, min_usd: Decimal = CENT / 100) -> list[Row]:
    rows = []
    for bucket in buckets:
        models = sorted({model for (start, model) in [*counted, *billed] if start == bucket.start})
        for model in models:
            mine = counted.get((bucket.start, model), Figures())
            theirs = billed.get((bucket.start, model), Figures())
            if not bucket.closed(now):
                status = Status.OPEN
            elif not final(bucket):
                status = Status.PENDING
            elif drifted(mine.total_usd, theirs.total_usd, max_drift_pct, min_usd):
                status = Status.DRIFT
            else:
                status = Status.OK
            rows.append(Row(bucket, model, mine, theirs, status))
    return rows


def failed(rows: Sequence[Row]) -> bool:
    return any(row.status is Status.DRIFT for row in rows)
