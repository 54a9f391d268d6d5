"""Deterministic token counting and prompt-cache prefixes, so tests can predict every usage number."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FIVE_MINUTES = 300.0
ONE_HOUR = 3600.0


@dataclass(frozen=True)
class CacheBreakpoint:
    """The cacheable prefix of a request: everything up to the last ``cache_control`` block."""

    tokens: int
    key: str
    ttl_seconds: float

    @property
    def one_hour(self) -> bool:
        return self.ttl_seconds == ONE_HOUR


@dataclass(frozen=True)
class _Segment:
    end_chars: int  # characters counted from the start of the prompt up to the end of this segment
    cache_control: Mapping[str, Any] | None
    key_part: object


def count_input_tokens(body: Mapping[str, Any]) -> int:
    """Total input tokens of a Messages request, cached or not: ``ceil(chars / 4)``, at least 1.

    Counts ``tools`` as ``json.dumps(tools, sort_keys=True)``, the text of ``system`` and of every
    message (text, thinking, tool_result text, tool_use input JSON).
    """
    total, _ = _walk(body)
    return max(1, _tokens(total))


def count_cached_prefix_tokens(body: Mapping[str, Any]) -> int:
    """Tokens the server caches or reads for this request (0 without ``cache_control``)."""
    breakpoint_ = cache_breakpoint(body)
    return breakpoint_.tokens if breakpoint_ else 0


def cache_breakpoint(body: Mapping[str, Any]) -> CacheBreakpoint | None:
    """Find the prefix tools -> system -> messages up to the last block marked ``cache_control``."""
    _, segments = _walk(body)
    last = max((i for i, seg in enumerate(segments) if seg.cache_control is not None), default=None)
    if last is None:
        return None
    control = segments[last].cache_control or {}
    ttl = ONE_HOUR if control.get("ttl") == "1h" else FIVE_MINUTES
    prefix = [body.get("model"), [seg.key_part for seg in segments[: last + 1]]]
    digest = hashlib.sha256(json.dumps(prefix, sort_keys=True, default=str).encode()).hexdigest()
    return CacheBreakpoint(tokens=_tokens(segments[last].end_chars), key=digest, ttl_seconds=ttl)


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def _walk(body: Mapping[str, Any]) -> tuple[int, list[_Segment]]:
    """Return total characters and the cache-markable segments in prompt order."""
    segments: list[_Segment] = []
    chars = 0

    tools = body.get("tools")
    if isinstance(tools, list):
        # len(json.dumps(tools[:i + 1])) == 2 + sum of item lengths + 2 * i (the ", " separators).
        for i, tool in enumerate(tools):
            chars += len(_dumps(tool)) + (2 if i else 0)
            segments.append(_Segment(chars + 2, _control(tool), {"tool": tool}))
        chars += 2
    elif tools is not None:
        chars += len(_dumps(tools))

    system = body.get("system")
    if isinstance(system, str):
        chars += len(system)
        segments.append(_Segment(chars, None, {"system": system}))
    elif isinstance(system, list):
        for block in system:
            chars += len(_block_text(block))
            segments.append(_Segment(chars, _control(block), {"system": block}))

    messages = body.get("messages")
    for index, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        content = message.get("content")
        blocks = content if isinstance(content, list) else [content]
        for block in blocks:
            chars += len(_block_text(block))
            segments.append(_Segment(chars, _control(block), {"m": index, "role": role, "block": block}))
    return chars, segments


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _control(block: object) -> Mapping[str, Any] | None:
    if isinstance(block, Mapping):
        control = block.get("cache_control")
        if isinstance(control, Mapping):
            return control
    return None


def _block_text(block: object) -> str:
    """The countable text of one content block (or a bare string)."""
    if isinstance(block, str):
        return block
    if not isinstance(block, Mapping):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "thinking":
        return str(block.get("thinking", ""))
    if kind in ("tool_use", "server_tool_use"):
        return _dumps(block.get("input", {}))
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return "".join(_block_text(item) for item in content)
        return content if isinstance(content, str) else ""
    return ""
