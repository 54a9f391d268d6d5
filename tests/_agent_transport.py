"""A Claude Agent SDK transport that replays recorded CLI message streams, in place of the subprocess."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from claude_agent_sdk import Transport
from opentelemetry import propagate, trace


class ReplayTransport(Transport):
    """Answers the control protocol and, for each user prompt written, replays the next recorded stream.

    Notes the span current when the SDK connects it and the `traceparent` the subprocess transport would
    have put in the CLI's environment.
    """

    def __init__(self, *streams: list[dict[str, Any]]) -> None:
        self.streams = list(streams)
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.ready = False
        self.connected_span: trace.Span | None = None
        self.traceparent: str | None = None

    async def connect(self) -> None:
        self.connected_span = trace.get_current_span()
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        self.traceparent = carrier.get("traceparent")
        self.ready = True

    async def write(self, data: str) -> None:
        for line in data.splitlines():
            message = json.loads(line)
            if message.get("type") == "control_request":
                await self.queue.put({"type": "control_response", "response": {
                    "subtype": "success", "request_id": message["request_id"], "response": {}}})
            elif message.get("type") == "user" and self.streams:
                for recorded in self.streams.pop(0):
                    await self.queue.put(recorded)

    async def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            message = await self.queue.get()
            if message is None:
                return
            yield message

    async def close(self) -> None:
        self.ready = False
        await self.queue.put(None)

    def is_ready(self) -> bool:
        return self.ready

    async def end_input(self) -> None:
        await self.queue.put(None)


SONNET = "claude-sonnet-4-5-20250929"
HAIKU = "claude-haiku-4-5-20251001"


def _assistant(content: list[dict[str, Any]], model: str = SONNET) -> dict[str, Any]:
    return {"type": "assistant", "session_id": "sess-1", "parent_tool_use_id": None,
            "message": {"id": "msg_1", "model": model, "role": "assistant", "content": content,
                        "stop_reason": None, "usage": {"input_tokens": 10, "output_tokens": 5}}}


def _tool_use(tool_id: str, name: str) -> dict[str, Any]:
    return _assistant([{"type": "text", "text": "Let me look."},
                       {"type": "tool_use", "id": tool_id, "name": name, "input": {"command": "ls"}}])


def _tool_result(tool_id: str, is_error: bool = False) -> dict[str, Any]:
    return {"type": "user", "session_id": "sess-1", "parent_tool_use_id": None,
            "message": {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": tool_id, "content": "boom" if is_error else "a.txt",
                 "is_error": is_error}]}}


MODEL_USAGE: dict[str, Any] = {
    SONNET: {"inputTokens": 1200, "outputTokens": 340, "cacheReadInputTokens": 15000,
             "cacheCreationInputTokens": 2000, "webSearchRequests": 0, "costUSD": 0.0312,
             "contextWindow": 200000, "maxOutputTokens": 64000, "canonicalModel": "claude-sonnet-4-5"},
    HAIKU: {"inputTokens": 800, "outputTokens": 60, "cacheReadInputTokens": 0, "cacheCreationInputTokens": 0,
            "webSearchRequests": 0, "costUSD": 0.0011, "contextWindow": 200000, "maxOutputTokens": 32000},
}
CLI_COST = 0.0323


def result(subtype: str = "success", *, is_error: bool = False, turns: int = 3, terminal: str = "completed",
           api_error_status: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "result", "subtype": subtype, "duration_ms": 5400, "duration_api_ms": 4200, "is_error": is_error,
        "num_turns": turns, "session_id": "sess-1", "stop_reason": "end_turn", "total_cost_usd": CLI_COST,
        "usage": {"input_tokens": 2000, "output_tokens": 400, "cache_read_input_tokens": 15000,
                  "cache_creation_input_tokens": 2000},
        "modelUsage": MODEL_USAGE, "result": "done", "terminal_reason": terminal,
    }
    if api_error_status is not None:
        data["api_error_status"] = api_error_status
    return data


INIT = {"type": "system", "subtype": "init", "session_id": "sess-1", "model": SONNET, "tools": ["Bash", "Read"]}

SUCCESS = [INIT, _tool_use("toolu_1", "Bash"), _tool_result("toolu_1"), _tool_use("toolu_2", "Read"),
           _tool_result("toolu_2"), _assistant([{"type": "text", "text": "Done."}]), result()]
TOOL_ERROR = [INIT, _tool_use("toolu_1", "Bash"), _tool_result("toolu_1", is_error=True),
              _assistant([{"type": "text", "text": "It failed."}]), result(turns=2)]
MAX_TURNS = [INIT, _tool_use("toolu_1", "Bash"), _tool_result("toolu_1"),
             result("error_max_turns", is_error=True, turns=1, terminal="max_turns")]
API_ERROR = [INIT, result("success", is_error=True, turns=1, terminal="completed", api_error_status=529)]
