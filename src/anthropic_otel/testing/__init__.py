"""A fake Anthropic Messages API on 127.0.0.1 for tests, demos and alert-rule checks.

Drive it with the real ``anthropic`` SDK; every response is deterministic, so expected usage can be
computed with ``count_input_tokens`` instead of being hard-coded::

    from anthropic_otel.testing import FakeAnthropicServer

    with FakeAnthropicServer() as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key="test-key")
        client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[...])
        assert server.totals()["requests"] == 1

Billing dimensions follow the request as on the real API, with ``x-fake-*`` headers (``extra_headers=``) for
what the real API decides itself; the final usage is in each call's ``RecordedCall.usage``:

- ``speed="fast"`` / ``"standard"``: ``usage.speed`` echoes it (absent without the parameter).
- ``inference_geo="us"`` (any string): ``usage.inference_geo`` echoes it (absent without the parameter).
- ``service_tier``: ``usage.service_tier`` is ``standard``, or ``priority`` with the header
  ``x-fake-service-tier: priority`` (never with ``service_tier="standard_only"``); batch results ``batch``.
- ``thinking={"type": "enabled" | "adaptive", ...}``: ``usage.output_tokens_details.thinking_tokens`` is half
  the output tokens, or ``x-fake-thinking-tokens: N`` (capped at the output; the header alone also works).
  They are part of ``output_tokens``, as on the real API.
- a ``web_search_*`` / ``web_fetch_*`` tool: ``usage.server_tool_use`` reports 1 request of it, or
  ``x-fake-web-search-requests: N`` / ``x-fake-web-fetch-requests: N``.
- a ``code_execution_*`` tool or a ``container`` parameter: ``message.container`` (on a stream, on
  ``message_delta``) with the id the request named, else ``container_<message id suffix>``, expiring in 1 hour.

A stream's ``message_start`` carries ``speed``, ``inference_geo`` and ``service_tier``; its ``message_delta``
carries ``server_tool_use`` and ``output_tokens_details`` with the token counts. A bad value is a 400
``invalid_request_error``.
"""

from ._responses import output_text
from ._scenarios import Scenario
from ._server import FakeAnthropicServer
from ._state import RecordedCall
from ._tokens import count_cached_prefix_tokens, count_input_tokens

__all__ = [
    "FakeAnthropicServer",
    "RecordedCall",
    "Scenario",
    "count_cached_prefix_tokens",
    "count_input_tokens",
    "output_text",
]
