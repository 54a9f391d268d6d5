"""Usage values that cannot be real stay out of every metric and the spend ledger; the span shows them raw.

The real SDK is driven over HTTP against `_usage_server.UsageServer`, which answers with the usage a test
sets (the fake server only sends usage that could be real).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

import anthropic_otel
from _usage_server import UsageServer, usage
from anthropic_otel.telemetry import faults as _faults
from conftest import API_KEY, Otel, ask


@pytest.fixture
def server() -> Iterator[UsageServer]:
    with UsageServer().running() as running:
        yield running


@pytest.fixture
def api(server: UsageServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
        yield client


def call(client: anthropic.Anthropic, how: str) -> Any:
    """One call made `how`: the usage the caller sees in the end."""
    if how == "create":
        return client.messages.create(**ask()).usage
    if how == "stream":
        events = list(client.messages.create(**ask(), stream=True))
        return events[-2].usage  # message_delta
    with client.messages.stream(**ask()) as stream:
        return stream.get_final_message().usage


def spent() -> Decimal:
    return anthropic_otel.spend().total


def active(otel: Otel) -> int:
    return int(otel.total("anthropic_otel.requests.active"))


def histogram_count(otel: Otel, name: str) -> int:
    return sum(point.count for _, point in otel.points(name))


HOW = ["create", "stream", "helper"]


@pytest.mark.parametrize("how", HOW)
def test_negative_usage_never_makes_counters_or_spend_go_down(otel: Otel, server: UsageServer,
                                                              api: anthropic.Anthropic, how: str) -> None:
    call(api, how)
    tokens, cost, dollars = otel.total("anthropic_otel.tokens"), otel.total("anthropic_otel.cost.usd"), spent()
    assert tokens > 0 and dollars > 0

    server.usage = usage(input_tokens=-1_000_000, output_tokens=-5)
    seen = call(api, how)
    assert (seen.input_tokens, seen.output_tokens) == (-1_000_000, -5)  # the caller's result is untouched

    assert otel.total("anthropic_otel.tokens") == tokens
    assert otel.total("anthropic_otel.cost.usd") == cost
    assert spent() == dollars
    assert otel.total("anthropic_otel.requests") == 2
    assert histogram_count(otel, "gen_ai.client.token.usage") == 2  # input and output of the first call only
    attrs = otel.spans()[-1].attributes or {}
    assert attrs["anthropic_otel.usage.input_tokens"] == -1_000_000
    assert attrs["anthropic_otel.usage.output_tokens"] == -5
    assert "gen_ai.usage.input_tokens" not in attrs and "gen_ai.usage.output_tokens" not in attrs
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 0  # the real counts stay
    assert "anthropic_otel.cost.usd" not in attrs


# A stream's events are parsed leniently by the SDK ("12", 12.0 and True arrive as ints); 12.5 stays a float.
@pytest.mark.parametrize(("how", "bad"), [("create", "12"), ("create", 12.0), ("create", 12.5), ("create", True),
                                          ("stream", 12.5), ("helper", 12.5)])
def test_non_integer_usage_keeps_the_request_count_and_duration(otel: Otel, server: UsageServer,
                                                                api: anthropic.Anthropic, how: str,
                                                                bad: Any) -> None:
    server.usage = usage(output_tokens=bad)
    seen = call(api, how)
    assert seen.output_tokens == bad and type(seen.output_tokens) is type(bad)

    assert otel.total("anthropic_otel.requests") == 1
    assert histogram_count(otel, "gen_ai.client.operation.duration") == 1
    assert active(otel) == 0
    assert otel.total("anthropic_otel.tokens") == 0
    assert histogram_count(otel, "gen_ai.client.token.usage") == 0
    assert spent() == 0
    attrs = otel.spans()[-1].attributes or {}
    assert attrs["anthropic_otel.usage.output_tokens"] == bad
    assert type(attrs["anthropic_otel.usage.output_tokens"]) is type(bad)
    assert attrs["gen_ai.usage.input_tokens"] == 12  # input, cache read and write are real: still recorded


@pytest.mark.parametrize("how", ["create", "stream"])
def test_usage_beyond_int64_does_not_break_later_otlp_exports(otel: Otel, server: UsageServer,
                                                              api: anthropic.Anthropic, how: str) -> None:
    server.usage = usage(input_tokens=2**64, cache_read_input_tokens=2**53 + 1)
    call(api, how)
    server.usage = usage()
    call(api, how)

    encode_metrics(otel.reader.get_metrics_data()).SerializeToString()  # "Value out of range" before the fix
    encode_spans(otel.spans()).SerializeToString()
    assert otel.total("anthropic_otel.requests") == 2
    assert otel.total("anthropic_otel.tokens", anthropic_otel__token__type="input") == 12
    attrs = otel.spans()[0].attributes or {}
    assert attrs["anthropic_otel.usage.input_tokens"] == str(2**64)  # beyond int64: as text, digit for digit
    assert attrs["anthropic_otel.usage.cache_read_input_tokens"] == 2**53 + 1


def test_one_warning_per_kind_of_impossible_value(otel: Otel, server: UsageServer, api: anthropic.Anthropic,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="anthropic_otel")
    for bad in (-1, -2, -3, "7", 7.5, "x", 2**60, 2**64, True, False):
        server.usage = usage(output_tokens=bad)
        call(api, "create")
    warnings = [r for r in caplog.records if r.name == "anthropic_otel" and "cannot be real" in r.getMessage()]
    assert len(warnings) == 4, [r.getMessage() for r in warnings]  # negative, non-integer, too large, boolean
    assert _faults.bad_values() == {"negative": 3, "non-integer": 3, "too large": 2, "boolean": 2}
    assert otel.total("anthropic_otel.requests") == 10
    assert otel.total("anthropic_otel.tokens") == 0
    assert _faults.counts() == {}  # bad data is not a fault of ours


def test_a_later_real_value_replaces_an_impossible_one_in_a_stream(otel: Otel, server: UsageServer,
                                                                   api: anthropic.Anthropic) -> None:
    """Stream usage is cumulative: `message_delta`'s count replaces `message_start`'s, impossible or not."""
    server.start_usage = usage(output_tokens=-1)
    server.usage = usage(output_tokens=7)
    assert call(api, "stream").output_tokens == 7
    assert otel.total("anthropic_otel.tokens", anthropic_otel__token__type="output") == 7
    attrs = otel.span().attributes or {}
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert not [name for name in attrs if name.startswith("anthropic_otel.usage.")]
    assert _faults.bad_values() == {}  # a count later replaced is not reported
