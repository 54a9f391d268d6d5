"""Where anthropic-otel's per-call microseconds go: component timings, then a profile of the hot path.

    python benchmarks/profile_hotpath.py                 # component table (no extra packages)
    python benchmarks/profile_hotpath.py --py-spy --tools benchmarks/.tools   # + py-spy, bucketed by who works
    python benchmarks/profile_hotpath.py --pyinstrument --tools benchmarks/.tools   # + pyinstrument call trees
    python benchmarks/profile_hotpath.py --cprofile      # + cProfile of our work without the SDK
    pip install --target benchmarks/.tools py-spy pyinstrument   # the profilers, outside any venv

Part 1 times each piece of one instrumented call in isolation (best of several repeats, µs per call, hot caches),
with the same providers as `overhead.py`: a `TracerProvider` with a `BatchSpanProcessor` whose exporter drops
spans and a `MeterProvider` with an `InMemoryMetricReader`. In a real call the caches are colder: the same
OpenTelemetry work costs about 1.5-2x more there (compare with the py-spy figures).

`--py-spy` samples many instrumented calls of the end-to-end scenarios (only the thread holding the GIL) and
buckets every sample by who was working: the SDK and transport (the bare work), the OpenTelemetry SDK called from
anthropic-otel (by caller and entry point), anthropic-otel's own code (by function), the span export thread.
`--pyinstrument` prints the call trees of the same scenarios, trimmed to frames of at least 1%.

It reads the package's internals (`Telemetry`, `Call`, `StreamProxy`); a piece whose internals moved prints
`n/a` instead of failing.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import overhead  # noqa: E402 (the canned API and the providers)

REPEATS = 7


def best_us(fn: Callable[[], object], calls: int) -> float:
    """Best mean over REPEATS batches of `calls` calls, in µs: the cost without the machine's noise."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / calls / 1000)
    return best


def components() -> list[tuple[str, str]]:
    """(piece, µs) for each part of one instrumented call."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    import anthropic_otel
    from anthropic_otel.instrumentation.instrumentor import AnthropicInstrumentor
    from anthropic_otel.telemetry import names as n

    telemetry = overhead.Telemetry()
    # a message and stream events parsed by the SDK itself, before any instrumentation
    message = overhead.make_client("json", overhead.LONG).messages.create(**overhead.REQUEST)
    events = list(overhead.make_client("sse", overhead.LONG).messages.create(stream=True, **overhead.REQUEST))
    anthropic_otel.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    tel: Any = AnthropicInstrumentor().telemetry
    client = overhead.make_client("json", overhead.LONG)
    resource = client.messages
    tracer = trace.get_tracer("bench", tracer_provider=telemetry.tracer_provider)
    results: list[tuple[str, str]] = []

    def piece(name: str, fn: Callable[[], object], calls: int = 2000) -> None:
        try:
            fn()
            results.append((name, f"{best_us(fn, calls):.2f}"))
        except Exception as error:  # the internals moved
            results.append((name, f"n/a ({type(error).__name__}: {error})"[:100]))

    start_attrs: dict[str, Any] = {n.GEN_AI_OPERATION_NAME: "chat", n.GEN_AI_PROVIDER_NAME: "anthropic",
                   n.GEN_AI_REQUEST_MODEL: overhead.MODEL, n.SERVER_ADDRESS: "bench.local", n.SERVER_PORT: 80,
                   n.GEN_AI_REQUEST_STREAM: False, n.GEN_AI_REQUEST_MAX_TOKENS: 1024}
    end_attrs: dict[str, Any] = {n.GEN_AI_RESPONSE_ID: "msg_01", n.GEN_AI_RESPONSE_MODEL: overhead.MODEL,
                 n.GEN_AI_RESPONSE_FINISH_REASONS: ("end_turn",), n.GEN_AI_USAGE_INPUT_TOKENS: 1125,
                 n.GEN_AI_USAGE_OUTPUT_TOKENS: 50, n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1000,
                 n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 100, n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 100,
                 n.ANTHROPIC_REQUEST_ID: "req_01", n.COST_USD: 0.0012, n.CACHE_SAVINGS_USD: 0.0001}

    def span_only() -> None:
        span = tracer.start_span("chat " + overhead.MODEL, kind=SpanKind.CLIENT, attributes=start_attrs)
        span.set_attributes(end_attrs)
        span.end()

    piece("OTel SDK: start_span (7 attrs) + set_attributes (11) + end, batch processor", span_only)

    def empty_span() -> None:
        tracer.start_span("x").end()

    piece("OTel SDK: empty span start + end", empty_span)
    span = tracer.start_span("parent")

    def attach_detach() -> None:
        otel_context.detach(otel_context.attach(trace.set_span_in_context(span)))

    piece("OTel API: attach + detach the span as current", attach_detach)
    histogram = telemetry.meter_provider.get_meter("bench").create_histogram("bench.duration", unit="s")
    hist_attrs: dict[str, Any] = {n.GEN_AI_OPERATION_NAME: "chat", n.GEN_AI_PROVIDER_NAME: "anthropic",
                  n.GEN_AI_REQUEST_MODEL: overhead.MODEL, n.SERVER_ADDRESS: "bench.local",
                  n.GEN_AI_REQUEST_STREAM: False}
    piece("OTel SDK: one histogram record (5 attrs, same dict each time)", lambda: histogram.record(0.5, hist_attrs))
    piece("OTel SDK: one histogram record (5 attrs, a new dict each time)",
          lambda: histogram.record(0.5, dict(hist_attrs)))

    from anthropic_otel.cost.usage import Usage

    piece("anthropic-otel: Usage.of(message.usage)", lambda: Usage.of(message.usage))
    usage = Usage.of(message.usage)
    piece("anthropic-otel: pricer.cost(model, provider, usage)",
          lambda: tel.pricer.cost(overhead.MODEL, "anthropic", usage))
    cost = tel.pricer.cost(overhead.MODEL, "anthropic", usage)
    piece("anthropic-otel: ledger.add(cost)", lambda: tel.ledger.add(cost.total if cost else Decimal(0)))
    key = tel.metrics.common_key("chat", "anthropic", overhead.MODEL, "bench.local", None)

    def finished() -> None:
        tel.metrics.started(key)
        tel.metrics.finished(key, duration=0.5, stream=False, error_type=None, stop_reason="end_turn", usage=usage,
                             cost=cost, priced=True, ttfc=None)

    piece("anthropic-otel: metrics.started + finished (3 histogram records, totals)", finished)

    def begin_end() -> None:
        call = tel.begin(resource, overhead.REQUEST, n.OP_CHAT, False)
        call.activate()
        call.deactivate()
        call.message(message)

    piece("anthropic-otel: whole call without the SDK (begin, activate, deactivate, message)", begin_end)

    def begin_only() -> None:
        call = tel.begin(resource, overhead.REQUEST, n.OP_CHAT, False)
        call.span.end()
        tel.metrics._active[call.key] -= 1

    piece("anthropic-otel: Telemetry.begin (attributes, start_span, key, started) + bare span end", begin_only)

    from anthropic_otel.instrumentation.streams import StreamProxy

    class FakeStream:
        """A `Stream` stand-in that yields already parsed events again: no HTTP, no SSE parsing."""

        response = None

        def __init__(self, items: list[Any]) -> None:
            self.items = items

        def __iter__(self) -> Iterator[Any]:
            return iter(self.items)

    many = [event for event in events if event.type == "content_block_delta"] * 100

    def plain_events() -> None:
        for _ in FakeStream(many):
            pass

    def proxied_events() -> None:
        call = tel.begin(resource, overhead.REQUEST, n.OP_CHAT, True)
        for _ in StreamProxy(FakeStream(many), call):
            pass
        call.stream_closed()

    try:
        plain = best_us(plain_events, 50)
        proxied = best_us(proxied_events, 50)
        results.append((f"anthropic-otel: StreamProxy, per text delta event ({len(many):,} per stream, less a "
                        "plain loop)", f"{(proxied - plain) / len(many):.3f}"))
    except Exception as error:
        results.append(("anthropic-otel: StreamProxy per event", f"n/a ({type(error).__name__}: {error})"[:100]))
    return results


def own_python(rounds: int = 40) -> list[tuple[str, str]]:
    """Our own Python per call: anthropic-otel minus the floor (floor.py), both with the SDK call replaced.

    The SDK's `create` is replaced by a function returning a parsed `Message` (or a `Stream` of parsed events), so
    only the telemetry runs: anthropic-otel's wrappers, call lifecycle and stream proxy against the floor's
    hand-written span and histogram records on the same providers. Interleaved batches, median of the per-round
    difference, on this thread's CPU time (the span export thread is left out for both). Hot caches: in a real
    call the same difference is about 2.5x larger (compare overhead.py).
    """
    import statistics

    import floor
    import httpx2
    from anthropic import AsyncStream, Stream

    import anthropic_otel
    from anthropic_otel.instrumentation import call as call_module
    from anthropic_otel.instrumentation import patch
    from anthropic_otel.instrumentation.instrumentor import AnthropicInstrumentor

    telemetry = overhead.Telemetry()
    quiet = overhead.scenario_client("stream10", False)
    events = list(quiet.messages.create(stream=True, **overhead.REQUEST))
    message = overhead.scenario_client("create", False).messages.create(**overhead.REQUEST)
    response = httpx2.Response(200, headers=overhead.HEADERS)
    anthropic_otel.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        tel: Any = AnthropicInstrumentor().telemetry
        resource = overhead.scenario_client("create").messages
        floor_telemetry = floor.Floor(telemetry.tracer_provider, telemetry.meter_provider)

        class Canned(Stream):  # type: ignore[type-arg]
            """A `Stream` of already parsed events: no HTTP, no SSE parsing."""

            def __init__(self) -> None:  # no SDK state needed
                self.response = response

            def __iter__(self) -> Iterator[Any]:
                return iter(events)

        class CannedMessages:
            def create(self, stream: bool = False, **kwargs: Any) -> Any:
                return Canned() if stream else message

        class CannedClient:
            messages = CannedMessages()
            base_url = quiet.base_url

        def ours(stream: bool) -> Callable[[], None]:
            def send() -> Any:
                current = call_module.CURRENT_CALL.get()
                if current is not None:
                    current.attempt(response)  # what the per-attempt hook does
                return Canned() if stream else message

            def run() -> None:
                result = patch._run_sync(tel, resource, overhead.REQUEST, "chat", stream, send, Stream, AsyncStream)
                if stream:
                    for _ in result:
                        pass
            return run

        results: list[tuple[str, str]] = []
        for name, stream, calls in (("create", False, 200), ("create(stream=True), 10 deltas", True, 100)):
            runs = {"ours": ours(stream), "floor": floor.runner("stream10" if stream else "create", floor_telemetry,
                                                                CannedClient(), overhead.REQUEST)}
            samples: dict[str, list[float]] = {"ours": [], "floor": []}
            for index in range(rounds + 3):
                for which in (("ours", "floor") if index % 2 else ("floor", "ours")):
                    start = time.thread_time_ns()  # this thread's CPU: other processes disturb it least
                    for _ in range(calls):
                        runs[which]()
                    if index >= 3:  # the first rounds warm up
                        samples[which].append((time.thread_time_ns() - start) / calls / 1000)
            diff = statistics.median(a - b for a, b in zip(samples["ours"], samples["floor"], strict=True))
            results.append((f"{name}: floor (span + histogram records by hand), no SDK call",
                            f"{statistics.median(samples['floor']):.1f}"))
            results.append((f"{name}: anthropic-otel, no SDK call", f"{statistics.median(samples['ours']):.1f}"))
            results.append((f"{name}: **anthropic-otel minus floor** (our own Python, hot caches)", f"{diff:.1f}"))
        return results
    finally:
        anthropic_otel.uninstrument()


def breakdown(calls: int = 20000) -> str:
    """cProfile of the instrumentation's own work for a create, without the SDK: tottime per function."""
    import cProfile
    import pstats

    import anthropic_otel
    from anthropic_otel.instrumentation.instrumentor import AnthropicInstrumentor
    from anthropic_otel.telemetry import names as n

    telemetry = overhead.Telemetry()
    message = overhead.make_client("json", overhead.LONG).messages.create(**overhead.REQUEST)
    anthropic_otel.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    tel: Any = AnthropicInstrumentor().telemetry
    resource = overhead.make_client("json", overhead.LONG).messages

    def one() -> None:
        call = tel.begin(resource, overhead.REQUEST, n.OP_CHAT, False)
        call.activate()
        call.deactivate()
        call.message(message)

    for _ in range(2000):
        one()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        one()
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    total = 0.0
    for (filename, line, function), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        rows.append((tottime, ncalls, cumtime, f"{_short(filename)}:{line}({function})"))
    rows.sort(reverse=True)
    out = [f"cProfile, {calls:,} instrumented create calls without the SDK (cProfile inflates each function "
           f"call; compare shares, not µs): total {total / calls * 1e6:.0f} µs per call", "",
           "| function | calls per create | tottime µs per create | share | cumtime µs per create |",
           "|---|---|---|---|---|"]
    for tottime, ncalls, cumtime, name in rows[:30]:
        out.append(f"| `{name}` | {ncalls / calls:g} | {tottime / calls * 1e6:.1f} | {tottime / total:.0%} "
                   f"| {cumtime / calls * 1e6:.1f} |")
    by_package: dict[str, float] = {}
    for tottime, _, _, name in rows:
        package = name.split("/")[0].split(":")[0]
        by_package[package] = by_package.get(package, 0.0) + tottime
    out.append("")
    out.append("| package | share of tottime |\n|---|---|")
    for package, tottime in sorted(by_package.items(), key=lambda item: -item[1])[:10]:
        out.append(f"| {package} | {tottime / total:.0%} |")
    return "\n".join(out)


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def profile(tools: Path | None) -> str:
    if tools is not None:
        sys.path.insert(0, str(tools))
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed (pip install pyinstrument, or --tools DIR)"
    import anthropic_otel

    telemetry = overhead.Telemetry()
    anthropic_otel.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    out = []
    for name, calls in (("create", 6000), ("stream50", 1500), ("helper50", 600)):
        run = overhead.scenario_runner(name)
        for _ in range(200):
            run()
        gc.collect()
        profiler = Profiler(interval=0.0001)
        profiler.start()
        for _ in range(calls):
            run()
        profiler.stop()
        out.append(f"### {name}, {calls} calls\n")
        out.append(profiler.output_text(unicode=True, color=False, show_all=False,
                                        processor_options={"filter_threshold": 0.01}))
    return "\n".join(out)


SDK_PACKAGES = frozenset({"anthropic", "httpx2", "httpcore2", "pydantic", "pydantic_core", "jiter", "anyio", "h11",
                          "typing_extensions", "sniffio", "distro", "idna", "certifi", "typing_inspection"})


def spy_target(scenario: str, calls: int) -> None:
    """What py-spy samples: `calls` instrumented calls of `scenario`; prints µs per call on the last line."""
    import anthropic_otel

    telemetry = overhead.Telemetry()
    anthropic_otel.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    run = overhead.scenario_runner(scenario)
    for _ in range(300):
        run()
    start = time.perf_counter()
    timed_loop(run, calls)
    print(f"{(time.perf_counter() - start) / calls * 1e6:.1f}")


def timed_loop(run: Callable[[], None], calls: int) -> None:
    """The frame that marks the samples of the timed calls."""
    for _ in range(calls):
        run()


def _package(path: str) -> str:
    if "/anthropic_otel/" in path:
        return "anthropic_otel"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/benchmarks/" in path:
        return "benchmark"
    return "stdlib"


def spy_summary(raw: Path, per_call_us: float) -> str:
    """Buckets py-spy's raw samples by who did the work: the SDK, our code, the OTel SDK under our code, wrapt."""
    buckets: dict[str, int] = {}
    ours: dict[str, int] = {}
    otel_by_caller: dict[str, int] = {}
    in_loop = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [(frame.rpartition(" (")[0], frame.rpartition(" (")[2].rsplit(":", 1)[0])
                  for frame in stack.split(";")]
        count = int(count_text)
        looped = any(name == "timed_loop" for name, _ in frames)
        packages = [_package(path) for _, path in frames]
        if not looped:
            if any(name == "BatchProcessor._export" for name, _ in frames):  # not its waits
                buckets["OTel span export thread (BatchSpanProcessor)"] = buckets.get(
                    "OTel span export thread (BatchSpanProcessor)", 0) + count
            continue
        in_loop += count
        owner = next((i for i in range(len(frames) - 1, -1, -1) if packages[i] not in ("stdlib", "benchmark")), None)
        if owner is None:
            bucket = "benchmark loop"
        elif packages[owner] in SDK_PACKAGES:
            bucket = "anthropic SDK + transport (the bare work)"
        elif packages[owner] == "anthropic_otel":
            bucket = "anthropic-otel's own code"
            function = frames[owner][0]
            ours[function] = ours.get(function, 0) + count
        elif packages[owner] == "opentelemetry":
            bucket = "OpenTelemetry SDK, called by anthropic-otel"
            caller = next((frames[i][0] for i in range(owner, -1, -1) if packages[i] == "anthropic_otel"), "?")
            top = next((frames[i][0] for i in range(len(frames)) if packages[i] == "opentelemetry"), "?")
            otel_by_caller[f"{caller} -> {top}"] = otel_by_caller.get(f"{caller} -> {top}", 0) + count
        else:
            bucket = packages[owner]
        buckets[bucket] = buckets.get(bucket, 0) + count
    if not in_loop:
        return "py-spy recorded no sample of the timed loop"

    def us(count: int) -> str:
        return f"{count / in_loop * per_call_us:.1f}"

    out = [f"py-spy, {in_loop:,} samples of the timed loop ({per_call_us:.0f} µs per call under py-spy); µs per call "
           "= share of the samples x that", "", "| who | samples | µs per call |", "|---|---|---|"]
    for bucket, count in sorted(buckets.items(), key=lambda item: -item[1]):
        out.append(f"| {bucket} | {count / in_loop:.1%} | {us(count)} |")
    out += ["", "| OpenTelemetry SDK work, by our caller -> OTel entry point | µs per call |", "|---|---|"]
    for name, count in sorted(otel_by_caller.items(), key=lambda item: -item[1])[:12]:
        out.append(f"| `{name}` | {us(count)} |")
    out += ["", "| anthropic-otel function (self time) | µs per call |", "|---|---|"]
    for name, count in sorted(ours.items(), key=lambda item: -item[1])[:12]:
        out.append(f"| `{name}` | {us(count)} |")
    return "\n".join(out)


def py_spy(tools: Path | None, scenario: str, calls: int, rate: int = 200) -> str:
    """py-spy in its default blocking mode (consistent stacks; each sample pauses the process briefly), sampling
    only the thread that holds the GIL, so waiting threads count for nothing."""
    import shutil
    import subprocess

    spy = shutil.which("py-spy") or (str(tools / "bin" / "py-spy") if tools else None)
    if spy is None or not Path(spy).exists():
        return "py-spy is not installed (pip install py-spy, or --tools DIR)"
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "raw.txt"
        completed = subprocess.run(
            [spy, "record", "--gil", "--rate", str(rate), "--format", "raw", "--full-filenames",
             "--output", str(raw), "--", sys.executable, str(Path(__file__).resolve()), "--spy-target", scenario,
             "--calls", str(calls)],
            capture_output=True, text=True, check=False)
        if completed.returncode != 0 or not raw.exists():
            return f"py-spy failed: {completed.stderr[-2000:]}"
        lines = [line for line in completed.stdout.splitlines() if line.strip() and not line.startswith("py-spy>")]
        per_call = float(lines[-1])
        return f"### py-spy: {scenario}, {calls:,} calls\n\n" + spy_summary(raw, per_call)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pyinstrument", action="store_true", help="also profile with pyinstrument")
    parser.add_argument("--py-spy", action="store_true", help="also sample with py-spy and bucket the samples")
    parser.add_argument("--cprofile", action="store_true", help="also a cProfile table of our own work")
    parser.add_argument("--tools", type=Path, help="a directory holding pyinstrument / py-spy (pip install --target)")
    parser.add_argument("--spy-target", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spy_target:
        spy_target(args.spy_target, args.calls)
        return 0

    rows = components()
    try:
        rows += own_python()
    except Exception as error:  # the internals moved
        rows.append(("anthropic-otel minus floor", f"n/a ({type(error).__name__}: {error})"[:100]))
    print("| piece (best of 7, µs per call) | µs |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if args.cprofile:
        print()
        print(breakdown())
    if args.pyinstrument:
        print()
        print(profile(args.tools))
    if args.py_spy:
        for scenario, calls in (("create", 20000), ("stream50", 5000), ("helper50", 2500)):
            print()
            print(py_spy(args.tools, scenario, calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
