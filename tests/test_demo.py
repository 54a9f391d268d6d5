"""The README's main command: the demo runs, prints its summary and serves the contract's series."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_runs_and_serves_prometheus() -> None:
    port = free_port()
    cli = Path(sys.executable).with_name("anthropic-otel")
    process = subprocess.Popen([str(cli), "demo", "--duration", "4", "--prometheus-port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and 'anthropic_stop_reason="max_tokens"' not in body:
            time.sleep(0.5)
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                continue
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Summary" in out and "cost" in out
    for series in ("gen_ai_client_operation_duration_seconds_bucket", "gen_ai_client_token_usage_bucket",
                   "gen_ai_client_operation_time_to_first_chunk_seconds_bucket", "anthropic_otel_requests_total",
                   "anthropic_otel_tokens_total", "anthropic_otel_cost_usd_total", "anthropic_otel_requests_active",
                   "anthropic_otel_ratelimit_remaining"):
        assert series in body, series
    assert 'anthropic_stop_reason="max_tokens"' in body
    assert 'app_feature="summarize"' in body
