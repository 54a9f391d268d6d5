"""The `anthropic-otel` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

from .ops.assets import command as _assets


def main(argv: list[str] | None = None) -> int:
    from .testing._cli import add_arguments as fake_server_arguments
    from .version import __version__

    parser = argparse.ArgumentParser(prog="anthropic-otel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run an instrumented workload against the built-in fake server")
    demo.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    demo.add_argument("--prometheus-port", type=int, default=9464,
                      help="serve Prometheus metrics on this port while running (0: off; default 9464)")
    demo.add_argument("--live", action="store_true",
                      help="call the real API (needs ANTHROPIC_API_KEY): a few cheap calls, estimate shown first")
    demo.add_argument("--workers", type=int, default=4, help="concurrent callers (default 4)")
    demo.add_argument("--wide", action="store_true",
                      help="end with the full summary table (17 columns, about 220 characters wide) instead of "
                           "blocks that fit 100 columns")
    prices = commands.add_parser("prices", help="print the price table in use: source, data date, overrides")
    prices.add_argument("models", nargs="*", metavar="MODEL",
                        help="model ids as you call them (default: every Anthropic model in the bundled data)")
    prices.add_argument("--provider", default="anthropic", choices=("anthropic", "aws.bedrock", "gcp.vertex_ai"),
                        help="price as called through this provider (default anthropic)")
    prices.add_argument("--prices-file", default=None,
                        help="a TOML/YAML price override file (default: $ANTHROPIC_OTEL_PRICES_FILE)")
    rules = commands.add_parser("rules", help="render the Prometheus recording and alerting rules from a config")
    rules.add_argument("--config", default=None, help="a YAML or TOML (.toml) file of thresholds (default: defaults)")
    rules.add_argument("--output", default="alerts", help="directory for the rule files (default alerts)")
    rules.add_argument("--check", action="store_true", help="write nothing; exit 1 if the files there differ")
    rules.add_argument("--print-config", action="store_true", help="print the config in effect, as YAML, and exit")
    from .reconcile.command import add_arguments as _reconcile_arguments

    _reconcile_arguments(commands.add_parser("reconcile", help="compare what the package counted with the bill"))
    _assets.register(commands)
    fake = commands.add_parser("fake-server", help="run the package's fake Anthropic API on loopback until Ctrl-C",
                               description="Run the fake Anthropic API (anthropic_otel.testing) until Ctrl-C or "
                                           "SIGTERM; point ANTHROPIC_BASE_URL at the URL it prints. "
                                           "Scenarios, headers and knobs: docs/testing.md.")
    fake_server_arguments(fake)
    args = parser.parse_args(argv)
    if args.command == "reconcile":
        from .reconcile.command import run as _reconcile

        return _reconcile(args)
    if args.command == "assets":
        return _assets.run(args, sys.stdout)
    if args.command == "fake-server":
        from .testing._cli import serve

        return _interruptible("fake-server", lambda: serve(args, sys.stdout))
    if args.command == "rules":
        return _rules(args.config, args.output, args.check, args.print_config, sys.stdout)
    if args.command == "prices":
        return _prices(args.models, args.provider, args.prices_file, sys.stdout)
    if args.command == "demo":
        return _interruptible("demo", lambda: _demo(args))
    return 2  # pragma: no cover - argparse rejects unknown commands


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args.duration, args.prometheus_port, sys.stdout, live=args.live, workers=args.workers,
               wide=args.wide)


def _interruptible(command: str, body: Callable[[], int]) -> int:
    """Ctrl-C before a long-running command is under way (e.g. while it imports) ends it without a traceback.

    Once running, the command handles Ctrl-C itself (the demo prints its summary so far).
    """
    try:
        return body()
    except KeyboardInterrupt:
        print(f"anthropic-otel {command}: interrupted", file=sys.stderr)
        return 130


def _prices(models: list[str], provider: str, prices_file: str | None, out: TextIO) -> int:
    """`anthropic-otel prices`: what the cost numbers rest on."""
    import os

    from .cost.pricing import Pricer, check_overrides, data_source

    try:
        overrides = check_overrides(None, prices_file)
    except (OSError, ValueError) as error:
        print(f"anthropic-otel prices: {error}", file=sys.stderr)
        return 2
    pricer = Pricer(overrides)
    package, effective, scheduled = data_source()
    later = f", next scheduled change {scheduled} (applied on its date)" if scheduled else ""
    print(f"Prices: {package}, bundled data, in effect since {effective or 'unknown'}{later}; never fetched at "
          "run time.", file=out)
    path = prices_file or os.environ.get("ANTHROPIC_OTEL_PRICES_FILE", "").strip()
    applied = f"{path}: {', '.join(overrides)}" if overrides else "none"
    print(f"Overrides: {applied}", file=out)
    print(f"Provider: {provider}. USD per million tokens (web search: per 1,000 searches); "
          "'a|b>200K' is a long-context tier chosen by total input.", file=out)
    header = ("model", "input", "output", "cache read", "write 5m", "write 1h", "web search", "batch in", "batch out",
              "source")
    rows: list[tuple[str, ...]] = [header]
    unknown = []
    for model in models or list(pricer.known_models()):
        standard = pricer.prices(model, provider)
        if standard is None:
            unknown.append(model)
            continue
        batch = pricer.prices(model, provider, batch=True)
        source = standard.source
        if batch is not None and batch.source != source:
            source += f" (batch: {batch.source.rpartition(' + ')[2]})"
        rows.append((model, *(_price(p) for p in standard[:6]), _price(batch and batch.input),
                     _price(batch and batch.output), source))
    _table(rows, out)
    priced = [row[0] for row in rows[1:]]
    if priced:
        print("", file=out)
        _dimensions(pricer, priced, provider, out)
    for model in unknown:
        print(f"{model}: no known price (calls are counted in anthropic_otel_unpriced_requests_total)", file=out)
    return 1 if unknown and models else 0


def _table(rows: list[tuple[str, ...]], out: TextIO, indent: str = "") -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
              file=out)


def _dimensions(pricer: Any, models: list[str], provider: str, out: TextIO) -> None:
    """The billing dimensions per model: fast mode, US-only inference, priority tier (docs/telemetry.md, "Cost")."""
    print("Dimensions (USD per million tokens): 'fast' is speed=\"fast\" ('-': no fast row, standard rate); "
          "'US geo' the factor on every token price for inference_geo=\"us\" (first-party API only); "
          "'priority' the priority-tier rates (standard unless overridden).", file=out)
    rows: list[tuple[str, ...]] = [("model", "fast in", "fast out", "US geo", "priority in", "priority out")]
    for model in models:
        standard = pricer.prices(model, provider)
        fast = pricer.prices(model, provider, fast=True)
        us = pricer.prices(model, provider, us=True)
        priority = pricer.prices(model, provider, priority=True)
        fast_row = fast is not None and standard is not None and fast.source != standard.source and (
            "no fast row" not in fast.source)
        geo = "-"
        if us is not None and standard is not None and us.source != standard.source:
            geo = "x" + us.source.rpartition(" x ")[2].split()[0]
        overridden = priority is not None and standard is not None and priority.source != standard.source
        rows.append((model, _price(fast.input) if fast_row and fast else "-",
                     _price(fast.output) if fast_row and fast else "-", geo,
                     _price(priority.input) if overridden and priority else "standard",
                     _price(priority.output) if overridden and priority else "standard"))
    _table(rows, out, indent="  ")  # indented: a reader (or a script) keeps it apart from the price table


def _rules(config_file: str | None, output: str, check: bool, print_config: bool, out: TextIO) -> int:
    """`anthropic-otel rules`: the rule files for a config (see `anthropic_otel.ops.rules`)."""
    from .ops import rules as rules

    try:
        config = rules.load_config(config_file)
    except (OSError, ValueError) as error:
        print(f"anthropic-otel rules: {error}", file=sys.stderr)
        return 2
    if print_config:
        print(rules.dump_config(config), end="", file=out)
        return 0
    if check:
        stale = rules.stale(output, config)
        for path in stale:
            print(f"{path}: differs from what the config renders; run anthropic-otel rules", file=out)
        return 1 if stale else 0
    for path in rules.write(output, config):
        print(f"wrote {path}", file=out)
    return 0


def _price(price: Any) -> str:
    if price is None:
        return "-"
    if hasattr(price, "tiers"):
        return "|".join([_number(price.base), *(f"{_number(t.price)}>{t.start // 1000}K" for t in price.tiers)])
    return _number(price)


def _number(value: Any) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


if __name__ == "__main__":
    sys.exit(main())
