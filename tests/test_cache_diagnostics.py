"""Prompt-cache diagnostics: the misses the server diagnosed, counted by reason in tokens and dollars; and the
opt-in that names the previous answer of the same conversation, never another one's."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest

import anthropic_otel
from anthropic_otel.cost.pricing import Pricer
from anthropic_otel.instrumentation.conversations import Conversations
from anthropic_otel.instrumentation.patch import _accepts_diagnostics
from anthropic_otel.telemetry import faults as _faults
from anthropic_otel.testing import FakeAnthropicServer
from conftest import MODEL, Otel, ask, make_otel

SYSTEM = "You are a careful assistant. " * 20
TOOLS = [{"name": "get_weather", "description": "Weather for a city.",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
CONVERSATION = "gen_ai.conversation.id"


def totals(otel: Otel) -> dict[str, Any]:
    assert otel.instrumentor.telemetry is not None
    return otel.instrumentor.telemetry.metrics.totals()


def server_misses(fake: FakeAnthropicServer) -> dict[str, int]:
    found: dict[str, int] = {}
    for call in fake.calls:
        if call.diagnostics is not None:
            miss = call.diagnostics["cache_miss_reason"]
            found[miss["type"]] = found.get(miss["type"], 0) + miss.get("cache_missed_input_tokens", 0)
    return found


def turn(client: anthropic.Anthropic, previous: str | None, **kwargs: Any) -> Any:
    params = ask(**{"system": SYSTEM, "tools": TOOLS, **kwargs})
    return client.messages.create(**params, diagnostics={"previous_message_id": previous})


def test_each_reason_counted_as_the_server_sent_it(otel: Otel, client: anthropic.Anthropic,
                                                   fake: FakeAnthropicServer) -> None:
    first = turn(client, None)
    assert first.diagnostics is None  # first turn: nothing to compare
    history = [*ask()["messages"], {"role": "assistant", "content": "tok1"}, {"role": "user", "content": "more"}]
    assert turn(client, first.id, messages=history).diagnostics is None  # only appended: the cache holds
    reasons = {
        "system_changed": turn(client, first.id, system="Another prompt."),
        "tools_changed": turn(client, first.id, tools=[]),
        "model_changed": turn(client, first.id, model="claude-sonnet-4-5"),
        "messages_changed": turn(client, first.id, messages=[{"role": "user", "content": "Other."}]),
        "previous_message_not_found": turn(client, "msg_unknown"),
        "unavailable": turn(client, first.id, tool_choice={"type": "any"}),
    }
    for reason, message in reasons.items():
        assert message.diagnostics.cache_miss_reason.type == reason
    # A stream carries the diagnosis on message_start.
    with client.messages.stream(**ask(system="Changed again.", tools=TOOLS),
                                diagnostics={"previous_message_id": first.id}) as stream:
        assert stream.get_final_message().diagnostics.cache_miss_reason.type == "system_changed"

    sent = server_misses(fake)
    assert set(sent) == set(reasons)
    assert sent["previous_message_not_found"] == sent["unavailable"] == 0
    assert sent["system_changed"] > 0
    found = totals(otel)
    assert found["cache_missed_tokens"] == sent
    exported = {attrs["anthropic_otel.cache.miss.reason"]: value
                for attrs, value in otel.points("anthropic_otel.cache.missed.tokens")}
    assert exported == sent

    # Dollars: tokens x (input rate - cache-read rate) of the model that answered (hand-computed rates).
    per_mtok = {MODEL: Decimal("1.00") - Decimal("0.10"), "claude-sonnet-4-5": Decimal("3.00") - Decimal("0.30")}
    expected: dict[str, Decimal] = {}
    for call in fake.calls:
        if call.diagnostics is not None:
            miss = call.diagnostics["cache_miss_reason"]
            assert call.model is not None
            dollars = miss.get("cache_missed_input_tokens", 0) * per_mtok[call.model] / Decimal(1_000_000)
            expected[miss["type"]] = expected.get(miss["type"], Decimal(0)) + dollars
    assert found["cache_missed_usd"] == expected

    spans = {dict(s.attributes or {})["gen_ai.response.id"]: dict(s.attributes or {}) for s in otel.spans()}
    attrs = spans[reasons["system_changed"].id]
    tokens = reasons["system_changed"].diagnostics.cache_miss_reason.cache_missed_input_tokens
    assert attrs["anthropic_otel.cache.miss.reason"] == "system_changed"
    assert attrs["anthropic_otel.cache.miss.input_tokens"] == tokens
    assert attrs["anthropic_otel.cache.miss.usd"] == pytest.approx(float(tokens * per_mtok[MODEL] / 1_000_000))
    assert "anthropic_otel.cache.miss.reason" not in spans[first.id]


def test_the_pricer_rates_agree_with_the_hand_computed_ones() -> None:
    prices = Pricer().prices(MODEL, "anthropic")
    assert prices is not None
    assert Decimal(str(prices.input)) - Decimal(str(prices.cache_read)) == Decimal("0.90")


@pytest.fixture
def opted_in() -> Iterator[Otel]:
    _faults.clear()
    result = make_otel(cache_diagnostics=True)
    yield result
    anthropic_otel.uninstrument()
    assert _faults.counts() == {}


def sent_previous(fake: FakeAnthropicServer) -> list[Any]:
    """What each request carried as `diagnostics` (the key absent: `absent`)."""
    return [(call.body or {}).get("diagnostics", "absent") for call in fake.calls]


def test_opt_in_fills_from_the_same_conversation_only(opted_in: Otel, client: anthropic.Anthropic,
                                                      fake: FakeAnthropicServer) -> None:
    with anthropic_otel.attributes(**{CONVERSATION: "a"}):
        a1 = client.messages.create(**ask())
    with anthropic_otel.attributes(**{CONVERSATION: "b"}):
        b1 = client.messages.create(**ask())
    with anthropic_otel.attributes(**{CONVERSATION: "a"}):
        a2 = client.messages.create(**ask())
        with client.messages.stream(**ask()) as stream:
            a3 = stream.get_final_message()
        client.messages.create(**ask(), diagnostics={"previous_message_id": None})  # the caller's own: kept
        client.messages.create(**ask(), extra_body={"diagnostics": {"previous_message_id": b1.id}})
    client.messages.create(**ask())  # no conversation: left alone
    with anthropic_otel.attributes(**{CONVERSATION: "b"}):
        client.messages.create(**ask())
    assert sent_previous(fake) == [
        "absent", "absent", {"previous_message_id": a1.id}, {"previous_message_id": a2.id},
        {"previous_message_id": None}, {"previous_message_id": b1.id}, "absent", {"previous_message_id": b1.id},
    ]
    filled = [dict(s.attributes or {}).get("anthropic_otel.cache.previous_message_id") for s in opted_in.spans()]
    assert filled == [None, None, a1.id, a2.id, None, None, None, b1.id]
    assert a3.diagnostics is None  # same prompt, only asked again: no divergence


async def test_opt_in_async(opted_in: Otel, aclient: anthropic.AsyncAnthropic, fake: FakeAnthropicServer) -> None:
    with anthropic_otel.attributes(**{CONVERSATION: "c"}):
        c1 = await aclient.messages.create(**ask())
        await aclient.messages.create(**ask(system="changed"))
    assert sent_previous(fake) == ["absent", {"previous_message_id": c1.id}]
    assert totals(opted_in)["cache_missed_tokens"] == server_misses(fake)
    assert set(server_misses(fake)) == {"system_changed"}


def test_off_by_default_leaves_requests_alone(otel: Otel, client: anthropic.Anthropic,
                                              fake: FakeAnthropicServer) -> None:
    with anthropic_otel.attributes(**{CONVERSATION: "a"}):
        client.messages.create(**ask())
        client.messages.create(**ask())
    assert sent_previous(fake) == ["absent", "absent"]


def test_conversations_are_bounded_least_recently_used_first() -> None:
    conversations = Conversations(limit=2)
    conversations.remember({CONVERSATION: "a"}, "msg_a")
    conversations.remember({CONVERSATION: "b"}, "msg_b")
    assert conversations.previous({CONVERSATION: "a"}) == "msg_a"  # a is now the most recent
    conversations.remember({CONVERSATION: "c"}, "msg_c")
    assert len(conversations) == 2
    assert conversations.previous({CONVERSATION: "b"}) is None
    assert conversations.previous({CONVERSATION: "a"}) == "msg_a"


def test_only_sdk_methods_that_take_diagnostics_are_filled() -> None:
    def old_create(*, model: str, max_tokens: int) -> None: ...

    def new_create(*, model: str, diagnostics: Any = None) -> None: ...

    assert not _accepts_diagnostics(old_create)
    assert _accepts_diagnostics(new_create)
    assert _accepts_diagnostics(anthropic.resources.messages.Messages.create)


def test_the_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError, match="cache_diagnostics"):
        anthropic_otel.instrument(cache_diagnostics="yes")  # type: ignore[arg-type]
    monkeypatch.setenv("ANTHROPIC_OTEL_CACHE_DIAGNOSTICS", "maybe")
    with pytest.raises(ValueError, match="ANTHROPIC_OTEL_CACHE_DIAGNOSTICS"):
        anthropic_otel.instrument()


def test_the_new_labels_are_reserved() -> None:
    for name in ("anthropic_otel.cache.miss.reason", "anthropic_otel.usage.unknown.reason"):
        with pytest.raises(ValueError, match="label the package sets itself"):
            anthropic_otel.instrument(metric_attributes=[name])
