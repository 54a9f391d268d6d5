"""A call ends once even when threads race to end it (the caller at `message_stop`, the GC closing the proxy)."""

from __future__ import annotations

import threading
from typing import Any

import anthropic
from anthropic._models import construct_type
from anthropic.types import RawMessageStreamEvent

from conftest import Otel

STOP = construct_type(type_=RawMessageStreamEvent, value={"type": "message_stop"})


def test_racing_ends_record_the_call_once(otel: Otel) -> None:
    client = anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:9")
    telemetry: Any = otel.instrumentor.telemetry
    rounds, racers = 100, 4
    for _ in range(rounds):
        call = telemetry.begin(client.messages, {"model": "claude-haiku-4-5"}, "chat", True)
        barrier = threading.Barrier(racers)

        def end(which: int, call: Any = call, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            if which % 2:
                call.event(STOP)
            else:
                call.stream_closed()

        threads = [threading.Thread(target=end, args=(i,)) for i in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert call.ended
    assert len(otel.spans()) == rounds
    assert otel.total("anthropic_otel.requests") == rounds
    assert otel.total("anthropic_otel.requests.active") == 0
