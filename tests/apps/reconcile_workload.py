"""A workload for the reconcile end-to-end test (tests/test_e2e_reconcile.py).

    python tests/apps/reconcile_workload.py --port PORT --base-url URL [--calls N]

Serves the package's Prometheus endpoint on 127.0.0.1:PORT, makes N calls (two models, plain and streamed,
prompt-cache writes and reads) to the fake server at URL, which the test runs and bills, prints DONE, and keeps
serving the endpoint until stdin closes.
"""

from __future__ import annotations

import argparse
import os
import sys

import anthropic

MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6")
SYSTEM = [{"type": "text", "text": "You are the reconcile test assistant. Answer briefly. " * 60,
           "cache_control": {"type": "ephemeral"}}]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args(argv)

    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    import anthropic_otel
    from anthropic_otel.telemetry.setup import prometheus_reader

    provider = MeterProvider(resource=Resource.create({"service.name": "reconcile-workload"}),
                             metric_readers=[prometheus_reader("127.0.0.1", args.port)])
    metrics.set_meter_provider(provider)
    anthropic_otel.instrument(meter_provider=provider)
    client = anthropic.Anthropic(base_url=args.base_url, api_key="sk-ant-e2e-test", max_retries=0)
    print("READY", flush=True)
    for i in range(args.calls):
        params = {"model": MODELS[i % 2], "max_tokens": 100,
                  "messages": [{"role": "user", "content": f"Reconcile test question {i}"}],
                  "extra_headers": {"x-fake-output-tokens": str(10 + i % 7)}}
        if i % 3 == 0:
            params["system"] = SYSTEM
        if i % 4 == 1:
            with client.messages.stream(**params) as events:
                events.get_final_message()
        else:
            client.messages.create(**params)
    print("DONE", flush=True)
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
