"""`anthropic-otel demo`: a realistic mixed workload, instrumented, with a live view and a summary.

By default it runs against the package's fake Anthropic server, so it needs no API key and costs nothing:
sync, async and streamed calls, prompt-cache writes then reads, `max_tokens` truncations, a 429 burst and a
529 burst, two models and two `app.feature` values, and short tool-runner runs (agent runs with two tools, one
of which fails every third call). The numbers it shows are read from the package's own per-call log records
(`anthropic_otel.requests`), so the demo shows exactly what the package measured.
It serves the Prometheus endpoint while it runs and exports OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6")
UNPRICED_MODEL = "claude-preview-next"  # a model newer than the price data: no cost, counted as unpriced
FEATURES = ("summarize", "chat")
FEATURE_ATTRIBUTE = "app.feature"
DEMO_BUDGETS = {"day": 5, "month": 100}  # small, so the budget panels and alerts have something to show
# Long enough to be cacheable on every model; "summarize" caches it for an hour, "chat" for 5 minutes.
_SYSTEM_TEXT = "You are the demo assistant. Answer briefly and precisely. " * 500
_BURSTS = ((0.35, 0.45, "rate_limit"), (0.65, 0.72, "overloaded"))  # (from, to, scenario) as run fractions
_BURST_CYCLE_S = 120.0  # a long run repeats the burst pattern every two minutes
_SAMPLES = 20_000  # latency samples kept per group: percentiles are over the most recent calls
_AGENT_EVERY = 20  # every 20th call of a worker is followed by a tool-runner run (fake server only)
# What the fake server answers to each turn of a run: call lookup_order (the second tool), then get_weather (a
# thread's later requests carry no tools, so the fake names its default, get_weather), then answer.
_AGENT_TURNS = ("tool_use:tool_index=1,delay_ms=15", "tool_use:delay_ms=15", "normal:delay_ms=20")
_AGENT_MAX_ITERATIONS = 5
_ORDER_TIMEOUT = "order service timed out (demo)"
_RUNNER_LOG = "anthropic.lib.tools._beta_runner"  # where the SDK logs a tool's exception, with its traceback
_LIVE_MODEL = "claude-haiku-4-5"
_LIVE_CALLS = 12
_LIVE_MAX_TOKENS = 64


def _percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Group:
    """What the package recorded for one (model, feature)."""

    calls: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    stop_reasons: Counter[str] = field(default_factory=Counter)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    ttfc: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    tokens: Counter[str] = field(default_factory=Counter)
    cost: float = 0.0
    savings: float = 0.0
    unpriced: int = 0
    stream_latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))

    def add(self, record: dict[str, Any]) -> None:
        self.calls += 1
        if record.get("error_type"):
            self.errors[record["error_type"]] += 1
        if record.get("stop_reason"):
            self.stop_reasons[record["stop_reason"]] += 1
        latency = record.get("latency_s")
        if isinstance(latency, float):
            (self.stream_latencies if record.get("stream") else self.latencies).append(latency)
        if isinstance(record.get("time_to_first_chunk_s"), float):
            self.ttfc.append(record["time_to_first_chunk_s"])
        for name, key in (("input", "input_tokens"), ("output", "output_tokens"),
                          ("cache_read", "cache_read_input_tokens"), ("cache_write", "cache_creation_input_tokens")):
            self.tokens[name] += int(record.get(key) or 0)
        if record.get("cost_usd") is None and not record.get("error_type"):
            self.unpriced += 1
        self.cost += record.get("cost_usd") or 0.0
        self.savings += record.get("cache_savings_usd") or 0.0

    def merge(self, other: Group) -> None:
        self.calls += other.calls
        self.errors.update(other.errors)
        self.stop_reasons.update(other.stop_reasons)
        self.latencies.extend(other.latencies)
        self.stream_latencies.extend(other.stream_latencies)
        self.ttfc.extend(other.ttfc)
        self.tokens.update(other.tokens)
        self.cost += other.cost
        self.savings += other.savings
        self.unpriced += other.unpriced

    @property
    def all_latencies(self) -> list[float]:
        return [*self.latencies, *self.stream_latencies]

    @property
    def cache_hit_ratio(self) -> float | None:
        total = self.tokens["input"] + self.tokens["cache_read"] + self.tokens["cache_write"]
        return self.tokens["cache_read"] / total if total else None

    @property
    def truncation_ratio(self) -> float | None:
        finished = sum(self.stop_reasons.values())
        return self.stop_reasons["max_tokens"] / finished if finished else None


class Collector(logging.Handler):
    """Groups the package's per-call log records by model and feature."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.groups: dict[tuple[str, str], Group] = {}
        self.started = time.monotonic()
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        data = getattr(record, "anthropic_otel", None)
        if not isinstance(data, dict) or data.get("operation") != "chat":
            return
        key = (str(data.get("model")), str((data.get("attributes") or {}).get(FEATURE_ATTRIBUTE, "-")))
        with self._guard:
            self.groups.setdefault(key, Group()).add(data)

    def total(self) -> Group:
        total = Group(latencies=deque(), ttfc=deque(), stream_latencies=deque())
        with self._guard:
            for group in self.groups.values():
                total.merge(group)
        return total

    def snapshot(self) -> list[tuple[tuple[str, str], Group]]:
        with self._guard:
            return sorted(self.groups.items())


# -- the workload -------------------------------------------------------------------------------------


@dataclass
class Call:
    kind: str  # "create", "stream", "async_create", "async_stream"
    model: str
    feature: str
    params: dict[str, Any]
    headers: dict[str, str]


class Workload:
    """Decides each call: kind, model, feature, caching, truncation and the fault bursts over time."""

    def __init__(self, seed: int = 7, live: bool = False) -> None:
        self.rng = random.Random(seed)
        self.live = live
        self.i = 0

    def next(self, fraction: float, kinds: Sequence[str]) -> Call:
        rng = self.rng
        self.i += 1
        i = self.i
        model = _LIVE_MODEL if self.live else MODELS[i % len(MODELS)] if i % 97 else UNPRICED_MODEL
        feature = FEATURES[(i // 2) % len(FEATURES)]
        kind = kinds[(i // 4) % len(kinds)]  # independent of model (i % 2) and feature ((i // 2) % 2)
        headers: dict[str, str] = {}
        max_tokens = _LIVE_MAX_TOKENS if self.live else 200
        if not self.live:
            wanted = rng.randint(10, 60)
            delay = rng.randint(300, 700) if rng.random() < 0.02 else rng.randint(5, 60)
            headers = {"x-fake-output-tokens": str(wanted), "x-fake-delay-ms": str(delay)}
            if rng.random() < 0.1:
                max_tokens = max(1, wanted - rng.randint(1, 9))  # truncated at max_tokens
            for start, end, scenario in _BURSTS:
                if start <= fraction < end and rng.random() < 0.6:
                    headers["x-fake-scenario"] = scenario
            if "x-fake-scenario" not in headers and rng.random() < 0.01:
                headers["x-fake-scenario"] = "server_error"
        params: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                                  "messages": [{"role": "user", "content": f"Demo question {i}: what is {i} * 7?"}]}
        if i % 3 == 0:
            control: dict[str, str] = {"type": "ephemeral"}
            if feature == "summarize":
                control["ttl"] = "1h"
            params["system"] = [{"type": "text", "text": _SYSTEM_TEXT, "cache_control": control}]
        return Call(kind, model, feature, params, headers)


async def _drive(anthropic: Any, client: Any, aclient: Any, call: Call) -> None:
    import anthropic_otel

    def sync() -> None:
        with anthropic_otel.attributes(**{FEATURE_ATTRIBUTE: call.feature}):
            if call.kind == "stream":
                with client.messages.stream(**call.params, extra_headers=call.headers) as stream:
                    for _ in stream.text_stream:
                        pass
            else:
                client.messages.create(**call.params, extra_headers=call.headers)

    try:
        if call.kind in ("create", "stream"):
            await asyncio.to_thread(sync)
            return
        with anthropic_otel.attributes(**{FEATURE_ATTRIBUTE: call.feature}):
            if call.kind == "async_stream":
                stream = await aclient.messages.create(**call.params, extra_headers=call.headers, stream=True)
                async for _ in stream:
                    pass
            else:
                await aclient.messages.create(**call.params, extra_headers=call.headers)
    except anthropic.APIError:
        pass  # counted by the package, from its own records


_TURNS: ContextVar[list[str] | None] = ContextVar("anthropic_otel_demo_turns", default=None)


def _next_turn(request: Any) -> None:
    """The agent client's httpx request hook: which answer of its run the fake server gives this request."""
    turns = _TURNS.get()
    if turns:
        request.headers["x-fake-scenario"] = turns.pop(0)


class _DemoToolFailure(logging.Filter):
    """Drops the SDK's log of the demo tool's deliberate failure: its traceback would fill the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, TimeoutError) and str(error) == _ORDER_TIMEOUT)


class Agents:
    """Short tool-runner runs against the fake server, on a client of their own (its hook scripts each turn)."""

    def __init__(self, anthropic: Any, base_url: str) -> None:
        from anthropic.lib.tools import beta_tool

        self.anthropic = anthropic
        self._quiet = _DemoToolFailure()
        logging.getLogger(_RUNNER_LOG).addFilter(self._quiet)
        self.client = anthropic.Anthropic(base_url=base_url, api_key="demo-key", max_retries=0,
                                          http_client=anthropic.DefaultHttpxClient(
                                              event_hooks={"request": [_next_turn]}))
        self.runs = 0
        self.failed = 0  # runs that raised
        self.tool_errors = 0
        self._lookups = 0
        self._lock = threading.Lock()

        @beta_tool
        def get_weather(location: str) -> str:
            """The weather in a city."""
            return f"sunny in {location}"

        @beta_tool
        def lookup_order(location: str) -> str:
            """The status of the order shipped to a city (the order service times out every third call)."""
            with self._lock:
                self._lookups += 1
                fails = self._lookups % 3 == 0
                self.tool_errors += fails
            if fails:
                raise TimeoutError(_ORDER_TIMEOUT)
            return "shipped"

        self.tools = [get_weather, lookup_order]

    def run(self, n: int) -> None:
        """One run of three iterations; a failure is counted by the package (and here), never raised."""
        import anthropic_otel

        token = _TURNS.set(list(_AGENT_TURNS))
        try:
            with anthropic_otel.attributes(**{FEATURE_ATTRIBUTE: FEATURES[(n // 2) % len(FEATURES)]}):
                self.client.beta.messages.tool_runner(
                    model=MODELS[n % len(MODELS)], max_tokens=200, max_iterations=_AGENT_MAX_ITERATIONS,
                    tools=self.tools, messages=[{"role": "user", "content": f"Demo order {n}: where is it?"}],
                ).until_done()
        except self.anthropic.APIError:
            with self._lock:
                self.failed += 1
        finally:
            _TURNS.reset(token)
            with self._lock:
                self.runs += 1

    def close(self) -> None:
        self.client.close()
        logging.getLogger(_RUNNER_LOG).removeFilter(self._quiet)


async def _run_workload(anthropic: Any, client: Any, aclient: Any, workload: Workload, duration: float,
                        workers: int, max_calls: int | None, stop: threading.Event,
                        agents: Agents | None = None) -> None:
    started = time.monotonic()
    issued = 0
    kinds = ("create", "stream", "async_create", "async_stream")

    async def worker() -> None:
        nonlocal issued
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if elapsed >= duration or (max_calls is not None and issued >= max_calls):
                return
            issued += 1
            n = issued
            cycle = min(duration, _BURST_CYCLE_S)
            await _drive(anthropic, client, aclient, workload.next((elapsed % cycle) / cycle, kinds))
            if agents is not None and n % _AGENT_EVERY == 0:
                await asyncio.to_thread(agents.run, n // _AGENT_EVERY)
            if max_calls is not None:
                await asyncio.sleep(1.0)  # live: gentle on the real API

    await asyncio.gather(*(worker() for _ in range(workers)))


# -- display -------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _progress_line(collector: Collector, cost: Decimal, duration: float) -> str:
    total = collector.total()
    elapsed = max(1e-9, time.monotonic() - collector.started)
    tokens = total.tokens["input"] + total.tokens["output"] + total.tokens["cache_read"] + total.tokens["cache_write"]
    lat = total.all_latencies
    return (f"{min(elapsed, duration):5.1f}/{duration:.0f}s  calls {total.calls}  errors {sum(total.errors.values())}"
            f"  p50 {_ms(_percentile(lat, 0.5))}  p99 {_ms(_percentile(lat, 0.99))}"
            f"  {tokens / elapsed:,.0f} tokens/s  spend ${cost:.4f}")


SUMMARY_COLUMNS = ("model", "feature", "calls", "errors", "p50", "p95", "p99", "ttft p50", "ttft p99", "input",
                   "output", "cache read", "cache write", "cost $", "cache hit", "saved $", "truncated")


def summary_rows(collector: Collector) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    groups = collector.snapshot()
    total = collector.total()
    for (model, feature), group in [*groups, (("all", ""), total)]:
        errors = " ".join(f"{name.removesuffix('_error')}:{count}" for name, count in sorted(group.errors.items()))
        lat = group.all_latencies
        rows.append((
            model, feature, str(group.calls), errors, _ms(_percentile(lat, 0.5)), _ms(_percentile(lat, 0.95)),
            _ms(_percentile(lat, 0.99)), _ms(_percentile(group.ttfc, 0.5)), _ms(_percentile(group.ttfc, 0.99)),
            f"{group.tokens['input']:,}", f"{group.tokens['output']:,}", f"{group.tokens['cache_read']:,}",
            f"{group.tokens['cache_write']:,}", f"{group.cost:.4f}", _pct(group.cache_hit_ratio),
            f"{group.savings:.4f}", f"{group.stop_reasons['max_tokens']} ({_pct(group.truncation_ratio)})",
        ))
    return rows


def _plain_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [columns, *rows]) for i in range(len(columns))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [columns, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


SUMMARY_WIDTH = 100  # the default summary's lines never exceed this; `--wide` prints the full table instead


def summary_blocks(rows: Sequence[Sequence[str]], width: int = SUMMARY_WIDTH) -> str:
    """The summary as one short block per model and feature (and one for all), plain text within `width`.

    Same numbers as the full table (`summary_rows`), grouped by what they measure instead of one wide row.
    """
    import textwrap

    blocks = []
    for row in rows:
        cell = dict(zip(SUMMARY_COLUMNS, row, strict=True))
        title = "all models and features" if cell["model"] == "all" else f"{cell['model']} / {cell['feature']}"
        lines = [
            f"{title}: {cell['calls']} calls, truncated {cell['truncated']}",
            f"errors {cell['errors'] or 'none'}",
            f"latency p50 {cell['p50']}, p95 {cell['p95']}, p99 {cell['p99']}; time to first token "
            f"p50 {cell['ttft p50']}, p99 {cell['ttft p99']}",
            f"tokens input {cell['input']}, output {cell['output']}, cache read {cell['cache read']}, "
            f"cache write {cell['cache write']} (cache hit {cell['cache hit']})",
            f"cost ${cell['cost $']} (cache saved ${cell['saved $']})",
        ]
        wrapped = textwrap.wrap(lines[0], width, subsequent_indent="    ", break_on_hyphens=False)
        for line in lines[1:]:
            wrapped += textwrap.wrap(line, width, initial_indent="  ", subsequent_indent="    ",
                                     break_on_hyphens=False)
        blocks.append("\n".join(wrapped))
    return "\n\n".join(blocks)


class Display:
    """A live panel on a terminal (rich), a plain line every few seconds otherwise; never escape codes in a pipe."""

    def __init__(self, out: TextIO, collector: Collector, cost: Callable[[], Decimal], duration: float) -> None:
        self.out = out
        self.collector = collector
        self.cost = cost
        self.duration = duration
        self.console: Any = None
        self._live: Any = None
        if not (hasattr(out, "isatty") and out.isatty()):
            return  # in a pipe everything is plain print(): no escapes, no box drawing
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError:  # the demo extra is not installed: plain output
            return
        self.console = Console(file=out, highlight=False)
        self._live = Live(self._panel(), console=self.console, refresh_per_second=4, transient=True)

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _panel(self) -> Any:
        from rich.table import Table

        table = Table(title="anthropic-otel demo (live)", show_header=True)
        for column in ("model", "feature", "calls", "errors", "p50", "p99", "cost $"):
            table.add_column(column, justify="left" if column in ("model", "feature") else "right")
        for (model, feature), group in self.collector.snapshot():
            lat = group.all_latencies
            table.add_row(model, feature, str(group.calls), str(sum(group.errors.values())),
                          _ms(_percentile(lat, 0.5)), _ms(_percentile(lat, 0.99)), f"{group.cost:.4f}")
        table.caption = _progress_line(self.collector, self.cost(), self.duration)
        return table

    async def run(self, stop: threading.Event) -> None:
        if self._live is not None:
            with self._live:
                while not stop.is_set():
                    self._live.update(self._panel())
                    await asyncio.sleep(0.25)
            return
        while not stop.is_set():
            for _ in range(20):
                if stop.is_set():
                    return
                await asyncio.sleep(0.25)
            self.print("  " + _progress_line(self.collector, self.cost(), self.duration))

    def summary(self, rows: list[tuple[str, ...]], wide: bool = False) -> None:
        """Blocks within 100 columns by default; `wide`: the full table (rich on a terminal, plain in a pipe)."""
        self.print("Summary by model and feature")
        if not wide:
            self.print(summary_blocks(rows))
        elif self.console is not None:
            from rich.table import Table

            table = Table()
            for column in SUMMARY_COLUMNS:
                table.add_column(column, justify="left" if column in ("model", "feature", "errors") else "right",
                                 no_wrap=True)
            for row in rows:
                table.add_row(*row)
            # Asked for in full: as wide as the table needs, never folded to the terminal's width.
            console = self.console
            terminal = console.width
            console.width = max(terminal, console.measure(table, options=console.options.update_width(10_000)).maximum)
            try:
                console.print(table, crop=False)
            finally:
                console.width = terminal
        else:
            self.print(_plain_table(SUMMARY_COLUMNS, rows))


# -- the command --------------------------------------------------------------------------------------


def _providers(prometheus_port: int, out: TextIO) -> None:
    """Meter provider with the Prometheus endpoint (and OTLP when configured); tracer provider for OTLP."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from .telemetry.setup import _otlp_exporter, prometheus_host, prometheus_reader

    os.environ.setdefault("OTEL_SERVICE_NAME", "anthropic-otel-demo")
    resource = Resource.create()
    readers: list[MetricReader] = []
    if prometheus_port:
        host = prometheus_host("127.0.0.1")  # loopback unless OTEL_EXPORTER_PROMETHEUS_HOST says otherwise
        try:
            readers.append(prometheus_reader(host, prometheus_port))
            print(f"Prometheus metrics: http://{host}:{prometheus_port}/metrics", file=out)
        except (OSError, ValueError) as error:
            print(f"Prometheus metrics: port {prometheus_port} unavailable ({error}); not served", file=out)
    tracer_provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        readers.append(PeriodicExportingMetricReader(_otlp_exporter("METRICS"), export_interval_millis=5000))
        tracer_provider.add_span_processor(BatchSpanProcessor(_otlp_exporter("TRACES")))
        print(f"OTLP export: {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}", file=out)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    trace.set_tracer_provider(tracer_provider)


def _live_estimate() -> Decimal:
    """The most the live workload can cost: every third call carries the cached system prompt (priced as a
    1-hour cache write, as if it always missed), the others a short question; all produce `max_tokens`."""
    from .cost.pricing import Pricer
    from .cost.usage import Usage

    pricer = Pricer()
    system = len(_SYSTEM_TEXT) // 4 + 50
    cached = pricer.cost(_LIVE_MODEL, "anthropic", Usage(input_tokens=50, cache_write=system, cache_write_1h=system,
                                                         output_tokens=_LIVE_MAX_TOKENS))
    plain = pricer.cost(_LIVE_MODEL, "anthropic", Usage(input_tokens=50, output_tokens=_LIVE_MAX_TOKENS))
    if cached is None or plain is None:
        return Decimal("NaN")
    with_system = -(-_LIVE_CALLS // 3)
    return with_system * cached.total + (_LIVE_CALLS - with_system) * plain.total


def run(duration: float, prometheus_port: int, out: TextIO, live: bool = False, workers: int = 4,
        alerts: Callable[[Collector], list[str]] | None = None, wide: bool = False) -> int:
    import anthropic

    import anthropic_otel
    from anthropic_otel.testing import FakeAnthropicServer

    if live and not os.environ.get("ANTHROPIC_API_KEY"):
        print("anthropic-otel demo --live needs ANTHROPIC_API_KEY", file=sys.stderr)
        return 2
    if live:
        print(f"Live API: at most {_LIVE_CALLS} calls to {_LIVE_MODEL} (max_tokens {_LIVE_MAX_TOKENS}); "
              f"estimated cost at most ${_live_estimate():.4f}", file=out)
    server = None if live else FakeAnthropicServer().start()
    try:
        return _run_started(anthropic, anthropic_otel, server, duration, prometheus_port, out, live, workers,
                            alerts, wide)
    finally:  # also on a Ctrl-C before the workload started: the caller reports it, the server goes
        if server is not None:
            server.stop()


def _run_started(anthropic: Any, anthropic_otel: Any, server: Any, duration: float, prometheus_port: int,
                 out: TextIO, live: bool, workers: int, alerts: Callable[[Collector], list[str]] | None,
                 wide: bool) -> int:
    """The demo once its server runs: workload, display, summary and alerts."""
    _providers(prometheus_port, out)
    collector = Collector()
    request_log = logging.getLogger("anthropic_otel.requests")
    request_log.addHandler(collector)
    request_log.setLevel(logging.INFO)
    request_log.propagate = False
    instrumentor = anthropic_otel.instrument(metric_attributes=[FEATURE_ATTRIBUTE], budgets=DEMO_BUDGETS)
    telemetry = instrumentor.telemetry
    assert telemetry is not None

    base_url = None if server is None else server.base_url
    key = None if live else "demo-key"
    client = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0)
    aclient = anthropic.AsyncAnthropic(base_url=base_url, api_key=key, max_retries=0)
    target = "the live Anthropic API" if live else f"the built-in fake Anthropic server at {base_url}"
    print(f"anthropic-otel demo: {target}", file=out, flush=True)

    def cost() -> Decimal:
        result: Decimal = telemetry.metrics.totals()["cost_total"]
        return result

    display = Display(out, collector, cost, duration)
    stop = threading.Event()
    workload = Workload(live=live)
    agents = None if server is None else Agents(anthropic, server.base_url)  # live: no agent runs

    async def main() -> None:
        # Printed once asyncio.run() handles SIGINT: from here on Ctrl-C ends with the summary so far.
        display.print(f"Running a mixed workload for {duration:.0f} s (Ctrl-C stops early with the summary so far)")
        shown = asyncio.ensure_future(display.run(stop))
        try:
            await _run_workload(anthropic, client, aclient, workload, duration, workers,
                                _LIVE_CALLS if live else None, stop, agents)
        finally:
            stop.set()
            await shown
            await aclient.close()

    interrupted = False
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
    if interrupted:
        display.print("Interrupted: the summary so far.")
    display.summary(summary_rows(collector), wide)
    totals = telemetry.metrics.totals()
    display.print(f"Spend ${totals['cost_total']:.6f} exactly (cache saved ${totals['cache_savings']:.6f}, "
                  f"cache write premium ${totals['cache_write_premium']:.6f});")
    display.print(f"budgets: day ${DEMO_BUDGETS['day']}, month ${DEMO_BUDGETS['month']}.")
    if agents is not None:
        display.print(f"Agent runs (tool runner): {agents.runs} runs, {agents.failed} failed, "
                      f"{agents.tool_errors} tool errors.")
    fired = (alerts or would_fire)(collector)
    display.print("Alerts of alerts/ whose condition this run met (default thresholds, without `for:`):")
    for alert in fired or ["none"]:
        display.print(f"  {alert}")
    request_log.removeHandler(collector)
    client.close()
    if agents is not None:
        agents.close()
    return 0


def would_fire(collector: Collector) -> list[str]:
    """The bundled alerts whose condition this run met, with the default thresholds of `anthropic-otel rules`.

    Judged on the whole run per model, without the `for:` durations (a demo is shorter than most of them);
    the alerts that compare against a baseline of a day (latency spike, cache collapse) are not judged.
    """
    from .ops.rules import RulesConfig

    config = RulesConfig()
    fired: list[str] = []
    models: dict[str, Group] = {}
    for (model, _), group in collector.snapshot():
        models.setdefault(model, Group(latencies=deque(), ttfc=deque(), stream_latencies=deque())).merge(group)

    def check(name: str, model: str, met: bool, detail: str) -> None:
        if met:
            fired.append(f"{name} ({model}: {detail})")

    for model, group in sorted(models.items()):
        enough = group.calls >= config.min_requests
        ratio = group.truncation_ratio
        check("AnthropicMaxTokensTruncationHigh", model,
              enough and ratio is not None and ratio > config.truncation.ratio, f"{_pct(ratio)} truncated")
        errors = sum(group.errors.values())
        check("AnthropicErrorRatioHigh", model, enough and errors / group.calls > config.errors.ratio,
              f"{errors / max(group.calls, 1):.1%} errors")
        p99 = _percentile(group.latencies, 0.99)
        p99_stream = _percentile(group.stream_latencies, 0.99)
        check("AnthropicLatencyP99High", model,
              (p99 or 0) > config.latency.p99_seconds or (p99_stream or 0) > config.latency.p99_stream_seconds,
              f"p99 {_ms(p99)}, streamed {_ms(p99_stream)}")
        limited = group.errors["rate_limit_error"]
        check("AnthropicRateLimited", model, limited > config.rate_limited.count, f"{limited} rate-limited calls")
        overloaded = group.errors["overloaded_error"]
        check("AnthropicOverloaded", model, overloaded > config.overloaded.count, f"{overloaded} overloaded calls")
        check("AnthropicUnpricedCalls", model, group.unpriced > 0, f"{group.unpriced} calls without a price")
    spend = float(collector.total().cost)
    elapsed = max(1.0, time.monotonic() - collector.started)
    for period, seconds_in_period in (("day", 86400), ("month", 30 * 86400)):
        budget = DEMO_BUDGETS[period]
        if spend > budget:
            fired.append(f"AnthropicBudgetExceeded ({period}: ${spend:.2f} of ${budget})")
        elif spend / elapsed * seconds_in_period > budget * config.budget.burn_factor:
            fired.append(f"AnthropicBudgetBurnRateHigh ({period}: ${spend / elapsed * seconds_in_period:,.0f} "
                         f"projected against ${budget})")
    return fired
