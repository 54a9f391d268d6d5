"""Scenario names and the per-request knobs that tune them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Scenario(StrEnum):
    """What the fake API does with the next ``/v1/messages`` request.

    A ``str`` enum, so plain strings such as ``"rate_limit"`` work wherever a scenario is taken.
    """

    NORMAL = "normal"
    MAX_TOKENS = "max_tokens"
    TOOL_USE = "tool_use"
    STOP_SEQUENCE = "stop_sequence"
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    BAD_REQUEST = "bad_request"
    AUTH_ERROR = "auth_error"
    STREAM_CUT = "stream_cut"
    STREAM_ERROR = "stream_error"
    USAGE_ON_DELTA_ONLY = "usage_on_delta_only"
    SLOW_FIRST_BYTE = "slow_first_byte"


@dataclass(frozen=True)
class ErrorSpec:
    """HTTP status and body of an error scenario, as the real API sends them."""

    status: int
    type: str
    message: str


ERRORS: dict[Scenario, ErrorSpec] = {
    Scenario.RATE_LIMIT: ErrorSpec(
        429, "rate_limit_error", "This request would exceed your organization's rate limit (fake)."
    ),
    Scenario.OVERLOADED: ErrorSpec(529, "overloaded_error", "Overloaded"),
    Scenario.SERVER_ERROR: ErrorSpec(500, "api_error", "Internal server error"),
    Scenario.BAD_REQUEST: ErrorSpec(400, "invalid_request_error", "Invalid request (fake bad_request)."),
    Scenario.AUTH_ERROR: ErrorSpec(401, "authentication_error", "invalid x-api-key"),
}

# Knob name in "scenario:knob=value" specs -> request header that sets it.
KNOB_HEADERS: dict[str, str] = {
    "delay_ms": "x-fake-delay-ms",
    "output_tokens": "x-fake-output-tokens",
    "retry_after": "x-fake-retry-after",
    "event_delay_ms": "x-fake-event-delay-ms",
    "tool_index": "x-fake-tool-index",  # tool_use: which of the request's tools to call (default the first)
}

DEFAULT_OUTPUT_TOKENS = 20
SLOW_FIRST_BYTE_DELAY_MS = 200.0


@dataclass(frozen=True)
class Knobs:
    """Resolved per-request knobs; precedence is scripted params, then headers, then defaults."""

    delay_ms: float
    output_tokens: int
    retry_after: float
    event_delay_ms: float
    tool_index: int = 0


def parse_spec(spec: str) -> tuple[Scenario, dict[str, float]]:
    """Parse ``"name"`` or ``"name:knob=value,..."``; raise ``ValueError`` early so typos fail loudly."""
    name, _, raw_params = spec.partition(":")
    try:
        scenario = Scenario(name.strip())
    except ValueError:
        valid = ", ".join(s.value for s in Scenario)
        raise ValueError(f"unknown fake scenario {name!r}; expected one of: {valid}") from None
    params: dict[str, float] = {}
    for item in raw_params.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in KNOB_HEADERS:
            raise ValueError(f"bad scenario parameter {item!r}; expected one of {sorted(KNOB_HEADERS)}")
        params[key] = _non_negative(value, key)
    return scenario, params


def resolve_knobs(scenario: Scenario, params: Mapping[str, float], headers: Mapping[str, str]) -> Knobs:
    """Merge scripted params over ``x-fake-*`` headers over defaults; ``ValueError`` on a bad header."""
    values: dict[str, float] = {}
    for key, header in KNOB_HEADERS.items():
        if key in params:
            values[key] = params[key]
        elif header in headers:
            values[key] = _non_negative(headers[header], header)
    default_delay = SLOW_FIRST_BYTE_DELAY_MS if scenario is Scenario.SLOW_FIRST_BYTE else 0.0
    return Knobs(
        delay_ms=values.get("delay_ms", default_delay),
        output_tokens=int(values.get("output_tokens", DEFAULT_OUTPUT_TOKENS)),
        retry_after=values.get("retry_after", 0.0),
        event_delay_ms=values.get("event_delay_ms", 0.0),
        tool_index=int(values.get("tool_index", 0)),
    )


def _non_negative(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if not (value >= 0 and math.isfinite(value)):  # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {raw!r}")
    return value
