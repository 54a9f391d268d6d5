"""A fake Anthropic Messages API on 127.0.0.1 for tests, demos and alert-rule checks.

Drive it with the real ``anthropic`` SDK; every response is deterministic, so expected usage can be
computed with ``count_input_tokens`` instead of being hard-coded::

    from anthropic_otel.testing import FakeAnthropicServer

    with FakeAnthropicServer() as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key="test-key")
        client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[...])
        assert server.totals()["requests"] == 1
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
