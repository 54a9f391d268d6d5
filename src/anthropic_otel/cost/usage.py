"""Anthropic usage, normalised once so spans, metrics, cost and logs agree.

Anthropic's `input_tokens` excludes cached tokens; the conventions' `gen_ai.usage.input_tokens` includes
them. Stream usage is cumulative and may arrive on `message_start`, `message_delta` or both: a later value
replaces an earlier one, a missing field keeps the earlier one (the SDK's own accumulator does the same).
"""

from __future__ import annotations

from typing import Any


class Usage:
    """Token counts of one call, in Anthropic's own meaning (`input_tokens` is uncached input)."""

    __slots__ = (
        "cache_read",
        "cache_write",
        "cache_write_1h",
        "cache_write_5m",
        "input_tokens",
        "output_tokens",
        "service_tier",
        "web_search_requests",
    )

    def __init__(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read: int = 0,
        cache_write: int = 0,
        cache_write_5m: int | None = None,
        cache_write_1h: int | None = None,
        web_search_requests: int = 0,
        service_tier: str | None = None,
    ) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.cache_write_5m = cache_write_5m
        self.cache_write_1h = cache_write_1h
        self.web_search_requests = web_search_requests
        self.service_tier = service_tier

    @property
    def total_input(self) -> int:
        """Input including cache reads and writes: what the conventions call input tokens."""
        return self.input_tokens + self.cache_read + self.cache_write

    def split_cache_write(self) -> tuple[int, int]:
        """The cache write as (5-minute, 1-hour) tokens.

        Without a usable `cache_creation` breakdown the whole write is taken as 5-minute, the API's default
        TTL. A breakdown that does not add up (a stream whose total moved on `message_delta`) keeps its
        1-hour part and gives the rest to 5 minutes.
        """
        one_hour = self.cache_write_1h or 0
        if one_hour > self.cache_write:
            one_hour = self.cache_write
        return self.cache_write - one_hour, one_hour

    def update(self, usage: Any) -> None:
        """Merges an SDK `Usage` or `MessageDeltaUsage` (cumulative values: present fields win)."""
        value = usage.input_tokens
        if value is not None:
            self.input_tokens = value
        value = usage.output_tokens
        if value is not None:
            self.output_tokens = value
        value = usage.cache_read_input_tokens
        if value is not None:
            self.cache_read = value
        value = usage.cache_creation_input_tokens
        if value is not None:
            self.cache_write = value
        breakdown = getattr(usage, "cache_creation", None)
        if breakdown is not None:
            self.cache_write_5m = breakdown.ephemeral_5m_input_tokens
            self.cache_write_1h = breakdown.ephemeral_1h_input_tokens
        tools = usage.server_tool_use
        if tools is not None:
            self.web_search_requests = tools.web_search_requests or 0
        tier = getattr(usage, "service_tier", None)
        if tier is not None:
            self.service_tier = tier

    @classmethod
    def of(cls, usage: Any) -> Usage:
        """A `Usage` from an SDK usage object."""
        result = cls()
        result.update(usage)
        return result

    def as_dict(self) -> dict[str, int]:
        five, hour = self.split_cache_write()
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_write,
            "cache_write_5m_input_tokens": five,
            "cache_write_1h_input_tokens": hour,
            "web_search_requests": self.web_search_requests,
        }

    def __repr__(self) -> str:
        return f"Usage({self.as_dict()!r})"
