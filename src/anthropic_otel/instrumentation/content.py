"""Message content as the conventions' JSON (only computed when content capture is switched on).

Each captured attribute is at most `value_limit()` characters: `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else
`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else 32 KiB (32,768 characters). An attribute over the limit keeps its
JSON valid: its longest strings (message text, tool arguments) are cut to a common length, each ending with
a visible `…[truncated N chars]` marker; only when the structure alone exceeds the limit is the JSON text
itself cut (same marker). The OpenTelemetry SDK would otherwise cut the JSON mid-string, or keep 5 MB.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_LIMIT_ENV = ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")
DEFAULT_VALUE_LIMIT = 32 * 1024

# Anthropic stop reasons -> the output-message schema's FinishReason (the span attribute stays raw).
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_call",
           "refusal": "content_filter"}


class ContentMode(enum.Enum):
    NO_CONTENT = "no_content"
    SPAN_ONLY = "span_only"
    EVENT_ONLY = "event_only"
    SPAN_AND_EVENT = "span_and_event"

    @property
    def on_span(self) -> bool:
        return self in (ContentMode.SPAN_ONLY, ContentMode.SPAN_AND_EVENT)

    @property
    def on_event(self) -> bool:
        return self in (ContentMode.EVENT_ONLY, ContentMode.SPAN_AND_EVENT)


def content_mode(value: bool | str | ContentMode | None) -> ContentMode:
    """Accepts both vocabularies in use: `true`/`false` and the util-genai modes (`SPAN_ONLY`, ...).

    `True` / `"true"` mean content on the span. `None` reads the environment variable.
    """
    if isinstance(value, ContentMode):
        return value
    if value is None:
        value = os.environ.get(_ENV, "")
    if isinstance(value, bool):
        return ContentMode.SPAN_ONLY if value else ContentMode.NO_CONTENT
    text = value.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return ContentMode.SPAN_ONLY
    if text in ("", "false", "0", "no", "off"):
        return ContentMode.NO_CONTENT
    try:
        return ContentMode(text)
    except ValueError:
        raise ValueError(f"{_ENV} / capture_content: unknown value {value!r}; use true, false, NO_CONTENT, "
                         "SPAN_ONLY, EVENT_ONLY or SPAN_AND_EVENT") from None


def _get(block: Any, name: str) -> Any:
    return block.get(name) if isinstance(block, Mapping) else getattr(block, name, None)


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    for block in content or ():
        kind = _get(block, "type")
        if kind == "text":
            parts.append({"type": "text", "content": _get(block, "text")})
        elif kind in ("tool_use", "server_tool_use"):
            parts.append({"type": "tool_call", "id": _get(block, "id"), "name": _get(block, "name"),
                          "arguments": _get(block, "input")})
        elif kind == "tool_result":
            parts.append({"type": "tool_call_response", "id": _get(block, "tool_use_id"),
                          "response": _plain(_get(block, "content"))})
        elif kind in ("thinking", "redacted_thinking"):
            parts.append({"type": "reasoning", "content": _get(block, "thinking")})
        else:
            parts.append({"type": str(kind)})
    return parts


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [_plain(v) for v in value]
    dump = getattr(value, "model_dump", None)
    return _plain(dump()) if callable(dump) else str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def value_limit() -> int:
    """Characters per captured attribute: the OpenTelemetry attribute length limits, else 32 KiB."""
    for name in _LIMIT_ENV:
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                limit = int(raw)
            except ValueError:
                continue  # the SDK ignores such a value too
            if limit > 0:
                return limit
    return DEFAULT_VALUE_LIMIT


def _marker(cut: int) -> str:
    return f"…[truncated {cut} chars]"


def _cap(value: Any, length: int) -> Any:
    """`value` with every string longer than `length` cut to it, plus the marker."""
    if isinstance(value, str):
        return value if len(value) <= length else value[:length] + _marker(len(value) - length)
    if isinstance(value, Mapping):
        return {k: _cap(v, length) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cap(v, length) for v in value]
    return value


def _bounded(value: Any, limit: int) -> str:
    """`value` as JSON of at most `limit` characters, valid JSON whenever its strings can be cut enough."""
    text = _dumps(_cap(value, limit))  # no string can be longer than the whole: this step is free when small
    if len(text) <= limit:
        return text
    low, high, best = 0, limit, None
    while low <= high:  # the longest common string length that fits
        middle = (low + high) // 2
        candidate = _dumps(_cap(value, middle))
        if len(candidate) <= limit:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    if best is not None:
        return best
    keep = max(0, limit - len(_marker(len(text))))  # the structure alone is too big: cut the text itself
    return text[:keep] + _marker(len(text) - keep)


def request_content(kwargs: Mapping[str, Any]) -> dict[str, str]:
    """`gen_ai.input.messages`, `gen_ai.system_instructions`, `gen_ai.tool.definitions` of a request."""
    out: dict[str, str] = {}
    limit = value_limit()
    messages = kwargs.get("messages")
    if messages:
        out["gen_ai.input.messages"] = _bounded(
            [{"role": _get(m, "role"), "parts": _parts(_get(m, "content"))} for m in messages], limit)
    system = kwargs.get("system")
    if system:
        out["gen_ai.system_instructions"] = _bounded(_parts(system), limit)
    tools = kwargs.get("tools")
    if tools:
        out["gen_ai.tool.definitions"] = _bounded(_plain(tools), limit)
    return out


def response_content(content: Any, stop_reason: str | None) -> str:
    """`gen_ai.output.messages` of a response's content blocks."""
    message: dict[str, Any] = {"role": "assistant", "parts": _parts(content)}
    if stop_reason:
        message["finish_reason"] = _FINISH.get(stop_reason, stop_reason)
    return _bounded([message], value_limit())
