"""The Usage & Cost API (`/v1/organizations/analytics/usage` and `/cost`), billed from what the server answered.

Every completed message the server answered is billed at genai-prices' list price for its model (read here
from the genai-prices data, not from the package's pricing, so the two sides stay independent), bucketed by
when it was answered. Knobs on `Billing` make the bill disagree on purpose: a price factor per model, small
pages, 429s before an answer, a rejected admin key, and a report that is not final yet (`_bill.Billing`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from ._bill import Billing
from ._http import Exchange
from ._responses import Json

PREFIX = "/v1/organizations/analytics/"
WIDTHS = {"1d": timedelta(days=1), "1h": timedelta(hours=1), "1m": timedelta(minutes=1)}
MILLION = Decimal(1_000_000)
# The cost report's token types and the usage keys they price.
TOKEN_TYPES = ("uncached_input_tokens", "output_tokens", "cache_read_input_tokens",
               "cache_creation.ephemeral_5m_input_tokens", "cache_creation.ephemeral_1h_input_tokens")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _floor(moment: datetime, width: timedelta) -> datetime:
    step = int(width.total_seconds())
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % step, UTC)


def _price(price: Any, total_input: int) -> Decimal:
    """A genai-prices price (a Decimal or tiered by total input), per million tokens."""
    if price is None:
        return Decimal(0)
    if isinstance(price, Decimal):
        return price
    found: Decimal = price.base
    for tier in reversed(price.tiers):
        if total_input > tier.start:
            return Decimal(tier.price)
    return found


def _rates(model: str, total_input: int) -> dict[str, Decimal] | None:
    """Dollars per million tokens of each token type for `model`, or None when genai-prices has no price."""
    from genai_prices import data_snapshot

    try:
        found = data_snapshot.get_snapshot().find_provider_model(model, None, "anthropic", None)[1]
    except LookupError:
        return None
    prices = found.get_prices(datetime.now(tz=UTC), None)
    write_5m = prices.cache_write_5m_mtok if prices.cache_write_5m_mtok is not None else prices.cache_write_mtok
    write_1h = prices.cache_write_1h_mtok if prices.cache_write_1h_mtok is not None else write_5m
    return {
        "uncached_input_tokens": _price(prices.input_mtok, total_input),
        "output_tokens": _price(prices.output_mtok, total_input),
        "cache_read_input_tokens": _price(prices.cache_read_mtok, total_input),
        "cache_creation.ephemeral_5m_input_tokens": _price(write_5m, total_input),
        "cache_creation.ephemeral_1h_input_tokens": _price(write_1h, total_input),
    }


def _counts(usage: Json) -> dict[str, int]:
    creation = usage.get("cache_creation") or {}
    return {
        "uncached_input_tokens": int(usage["input_tokens"]),
        "output_tokens": int(usage["output_tokens"]),
        "cache_read_input_tokens": int(usage["cache_read_input_tokens"]),
        "cache_creation.ephemeral_5m_input_tokens": int(creation.get("ephemeral_5m_input_tokens", 0)),
        "cache_creation.ephemeral_1h_input_tokens": int(creation.get("ephemeral_1h_input_tokens", 0)),
    }


def route(ex: Exchange, billing: Billing) -> None:
    """GET /v1/organizations/analytics/{usage,cost}: the rows of the report, one page at a time."""
    kind = ex.path[len(PREFIX):]
    billing.requests.append(ex.path)
    if ex.method != "GET" or kind not in ("usage", "cost"):
        ex.send_error(404, "not_found_error", "Not found")
        return
    # The SDK sends its key as `x-api-key` or `Authorization: Bearer` depending on the version.
    key = ex.headers.get("x-api-key") or ex.headers.get("authorization", "").removeprefix("Bearer ")
    if billing.reject_key or (billing.admin_key is not None and key != billing.admin_key):
        ex.send_error(401, "authentication_error", "invalid API key")
        return
    failure = billing.take_failure()
    if failure == 429:
        ex.send_error(429, "rate_limit_error", "Rate limited", [("retry-after", "1"), ("retry-after-ms", "50")])
        return
    if failure is not None:
        ex.send_error(failure, "api_error", "Internal server error")
        return
    query = parse_qs(ex.query)
    try:
        start = _time(query["starting_at"][-1])
        end = _time(query["ending_at"][-1])
        width = WIDTHS[query["time_bucket_width"][-1]]
        limit = billing.page_size or int(query.get("limit", ["20"])[-1])
        offset = int(query.get("page", ["0"])[-1] or 0)
    except (KeyError, ValueError) as error:
        ex.send_error(400, "invalid_request_error", f"bad report parameters: {error!r}")
        return
    rows = (_cost_rows if kind == "cost" else _usage_rows)(ex, billing, start, end, width)
    page = rows[offset:offset + limit]
    more = offset + limit < len(rows)
    refreshed = datetime.now(UTC) - billing.refreshed_lag
    ex.send_json(200, {"data": page, "has_more": more, "next_page": str(offset + limit) if more else None,
                       "data_refreshed_at": _rfc3339(refreshed)})


def _billed(ex: Exchange, start: datetime, end: datetime, width: timedelta) -> dict[tuple[datetime, str], list[Json]]:
    """The usage of every completed message answered in [start, end), by (bucket start, model)."""
    found: dict[tuple[datetime, str], list[Json]] = {}
    for at, model, usage in ex.state.billed_usage():
        moment = datetime.fromtimestamp(at, UTC)
        if start <= moment < end:
            found.setdefault((_floor(moment, width), model), []).append(usage)
    return found


def _bounds(bucket: datetime, width: timedelta) -> Json:
    return {"starting_at": _rfc3339(bucket), "ending_at": _rfc3339(bucket + width)}


def _group(model: str, **extra: str | None) -> Json:
    return {"model": model, "cost_type": None, "token_type": None, **extra}


def _usage_rows(ex: Exchange, billing: Billing, start: datetime, end: datetime, width: timedelta) -> list[Json]:
    rows = []
    for (bucket, model), usages in sorted(_billed(ex, start, end, width).items()):
        totals = dict.fromkeys(TOKEN_TYPES, 0)
        for usage in usages:
            for kind, count in _counts(usage).items():
                totals[kind] += count
        usage_row = {
            "uncached_input_tokens": totals["uncached_input_tokens"],
            "output_tokens": totals["output_tokens"],
            "cache_read_input_tokens": totals["cache_read_input_tokens"],
            "cache_creation": {"ephemeral_5m_input_tokens": totals["cache_creation.ephemeral_5m_input_tokens"],
                               "ephemeral_1h_input_tokens": totals["cache_creation.ephemeral_1h_input_tokens"]},
            "server_tool_use": {"web_search_requests": 0},
            "total_tokens": sum(totals.values()),
            "requests": len(usages),
        }
        rows.append({**_bounds(bucket, width), "group": _group(model), "usage": usage_row})
    return rows


def _cost_rows(ex: Exchange, billing: Billing, start: datetime, end: datetime, width: timedelta) -> list[Json]:
    rows = []
    for (bucket, model), usages in sorted(_billed(ex, start, end, width).items()):
        factor = billing.price_factor.get(model, Decimal(1))
        dollars = dict.fromkeys(TOKEN_TYPES, Decimal(0))
        for usage in usages:
            counts = _counts(usage)
            rates = _rates(model, counts["uncached_input_tokens"] + counts["cache_read_input_tokens"]
                           + counts["cache_creation.ephemeral_5m_input_tokens"]
                           + counts["cache_creation.ephemeral_1h_input_tokens"])
            if rates is None:
                continue
            for kind, count in counts.items():
                dollars[kind] += rates[kind] * count / MILLION * factor
        for kind, amount in dollars.items():
            if amount:
                cents = f"{amount * 100:f}"
                rows.append({**_bounds(bucket, width), "group": _group(model, cost_type="tokens", token_type=kind),
                             "cost": {"amount": cents, "list_amount": cents, "currency": "USD", "requests": None}})
    return rows
