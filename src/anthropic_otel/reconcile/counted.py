"""The counted side: how much the package's cost and token counters grew in each bucket, from Prometheus.

`increase()` is not used: it extrapolates, and it loses a series' first sample, so a process that started
inside a bucket (a short job, a restart) would be undercounted. Instead the raw samples of every series are
read (`series[window]` at the bucket's end, the window reaching `margin` before the bucket) and summed here:
a series with no sample before the bucket starts from 0, and a drop in value is a counter reset (a restart),
after which the counter counts again from 0.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ..telemetry import names as n
from ..telemetry import series as s
from .buckets import Bucket
from .figures import Side, figures

MARGIN = timedelta(minutes=15)  # how far before a bucket to look for a series' previous sample
Sample = tuple[float, Decimal]


class CountedError(Exception):
    """A one-line reason the counted figures could not be read."""


def selector() -> str:
    """The package's dollar and token counters for calls to Anthropic itself (Bedrock and Vertex bill elsewhere)."""
    return (f'{{__name__=~"{s.COST}|{s.TOKENS}",{s.PROVIDER}="{n.PROVIDER_ANTHROPIC}"}}')


def growth(samples: Sequence[Sample], start: float, end: float) -> Decimal:
    """What a counter added in [start, end): from 0 before its first sample, and from 0 again after a reset."""
    total = Decimal(0)
    previous: Decimal | None = None
    for at, value in samples:
        added = value if previous is None or value < previous else value - previous
        if start <= at < end:
            total += added
        previous = value
    return total


def fetch(url: str, buckets: Iterable[Bucket], now: datetime, margin: timedelta = MARGIN,
          timeout: float = 30.0) -> Side:
    """Counted dollars and tokens per (bucket, model), read bucket by bucket."""
    side: Side = {}
    for bucket in buckets:
        at = min(bucket.end, now)
        if at <= bucket.start:
            continue
        window = int((at - bucket.start + margin).total_seconds())
        result = _query(url, f"{selector()}[{window}s]", at.timestamp(), timeout)
        for item in result:
            labels = item.get("metric", {})
            samples = [(float(t), Decimal(v)) for t, v in item.get("values", [])]
            added = growth(samples, bucket.start.timestamp(), bucket.end.timestamp())
            if not added:
                continue
            model = labels.get(s.MODEL, "")
            kind = labels.get(s.TOKEN_TYPE, "")
            found = figures(side, (bucket.start, model))
            if labels.get("__name__") == s.COST:
                found.add_usd(kind, added)
            else:
                found.add_tokens(kind, int(added))
    return side


def _query(url: str, promql: str, at: float, timeout: float) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
    endpoint = url.rstrip("/") + "/api/v1/query?" + query
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as error:
        raise CountedError(f"Prometheus at {url} answered HTTP {error.code}: {_error_text(error)}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise CountedError(f"cannot query Prometheus at {url}: {error}") from None
    if payload.get("status") != "success":
        raise CountedError(f"Prometheus at {url}: {payload.get('error', 'query failed')}")
    data = payload.get("data", {})
    if data.get("resultType") != "matrix":
        raise CountedError(f"Prometheus at {url} returned {data.get('resultType')!r}, expected a matrix")
    result: list[dict[str, Any]] = data.get("result", [])
    return result


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(error).get("error", error.reason))
    except ValueError:
        return str(error.reason)
