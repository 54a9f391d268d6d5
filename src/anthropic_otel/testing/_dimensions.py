"""What the fake API reports beyond token counts: speed, inference geo, service tier, thinking tokens, server
tool requests and the code-execution container.

Request parameters drive them as on the real API; ``x-fake-*`` headers (``extra_headers=`` in the SDK) set
what the real API decides on its own (whether priority capacity served the call, how many thinking tokens or
tool requests the model used). See the package docstring for the list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

SERVICE_TIER_HEADER = "x-fake-service-tier"
THINKING_HEADER = "x-fake-thinking-tokens"
WEB_SEARCH_HEADER = "x-fake-web-search-requests"
WEB_FETCH_HEADER = "x-fake-web-fetch-requests"
CONTAINER_TTL_S = 3600.0


@dataclass(frozen=True)
class Dimensions:
    """One request's billing dimensions, as the fake API will report them."""

    speed: str | None = None
    inference_geo: str | None = None
    service_tier: str = "standard"
    thinking: int | None = None  # None: no thinking; -1: the default share of the output
    web_search: int = 0
    web_fetch: int = 0
    container: str | None = None  # None: no container; "": a new one; else the id the request named

    def thinking_tokens(self, output_tokens: int) -> int | None:
        if self.thinking is None:
            return None
        wanted = output_tokens // 2 if self.thinking < 0 else self.thinking
        return min(wanted, output_tokens)

    def usage_fields(self, output_tokens: int) -> Json:
        """The extra ``usage`` fields (only those that apply: a plain request's usage is unchanged)."""
        fields: Json = {}
        if self.speed is not None:
            fields["speed"] = self.speed
        if self.inference_geo is not None:
            fields["inference_geo"] = self.inference_geo
        if self.web_search or self.web_fetch:
            fields["server_tool_use"] = {"web_search_requests": self.web_search, "web_fetch_requests": self.web_fetch}
        thinking = self.thinking_tokens(output_tokens)
        if thinking is not None:
            fields["output_tokens_details"] = {"thinking_tokens": thinking}
        return fields

    def container_json(self, message_id: str, now: float) -> Json | None:
        if self.container is None:
            return None
        from datetime import UTC, datetime

        expires = datetime.fromtimestamp(now + CONTAINER_TTL_S, tz=UTC).isoformat().replace("+00:00", "Z")
        return {"id": self.container or f"container_{message_id.removeprefix('msg_')}", "expires_at": expires,
                "skills": None}


def resolve_dimensions(body: Json, headers: Mapping[str, str], batch: bool = False) -> Dimensions:
    """The dimensions of a request body and its ``x-fake-*`` headers; ``ValueError`` on a bad value."""
    speed = body.get("speed")
    if speed is not None and speed not in ("standard", "fast"):
        raise ValueError(f"speed: expected 'standard' or 'fast', got {speed!r}")
    geo = body.get("inference_geo")
    if geo is not None and not isinstance(geo, str):
        raise ValueError(f"inference_geo: expected a string, got {geo!r}")
    tier = "batch" if batch else _service_tier(body, headers)
    thinking = body.get("thinking")
    wants_thinking = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    thinking_tokens: int | None = None
    if wants_thinking or THINKING_HEADER in headers:
        thinking_tokens = _count(headers, THINKING_HEADER, -1)
    tool_types = [str(tool.get("type", "")) for tool in body.get("tools") or () if isinstance(tool, dict)]
    web_search = _count(headers, WEB_SEARCH_HEADER, 1 if _offers(tool_types, "web_search_") else 0)
    web_fetch = _count(headers, WEB_FETCH_HEADER, 1 if _offers(tool_types, "web_fetch_") else 0)
    container = body.get("container")
    container_id: str | None = None
    if isinstance(container, str):
        container_id = container
    elif isinstance(container, dict) and isinstance(container.get("id"), str):
        container_id = container["id"]
    elif container is not None or _offers(tool_types, "code_execution_"):
        container_id = ""
    return Dimensions(speed, geo, tier, thinking_tokens, web_search, web_fetch, container_id)


def _service_tier(body: Json, headers: Mapping[str, str]) -> str:
    asked = body.get("service_tier")
    if asked is not None and asked not in ("auto", "standard_only"):
        raise ValueError(f"service_tier: expected 'auto' or 'standard_only', got {asked!r}")
    served = headers.get(SERVICE_TIER_HEADER, "standard")
    if served not in ("standard", "priority"):
        raise ValueError(f"{SERVICE_TIER_HEADER} must be 'standard' or 'priority', got {served!r}")
    return "standard" if asked == "standard_only" else served


def _offers(tool_types: list[str], prefix: str) -> bool:
    return any(kind.startswith(prefix) for kind in tool_types)


def _count(headers: Mapping[str, str], name: str, default: int) -> int:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number >= 0, got {raw!r}") from None
    if not (math.isfinite(value) and value >= 0 and value == int(value)):
        raise ValueError(f"{name} must be a whole number >= 0, got {raw!r}")
    return int(value)
