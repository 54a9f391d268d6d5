"""`anthropic-otel fake-server` and `python -m anthropic_otel.testing`: the fake API as a process of its own.

Another process (an application under test, a load generator, a Prometheus rule experiment) can then point
``ANTHROPIC_BASE_URL`` at it without writing a script. The server's behaviour is exactly the library's.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

from ._scenarios import Scenario, parse_spec
from ._server import FakeAnthropicServer

_Handler = Callable[[int, FrameType | None], Any] | int | None


def _spec(text: str) -> str:
    """argparse type: a scenario spec (``name`` or ``name:knob=value,...``), checked before the server starts."""
    try:
        parse_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535 (0: any free port), got {port}")
    return port


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The fake server's options, shared by both entry points."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="port to bind (default 0: any free port)")
    parser.add_argument("--scenario", type=_spec, default=Scenario.NORMAL.value, metavar="SPEC",
                        help="what every request gets unless a header or --script says otherwise: a name, "
                             "optionally with knobs, e.g. 'normal:delay_ms=50' (default normal; "
                             f"names: {', '.join(s.value for s in Scenario)})")
    parser.add_argument("--script", type=_spec, action="append", default=[], metavar="SPEC",
                        help="queue a scenario for the next /v1/messages request; repeat for a sequence "
                             "(used before headers and --scenario)")
    parser.add_argument("--requests-per-minute", type=_positive, default=1000, metavar="N",
                        help="advertised in anthropic-ratelimit-requests-* headers (default 1000)")
    parser.add_argument("--tokens-per-minute", type=_positive, default=1_000_000, metavar="N",
                        help="advertised token limit, also the input and output limits (default 1000000)")
    parser.add_argument("--enforce-rate-limits", action="store_true",
                        help="answer 429 once a per-minute limit is used up (default: only advertise)")


def serve(args: argparse.Namespace, out: TextIO, stop: threading.Event | None = None) -> int:
    """Run the server until Ctrl-C or SIGTERM (or `stop`), printing its URL first and what it served last."""
    server = FakeAnthropicServer(
        args.host, args.port, args.scenario, requests_per_minute=args.requests_per_minute,
        tokens_per_minute=args.tokens_per_minute, enforce_rate_limits=args.enforce_rate_limits,
    )
    try:
        server.start()
    except OSError as error:
        print(f"anthropic-otel fake-server: cannot bind {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    stop = stop or threading.Event()
    previous = _on_sigterm(stop)
    try:
        if args.script:
            server.script(*args.script)
        print(f"Fake Anthropic API: {server.base_url} (default scenario {args.scenario}); Ctrl-C stops it", file=out)
        print(f"  export ANTHROPIC_BASE_URL={server.base_url} ANTHROPIC_API_KEY=fake-key", file=out, flush=True)
        try:
            while not stop.wait(0.5):  # a timed wait, so Ctrl-C is seen promptly on every platform
                pass
        except KeyboardInterrupt:
            pass
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    calls = server.calls
    totals = server.totals()
    print(f"Stopped after {len(calls)} requests ({totals['requests']} messages completed: "
          f"{totals['input_tokens']} input, {totals['output_tokens']} output, "
          f"{totals['cache_read_input_tokens']} cache-read, {totals['cache_creation_input_tokens']} "
          "cache-write tokens)", file=out, flush=True)
    return 0


def _on_sigterm(stop: threading.Event) -> _Handler | None:
    """SIGTERM (a process manager, `kill`) stops as cleanly as Ctrl-C; only possible on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())


def main(argv: list[str] | None = None) -> int:
    """`python -m anthropic_otel.testing`."""
    parser = argparse.ArgumentParser(prog="python -m anthropic_otel.testing",
                                     description="Run the fake Anthropic API on loopback until Ctrl-C.")
    add_arguments(parser)
    return serve(parser.parse_args(argv), sys.stdout)
