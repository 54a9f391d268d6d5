"""The fake server's billing dimensions, read through the real SDK: request parameters and `x-fake-*` knobs."""

from __future__ import annotations

import anthropic
import pytest

from anthropic_otel.testing import FakeAnthropicServer
from conftest import ask


def test_plain_request_has_no_new_fields(client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    message = client.messages.create(**ask())
    usage = message.usage
    assert (usage.speed, usage.inference_geo, usage.output_tokens_details, usage.server_tool_use,
            message.container, usage.service_tier) == (None, None, None, None, None, "standard")


@pytest.mark.parametrize("stream", [False, True])
def test_every_dimension_reaches_the_sdk(client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                         stream: bool) -> None:
    params = ask(model="claude-opus-4-8", speed="fast", inference_geo="us", max_tokens=500,
                 thinking={"type": "enabled", "budget_tokens": 1_024}, container="container_mine",
                 tools=[{"type": "web_fetch_20250910", "name": "web_fetch"},
                        {"type": "web_search_20250305", "name": "web_search"}])
    headers = {"x-fake-service-tier": "priority", "x-fake-output-tokens": "30", "x-fake-web-fetch-requests": "2"}
    if stream:
        with client.messages.stream(**params, extra_headers=headers) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**params, extra_headers=headers)
    usage = message.usage
    assert (usage.speed, usage.inference_geo, usage.service_tier) == ("fast", "us", "priority")
    assert usage.output_tokens == 30 and usage.output_tokens_details is not None
    assert usage.output_tokens_details.thinking_tokens == 15  # half the output by default
    assert usage.server_tool_use is not None
    assert (usage.server_tool_use.web_search_requests, usage.server_tool_use.web_fetch_requests) == (1, 2)
    assert message.container is not None and message.container.id == "container_mine"
    logged = fake.calls[-1].usage  # the server's log holds what the SDK ended up with
    assert logged is not None
    assert (logged["speed"], logged["inference_geo"], logged["service_tier"]) == ("fast", "us", "priority")
    assert logged["output_tokens_details"] == {"thinking_tokens": 15}
    assert logged["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 2}


def test_standard_only_is_never_priority(client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    message = client.messages.create(**ask(service_tier="standard_only"), extra_headers={
        "x-fake-service-tier": "priority"})
    assert message.usage.service_tier == "standard"


def test_code_execution_tool_gets_a_new_container(client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    message = client.messages.create(**ask(tools=[{"type": "code_execution_20250825", "name": "code_execution"}]))
    assert message.container is not None and message.container.id == "container_" + message.id.removeprefix("msg_")


@pytest.mark.parametrize(("params", "headers", "problem"), [
    ({"speed": "ludicrous"}, {}, "speed"),
    ({"service_tier": "priority"}, {}, "service_tier"),
    ({}, {"x-fake-service-tier": "gold"}, "x-fake-service-tier"),
    ({}, {"x-fake-thinking-tokens": "-1"}, "x-fake-thinking-tokens"),
    ({}, {"x-fake-web-fetch-requests": "1.5"}, "x-fake-web-fetch-requests"),
])
def test_bad_values_are_a_400(client: anthropic.Anthropic, fake: FakeAnthropicServer, params: dict[str, object],
                              headers: dict[str, str], problem: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=problem):
        client.messages.create(**ask(**params), extra_headers=headers)
