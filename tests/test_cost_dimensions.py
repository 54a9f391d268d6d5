"""Cost on every billing dimension: fast mode, US-only inference, priority tier, model-specific cache prices,
web fetch and thinking tokens; hand-computed from the published prices (written out, not computed by our code).

Prices used (USD per million tokens, genai-prices 0.2.3 bundled data and Anthropic's pricing page):
Opus 4.8 $5 in / $25 out / $0.5 cache read, fast $10 / $50 / $1; Opus 4.6 and 4.5 $5 / $25; Sonnet 4.6
$3 / $15 / $0.3 read / $3.75 5m write; Haiku 4.5 $1 / $5; Haiku 5.5 $0.1 / $0.5, above 100K input $0.5 /
$2.5; Fable 5.2 $8 / $40, cache read $0.2 (0.025x), 5m write $10, 1h write $16; Sonnet 5.5 $2 / $10, cache
read $0.1 (0.05x); Opus 4.6 batch $2.5 / $12.5. US-only inference is 1.1x every token price from the 4.6
models on (first-party API only).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from anthropic_otel.cli import main as cli_main
from anthropic_otel.cost.pricing import PriceOverride, Pricer, check_overrides, default_geo_factor
from anthropic_otel.cost.usage import Usage

D = Decimal
M = 1_000_000


def use(input: int = 0, output: int = 0, read: int = 0, write_5m: int = 0, write_1h: int = 0, *,
        speed: str | None = None, geo: str | None = None, tier: str | None = None, fetches: int = 0,
        thinking: int | None = None) -> Usage:
    return Usage(input_tokens=input, output_tokens=output, cache_read=read, cache_write=write_5m + write_1h,
                 cache_write_5m=write_5m, cache_write_1h=write_1h, service_tier=tier, speed=speed,
                 inference_geo=geo, thinking_tokens=thinking, web_fetch_requests=fetches)


# (case, model, provider, usage, expected total in USD)
CASES: list[tuple[str, str, str, Usage, Decimal]] = [
    ("fast on Opus 4.8: its fast row", "claude-opus-4-8", "anthropic", use(1_000, 1_000, speed="fast"),
     D(1_000) * 10 / M + D(1_000) * 50 / M),
    ("fast cache read on Opus 4.8", "claude-opus-4-8", "anthropic", use(0, 0, read=10_000, speed="fast"),
     D(10_000) * 1 / M),
    ("standard speed on Opus 4.8", "claude-opus-4-8", "anthropic", use(1_000, 1_000, speed="standard"),
     D(1_000) * 5 / M + D(1_000) * 25 / M),
    ("fast on a model without a fast row: standard rate", "claude-haiku-4-5", "anthropic",
     use(1_000, 1_000, speed="fast"), D(1_000) * 1 / M + D(1_000) * 5 / M),
    ("US geo on Opus 4.6: 1.1x", "claude-opus-4-6", "anthropic", use(1_000, 1_000, geo="us"),
     D(1_000) * D("5.5") / M + D(1_000) * D("27.5") / M),
    ("US geo on Sonnet 4.6, cache read and write too", "claude-sonnet-4-6", "anthropic",
     use(1_000, 1_000, read=10_000, write_5m=2_000, geo="us"),
     D(1_000) * D("3.3") / M + D(1_000) * D("16.5") / M + D(10_000) * D("0.33") / M + D(2_000) * D("4.125") / M),
    ("US geo on a later model (Opus 4.8)", "claude-opus-4-8-20261001", "anthropic", use(2_000, 0, geo="us"),
     D(2_000) * D("5.5") / M),
    ("US geo on Opus 4.5 (before 4.6): no factor", "claude-opus-4-5", "anthropic", use(1_000, 1_000, geo="us"),
     D(1_000) * 5 / M + D(1_000) * 25 / M),
    ("global geo: no factor", "claude-opus-4-6", "anthropic", use(1_000, 1_000, geo="global"),
     D(1_000) * 5 / M + D(1_000) * 25 / M),
    ("geo x long context: Haiku 5.5 above 100K input, tier rate x 1.1", "claude-haiku-5-5", "anthropic",
     use(150_000, 1_000, geo="us"), D(150_000) * D("0.55") / M + D(1_000) * D("2.75") / M),
    ("geo x long context below the tier: base x 1.1", "claude-haiku-5-5", "anthropic",
     use(50_000, 1_000, geo="us"), D(50_000) * D("0.11") / M + D(1_000) * D("0.55") / M),
    ("geo x batch: Opus 4.6 batch row x 1.1", "claude-opus-4-6", "anthropic",
     use(1_000, 1_000, geo="us", tier="batch"), D(1_000) * D("2.75") / M + D(1_000) * D("13.75") / M),
    ("geo x fast: Opus 4.8 fast row x 1.1", "claude-opus-4-8", "anthropic",
     use(1_000, 1_000, geo="us", speed="fast"), D(1_000) * 11 / M + D(1_000) * 55 / M),
    ("US geo through Bedrock: first-party rule only", "global.anthropic.claude-opus-4-6-v1", "aws.bedrock",
     use(1_000, 0, geo="us"), D(1_000) * 5 / M),
    ("priority without an override: standard rates", "claude-opus-4-8", "anthropic",
     use(1_000, 1_000, tier="priority"), D(1_000) * 5 / M + D(1_000) * 25 / M),
    ("Fable 5.2 reads the cache at 0.025x", "claude-fable-5-2", "anthropic", use(1_000, 0, read=100_000),
     D(1_000) * 8 / M + D(100_000) * D("0.2") / M),
    ("Sonnet 5.5 reads the cache at 0.05x", "claude-sonnet-5-5", "anthropic", use(0, 1_000, read=100_000),
     D(1_000) * 10 / M + D(100_000) * D("0.1") / M),
    ("web fetch: no fee in the data", "claude-sonnet-4-6", "anthropic", use(1_000, 0, fetches=7),
     D(1_000) * 3 / M),
    ("thinking tokens are part of output, billed once", "claude-sonnet-4-6", "anthropic",
     use(0, 1_000, thinking=400), D(1_000) * 15 / M),
]


@pytest.mark.parametrize(("case", "model", "provider", "usage", "expected"), CASES, ids=[c[0] for c in CASES])
def test_dimensions_hand_computed(case: str, model: str, provider: str, usage: Usage, expected: Decimal) -> None:
    cost = Pricer().cost(model, provider, usage)
    assert cost is not None
    assert cost.total == expected
    assert sum((dollars for _, dollars in cost.parts()), D(0)) == cost.total


OVERRIDES = {
    "claude-opus-4-8": {"priority": {"input": 6, "output": 30}},
    "claude-fable-5-2": {"input": 4, "output": 20},
    "claude-nova-9": {"input": 4, "output": 20},
    "claude-opus-4-6": {"us_geo_factor": "1.2"},
    "claude-sonnet-4-6": {"input": 3, "output": 15, "web_fetch": 2,
                          "fast": {"input": 6, "output": 30, "cache_read": "0.5"}},
}

OVERRIDE_CASES: list[tuple[str, str, Usage, Decimal]] = [
    ("priority with an override: its priority rates", "claude-opus-4-8", use(1_000, 1_000, tier="priority"),
     D(1_000) * 6 / M + D(1_000) * 30 / M),
    ("priority override: cache read from the model's own 0.1x ratio", "claude-opus-4-8",
     use(0, 0, read=10_000, tier="priority"), D(10_000) * D("0.6") / M),
    ("priority-only override keeps the data's standard rates", "claude-opus-4-8", use(1_000, 1_000),
     D(1_000) * 5 / M + D(1_000) * 25 / M),
    ("override of Fable 5.2: cache read from its own 0.025x", "claude-fable-5-2", use(0, 0, read=100_000),
     D(100_000) * D("0.1") / M),
    ("override of Fable 5.2: writes from its own 1.25x and 2x", "claude-fable-5-2",
     use(0, 0, write_5m=1_000, write_1h=1_000), D(1_000) * 5 / M + D(1_000) * 8 / M),
    ("override of an unknown model: Anthropic's default 0.1x read", "claude-nova-9",
     use(0, 0, read=100_000), D(100_000) * D("0.4") / M),
    ("override of an unknown model 9.x: the 1.1x US rule applies", "claude-nova-9",
     use(1_000, 0, geo="us"), D(1_000) * D("4.4") / M),
    ("us_geo_factor override", "claude-opus-4-6", use(1_000, 1_000, geo="us"), D(1_000) * 6 / M + D(1_000) * 30 / M),
    ("us_geo_factor override leaves non-US calls alone", "claude-opus-4-6", use(1_000, 1_000),
     D(1_000) * 5 / M + D(1_000) * 25 / M),
    ("fast table in an override", "claude-sonnet-4-6", use(1_000, 1_000, read=10_000, speed="fast"),
     D(1_000) * 6 / M + D(1_000) * 30 / M + D(10_000) * D("0.5") / M),
    ("web fetch fee from an override", "claude-sonnet-4-6", use(0, 0, fetches=3), D(3) * 2 / 1_000),
]


@pytest.mark.parametrize(("case", "model", "usage", "expected"), OVERRIDE_CASES, ids=[c[0] for c in OVERRIDE_CASES])
def test_dimension_overrides(case: str, model: str, usage: Usage, expected: Decimal) -> None:
    cost = Pricer(check_overrides(OVERRIDES)).cost(model, "anthropic", usage)
    assert cost is not None
    assert cost.total == expected
    assert sum((dollars for _, dollars in cost.parts()), D(0)) == cost.total


def test_web_fetch_is_a_cost_part_only_when_it_costs() -> None:
    free = Pricer().cost("claude-sonnet-4-6", "anthropic", use(0, 0, fetches=3))
    assert free is not None and "web_fetch" not in dict(free.parts())
    paid = Pricer(check_overrides(OVERRIDES)).cost("claude-sonnet-4-6", "anthropic", use(0, 0, fetches=3))
    assert paid is not None and dict(paid.parts())["web_fetch"] == D("0.006")


def test_geo_rule_by_model_version() -> None:
    assert default_geo_factor("claude-opus-4-6") == D("1.1")
    assert default_geo_factor("claude-sonnet-4-6-20260101") == D("1.1")
    assert default_geo_factor("claude-fable-5") == D("1.1")
    assert default_geo_factor("claude-opus-4-5") == D(1)
    assert default_geo_factor("claude-3-7-sonnet-latest") == D(1)
    assert default_geo_factor("claude-haiku-4-5") == D(1)
    assert default_geo_factor("gpt-4o") == D(1)


@pytest.mark.parametrize(("table", "message"), [
    ({"priority": {"input": 1, "output": 2, "priority": {"input": 1, "output": 1}}}, "cannot be nested"),
    ({"fast": {"input": 1, "output": 2, "batch_factor": 1}}, "only input, output and cache prices"),
    ({"priority": {"input": 1}}, "missing output"),
    ({"us_geo_factor": -1}, "non-negative"),
    ({"cache_read": 1}, "needs at least input and output"),
])
def test_dimension_override_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PriceOverride.parse("m", table)


def test_unknown_model_warnings_are_capped(caplog: pytest.LogCaptureFixture) -> None:
    pricer = Pricer()
    with caplog.at_level(logging.WARNING, logger="anthropic_otel"):
        for i in range(300):
            assert pricer.cost(f"gpt-unknown-{i}", "anthropic", use(10, 10)) is None
            assert pricer.cost(f"gpt-unknown-{i}", "anthropic", use(10, 10)) is None
    messages = [r.getMessage() for r in caplog.records if r.name == "anthropic_otel"]
    assert len(messages) == 21
    assert all("gpt-unknown-" in m for m in messages[:20])
    assert "further ones are not logged" in messages[20]


def test_prices_command_shows_the_dimensions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[models."claude-opus-4-8".priority]\ninput = 6\noutput = 30\n'
                    '[models."claude-opus-4-6"]\nus_geo_factor = 1.2\n')
    assert cli_main(["prices", "--prices-file", str(path), "claude-opus-4-8", "claude-opus-4-6", "claude-haiku-4-5",
                     "claude-fable-5-2"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  claude-")}
    assert rows["claude-opus-4-8"] == ["10", "50", "x1.1", "6", "30"]  # fast row, 4.6+, priority override
    assert rows["claude-opus-4-6"] == ["-", "-", "x1.2", "standard", "standard"]  # us_geo_factor override
    assert rows["claude-haiku-4-5"] == ["-", "-", "-", "standard", "standard"]  # no fast row, before 4.6
    assert rows["claude-fable-5-2"] == ["16", "80", "x1.1", "standard", "standard"]
