"""HTTP plumbing: a keep-alive threading server and a per-request ``Exchange`` that writes and records."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ._responses import Event, encode_event, error_body
from ._state import RecordedCall, State

Headers = Iterable[tuple[str, str]]
_PHRASES = {529: "Overloaded"}  # not in http.HTTPStatus


class FakeHTTPServer(ThreadingHTTPServer):
    """Threading server that tracks open connections so ``stop()`` can close idle keep-alives."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # bursts of thousands of connects must not be refused

    def __init__(self, address: tuple[str, int], state: State, route: Callable[[Exchange], None]) -> None:
        self.state = state
        self.route = route
        self.base_url = ""
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse-DNS ``getfqdn``, which can stall for seconds offline."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early are normal in tests; don't print tracebacks for them."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Hands every request to an ``Exchange``; the stdlib parses requests and loops over keep-alives."""

    protocol_version = "HTTP/1.1"  # keep-alive, chunked streams
    disable_nagle_algorithm = True  # small writes must not wait for delayed ACKs
    server_version = "fake-anthropic"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; tests make thousands of calls."""

    def _serve(self) -> None:
        server = self.server
        assert isinstance(server, FakeHTTPServer)
        Exchange(self, server).run()

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve


class Exchange:
    """One request/response: parsed request, response writers, and the record kept afterwards."""

    def __init__(self, handler: Handler, server: FakeHTTPServer) -> None:
        self.started = time.monotonic()
        self.handler = handler
        self.state: State = server.state
        self.base_url = server.base_url
        self._route = server.route
        self.seq = self.state.next_seq()
        self.request_id = f"req_fake_{self.seq}"
        url = urlsplit(handler.path)
        self.method = handler.command
        self.path = url.path.rstrip("/") or "/"
        self.query = url.query
        self.headers = {key.lower(): value for key, value in handler.headers.items()}
        self.raw_body = b""
        # What gets recorded; routes fill these in.
        self.body: dict[str, Any] | None = None
        self.scenario = ""
        self.status = 0
        self.stream = False
        self.usage: dict[str, Any] | None = None
        self.billed: dict[str, Any] | None = None
        self.completed = False
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.diagnostics: dict[str, Any] | None = None
        self._committed = False

    def run(self) -> None:
        try:
            try:
                self.raw_body = self._read_body()
            except ValueError:
                self.handler.close_connection = True  # framing unknown, so the connection is unusable
                self.send_error(400, "invalid_request_error", "bad Content-Length or chunked body")
                return
            self._route(self)
        except OSError:  # the client went away mid-response
            self.completed = False
            self._committed = False
            self.handler.close_connection = True
        except Exception as exc:  # a bug here should surface as a 500, not a hung client
            if self.status == 0:
                self.send_error(500, "api_error", f"fake server error: {exc!r}")
            else:
                self.completed = False
                self._committed = False
                self.handler.close_connection = True
        finally:
            if not self._committed:
                self._commit()

    def _commit(self) -> None:
        self.state.record(self.seq, self._recorded(), self.billed if self.completed else None)
        self._committed = True

    def _recorded(self) -> RecordedCall:
        return RecordedCall(
            request_id=self.request_id,
            method=self.method,
            path=self.path,
            query=self.query,
            headers=self.headers,
            body=self.body,
            scenario=self.scenario,
            status=self.status,
            stream=self.stream,
            usage=self.usage,
            completed=self.completed,
            model=self.model,
            stop_reason=self.stop_reason,
            started=self.started,
            ended=time.monotonic(),
            diagnostics=self.diagnostics,
        )

    # -- request ---------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        rfile = self.handler.rfile
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while size := int(rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(rfile.read(size))
                rfile.readline()
            while rfile.readline().strip():  # trailers
                pass
            return b"".join(parts)
        length = int(self.headers.get("content-length") or 0)
        return rfile.read(length) if length > 0 else b""

    def json_body(self) -> dict[str, Any] | None:
        """The request body as a JSON object, or None after answering 400."""
        try:
            body = json.loads(self.raw_body or b"null")
        except ValueError as exc:
            self.send_error(400, "invalid_request_error", f"invalid JSON body: {exc}")
            return None
        if not isinstance(body, dict):
            self.send_error(400, "invalid_request_error", "request body must be a JSON object")
            return None
        self.body = body
        return body

    # -- responses -------------------------------------------------------------------------------
    def _head(self, status: int, headers: Headers) -> bytes:
        self.status = status
        phrase = _PHRASES.get(status) or HTTPStatus(status).phrase
        lines = [f"HTTP/1.1 {status} {phrase}", f"request-id: {self.request_id}"]
        lines += [f"{name}: {value}" for name, value in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write(self, data: bytes) -> None:
        self.handler.wfile.write(data)

    def _write_last(self, data: bytes, *, completed: bool) -> None:
        """Record *before* the last bytes go out, so a client that has its answer sees the record."""
        self.completed = completed
        self._commit()
        self._write(data)  # on failure run() re-records the call as incomplete

    def send_bytes(self, status: int, payload: bytes, content_type: str, headers: Headers = ()) -> None:
        """A complete response with ``Content-Length``, written in one go."""
        head = self._head(status, [("content-type", content_type), ("content-length", str(len(payload))), *headers])
        self._write_last(head + payload, completed=True)

    def send_json(self, status: int, payload: object, headers: Headers = ()) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_bytes(status, data, "application/json", headers)

    def send_error(self, status: int, error_type: str, message: str, headers: Headers = ()) -> None:
        retry = "true" if status == 429 or status >= 500 else "false"
        self.usage = None
        self.send_json(status, error_body(error_type, message, self.request_id), [("x-should-retry", retry), *headers])

    def send_stream(
        self, events: list[Event], *, headers: Headers, event_delay: float, terminate: bool, completed: bool
    ) -> None:
        """SSE in chunked encoding; without ``terminate`` the body stays unfinished and the socket closes."""
        head = self._head(
            200,
            [
                ("content-type", "text/event-stream; charset=utf-8"),
                ("transfer-encoding", "chunked"),
                ("cache-control", "no-cache"),
                *headers,
            ],
        )
        pieces = [_chunk(encode_event(event)) for event in events] or [b""]
        pieces[0] = head + pieces[0]
        pieces[-1] += b"0\r\n\r\n" if terminate else b""
        if event_delay <= 0:
            pieces = [b"".join(pieces)]
        for piece in pieces[:-1]:
            self._write(piece)
            time.sleep(event_delay)
        if not terminate:
            self.hang_up()
        self._write_last(pieces[-1], completed=completed)

    def hang_up(self) -> None:
        """Close the connection after whatever was written (a FIN, so sent bytes still arrive)."""
        self.handler.close_connection = True


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)
