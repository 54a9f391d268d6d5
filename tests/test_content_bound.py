"""Captured content has a size bound: OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT,
else 32 KiB per attribute; long text is cut with a visible marker and the JSON stays valid."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

import anthropic_otel
from conftest import ask, make_otel

MARKER = "…[truncated "


def captured(client: anthropic.Anthropic, prompt: str, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(span attributes, details event attributes) of one call with content on both."""
    otel = make_otel(capture_content="SPAN_AND_EVENT")
    try:
        client.messages.create(**ask(prompt, **kwargs))
        span = otel.span()
        [event] = span.events
        return dict(span.attributes or {}), dict(event.attributes or {})
    finally:
        anthropic_otel.uninstrument()


def test_a_5_mb_prompt_is_not_a_5_mb_attribute(client: anthropic.Anthropic) -> None:
    prompt = "Tell me about this. " + "x" * 5_000_000
    span, event = captured(client, prompt, system="Be brief. " + "y" * 1_000_000)
    for attrs in (span, event):
        text = str(attrs["gen_ai.input.messages"])
        assert len(text) <= 32 * 1024
        [message] = json.loads(text)
        content = message["parts"][0]["content"]
        assert content.startswith("Tell me about this. xxx") and MARKER in content
        assert content.endswith(f"{MARKER}{len(prompt) - content.index(MARKER)} chars]")
        system = str(attrs["gen_ai.system_instructions"])
        assert len(system) <= 32 * 1024 and MARKER in json.loads(system)[0]["content"]
        assert MARKER not in str(attrs["gen_ai.output.messages"])  # short output: whole


@pytest.mark.parametrize("variable", ["OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"])
def test_the_otel_attribute_limit_is_honoured_with_valid_json(client: anthropic.Anthropic,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              variable: str) -> None:
    monkeypatch.setenv(variable, "2000")
    span, event = captured(client, "é\"quoted\" " * 1000)
    for attrs in (span, event):
        text = str(attrs["gen_ai.input.messages"])
        assert 1900 <= len(text) <= 2000
        assert MARKER in json.loads(text)[0]["parts"][0]["content"]


def test_small_content_is_untouched(client: anthropic.Anthropic) -> None:
    span, _ = captured(client, "hello")
    assert json.loads(str(span["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]}]
