"""The prompt cache's own diagnosis of a miss (SDK >= 2.14): its reason, the tokens it missed, their dollars.

A response to a request that carried `diagnostics={"previous_message_id": ...}` may say why the cache could
not reuse that earlier request's prefix (`message.diagnostics.cache_miss_reason`; in a stream, on the
`message_start` message). `model_changed`, `system_changed`, `tools_changed` and `messages_changed` carry
`cache_missed_input_tokens`; `previous_message_not_found` and `unavailable` carry none (counted as 0).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any, NamedTuple

from ..cost.pricing import Pricer
from ..cost.usage import Usage


class Miss(NamedTuple):
    """One diagnosed miss: its reason and the input tokens the cache would have served."""

    reason: str
    tokens: int


def miss_of(diagnostics: Any) -> Miss | None:
    """The miss a response's `diagnostics` reports, or None (no diagnosis, or no divergence)."""
    found = getattr(diagnostics, "cache_miss_reason", None)
    if found is None:
        return None
    reason = getattr(found, "type", None)
    if not isinstance(reason, str) or not reason:
        return None
    tokens = getattr(found, "cache_missed_input_tokens", 0)
    if type(tokens) is not int or tokens < 0:
        tokens = 0
    return Miss(reason[:64], tokens)


def missed_dollars(pricer: Pricer, model: str, provider: str, usage: Usage, tokens: int) -> Decimal | None:
    """`tokens` x (input rate - cache-read rate), at this call's rates (tier, and any dimension its usage
    carries): the same tokens priced once as uncached input and once as cache reads, on top of the call."""
    if tokens <= 0:
        return Decimal(0)
    base = pricer.cost(model, provider, usage)
    if base is None:
        return None
    as_input = copy.copy(usage)
    as_input.input_tokens = usage.input_tokens + tokens
    as_read = copy.copy(usage)
    as_read.cache_read = usage.cache_read + tokens
    paid = pricer.cost(model, provider, as_input)
    read = pricer.cost(model, provider, as_read)
    if paid is None or read is None:
        return None
    return (paid.input - base.input) - (read.cache_read - base.cache_read)
