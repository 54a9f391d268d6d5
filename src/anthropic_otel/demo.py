"""`anthropic-otel demo`: a short mixed workload against the built-in fake server, instrumented.

It shows what the package measures without an API key or a bill: spans and metrics for plain, streamed
and cached calls, `max_tokens` truncations and rate-limit errors, served on a Prometheus endpoint while
it runs and summed up at the end.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections import Counter
from typing import Any, TextIO

MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6")
FEATURES = ("summarize", "chat")
SYSTEM = [{"type": "text", "text": "You are the demo assistant. Answer briefly. " * 60,
           "cache_control": {"type": "ephemeral"}}]


def run(duration: float, prometheus_port: int, out: TextIO) -> int:
    import anthropic
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    import anthropic_otel
    from anthropic_otel._setup import prometheus_reader
    from anthropic_otel.testing import FakeAnthropicServer

    live = bool(os.environ.get("ANTHROPIC_API_KEY")) and os.environ.get("ANTHROPIC_OTEL_DEMO_LIVE") == "1"
    server = None if live else FakeAnthropicServer().start()
    readers: list[Any] = []
    if prometheus_port:
        readers.append(prometheus_reader("127.0.0.1", prometheus_port))
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    os.environ.setdefault("OTEL_SERVICE_NAME", "anthropic-otel-demo")
    metrics.set_meter_provider(MeterProvider(resource=Resource.create(), metric_readers=readers))
    instrumentor = anthropic_otel.instrument(metric_attributes=["app.feature"])
    telemetry = instrumentor.telemetry
    assert telemetry is not None

    base_url = None if server is None else server.base_url
    client = anthropic.Anthropic(base_url=base_url, api_key=None if live else "demo-key", max_retries=0)
    print(f"anthropic-otel demo: {'live API' if live else f'fake Anthropic server at {base_url}'}", file=out)
    if prometheus_port:
        print(f"Prometheus metrics: http://127.0.0.1:{prometheus_port}/metrics", file=out)
    print(f"Running a mixed workload for {duration:.0f} s (Ctrl-C stops early)...", file=out)

    rng = random.Random(7)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + duration
    i = 0
    try:
        while time.monotonic() < deadline:
            i += 1
            model = MODELS[i % 2]
            feature = FEATURES[(i // 2) % 2]
            headers = {"x-fake-output-tokens": str(rng.randint(10, 60)), "x-fake-delay-ms": str(rng.randint(5, 40))}
            roll = rng.random()
            if roll < 0.08:
                headers["x-fake-scenario"] = "rate_limit"
            elif roll < 0.12:
                headers["x-fake-scenario"] = "overloaded"
            params: dict[str, Any] = {"model": model, "max_tokens": 40 if roll > 0.85 else 200,
                                      "messages": [{"role": "user", "content": f"Demo question {i}"}]}
            if i % 3 == 0:
                params["system"] = SYSTEM
            start = time.perf_counter()
            try:
                with anthropic_otel.attributes(**{"app.feature": feature}):
                    if i % 2:
                        with client.messages.stream(**params, extra_headers=headers) as stream:
                            message = stream.get_final_message()
                    else:
                        message = client.messages.create(**params, extra_headers=headers)
                outcomes[str(message.stop_reason)] += 1
            except anthropic.APIStatusError as error:
                outcomes[f"error {error.status_code}"] += 1
            latencies.append(time.perf_counter() - start)
            if i % 20 == 0:
                totals = telemetry.metrics.totals()
                print(f"  {totals['requests']:5d} calls  ${totals['cost_total']:.6f} so far", file=out)
    except KeyboardInterrupt:
        print("stopped early", file=out)

    totals = telemetry.metrics.totals()
    print("\nSummary", file=out)
    print(f"  calls            {totals['requests']}", file=out)
    for outcome, count in sorted(outcomes.items()):
        print(f"    {outcome:<14} {count}", file=out)
    if latencies:
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"  latency p50/p99  {statistics.median(ordered) * 1000:.1f} ms / {p99 * 1000:.1f} ms", file=out)
    for token_type, count in sorted(totals["tokens"].items()):
        print(f"  tokens {token_type:<10} {count}", file=out)
    print(f"  cost             ${totals['cost_total']:.6f}", file=out)
    if server is not None:
        server.stop()
    return 0
