"""A child forked after calls starts from zero: its totals and spend are its own calls only."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from decimal import Decimal

import anthropic
import pytest

import anthropic_otel
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, Otel, ask

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _child(base_url: str, write: int) -> None:
    """Runs in the forked child: reports totals and spend before and after one call of its own."""
    telemetry = anthropic_otel.AnthropicInstrumentor().telemetry
    assert telemetry is not None
    before = telemetry.metrics.totals()
    spent_before = anthropic_otel.spend().total
    with anthropic.Anthropic(base_url=base_url, api_key=API_KEY, max_retries=0) as client:
        client.messages.create(**ask())
    after = telemetry.metrics.totals()
    report = {"before": [before["requests"], before["tokens"], str(before["cost_total"]), before["active"]],
              "spent_before": str(spent_before), "after": [after["requests"], str(after["cost_total"])],
              "spent_after": str(anthropic_otel.spend().total)}
    os.write(write, json.dumps(report).encode())


def test_forked_child_starts_from_zero(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    for _ in range(3):
        client.messages.create(**ask())
    parent = otel.instrumentor.telemetry.metrics.totals()  # type: ignore[union-attr]
    assert parent["requests"] == 3 and anthropic_otel.spend().total == parent["cost_total"] > 0

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(read)
            _child(fake.base_url, write)
        except BaseException as error:
            os.write(write, json.dumps({"error": repr(error)}).encode())
            code = 1
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write)
    chunks = []
    while select.select([read], [], [], 120)[0]:  # a generous bound: a hung child fails the test, not the run
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    else:
        os.kill(pid, signal.SIGKILL)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    report = json.loads(b"".join(chunks))
    assert "error" not in report, report
    assert os.waitstatus_to_exitcode(status) == 0

    assert report["before"] == [0, {}, "0", 0]
    assert Decimal(report["spent_before"]) == 0
    child_call = fake.calls[-1]
    assert len(fake.calls) == 4 and child_call.usage is not None
    requests, cost = report["after"]
    assert requests == 1 and Decimal(cost) == Decimal(report["spent_after"]) > 0
    # The parent keeps its own, unchanged.
    assert otel.instrumentor.telemetry.metrics.totals() == parent  # type: ignore[union-attr]
    assert anthropic_otel.spend().total == parent["cost_total"]
