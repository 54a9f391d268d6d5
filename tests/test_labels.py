"""Every metric label is bounded (distinct values and length), and rate-limit gauges are per model and expire."""

from __future__ import annotations

import itertools
import logging
import time

import anthropic
import httpx2 as httpx
import pytest

import anthropic_otel
from anthropic_otel.instrumentation import instruments
from anthropic_otel.instrumentation.metrics import ENUM_LABEL_LIMIT, LABEL_MAX_LENGTH, RATELIMIT_TTL_S
from anthropic_otel.testing import FakeAnthropicServer
from conftest import MODEL, Otel, ask, make_otel

MODELS = 400  # four times the default cap of 100
CAP_WARNING = "reached"


def _series(otel: Otel) -> int:
    data = otel.reader.get_metrics_data()
    assert data is not None
    return sum(len(metric.data.data_points) for resource in data.resource_metrics
               for scope in resource.scope_metrics for metric in scope.metrics)


def test_model_label_is_capped_with_one_warning(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="anthropic_otel")
    long_model = "claude-" + "x" * 1000
    for i in range(MODELS):
        client.messages.create(**ask(model=long_model if i == 0 else f"claude-custom-{i}"))
    models = {a["gen_ai.request.model"] for a, _ in otel.points("anthropic_otel.requests")}
    assert len(models) == 101 and "_other" in models  # 100 distinct values, then _other
    assert max(len(m) for m in models) == LABEL_MAX_LENGTH
    assert otel.total("anthropic_otel.requests") == MODELS
    assert _series(otel) < 2_000  # 400 models made about 7,200 points without the cap
    cap_warnings = [r for r in caplog.records if CAP_WARNING in r.getMessage()]
    assert len(cap_warnings) == 1 and "gen_ai.request.model" in cap_warnings[0].getMessage()
    spans = otel.spans()
    assert (spans[0].attributes or {})["gen_ai.request.model"] == long_model  # the span keeps the raw name
    assert (spans[-1].attributes or {})["gen_ai.request.model"] == f"claude-custom-{MODELS - 1}"


def test_attribute_values_are_cut_to_the_label_length(fake: FakeAnthropicServer, client: anthropic.Anthropic) -> None:
    otel = make_otel(metric_attributes=["app.feature"])
    try:
        huge = "f" * 1_000_000
        with anthropic_otel.attributes(**{"app.feature": huge}):
            client.messages.create(**ask())
            client.messages.create(**ask())
        labels = [a["app.feature"] for a, _ in otel.points("anthropic_otel.requests")]
        assert labels == ["f" * LABEL_MAX_LENGTH]
        assert otel.total("anthropic_otel.requests") == 2
    finally:
        anthropic_otel.uninstrument()


def test_server_stop_reasons_and_error_types_are_bounded(otel: Otel) -> None:
    """A server that invents stop reasons or error types cannot grow those labels without bound (they are API
    enumerations): the real SDK over a transport that answers with a new one each time."""
    count = itertools.count()

    def answer(request: httpx.Request) -> httpx.Response:
        i = next(count)
        if i % 2:
            return httpx.Response(400, json={"type": "error", "error": {"type": f"error_{i}_" * 50, "message": "no"}})
        return httpx.Response(200, json={
            "id": f"msg_{i}", "type": "message", "role": "assistant", "model": MODEL, "stop_sequence": None,
            "content": [{"type": "text", "text": "hi"}], "stop_reason": f"reason_{i}",
            "usage": {"input_tokens": 1, "output_tokens": 1}})

    client = anthropic.Anthropic(api_key="k", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(
        answer)))
    calls = 2 * (ENUM_LABEL_LIMIT + 20)
    for _ in range(calls // 2):
        client.messages.create(**ask())
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(**ask())
    points = otel.points("anthropic_otel.requests")
    stops = {a["anthropic.stop_reason"] for a, _ in points}  # "none" (the errors) is one of them
    errors = {a["error.type"] for a, _ in points} - {"none"}
    assert len(stops) == len(errors) == ENUM_LABEL_LIMIT + 1  # then _other
    assert max(len(e) for e in errors) == LABEL_MAX_LENGTH
    assert otel.total("anthropic_otel.requests") == calls
    assert {(s.attributes or {}).get("error.type") for s in otel.spans()[-2:]} >= {f"error_{calls - 1}_" * 50}


def _gauges(otel: Otel) -> list[dict[str, object]]:
    return [a for a, _ in otel.points("anthropic_otel.ratelimit.remaining")]


def test_ratelimit_gauges_are_per_model_not_per_feature(fake: FakeAnthropicServer,
                                                        client: anthropic.Anthropic) -> None:
    otel = make_otel(metric_attributes=["app.feature"])
    try:
        for feature in ("search", "chat"):  # "search" stops calling; its headroom must not linger apart
            with anthropic_otel.attributes(**{"app.feature": feature}):
                raw = client.messages.with_raw_response.create(**ask())
        gauges = _gauges(otel)
        assert len(gauges) == 4  # one per resource
        assert all("app.feature" not in g and g["gen_ai.request.model"] == MODEL for g in gauges)
        remaining = {g["anthropic_otel.ratelimit.resource"]: v
                     for g, v in otel.points("anthropic_otel.ratelimit.remaining")}
        assert remaining["requests"] == int(raw.headers["anthropic-ratelimit-requests-remaining"])  # the freshest
        client.messages.create(**ask(model="claude-sonnet-4-5"))
        assert len(_gauges(otel)) == 8
    finally:
        anthropic_otel.uninstrument()


def test_ratelimit_gauges_expire_without_new_headers(otel: Otel, client: anthropic.Anthropic,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    client.messages.create(**ask())
    assert len(_gauges(otel)) == 4
    assert len(otel.points("anthropic_otel.ratelimit.limit")) == 4
    monkeypatch.setattr(instruments, "monotonic", lambda: time.monotonic() + RATELIMIT_TTL_S + 1)
    assert _gauges(otel) == []
    assert otel.points("anthropic_otel.ratelimit.limit") == []
    assert otel.total("anthropic_otel.requests") == 1  # the counters stay
    monkeypatch.undo()
    client.messages.create(**ask())  # fresh headers bring the gauges back
    assert len(_gauges(otel)) == 4
