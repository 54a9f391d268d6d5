"""`anthropic-otel reconcile` pieces against the real SDK and the fake server's usage and cost API.

The bill is read through the SDK's typed clients (pagination, 429 then success, a missing or rejected admin
key); the counted side's arithmetic on raw samples (a series born inside a bucket, a counter reset); the
billed-figures exporter. The end-to-end run with a real Prometheus is tests/test_e2e_reconcile.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import anthropic
import pytest

from anthropic_otel.reconcile import billed as b
from anthropic_otel.reconcile import buckets as bk
from anthropic_otel.reconcile.counted import growth
from anthropic_otel.reconcile.exporter import Exporter, last_closed
from anthropic_otel.telemetry import series as s
from anthropic_otel.testing import FakeAnthropicServer

KEY = "sk-ant-admin-unit-test"
MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6")
MILLION = Decimal(1_000_000)


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as fake:
        fake.billing.admin_key = KEY
        client = anthropic.Anthropic(base_url=fake.base_url, api_key="sk-ant-app", max_retries=0)
        for i in range(6):
            client.messages.create(model=MODELS[i % 2], max_tokens=100,
                                   messages=[{"role": "user", "content": f"question number {i}"}])
        yield fake


def _today() -> list[bk.Bucket]:
    now = datetime.now(UTC)
    return bk.span(now - timedelta(hours=1), now + timedelta(hours=1), bk.WIDTHS["1d"])


def _expected_output_usd(server: FakeAnthropicServer, model: str) -> Decimal:
    """Output tokens of `model` at genai-prices' output price, straight from the server's log."""
    from genai_prices import data_snapshot

    price = data_snapshot.get_snapshot().find_provider_model(model, None, "anthropic", None)[1]
    rate = Decimal(price.get_prices(datetime.now(UTC), None).output_mtok)
    tokens = sum(call.usage["output_tokens"] for call in server.calls if call.model == model and call.usage)
    return rate * tokens / MILLION


def test_the_bill_is_read_over_many_pages(server: FakeAnthropicServer) -> None:
    server.billing.page_size = 1
    bill = b.fetch(b.client(KEY, server.base_url, max_retries=0), _today(), "1d", b.Scope())
    pages = [path for path in server.billing.requests if path.endswith("/cost")]
    assert len(pages) >= 4  # one row per model and token type, one row per page
    for model in MODELS:
        (found,) = [figures for (_, m), figures in bill.side.items() if m == model]
        calls = [call for call in server.calls if call.model == model and call.usage]
        assert found.tokens["output"] == sum(call.usage["output_tokens"] for call in calls if call.usage)
        assert found.tokens["input"] == sum(call.usage["input_tokens"] for call in calls if call.usage)
        assert found.usd["output"] == _expected_output_usd(server, model)
    assert bill.refreshed_at is not None


def test_a_429_is_retried_after_its_retry_after(server: FakeAnthropicServer) -> None:
    server.billing.rate_limit_next = 2
    bill = b.fetch(b.client(KEY, server.base_url, max_retries=3), _today(), "1d", b.Scope())
    statuses = [call.status for call in server.calls if "/organizations/" in call.path]
    assert statuses[:3] == [429, 429, 200]
    assert {model for _, model in bill.side} == set(MODELS)


def test_a_5xx_is_retried(server: FakeAnthropicServer) -> None:
    server.billing.server_error_next = 1
    bill = b.fetch(b.client(KEY, server.base_url, max_retries=2), _today(), "1d", b.Scope())
    statuses = [call.status for call in server.calls if "/organizations/" in call.path]
    assert statuses[:2] == [500, 200]
    assert {model for _, model in bill.side} == set(MODELS)


def test_rate_limits_past_the_retries_are_a_one_line_error(server: FakeAnthropicServer) -> None:
    server.billing.rate_limit_next = 5
    with pytest.raises(b.BilledError, match=r"HTTP 429 rate_limit_error\) after retries"):
        b.fetch(b.client(KEY, server.base_url, max_retries=1), _today(), "1d", b.Scope())


def test_filters_reach_the_api(server: FakeAnthropicServer) -> None:
    b.fetch(b.client(KEY, server.base_url), _today(), "1d", b.Scope("wrkspc_01", "apikey_01"))
    queries = [call.query for call in server.calls if "/organizations/" in call.path]
    assert queries and all("workspace_ids%5B%5D=wrkspc_01" in q and "api_key_ids%5B%5D=apikey_01" in q
                           for q in queries)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "anthropic_otel.cli", "reconcile", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("case", ["missing", "wrong", "expired"])
def test_a_missing_or_rejected_admin_key_is_a_one_line_error(server: FakeAnthropicServer, case: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_ADMIN_API_KEY"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    if case != "missing":
        env["ANTHROPIC_ADMIN_API_KEY"] = "sk-ant-admin-not-this-one" if case == "wrong" else KEY
    server.billing.reject_key = case == "expired"
    result = _cli("--prometheus", "http://127.0.0.1:9", "--api-url", server.base_url, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and not result.stdout, result.stderr
    if case == "missing":
        assert "ANTHROPIC_ADMIN_API_KEY is not set" in lines[0]
    else:
        assert "admin key was rejected (HTTP 401 authentication_error)" in lines[0]
        assert env["ANTHROPIC_ADMIN_API_KEY"] not in result.stderr


def test_growth_counts_a_series_born_in_the_bucket_from_zero_and_survives_resets() -> None:
    at = [(t, Decimal(v)) for t, v in ((90, 1), (100, 3), (110, 5), (120, 2), (130, 4), (210, 9))]
    assert growth(at[1:], 100, 200) == Decimal(3 + 2 + 2 + 2)  # born at 100 with 3; reset at 120 counts 2
    assert growth(at, 100, 200) == Decimal(2 + 2 + 2 + 2)  # a sample before the bucket is the baseline
    assert growth(at, 200, 300) == Decimal(5)  # after the bucket, from its last value
    assert growth([], 0, 10) == 0


def test_default_buckets_are_aligned_and_judged_by_the_clock() -> None:
    now = datetime(2026, 11, 30, 5, 30, tzinfo=UTC)
    since, until = bk.default_range(now, bk.WIDTHS["1d"])
    buckets = bk.span(since, until, bk.WIDTHS["1d"])
    assert len(buckets) == 7 and buckets[-1].start == datetime(2026, 11, 30, tzinfo=UTC)
    assert [bucket.closed(now) for bucket in buckets[-2:]] == [True, False]
    assert bk.parse_time("2026-11-30T05:00:00Z") == datetime(2026, 11, 30, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a date"):
        bk.parse_time("yesterday")


def test_the_exporter_serves_the_final_bill_of_the_last_closed_bucket(server: FakeAnthropicServer) -> None:
    # The calls were answered today; tomorrow, with the report refreshed past midnight, today is the last closed day.
    later = bk.floor(datetime.now(UTC), timedelta(days=1)) + timedelta(days=1, minutes=30)
    server.billing.refreshed_lag = -timedelta(days=1)
    exporter = Exporter(b.client(KEY, server.base_url), "1d", b.Scope())
    exporter.refresh(later)
    text = exporter.text(later)
    assert f'{s.BILLED_USD}{{{s.MODEL}="claude-haiku-4-5",{s.TOKEN_TYPE}="output"}}' in text
    output = sum(call.usage["output_tokens"] for call in server.calls if call.model == MODELS[1] and call.usage)
    assert f'{s.BILLED_TOKENS}{{{s.MODEL}="{MODELS[1]}",{s.TOKEN_TYPE}="output"}} {output}\n' in text
    assert "# TYPE anthropic_otel_billed_usd gauge" in text
    # A day on, that bucket is no longer the last closed one: nothing rather than stale figures.
    assert s.BILLED_USD + "{" not in exporter.text(later + timedelta(days=1))
    # A report not refreshed past the bucket's end is not final: nothing either.
    server.billing.refreshed_lag = timedelta(0)
    exporter.refresh(later)
    assert s.BILLED_USD + "{" not in exporter.text(later)
    assert last_closed(later, "1d").end <= later
