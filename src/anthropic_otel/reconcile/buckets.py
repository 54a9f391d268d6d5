"""Time buckets shared by both sides: aligned to UTC, closed once their end has passed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# 1m exists in the API and is accepted for tests and short checks; 1d and 1h are what people use.
HOUR = timedelta(hours=1)
WIDTHS: dict[str, timedelta] = {"1d": timedelta(days=1), "1h": timedelta(hours=1), "1m": timedelta(minutes=1)}


@dataclass(frozen=True, order=True)
class Bucket:
    start: datetime
    end: datetime

    def closed(self, now: datetime) -> bool:
        """A bucket still open (today, the current hour) can still grow on both sides, so it never fails a run."""
        return self.end <= now

    def label(self) -> str:
        if self.end - self.start >= timedelta(days=1):
            return self.start.strftime("%Y-%m-%d")
        return self.start.strftime("%Y-%m-%d %H:%M")


def parse_time(text: str) -> datetime:
    """`2026-11-30` (midnight UTC) or an ISO 8601 / RFC 3339 time; naive times are UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date or time: {text!r} (use 2026-11-30 or 2026-11-30T12:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def floor(moment: datetime, width: timedelta) -> datetime:
    """The start of the bucket holding `moment` (buckets are aligned to the Unix epoch, so to UTC midnight)."""
    seconds = int(width.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def span(since: datetime, until: datetime, width: timedelta) -> list[Bucket]:
    """The buckets covering [since, until): the first starts at or before `since`, the last ends at or after `until`."""
    return list(_walk(floor(since, width), until, width))


def _walk(start: datetime, until: datetime, width: timedelta) -> Iterator[Bucket]:
    while start < until:
        yield Bucket(start, start + width)
        start += width


def default_range(now: datetime, width: timedelta) -> tuple[datetime, datetime]:
    """The last 7 days by day, or the last 24 hours by hour (and the last hour by minute), open bucket included."""
    back = {timedelta(days=1): timedelta(days=7), timedelta(hours=1): timedelta(hours=24)}.get(width, HOUR)
    end = floor(now, width) + width
    return end - back, end
