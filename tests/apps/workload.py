"""A small application for the export tests, configured only through environment variables.

    python tests/apps/workload.py [--no-instrument] [--hold]

Makes a few Anthropic SDK calls (plain, `stream=True`, `messages.stream`, a `max_tokens` stop and a
rate-limit error) against a fake Anthropic server, then exits, leaving the OpenTelemetry providers
to flush at interpreter exit.

- Without `--no-instrument` it starts its own `FakeAnthropicServer` and calls
  `anthropic_otel.instrument()` with no arguments: every exporter setting comes from `OTEL_*`.
- With `--no-instrument` it is a plain Anthropic application (for `opentelemetry-instrument`): it
  never imports `anthropic_otel` and talks to the server named by `ANTHROPIC_BASE_URL`.
- With `--hold` it prints `READY` after the calls and stays alive until its stdin closes (or
  `WORKLOAD_HOLD_SECONDS`, default 30, pass), so a test can scrape a Prometheus endpoint.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import anthropic

MODEL = "claude-sonnet-4-5"
API_KEY = "sk-ant-export-test-0123456789"


def ask(**kwargs: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 100,
                              "messages": [{"role": "user", "content": "Say hello to the exporter."}]}
    params.update(kwargs)
    return params


def calls(base_url: str) -> None:
    with anthropic.Anthropic(base_url=base_url, api_key=API_KEY, max_retries=0) as client:
        message = client.messages.create(**ask())
        assert message.stop_reason == "end_turn", message.stop_reason

        stream = client.messages.create(**ask(stream=True))
        with stream:
            for _ in stream:
                pass

        with client.messages.stream(**ask()) as manager:
            final = manager.get_final_message()
        assert final.stop_reason == "end_turn", final.stop_reason

        cut = client.messages.create(**ask(extra_headers={"x-fake-scenario": "max_tokens"}))
        assert cut.stop_reason == "max_tokens", cut.stop_reason

        try:
            client.messages.create(**ask(extra_headers={"x-fake-scenario": "rate_limit"}))
        except anthropic.RateLimitError:
            pass
        else:
            raise AssertionError("the rate_limit scenario did not raise")


@contextlib.contextmanager
def server_url(instrument: bool) -> Iterator[str]:
    if not instrument:
        yield os.environ["ANTHROPIC_BASE_URL"]
        return
    import anthropic_otel
    from anthropic_otel.testing import FakeAnthropicServer

    anthropic_otel.instrument()
    with FakeAnthropicServer() as server:
        yield server.base_url


def hold() -> None:
    print("READY", flush=True)
    done = threading.Event()

    def wait_for_stdin() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_for_stdin, daemon=True).start()
    done.wait(float(os.environ.get("WORKLOAD_HOLD_SECONDS", "30")))


def main(argv: list[str]) -> int:
    instrument = "--no-instrument" not in argv
    with server_url(instrument) as url:
        calls(url)
        if "--hold" in argv:
            hold()
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
