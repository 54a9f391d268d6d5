"""An application that instruments from `OTEL_*` alone, calls a fake Anthropic server, and exits.

    python tests/apps/exit_app.py [CALLS]

Makes CALLS (default 1) `messages.create` calls, checks the fake server answered each, prints
`LAST <requests answered>` once the last one is done and returns: whatever follows (the exit flush of
the providers `instrument()` built) is the time a test measures up to the process's exit.
"""

from __future__ import annotations

import sys

import anthropic

import anthropic_otel
from anthropic_otel.testing import FakeAnthropicServer


def main(argv: list[str]) -> int:
    calls = int(argv[0]) if argv else 1
    anthropic_otel.instrument()
    with FakeAnthropicServer() as server, anthropic.Anthropic(
            base_url=server.base_url, api_key="sk-ant-exit-test-0123456789", max_retries=0) as client:
        for _ in range(calls):
            client.messages.create(model="claude-sonnet-4-5", max_tokens=50,
                                   messages=[{"role": "user", "content": "Say hello before exiting."}])
        answered = server.totals()["requests"]
    print(f"LAST {answered}", flush=True)  # after the fake server stopped: its teardown is not the app's
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
