"""Anthropic usage, normalised once so spans, metrics, cost and logs agree.

Anthropic's `input_tokens` excludes cached tokens; the conventions' `gen_ai.usage.input_tokens` includes
them. Stream usage is cumulative and may arrive on `message_start`, `message_delta` or both: a later value
replaces an earlier one, a missing field keeps the earlier one (the SDK's own accumulator does the same).

A count that cannot be real (negative, not an `int`, a `bool`, above 2**53) is not taken: the field keeps
its earlier value, the raw value is kept in `bad` for the span, and `valid` turns False so the call's
tokens and cost stay out of every metric (one such value would otherwise break OTLP's int64 encoding or
make a counter go down). A later valid value of the same field replaces the bad one, as any later value does.
"""

from __future__ import annotations

from typing import Any

MAX_TOKENS = 2**53  # no real count comes near; above it a float sum (Prometheus) is no longer exact


def problem(value: Any) -> str | None:
    """Why `value` cannot be a token count (`negative`, `too large`, `boolean`, `non-integer`), or None."""
    if type(value) is int:
        return "negative" if value < 0 else "too large" if value > MAX_TOKENS else None
    return "boolean" if isinstance(value, bool) else "non-integer"



class Usage:
    """Token counts of one call, in Anthropic's own meaning (`input_tokens` is uncached input)."""

    __slots__ = (
        "bad",
        "cache_read",
        "cache_write",
        "cache_write_1h",
        "cache_write_5m",
        "inference_geo",
        "input_tokens",
        "output_tokens",
        "service_tier",
        "speed",
        "thinking_tokens",
        "web_fetch_requests",
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
        speed: str | None = None,
        inference_geo: str | None = None,
        thinking_tokens: int | None = None,
        web_fetch_requests: int = 0,
    ) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.cache_write_5m = cache_write_5m
        self.cache_write_1h = cache_write_1h
        self.web_search_requests = web_search_requests
        self.service_tier = service_tier
        self.speed = speed  # "standard" or "fast"; None when the response did not say
        self.inference_geo = inference_geo  # "us", "global", ...; None when the response did not say
        self.thinking_tokens = thinking_tokens  # the reasoning share of `output_tokens` (not added to it)
        self.web_fetch_requests = web_fetch_requests
        self.bad: dict[str, Any] | None = None  # SDK field name -> the impossible value seen last

    @property
    def valid(self) -> bool:
        """True unless a field holds a value that cannot be real: only a valid usage reaches metrics."""
        return not self.bad

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
        bad = self.bad
        value = usage.input_tokens
        if value is not None:
            if type(value) is int and 0 <= value <= MAX_TOKENS:
                self.input_tokens = value
                if bad:
                    bad.pop("input_tokens", None)
            else:
                self._reject("input_tokens", value)
        value = usage.output_tokens
        if value is not None:
            if type(value) is int and 0 <= value <= MAX_TOKENS:
                self.output_tokens = value
                if bad:
                    bad.pop("output_tokens", None)
            else:
                self._reject("output_tokens", value)
        value = usage.cache_read_input_tokens
        if value is not None:
            if type(value) is int and 0 <= value <= MAX_TOKENS:
                self.cache_read = value
                if bad:
                    bad.pop("cache_read_input_tokens", None)
            else:
                self._reject("cache_read_input_tokens", value)
        value = usage.cache_creation_input_tokens
        if value is not None:
            if type(value) is int and 0 <= value <= MAX_TOKENS:
                self.cache_write = value
                if bad:
                    bad.pop("cache_creation_input_tokens", None)
            else:
                self._reject("cache_creation_input_tokens", value)
        breakdown = getattr(usage, "cache_creation", None)
        if breakdown is not None:
            self.cache_write_5m = self._optional("ephemeral_5m_input_tokens", breakdown.ephemeral_5m_input_tokens)
            self.cache_write_1h = self._optional("ephemeral_1h_input_tokens", breakdown.ephemeral_1h_input_tokens)
        tools = usage.server_tool_use
        if tools is not None:
            self.web_search_requests = self._optional("web_search_requests", tools.web_search_requests) or 0
            fetches = getattr(tools, "web_fetch_requests", None)
            if fetches is not None:
                self.web_fetch_requests = self._optional("web_fetch_requests", fetches) or 0
        tier = getattr(usage, "service_tier", None)
        if tier is not None:
            self.service_tier = tier
        speed = getattr(usage, "speed", None)
        if speed is not None:
            self.speed = speed
        geo = getattr(usage, "inference_geo", None)
        if geo is not None:
            self.inference_geo = geo
        details = getattr(usage, "output_tokens_details", None)
        if details is not None:
            thinking = self._optional("thinking_tokens", getattr(details, "thinking_tokens", None))
            if thinking is not None:
                self.thinking_tokens = thinking

    def _optional(self, name: str, value: Any) -> int | None:
        """A rarer field: the value when real or absent (None), else None after rejecting it."""
        if value is None or (type(value) is int and 0 <= value <= MAX_TOKENS):
            if self.bad:
                self.bad.pop(name, None)
            return value
        self._reject(name, value)
        return None

    def _reject(self, name: str, value: Any) -> None:
        """Keeps `value` for the span (the instrumentation reports it); the field keeps its earlier value."""
        if self.bad is None:
            self.bad = {}
        self.bad[name] = value

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
            "web_fetch_requests": self.web_fetch_requests,
            "thinking_tokens": self.thinking_tokens or 0,
        }

    def __repr__(self) -> str:
        return f"Usage({self.as_dict()!r})"
