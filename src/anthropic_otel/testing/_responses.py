"""Message, usage and SSE event payloads shaped exactly like the real Messages API."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]
Event = tuple[str, Json]

TOOL_INPUT: Json = {"location": "Paris"}
TOOL_INPUT_JSON = json.dumps(TOOL_INPUT)
TOOL_TOKENS = math.ceil(len(TOOL_INPUT_JSON) / 4)
# How the tool input arrives in a stream; the first empty delta mirrors the real API.
TOOL_INPUT_PIECES = ("", '{"location": ', '"Paris"}')
USAGE_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
# Cumulative fields `message_delta` also carries when the message has them (the rest stay on `message_start`).
DELTA_EXTRA_FIELDS = ("server_tool_use", "output_tokens_details")


def output_text(tokens: int, start: int = 1) -> str:
    """Deterministic output: one word per token, each with a trailing space (``"tok1 tok2 "``)."""
    return "".join(f"tok{i} " for i in range(start, start + tokens))


def usage_dict(
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read: int = 0,
    cache_creation: int = 0,
    one_hour: bool = False,
    service_tier: str = "standard",
) -> Json:
    """A ``usage`` object as the API sends it, with the 5m/1h ``cache_creation`` breakdown."""
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0 if one_hour else cache_creation,
            "ephemeral_1h_input_tokens": cache_creation if one_hour else 0,
        },
        "service_tier": service_tier,
        "server_tool_use": None,
    }


@dataclass(frozen=True)
class Plan:
    """Everything the model 'decided' for one request; rendering it as JSON or SSE is lossless."""

    message_id: str
    model: str
    text_tokens: int
    stop_reason: str
    stop_sequence: str | None
    usage: Json
    tool: Json | None = field(default=None)
    container: Json | None = field(default=None)  # code execution: sent on the message and on `message_delta`
    diagnostics: Json | None = field(default=None)  # the prompt cache's diagnosis, when the request asked

    def content(self) -> list[Json]:
        blocks: list[Json] = [{"type": "text", "text": output_text(self.text_tokens)}]
        if self.tool is not None:
            blocks.append(self.tool)
        return blocks

    def message(self) -> Json:
        message = self._envelope(self.content(), self.stop_reason, self.stop_sequence, self.usage)
        if self.container is not None:
            message["container"] = self.container
        return message

    def _envelope(self, content: list[Json], stop: str | None, stop_seq: str | None, usage: Json) -> Json:
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": stop_seq,
            "usage": usage,
            **({} if self.diagnostics is None else {"diagnostics": self.diagnostics}),
        }

    def stream(self, *, delta_only: bool = False, cut_after: int | None = None) -> tuple[list[Event], Json]:
        """SSE events for this plan, and the usage the SDK ends up with after reading them.

        ``cut_after`` stops after that many text deltas (for cut/errored streams). ``delta_only``
        zeroes the ``message_start`` usage so only ``message_delta`` carries the numbers.
        """
        if delta_only:
            start_usage = usage_dict(input_tokens=0, output_tokens=0)
            start_usage["service_tier"] = self.usage["service_tier"]
            for name in ("speed", "inference_geo"):
                if name in self.usage:
                    start_usage[name] = self.usage[name]
        else:
            start_usage = {**self.usage, "output_tokens": 1}
        events: list[Event] = [
            _event("message_start", message=self._envelope([], None, None, start_usage)),
            _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            ("ping", {"type": "ping"}),
        ]
        deltas = self.text_tokens if cut_after is None else min(cut_after, self.text_tokens)
        events += [
            _event("content_block_delta", index=0, delta={"type": "text_delta", "text": f"tok{i} "})
            for i in range(1, deltas + 1)
        ]
        if cut_after is not None:
            return events, start_usage
        events.append(_event("content_block_stop", index=0))
        if self.tool is not None:
            events.append(_event("content_block_start", index=1, content_block={**self.tool, "input": {}}))
            events += [
                _event("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": p})
                for p in TOOL_INPUT_PIECES
            ]
            events.append(_event("content_block_stop", index=1))
        delta_usage = {name: self.usage[name] for name in USAGE_FIELDS}
        delta_usage.update({name: self.usage[name] for name in DELTA_EXTRA_FIELDS if self.usage.get(name)})
        delta: Json = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
        if self.container is not None:
            delta["container"] = self.container
        events.append(_event("message_delta", delta=delta, usage=delta_usage))
        events.append(_event("message_stop"))
        return events, {**start_usage, **delta_usage}


def _event(kind: str, **fields: Any) -> Event:
    return kind, {"type": kind, **fields}


def encode_event(event: Event) -> bytes:
    kind, data = event
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def error_body(error_type: str, message: str, request_id: str | None) -> Json:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
