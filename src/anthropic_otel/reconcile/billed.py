"""The billed side: Anthropic's Usage & Cost API, read through the SDK's typed clients.

`client.beta.organization.analytics.cost.list` gives dollars per model, cost type and token type per time
bucket (amounts are decimal strings in cents); `.usage.list` gives the tokens. The SDK follows the cursor
pages and retries 429s (honouring `retry-after`) and 5xx. A bucket is final once the report's
`data_refreshed_at` is at or past its end; before that the figures can still grow.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..telemetry import names as n
from .buckets import Bucket
from .figures import Side, figures

if TYPE_CHECKING:
    import anthropic

KEY_ENV = "ANTHROPIC_ADMIN_API_KEY"
MAX_RANGE = timedelta(days=31)  # the API's longest range per request
CENTS = Decimal(100)
# The cost report's token types, in the package's token classes.
COST_TOKEN_TYPES = {
    "uncached_input_tokens": n.TOKEN_INPUT,
    "output_tokens": n.TOKEN_OUTPUT,
    "cache_read_input_tokens": n.TOKEN_CACHE_READ,
    "cache_creation.ephemeral_5m_input_tokens": n.TOKEN_CACHE_WRITE,
    "cache_creation.ephemeral_1h_input_tokens": n.TOKEN_CACHE_WRITE,
}
NO_MODEL = "(no model)"


class BilledError(Exception):
    """A one-line reason the bill could not be read (never containing the key)."""


@dataclass(frozen=True)
class Scope:
    workspace: str | None = None
    api_key_id: str | None = None

    def describe(self) -> str:
        parts = [f"workspace {self.workspace}" if self.workspace else "",
                 f"API key {self.api_key_id}" if self.api_key_id else ""]
        chosen = " and ".join(part for part in parts if part)
        if chosen:
            return f"billed: the organization's usage in {chosen} only"
        return ("billed: EVERY caller of the organization (other services, the Console); give instrumented "
                "services their own key or workspace and pass --api-key-id or --workspace")


@dataclass
class Billed:
    side: Side = field(default_factory=dict)
    refreshed_at: datetime | None = None  # the oldest `data_refreshed_at` over the pages read

    def final(self, bucket: Bucket) -> bool:
        return self.refreshed_at is None or bucket.end <= self.refreshed_at


def admin_key() -> str:
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise BilledError(f"{KEY_ENV} is not set: reconcile reads the bill with an Admin API key "
                          "(or a key with the read:analytics scope)")
    return key


def client(key: str, base_url: str | None = None, max_retries: int = 4, timeout: float = 60.0) -> anthropic.Anthropic:
    import anthropic

    return anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout)


def fetch(api: anthropic.Anthropic, buckets: Sequence[Bucket], width: str, scope: Scope,
          page_size: int | None = None) -> Billed:
    """Dollars and tokens per (bucket, model) over `buckets`, with how fresh the report is."""
    import anthropic

    key = str(api.api_key or "")
    billed = Billed()
    if not buckets:
        return billed
    try:
        for start, end in _ranges(buckets[0].start, buckets[-1].end):
            _costs(api, billed, start, end, width, scope, page_size)
            _usage(api, billed, start, end, width, scope, page_size)
    except anthropic.AuthenticationError as error:
        raise BilledError(f"the admin key was rejected ({_status(error)}): check {KEY_ENV}") from None
    except anthropic.PermissionDeniedError as error:
        raise BilledError(f"the key may not read the usage and cost report ({_status(error)}): use an Admin API "
                          "key or one with the read:analytics scope") from None
    except (anthropic.RateLimitError, anthropic.InternalServerError) as error:
        raise BilledError(f"the usage and cost API failed ({_status(error)}) after retries") from None
    except anthropic.APIStatusError as error:
        raise BilledError(f"the usage and cost API refused the request ({_status(error)}: "
                          f"{_message(error, key)})") from None
    except anthropic.APIConnectionError as error:
        raise BilledError(f"cannot reach the usage and cost API: {type(error).__name__}") from None
    return billed


def _message(error: Any, key: str) -> str:
    """The API's own message, without the key should it ever echo it."""
    body = getattr(error, "body", None)
    detail = body.get("error") if isinstance(body, dict) else None
    message = detail.get("message") if isinstance(detail, dict) else None
    text = str(message) if message else "no message"
    return text.replace(key, "***") if key else text


def _status(error: Any) -> str:
    body = getattr(error, "body", None)
    detail = body.get("error") if isinstance(body, dict) else None
    kind = detail.get("type") if isinstance(detail, dict) else None
    return f"HTTP {error.status_code}" + (f" {kind}" if isinstance(kind, str) else "")


def _ranges(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    out = []
    while start < end:
        out.append((start, min(end, start + MAX_RANGE)))
        start += MAX_RANGE
    return out


def _filters(scope: Scope, page_size: int | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if scope.workspace:
        found["workspace_ids"] = [scope.workspace]
    if scope.api_key_id:
        found["api_key_ids"] = [scope.api_key_id]
    if page_size:
        found["limit"] = page_size
    return found


def _note_refresh(billed: Billed, refreshed: datetime | None) -> None:
    if refreshed is not None and (billed.refreshed_at is None or refreshed < billed.refreshed_at):
        billed.refreshed_at = refreshed


def _costs(api: anthropic.Anthropic, billed: Billed, start: datetime, end: datetime, width: str, scope: Scope,
           page_size: int | None) -> None:
    first = api.beta.organization.analytics.cost.list(
        starting_at=start, ending_at=end, time_bucket_width=width,  # type: ignore[arg-type]
        group_by=["model", "cost_type", "token_type"], order_by="time", order="asc", **_filters(scope, page_size))
    for page in first.iter_pages():
        _note_refresh(billed, page.data_refreshed_at)
        for row in page.data:
            group = row.group
            if group.cost_type == "tokens" and group.token_type is not None:
                kind = COST_TOKEN_TYPES.get(group.token_type, group.token_type)
            else:
                kind = str(group.cost_type or "other")
            figures(billed.side, (row.starting_at, group.model or NO_MODEL)).add_usd(
                kind, Decimal(row.cost.amount) / CENTS)


def _usage(api: anthropic.Anthropic, billed: Billed, start: datetime, end: datetime, width: str, scope: Scope,
           page_size: int | None) -> None:
    first = api.beta.organization.analytics.usage.list(
        starting_at=start, ending_at=end, time_bucket_width=width,  # type: ignore[arg-type]
        group_by=["model"], order_by="time", order="asc", **_filters(scope, page_size))
    for page in first.iter_pages():
        _note_refresh(billed, page.data_refreshed_at)
        for row in page.data:
            usage = row.usage
            found = figures(billed.side, (row.starting_at, row.group.model or NO_MODEL))
            found.add_tokens(n.TOKEN_INPUT, usage.uncached_input_tokens)
            found.add_tokens(n.TOKEN_OUTPUT, usage.output_tokens)
            found.add_tokens(n.TOKEN_CACHE_READ, usage.cache_read_input_tokens)
            found.add_tokens(n.TOKEN_CACHE_WRITE, usage.cache_creation.ephemeral_5m_input_tokens
                             + usage.cache_creation.ephemeral_1h_input_tokens)
