"""Streams under the resilience wrapper: retried only before their first event, cut at their idle timeout or
total deadline with the partial text, and (with `instrument()`) the attempt's span still ends exactly once."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import pytest
from opentelemetry.trace import StatusCode

from anthropic_otel.resilience import Limits, Retry, StreamTimeoutError, StreamTimeouts, wrap
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, Otel, ask
from test_resilience import Probe


class StallProxy:
    """A loopback proxy in front of the fake server that passes a stream's first `events` SSE events (one chunk
    each), then sends nothing more while keeping the connection open: a server that stalls mid-stream."""

    def __init__(self, upstream: str, events: int) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.events = events
        self.forwarded: list[dict[str, Any]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> StallProxy:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as upstream:
            request = _read_until(client, b"\r\n\r\n")
            length = int(next((line.split(b":", 1)[1] for line in request.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), b"0"))
            body_start = request.index(b"\r\n\r\n") + 4
            while len(request) - body_start < length:
                request += client.recv(65536)
            upstream.sendall(request)
            response = _read_until(upstream, b"\r\n0\r\n\r\n")
            head, _, body = response.partition(b"\r\n\r\n")
            passed = head + b"\r\n\r\n"
            for _ in range(self.events):
                size_line, _, body = body.partition(b"\r\n")
                size = int(size_line, 16)
                chunk, body = body[:size], body[size + 2:]
                passed += size_line + b"\r\n" + chunk + b"\r\n"
                data = chunk.decode().split("data: ", 1)[1]
                self.forwarded.append(json.loads(data))
            client.sendall(passed)
            client.settimeout(0.1)
            deadline = time.monotonic() + 10  # stall until the client hangs up
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    if not client.recv(1024):
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return

    def partial_text(self) -> str:
        return "".join(e["delta"]["text"] for e in self.forwarded
                       if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta")


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


@pytest.fixture
def stall(fake: FakeAnthropicServer) -> Iterator[StallProxy]:
    with StallProxy(fake.base_url, events=5) as proxy:
        yield proxy


def test_a_stalled_stream_is_cut_at_its_idle_timeout_with_the_partial_text(otel: Otel, stall: StallProxy) -> None:
    with anthropic.Anthropic(base_url=stall.base_url, api_key=API_KEY, max_retries=0) as raw:
        probe = Probe(tracer_provider=otel.tracer_provider, exporter=otel.exporter)
        resilient = wrap(raw, probe.policy(retry=Retry(max_attempts=3), stream_timeouts=StreamTimeouts(idle=0.3)))
        stream = resilient.messages.create(**ask(stream=True))
        received = []
        began = time.monotonic()
        with pytest.raises(StreamTimeoutError) as cut:
            for event in stream:
                received.append(event.type)
        assert 0.25 <= time.monotonic() - began < 3
    # every event that arrived was delivered (the SDK drops `ping`), then the cut
    assert received == [e["type"] for e in stall.forwarded if e["type"] != "ping"]
    error = cut.value
    assert error.kind == "idle" and error.timeout == 0.3
    assert error.partial_text == stall.partial_text() and error.partial_text.startswith("tok1")
    assert isinstance(error.__cause__, httpx2.ReadTimeout)
    spans = {s.name.split()[0]: s for s in otel.spans()}
    assert len(otel.spans()) == 2  # one attempt span, ended once; the wrapper's span
    assert spans["chat"].status.status_code is StatusCode.ERROR
    assert spans["resilient"].attributes["error.type"] == "StreamTimeoutError"
    assert spans["chat"].parent.span_id == spans["resilient"].context.span_id
    assert probe.total("anthropic_otel.resilience.stream.timeouts", anthropic_otel__stream__timeout="idle") == 1


async def test_a_stalled_stream_is_cut_at_its_idle_timeout_async(stall: StallProxy) -> None:
    async with anthropic.AsyncAnthropic(base_url=stall.base_url, api_key=API_KEY, max_retries=0) as raw:
        resilient = wrap(raw, stream_timeouts=StreamTimeouts(idle=0.3))
        async with resilient.messages.stream(**ask()) as stream:
            texts = []
            with pytest.raises(StreamTimeoutError) as cut:
                async for text in stream.text_stream:
                    texts.append(text)
    assert cut.value.kind == "idle"
    assert cut.value.partial_text == "".join(texts) == stall.partial_text() != ""


def test_the_total_deadline_cuts_a_stalled_stream(stall: StallProxy) -> None:
    """Without an idle timeout the watchdog shuts the stalled socket at the total deadline."""
    with anthropic.Anthropic(base_url=stall.base_url, api_key=API_KEY, max_retries=0) as raw:
        resilient = wrap(raw, stream_timeouts=StreamTimeouts(total=0.5))
        began = time.monotonic()
        with resilient.messages.stream(**ask()) as stream, pytest.raises(StreamTimeoutError) as cut:
            stream.get_final_message()
        assert 0.45 <= time.monotonic() - began < 3
    assert cut.value.kind == "total" and cut.value.partial_text == stall.partial_text()


async def test_the_total_deadline_cuts_a_trickling_stream_async(aclient: anthropic.AsyncAnthropic,
                                                                fake: FakeAnthropicServer) -> None:
    resilient = wrap(aclient, stream_timeouts=StreamTimeouts(total=0.5, idle=5))
    stream = await resilient.messages.create(**ask(stream=True, extra_headers={"x-fake-event-delay-ms": "60"}))
    with pytest.raises(StreamTimeoutError) as cut:
        async for _ in stream:
            pass
    assert cut.value.kind == "total" and cut.value.partial_text.startswith("tok1")
    assert cut.value.elapsed < 2
    for _ in range(100):  # the server records the call when its next write fails
        if fake.calls:
            break
        await asyncio.sleep(0.02)
    [call] = fake.calls
    assert not call.completed  # the server saw the client hang up


def test_a_stream_is_retried_before_its_first_event_only(client: anthropic.Anthropic,
                                                          fake: FakeAnthropicServer) -> None:
    resilient = wrap(client, retry=Retry(max_attempts=3, initial_delay=0.01))
    fake.script("overloaded", "normal")
    with resilient.messages.stream(**ask()) as stream:
        assert stream.get_final_text().startswith("tok1")
    assert [c.status for c in fake.calls] == [529, 200]

    fake.reset()
    fake.script("stream_cut")
    stream = resilient.messages.create(**ask(stream=True))
    with pytest.raises(httpx2.RemoteProtocolError):
        for _ in stream:
            pass
    assert len(fake.calls) == 1  # cut after its first event: not retried


async def test_async_stream_retried_before_its_first_event(aclient: anthropic.AsyncAnthropic,
                                                           fake: FakeAnthropicServer) -> None:
    resilient = wrap(aclient, retry=Retry(max_attempts=3, initial_delay=0.01))
    fake.script("rate_limit", "normal")
    stream = await resilient.messages.create(**ask(stream=True))
    events = [event.type async for event in stream]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert [c.status for c in fake.calls] == [429, 200]
    async with resilient.beta.messages.stream(**ask()) as beta_stream:
        assert (await beta_stream.get_final_message()).stop_reason == "end_turn"


def test_closing_a_stream_early_releases_its_concurrency_slot(client: anthropic.Anthropic,
                                                              fake: FakeAnthropicServer) -> None:
    resilient = wrap(client, limits=Limits(concurrency=1, max_wait=0.5))
    for _ in range(3):
        stream = resilient.messages.create(**ask(stream=True))
        next(iter(stream))
        stream.close()
    with resilient.messages.stream(**ask()) as managed:
        managed.until_done()
    abandoned = resilient.messages.create(**ask(stream=True))
    del abandoned  # collected: its slot comes back too
    gc.collect()
    assert resilient.messages.create(**ask()).id
    assert len(fake.calls) == 6


def test_a_stream_settles_the_budget_with_its_real_cost(client: anthropic.Anthropic,
                                                        fake: FakeAnthropicServer) -> None:
    from anthropic_otel.cost.pricing import Pricer
    from anthropic_otel.cost.usage import Usage
    from anthropic_otel.resilience import Budget, Policy

    policy = Policy(budget=Budget(day=1.0, month=10.0))
    resilient = wrap(client, policy)
    with resilient.messages.stream(**ask(max_tokens=4000)) as stream:
        assert policy.spent()["day"] > Decimal("0.019")  # 4,000 output tokens at $5/MTok reserved meanwhile
        message = stream.get_final_message()
    cost = Pricer().cost(message.model, "anthropic", Usage.of(message.usage))
    assert cost is not None and policy.spent() == {"day": cost.total, "month": cost.total}
