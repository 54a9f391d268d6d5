"""The `anthropic-otel` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="anthropic-otel", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run an instrumented workload against the built-in fake server")
    demo.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    demo.add_argument("--prometheus-port", type=int, default=9464,
                      help="serve Prometheus metrics on this port while running (0: off; default 9464)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        return run(args.duration, args.prometheus_port, sys.stdout)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
