"""A workload for the alert and dashboard end-to-end test (tests/test_e2e_prometheus.py).

    python tests/apps/alert_workload.py --port PORT [--slow-after SECONDS] [--duration SECONDS]

Serves the package's Prometheus endpoint on 127.0.0.1:PORT and calls its own FakeAnthropicServer in a loop until
stdin closes (or --duration passes), so every series of the dashboards exists: two models and two features,
plain and streamed calls, `max_tokens` truncations, 429 and 529 failures, prompt caching, a model with no known
price, budgets, rate-limit headers from a small per-minute limit, streams closed early (usage unknown),
diagnosed cache misses (cache_diagnostics=True, one conversation per feature), and short tool-runner runs (agent
runs) with two tools, one of which fails every other run. After --slow-after seconds the
non-streamed calls of one model turn slow (about 0.4 s), which the latency alerts must catch. Prints READY once
the endpoint is up.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

import anthropic

MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6")
UNPRICED_MODEL = "claude-unpriced-e2e"
FEATURES = ("summarize", "chat")
SLOW_MODEL = "claude-haiku-4-5"
SYSTEM = [{"type": "text", "text": "You are the alert test assistant. Answer briefly. " * 60,
           "cache_control": {"type": "ephemeral"}}]


def call(client: anthropic.Anthropic, i: int, slow: bool) -> None:
    import anthropic_otel

    model = UNPRICED_MODEL if i % 17 == 0 else MODELS[i % 2]
    stream = i % 4 == 1
    headers = {"x-fake-output-tokens": "12", "x-fake-delay-ms": "5"}
    if i % 11 == 3:
        headers["x-fake-scenario"] = "rate_limit"
    elif i % 13 == 5:
        headers["x-fake-scenario"] = "overloaded"
    if i % 7 == 2:
        headers["x-fake-thinking-tokens"] = "4"  # a reasoning share of the 12 output tokens
    if slow and model == SLOW_MODEL and not stream:
        headers["x-fake-delay-ms"] = "400"
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": 8 if i % 5 == 0 else 100,  # 8 < 12 output tokens: stop_reason max_tokens
        "messages": [{"role": "user", "content": f"Alert test question {i}"}],
    }
    if i % 3 == 0:
        params["system"] = SYSTEM
    feature = FEATURES[(i // 2) % 2]
    with anthropic_otel.attributes(**{"app.feature": feature, "gen_ai.conversation.id": f"conversation-{feature}"}):
        try:
            if i % 19 == 7:  # closed before its message_delta: usage unknown
                with client.messages.create(**params, stream=True) as events:
                    next(iter(events))
            elif stream:
                with client.messages.stream(**params, extra_headers=headers) as events:
                    events.get_final_message()
            else:
                client.messages.create(**params, extra_headers=headers)
        except anthropic.APIStatusError:
            pass


def agent_run(client: anthropic.Anthropic, server: Any, n: int) -> None:
    """A tool-runner run of three iterations: lookup_order (fails every other run), then get_weather."""
    from anthropic.lib.tools import beta_tool

    import anthropic_otel

    @beta_tool
    def get_weather(location: str) -> str:
        """The weather in a city."""
        return "sunny"

    @beta_tool
    def lookup_order(location: str) -> str:
        """An order's status."""
        if n % 2:
            raise TimeoutError("order service timed out")
        return "shipped"

    # Only a thread's first request carries the tools; later tool_use answers name the fake's default, get_weather.
    server.script("tool_use:tool_index=1", "tool_use", "normal")
    with anthropic_otel.attributes(**{"app.feature": FEATURES[n % 2]}):
        client.beta.messages.tool_runner(
            model=MODELS[n % 2], max_tokens=100, tools=[get_weather, lookup_order],
            messages=[{"role": "user", "content": f"Agent question {n}"}]).until_done()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slow-after", type=float, default=8.0)
    parser.add_argument("--duration", type=float, default=120.0)
    args = parser.parse_args(argv)

    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    import anthropic_otel
    from anthropic_otel.telemetry.setup import prometheus_reader
    from anthropic_otel.testing import FakeAnthropicServer

    provider = MeterProvider(resource=Resource.create({"service.name": "alert-workload"}),
                             metric_readers=[prometheus_reader("127.0.0.1", args.port)])
    metrics.set_meter_provider(provider)
    anthropic_otel.instrument(meter_provider=provider, metric_attributes=["app.feature"],
                              budgets={"day": 0.01, "month": 0.5}, cache_diagnostics=True)

    done = threading.Event()

    def wait_for_stdin() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_for_stdin, daemon=True).start()
    # a small per-minute request limit, so the rate-limit headroom gauges move
    with FakeAnthropicServer(requests_per_minute=2000) as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-e2e-test", max_retries=0)
        print("READY", flush=True)
        start = time.monotonic()
        i = 0
        while not done.is_set() and time.monotonic() - start < args.duration:
            i += 1
            call(client, i, slow=time.monotonic() - start >= args.slow_after)
            if i % 20 == 7:
                agent_run(client, server, i // 20)
            time.sleep(0.005)
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
