"""Cost: hand-computed dollars per token class, overrides, batch results, cache savings, spend, `prices`.

Expected values are written out from Anthropic's (and AWS's) published per-million-token prices, not
computed by the code under test, so a wrong price in the bundled data or a wrong formula both fail here.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest

import anthropic_otel
from anthropic_otel.cli import main as cli_main
from anthropic_otel.cost.pricing import PriceOverride, Pricer, canonical_model, check_overrides
from anthropic_otel.cost.spend import Ledger
from anthropic_otel.cost.usage import Usage
from anthropic_otel.testing import FakeAnthropicServer
from conftest import MODEL, Otel, ask, make_otel

D = Decimal
M = 1_000_000


def usage(input: int = 0, output: int = 0, read: int = 0, write_5m: int = 0, write_1h: int = 0,
          searches: int = 0, tier: str | None = None, breakdown: bool = True) -> Usage:
    return Usage(input_tokens=input, output_tokens=output, cache_read=read, cache_write=write_5m + write_1h,
                 cache_write_5m=write_5m if breakdown else None, cache_write_1h=write_1h if breakdown else None,
                 web_search_requests=searches, service_tier=tier)


# (case, model, provider, usage, batch, expected total in USD: the arithmetic spelled out)
CASES: list[tuple[str, str, str, Usage, bool, Decimal]] = [
    ("sonnet 4.5 below 200K", "claude-sonnet-4-5", "anthropic", usage(1_000, 500), False,
     D(1_000) * 3 / M + D(500) * 15 / M),
    ("sonnet 4.5 at exactly 200K stays in the base tier", "claude-sonnet-4-5", "anthropic",
     usage(199_000, 100, read=1_000), False, D(199_000) * 3 / M + D(1_000) * D("0.3") / M + D(100) * 15 / M),
    ("sonnet 4.5 above 200K: every class at the long-context rate, tier chosen by input incl. cache",
     "claude-sonnet-4-5", "anthropic", usage(150_000, 1_000, read=60_000), False,
     D(150_000) * 6 / M + D(60_000) * D("0.6") / M + D(1_000) * D("22.5") / M),
    ("haiku 4.5", "claude-haiku-4-5", "anthropic", usage(2_000, 300), False, D(2_000) * 1 / M + D(300) * 5 / M),
    ("opus 4.5", "claude-opus-4-5", "anthropic", usage(10_000, 2_000), False, D(10_000) * 5 / M + D(2_000) * 25 / M),
    ("5-minute cache write", "claude-haiku-4-5", "anthropic", usage(10, 10, write_5m=10_000), False,
     D(10) * 1 / M + D(10) * 5 / M + D(10_000) * D("1.25") / M),
    ("1-hour cache write", "claude-sonnet-4-6", "anthropic", usage(0, 0, write_1h=4_000), False, D(4_000) * 6 / M),
    ("both cache writes", "claude-sonnet-4-6", "anthropic", usage(0, 0, write_5m=1_000, write_1h=4_000), False,
     D(1_000) * D("3.75") / M + D(4_000) * 6 / M),
    ("cache write without breakdown is priced at the 5-minute rate", "claude-sonnet-4-6", "anthropic",
     usage(0, 0, write_5m=4_000, breakdown=False), False, D(4_000) * D("3.75") / M),
    ("cache read", "claude-sonnet-4-6", "anthropic", usage(100, 0, read=100_000), False,
     D(100) * 3 / M + D(100_000) * D("0.3") / M),
    ("batch (service_tier) is half price", "claude-haiku-4-5", "anthropic", usage(1_000, 1_000, tier="batch"),
     False, D(1_000) * D("0.5") / M + D(1_000) * D("2.5") / M),
    ("batch result of a model without a batch row in the data: Anthropic's 50%", "claude-opus-4-1",
     "anthropic", usage(1_000, 1_000), True, D(1_000) * D("7.5") / M + D(1_000) * D("37.5") / M),
    ("batch cache read and write are half too", "claude-sonnet-4-6", "anthropic",
     usage(0, 0, read=10_000, write_5m=10_000), True, D(10_000) * D("0.15") / M + D(10_000) * D("1.875") / M),
    ("web search: $10 per 1,000", "claude-sonnet-4-6", "anthropic", usage(1_000, 100, searches=3), False,
     D(1_000) * 3 / M + D(100) * 15 / M + D(3) * 10 / 1_000),
    ("web search keeps its price in a batch", "claude-haiku-4-5", "anthropic", usage(0, 0, searches=2), True,
     D(2) * 10 / 1_000),
    ("dated id", "claude-sonnet-4-5-20250929", "anthropic", usage(1_000, 500), False,
     D(1_000) * 3 / M + D(500) * 15 / M),
    ("Bedrock in-region id: AWS's regional price, 10% over global", "anthropic.claude-haiku-4-5-20251001-v1:0",
     "aws.bedrock", usage(1_000, 1_000), False, D(1_000) * D("1.1") / M + D(1_000) * D("5.5") / M),
    ("Bedrock global inference profile", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws.bedrock",
     usage(1_000, 1_000, write_1h=1_000), False, D(1_000) * 3 / M + D(1_000) * 15 / M + D(1_000) * 6 / M),
    ("Vertex id", "claude-haiku-4-5@20251001", "gcp.vertex_ai", usage(1_000, 1_000), False,
     D(1_000) * 1 / M + D(1_000) * 5 / M),
]


@pytest.mark.parametrize(("case", "model", "provider", "use", "batch", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hand_computed_costs(case: str, model: str, provider: str, use: Usage, batch: bool,
                             expected: Decimal) -> None:
    cost = Pricer().cost(model, provider, use, batch=batch)
    assert cost is not None
    assert cost.total == expected
    assert sum((dollars for _, dollars in cost.parts()), D(0)) == cost.total


OVERRIDES = {"claude-sonnet-4-5": {"input": "2.4", "output": 12}, "claude-next-1": {"input": 1, "output": 2,
                                                                                      "cache_read": "0.05"}}


@pytest.mark.parametrize(("model", "provider", "use", "batch", "expected"), [
    # Overrides win over the bundled price and reach dated, Bedrock and Vertex ids of the same model.
    ("claude-sonnet-4-5", "anthropic", usage(1_000, 1_000, read=1_000), False,
     D(1_000) * D("2.4") / M + D(1_000) * 12 / M + D(1_000) * D("0.24") / M),
    ("claude-sonnet-4-5-20250929", "anthropic", usage(300_000, 0), False, D(300_000) * D("2.4") / M),  # flat
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws.bedrock", usage(1_000, 0, write_1h=1_000), False,
     D(1_000) * D("2.4") / M + D(1_000) * D("4.8") / M),
    ("claude-sonnet-4-5@20250929", "gcp.vertex_ai", usage(0, 1_000), True, D(1_000) * 6 / M),  # batch: half
    # A brand-new model: known only through the override.
    ("claude-next-1", "anthropic", usage(1_000, 1_000, read=1_000, write_5m=1_000), False,
     D(1_000) * 1 / M + D(1_000) * 2 / M + D(1_000) * D("0.05") / M + D(1_000) * D("1.25") / M),
])
def test_overrides(model: str, provider: str, use: Usage, batch: bool, expected: Decimal) -> None:
    cost = Pricer(check_overrides(OVERRIDES)).cost(model, provider, use, batch=batch)
    assert cost is not None and cost.total == expected


def test_unknown_model_costs_nothing_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    pricer = Pricer()
    with caplog.at_level(logging.WARNING, logger="anthropic_otel"):
        assert pricer.cost("gpt-nothing", "anthropic", usage(10, 10)) is None
        assert pricer.cost("gpt-nothing", "anthropic", usage(10, 10)) is None
    assert [r.getMessage() for r in caplog.records] == [
        "anthropic_otel: no price known for model 'gpt-nothing' (anthropic); its cost is not counted"]


def test_cache_savings() -> None:
    # Haiku 4.5: reads save (1 - 0.1) per MTok, 5m writes cost 0.25 per MTok over input, 1h writes 1.00.
    cost = Pricer().cost(MODEL, "anthropic", usage(0, 0, read=100_000, write_5m=10_000, write_1h=2_000))
    assert cost is not None
    assert cost.cache_savings == D(100_000) * D("0.9") / M
    assert cost.write_premium == D(10_000) * D("0.25") / M + D(2_000) * 1 / M
    assert cost.net_cache_savings == D("0.09") - D("0.0045")
    none = Pricer().cost(MODEL, "anthropic", usage(100, 100))
    assert none is not None and (none.cache_savings, none.write_premium) == (0, 0)


def test_canonical_model_ids() -> None:
    for model in ("claude-sonnet-4-5-20250929", "anthropic.claude-sonnet-4-5-20250929-v1:0",
                  "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "global.anthropic.claude-sonnet-4-5-v1:0",
                  "claude-sonnet-4-5@20250929", "claude-sonnet-4-5"):
        assert canonical_model(model) == "claude-sonnet-4-5", model
    assert canonical_model("claude-3-5-haiku-latest") == "claude-3-5-haiku"


@pytest.mark.parametrize(("prices", "message"), [
    ({"m": {"input": 1}}, "needs at least input and output"),
    ({"m": {"input": 1, "output": -2}}, "output must be a non-negative number"),
    ({"m": {"input": 1, "output": "lots"}}, "output must be a non-negative number"),
    ({"m": {"input": 1, "output": True}}, "output must be a non-negative number"),
    ({"m": {"input": 1, "output": 2, "cached": 1}}, "unknown keys ['cached']"),
    ({"m": 3}, "must be a table of prices"),
])
def test_bad_overrides_fail_at_instrument_time(prices: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        anthropic_otel.instrument(prices=prices)
    assert not anthropic_otel.AnthropicInstrumentor().is_instrumented_by_opentelemetry


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_price_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str,
                                         fake: FakeAnthropicServer, client: anthropic.Anthropic) -> None:
    path = tmp_path / f"prices{suffix}"
    path.write_text(textwrap.dedent(f"""\
        [models."{MODEL}"]
        input = 0.5
        output = 4
        """) if suffix == ".toml" else f"models:\n  {MODEL}:\n    input: 0.5\n    output: 4\n")
    monkeypatch.setenv("ANTHROPIC_OTEL_PRICES_FILE", str(path))
    otel = make_otel()
    try:
        client.messages.create(**ask())
        recorded = fake.calls[-1].usage or {}
        expected = D(recorded["input_tokens"]) * D("0.5") / M + D(recorded["output_tokens"]) * 4 / M
        assert otel.span().attributes["anthropic_otel.cost.usd"] == float(expected)  # type: ignore[index]
        assert otel.instrumentor.telemetry.metrics.totals()["cost_total"] == expected  # type: ignore[union-attr]
    finally:
        anthropic_otel.uninstrument()


def test_bad_price_file_fails_at_instrument_time(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[models."x"]\ninput = 1\n')
    with pytest.raises(ValueError, match="needs at least input and output"):
        anthropic_otel.instrument(prices_file=str(path))
    path.write_text("[models\n")
    with pytest.raises(ValueError, match=r"prices\.toml"):
        anthropic_otel.instrument(prices_file=str(path))


def test_span_cost_equals_the_counter_parts_and_savings_are_exported(fake: FakeAnthropicServer,
                                                                     client: anthropic.Anthropic) -> None:
    otel = make_otel()
    try:
        cached = ask(system=[{"type": "text", "text": "Cache me. " * 400, "cache_control": {"type": "ephemeral"}}])
        client.messages.create(**cached)  # writes the cache
        client.messages.create(**cached)  # reads it
        writes, reads = (c.usage or {} for c in fake.calls[-2:])
        assert writes["cache_creation_input_tokens"] > 0 and reads["cache_read_input_tokens"] > 0
        spans = otel.spans()
        costs = otel.points("anthropic_otel.cost.usd")
        assert sum(v for _, v in costs) == pytest.approx(
            sum(s.attributes["anthropic_otel.cost.usd"] for s in spans), abs=1e-12)  # type: ignore[index]
        premium = D(writes["cache_creation_input_tokens"]) * D("0.25") / M  # Haiku: 1.25 - 1 per MTok
        saved = D(reads["cache_read_input_tokens"]) * D("0.9") / M  # Haiku: 1 - 0.1 per MTok
        assert [s.attributes["anthropic_otel.cache.savings.usd"] for s in spans] == [  # type: ignore[index]
            float(-premium), float(saved)]
        assert otel.total("anthropic_otel.cache.savings.usd") == pytest.approx(float(saved))
        assert otel.total("anthropic_otel.cache.write_premium.usd") == pytest.approx(float(premium))
        totals = otel.instrumentor.telemetry.metrics.totals()  # type: ignore[union-attr]
        assert (totals["cache_savings"], totals["cache_write_premium"]) == (saved, premium)
    finally:
        anthropic_otel.uninstrument()


def _expected_batch_cost(recorded: dict[str, Any]) -> Decimal:
    # Haiku 4.5 batch: $0.50 / $2.50 per MTok.
    return D(recorded["input_tokens"]) * D("0.5") / M + D(recorded["output_tokens"]) * D("2.5") / M


def _batch_requests() -> list[Any]:
    return [{"custom_id": "a", "params": ask("first")}, {"custom_id": "b", "params": ask("second one", max_tokens=3)},
            {"custom_id": "bad", "params": {"model": MODEL, "messages": []}}]


def test_batch_results_are_priced_at_the_batch_rate_once(otel: Otel, client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(requests=_batch_requests())
    with anthropic_otel.attributes(**{"app.feature": "nightly"}):
        results = list(client.messages.batches.results(batch.id))
    expected = sum((_expected_batch_cost(r.result.message.usage.to_dict())
                    for r in results if r.result.type == "succeeded"), D(0))
    totals = otel.instrumentor.telemetry.metrics.totals()  # type: ignore[union-attr]
    assert totals["cost_total"] == expected and expected > 0
    assert totals["requests"] == 0  # results are not API calls of their own
    assert {a["gen_ai.operation.name"] for a, _ in otel.points("anthropic_otel.cost.usd")} == {"batch"}
    assert {a["gen_ai.request.model"] for a, _ in otel.points("anthropic_otel.cost.usd")} == {MODEL}
    output = sum(r.result.message.usage.output_tokens for r in results if r.result.type == "succeeded")
    assert otel.total("anthropic_otel.tokens", anthropic_otel__token__type="output") == output
    # Reading the results again, one at a time this time, counts nothing twice.
    again = client.messages.batches.results(batch.id)
    assert next(again).custom_id == results[0].custom_id
    assert [r.custom_id for r in again] == [r.custom_id for r in results[1:]]
    assert otel.instrumentor.telemetry.metrics.totals()["cost_total"] == expected  # type: ignore[union-attr]
    assert anthropic_otel.spend().total == expected


async def test_async_batch_results_are_priced(otel: Otel, aclient: anthropic.AsyncAnthropic) -> None:
    batch = await aclient.messages.batches.create(requests=_batch_requests())
    decoder = await aclient.messages.batches.results(batch.id)
    first = await decoder.__anext__()
    results = [first] + [r async for r in decoder]
    expected = sum((_expected_batch_cost(r.result.message.usage.to_dict())
                    for r in results if r.result.type == "succeeded"), D(0))
    assert len(results) == 3
    assert otel.instrumentor.telemetry.metrics.totals()["cost_total"] == expected  # type: ignore[union-attr]


def test_spend_sums_this_process_by_day_and_month(otel: Otel, client: anthropic.Anthropic) -> None:
    for _ in range(3):
        client.messages.create(**ask())
    spend = anthropic_otel.spend()
    counter = otel.instrumentor.telemetry.metrics.totals()["cost_total"]  # type: ignore[union-attr]
    assert spend.day == spend.month == spend.total == counter > 0
    assert spend.budgets == {} and spend.remaining("day") is None and spend.exceeded() == []
    assert otel.points("anthropic_otel.budget.usd") == []  # no budget configured: no gauge at all


def test_budget_from_the_environment_is_checked_at_instrument_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_OTEL_BUDGET_DAY_USD", "fifty")
    with pytest.raises(ValueError, match="budget for 'day' must be a number of US dollars"):
        anthropic_otel.instrument()
    monkeypatch.setenv("ANTHROPIC_OTEL_BUDGET_DAY_USD", "50")
    otel = make_otel()
    try:
        assert anthropic_otel.spend().budgets == {"day": 50}
        assert [v for _, v in otel.points("anthropic_otel.budget.usd")] == [50.0]
    finally:
        anthropic_otel.uninstrument()


def test_spend_without_instrument_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="instrument"):
        anthropic_otel.spend()


def test_ledger_rolls_over_at_utc_day_and_month() -> None:
    def at(day: date, seconds: float = 0) -> float:
        return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + seconds

    now = [at(date(2026, 1, 31), 86399.5)]  # half a second before the end of January (UTC)
    ledger = Ledger({"day": 1, "month": 2}, clock=lambda: now[0])
    ledger.add(D("0.75"))
    assert ledger.spend().exceeded() == []
    ledger.add(D("0.5"))
    assert ledger.spend().exceeded() == ["day"] and ledger.spend().remaining("day") == D("-0.25")
    now[0] = at(date(2026, 2, 1))
    spend = ledger.spend()
    assert (spend.day, spend.month, spend.total, spend.as_of) == (0, 0, D("1.25"), date(2026, 2, 1))
    ledger.add(D("1"))
    now[0] = at(date(2026, 2, 2), 3600)
    assert (ledger.spend().day, ledger.spend().month) == (0, 1)


def test_prices_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[models."claude-sonnet-4-5"]\ninput = 2.4\noutput = 12\n')
    assert cli_main(["prices", "--prices-file", str(path), "claude-sonnet-4-5-20250929", "claude-opus-4-1"]) == 0
    out = capsys.readouterr().out
    assert "genai-prices" in out and "never fetched at run time" in out
    assert f"Overrides: {path}: claude-sonnet-4-5" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("claude-")}
    assert rows["claude-sonnet-4-5-20250929"][1:3] == ["2.4", "12"] and "override" in out
    assert rows["claude-opus-4-1"][1:10] == ["15", "75", "1.5", "18.75", "30", "10", "7.5", "37.5", "genai-prices"]
    assert cli_main(["prices", "no-such-model"]) == 1
    assert "no-such-model: no known price" in capsys.readouterr().out


def test_no_network_at_import_or_run_time(fake: FakeAnthropicServer) -> None:
    """Sockets to anything but loopback raise, before the package is imported; calls, prices, CLI still work."""
    script = textwrap.dedent(f"""
        import socket
        real_connect = socket.socket.connect
        def guarded(self, address):
            host = address[0] if isinstance(address, tuple) else address
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise RuntimeError(f"network access to {{address!r}}")
            return real_connect(self, address)
        socket.socket.connect = guarded
        real_getaddrinfo = socket.getaddrinfo
        def getaddrinfo(host, *args, **kwargs):
            if host not in ("127.0.0.1", "::1", "localhost", None):
                raise RuntimeError(f"name lookup of {{host!r}}")
            return real_getaddrinfo(host, *args, **kwargs)
        socket.getaddrinfo = getaddrinfo

        import anthropic, anthropic_otel
        from anthropic_otel.cli import main
        anthropic_otel.instrument()
        client = anthropic.Anthropic(base_url={fake.base_url!r}, api_key="k", max_retries=0)
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{{"role": "user", "content": "hi"}}])
        assert anthropic_otel.spend().total > 0
        assert main(["prices", "claude-sonnet-4-5"]) == 0
        print("OFFLINE-OK")
    """)
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
           "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "OFFLINE-OK" in done.stdout


def test_price_override_parse_fills_in_anthropic_multipliers() -> None:
    override = PriceOverride.parse("m", {"input": 4, "output": 20})
    assert (override.cache_read, override.cache_write_5m, override.cache_write_1h, override.web_search,
            override.batch_factor) == (D("0.4"), D(5), D(8), D(10), D("0.5"))
