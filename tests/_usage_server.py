"""A tiny Messages endpoint on loopback that answers with whatever usage a test gives it.

The fake server (`anthropic_otel.testing`) only sends usage that could be real; these tests need values
that cannot be (negative, strings, floats, booleans, 2**64) to reach the real SDK over real HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "claude-haiku-4-5"


def usage(**fields: Any) -> dict[str, Any]:
    """A real-looking usage object with `fields` replaced."""
    found: dict[str, Any] = {"input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 0,
                             "cache_creation_input_tokens": 0, "service_tier": "standard"}
    found.update(fields)
    return found


def _message(usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_bad_usage", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": "Hi."}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": usage}


def _events(start_usage: dict[str, Any], usage: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    start = {**_message(start_usage), "content": [], "stop_reason": None}
    delta_usage = {k: usage[k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                         "cache_creation_input_tokens") if k in usage}
    return [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hi."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": delta_usage}),
        ("message_stop", {"type": "message_stop"}),
    ]


class UsageServer:
    """Answers every `POST /v1/messages` with `self.usage` (a message, or SSE events when streamed)."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] = usage()
        self.start_usage: dict[str, Any] | None = None  # a stream's `message_start` usage, if not `usage`
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                outer.requests += 1
                if body.get("stream"):
                    payload = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n"
                                      for name, data in _events(outer.start_usage or outer.usage, outer.usage)).encode()
                    kind = "text/event-stream"
                else:
                    payload = json.dumps(_message(outer.usage)).encode()
                    kind = "application/json"
                self.send_response(200)
                self.send_header("content-type", kind)
                self.send_header("request-id", f"req_bad_{outer.requests}")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[UsageServer]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()
