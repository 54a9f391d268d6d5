"""docs/telemetry.md is the contract, and it stays true: compared with the names the code defines, both ways.

- Every name in `telemetry/names.py` and `telemetry/series.py`, every recorded series and every alert appears
  in one of the document's tables (a new name fails here until it is documented; the message says what to add).
- Every backticked telemetry name in the document's tables exists in the code (no stale or misspelt name).
- Every instrument the package creates has a row with its real kind and unit, and the Prometheus series its
  name, kind and unit translate to; `series.py` agrees.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from _tools import ROOT
from anthropic_otel.ops import rules
from anthropic_otel.telemetry import names, series

DOC = ROOT / "docs" / "telemetry.md"
TEXT = DOC.read_text(encoding="utf-8")
SRC = ROOT / "src" / "anthropic_otel"
# Names emitted as string literals outside names.py (file where the literal is); move them into names.py.
LITERALS = {"anthropic_otel.attempt.number": SRC / "instrumentation" / "call.py"}
# names.py constants the document may mention in its prose rather than in a table.
PROSE = {"SCOPE"}
# What an instrument-creating call of the OpenTelemetry metrics API makes, in the document's words.
KINDS = {
    "create_histogram": "histogram",
    "create_counter": "counter",
    "create_up_down_counter": "up-down counter",
    "create_gauge": "gauge",
    "create_observable_counter": "counter (observable)",
    "create_observable_up_down_counter": "up-down counter (observable)",
    "create_observable_gauge": "gauge (observable)",
}
# A telemetry name as the tables write one: attribute, metric, series or label, recorded series, alert.
NAME = re.compile(r"^(?:(?:gen_ai|anthropic|server|error|http)[._][\w.]+|[a-z_]+:[\w:]+|Anthropic[A-Z]\w+)$")


@dataclass(frozen=True)
class Row:
    section: str
    header: tuple[str, ...]
    cells: tuple[str, ...]

    def names(self) -> set[str]:
        return {token for cell in self.cells for token in re.findall(r"`([^`]+)`", cell)}


def _rows(text: str) -> list[Row]:
    """Every body row of every table, with the heading above it and the table's header."""
    rows: list[Row] = []
    section, header = "", ()
    for line in text.splitlines():
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        if not line.startswith("|"):
            header = ()
            continue
        cells = tuple(cell.strip() for cell in line.strip().strip("|").split("|"))
        if not header:
            header = cells
        elif not set("".join(cells)) <= set("-: "):
            rows.append(Row(section, header, cells))
    return rows


ROWS = _rows(TEXT)
IN_TABLES = {name for row in ROWS for name in row.names()}


def _spelled(value: str, where: set[str]) -> bool:
    """`value` as a whole backticked token, or as the first word of one (span names: `chat {model}`)."""
    return value in where or any(token.startswith(value + " ") for token in where)


def _constants(module: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in vars(module).items():
        if not name.isupper():
            continue
        if isinstance(value, str):
            found[name] = value
        elif isinstance(value, tuple) and all(isinstance(item, str) for item in value):
            found.update({f"{name}[{i}]": item for i, item in enumerate(value)})
    return found


def _where(constant: str) -> str:
    if constant.startswith("M_"):
        return "a row in the table under 'Metric instruments' (or the wrapper's instrument table)"
    if constant.endswith("_EVENT"):
        return "a row in the table under 'Span events' (or the wrapper's table)"
    if constant.startswith(("OP_", "PROVIDER_", "TOKEN_", "RATELIMIT_RESOURCES", "NONE", "OTHER", "FINISH_")):
        return "the table under 'Label values'"
    if constant.endswith("_PREFIX"):
        return "the table under 'Spans'"
    return "a row in the table under 'Span attributes' (attribute, type, meaning) or the wrapper's table"


# -- code -> document -----------------------------------------------------------------------------

def test_every_name_in_names_py_is_documented() -> None:
    missing = [f"telemetry/names.py {constant} = {value!r}: add `{value}` to docs/telemetry.md, {_where(constant)}"
               for constant, value in _constants(names).items()
               if not _spelled(value, IN_TABLES) and not (constant in PROSE and f"`{value}`" in TEXT)]
    assert not missing, "\n".join(missing)


def test_every_prometheus_name_in_series_py_is_documented() -> None:
    def where(value: str) -> str:
        if value in _labels():
            return "the labels table under 'Prometheus series and labels'"
        return "the 'Prometheus series' column of its instrument's row"

    missing = [f"telemetry/series.py {constant} = {value!r}: add `{value}` to docs/telemetry.md, in {where(value)}"
               for constant, value in _constants(series).items() if value not in IN_TABLES]
    assert not missing, "\n".join(missing)


def test_every_recorded_series_and_alert_is_documented() -> None:
    missing = [f"recording rule {name}: add a row `{name}` | what it records, to the table under 'Recording rules "
               "and alerts' of docs/telemetry.md" for name in rules.recording_names() if name not in IN_TABLES]
    missing += [f"alert {name}: add a row `{name}` | when it fires, to the alerts table under 'Recording rules "
                "and alerts' of docs/telemetry.md" for name in rules.alert_names() if name not in IN_TABLES]
    assert not missing, "\n".join(missing)


# -- document -> code -----------------------------------------------------------------------------

def _labels() -> set[str]:
    """Prometheus label names: every attribute name with `.` turned into `_`."""
    return {value.replace(".", "_") for constant, value in _constants(names).items() if not constant.startswith("M_")}


def test_every_name_in_the_tables_exists_in_the_code() -> None:
    known = (set(_constants(names).values()) | set(_constants(series).values()) | _labels() | set(LITERALS)
             | set(rules.recording_names()) | set(rules.alert_names()))
    unknown = sorted({f"`{token}` (table under '{row.section}')" for row in ROWS for token in row.names()
                      if NAME.match(token) and token not in known})
    assert not unknown, ("docs/telemetry.md names these in its tables, but the code defines no such name; fix the "
                         "spelling or define it in telemetry/names.py (series.py for Prometheus names):\n"
                         + "\n".join(unknown))


def test_names_emitted_as_literals_are_really_emitted() -> None:
    for value, path in LITERALS.items():
        strings = {node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        assert value in strings, f"{value!r} is no longer in {path}: drop it from LITERALS (and the document)"


def test_the_name_checks_can_fail() -> None:
    assert NAME.match("anthropic_otel.made.up") and NAME.match("model:x:rate5m") and NAME.match("AnthropicMadeUp")
    assert not NAME.match("end_turn") and not NAME.match("aws.bedrock") and not NAME.match("chat {model}")
    rows = _rows("## T\n\n| a | b |\n|---|---|\n| `x.y` | `z` |\n\nprose `w`\n")
    assert rows == [Row("T", ("a", "b"), ("`x.y`", "`z`"))] and rows[0].names() == {"x.y", "z"}


# -- instruments: kind, unit and series as the code creates them ----------------------------------

@dataclass(frozen=True)
class Instrument:
    name: str
    kind: str
    unit: str

    @property
    def series(self) -> str:
        """The Prometheus name the exporter and the Collector give it (the translation in the document)."""
        base = self.name.replace(".", "_") + ("_seconds" if self.unit == "s" else "")
        return base + ("_total" if self.kind.startswith("counter") else "")

    def row(self) -> str:
        return f"| `{self.name}` | {self.kind} | `{self.unit}` | `{self.series}` | attributes beyond the common ones |"


class _RecordingMeter:
    """A real SDK meter that also notes every instrument asked of it (name, kind, unit)."""

    def __init__(self, meter: Any, created: list[Instrument]) -> None:
        self._meter = meter
        self._created = created

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self._meter, attr)
        if attr not in KINDS:
            return method

        def create(*args: Any, **kwargs: Any) -> Any:
            bound = inspect.signature(method).bind(*args, **kwargs).arguments
            self._created.append(Instrument(bound["name"], KINDS[attr], bound.get("unit", "")))
            return method(*args, **kwargs)
        return create


class _RecordingProvider:
    def __init__(self, provider: MeterProvider, created: list[Instrument]) -> None:
        self._provider = provider
        self._created = created

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        return _RecordingMeter(self._provider.get_meter(*args, **kwargs), self._created)


def _created(make: Callable[[Any], object]) -> list[Instrument]:
    created: list[Instrument] = []
    provider = MeterProvider()
    try:
        make(_RecordingProvider(provider, created))
    finally:
        provider.shutdown()
    return created


def _instrumentation_instruments() -> list[Instrument]:
    from anthropic_otel.instrumentation.metrics import Metrics

    return _created(lambda provider: Metrics(provider.get_meter(names.SCOPE), (), 100, {"day": 1.0, "month": 10.0}))


def _wrapper_instruments() -> list[Instrument]:
    pytest.importorskip("tenacity", reason="pip install -e '.[resilience]'")
    from anthropic_otel.resilience._telemetry import Telemetry

    return _created(lambda provider: Telemetry(meter_provider=provider))


def _agent_instruments() -> list[Instrument]:
    from anthropic_otel.agents.metrics import AgentMetrics
    from anthropic_otel.instrumentation.metrics import Metrics

    def make(provider: Any) -> object:  # the chat instruments come from a meter of their own (checked above)
        return AgentMetrics(provider.get_meter(names.SCOPE), Metrics(MeterProvider().get_meter(names.SCOPE), (), 100))

    return _created(make)


def _documented() -> dict[str, Row]:
    return {row.cells[0].strip("`"): row for row in ROWS if row.header[:1] == ("instrument",)}


def _series_py() -> Iterator[tuple[str, str]]:
    """(instrument name, series.py constant) for each `X = _fn(n.M_...)` line of series.py."""
    for node in ast.parse((SRC / "telemetry" / "series.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Call):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            argument = node.value.args[0] if node.value.args else None
            if isinstance(target, ast.Name) and isinstance(argument, ast.Attribute) and argument.attr.startswith("M_"):
                yield getattr(names, argument.attr), target.id


@pytest.mark.parametrize("instruments", [_instrumentation_instruments, _wrapper_instruments, _agent_instruments],
                         ids=["instrumentation", "resilience", "agents"])
def test_every_instrument_has_its_row_with_kind_unit_and_series(instruments: Callable[[], list[Instrument]]) -> None:
    created = instruments()
    assert len(created) >= (6 if instruments is _agent_instruments else 7)
    documented = _documented()
    problems = []
    for instrument in created:
        row = documented.get(instrument.name)
        if row is None:
            problems.append(f"{instrument.name}: add this row to an instrument table of docs/telemetry.md:\n"
                            f"  {instrument.row()}")
            continue
        kind, unit, prometheus = row.cells[1], row.cells[2], row.cells[3]
        if (kind, unit.strip("`"), prometheus.strip("`")) != (instrument.kind, instrument.unit, instrument.series):
            problems.append(f"{instrument.name}: its row says {kind} / {unit} / {prometheus}; the code creates:\n"
                            f"  {instrument.row()}")
    assert not problems, "\n".join(problems)


def test_every_documented_instrument_is_created_and_series_py_agrees() -> None:
    created = {instrument.name: instrument for instrument in _instrumentation_instruments()}
    created.update({instrument.name: instrument for instrument in _agent_instruments()})
    wrapper = importlib.util.find_spec("tenacity") is not None
    if wrapper:
        created.update({instrument.name: instrument for instrument in _wrapper_instruments()})
    stale = [name for name in _documented()
             if name not in created and (wrapper or not name.startswith("anthropic_otel.resilience."))]
    assert not stale, f"docs/telemetry.md documents instruments the code does not create: {stale}"
    pairs = list(_series_py())
    assert len(pairs) >= 20, "series.py no longer reads as `X = _fn(n.M_...)`: update _series_py()"
    for name, constant in pairs:
        if name in created:
            assert getattr(series, constant) == created[name].series, (
                f"series.py {constant} = {getattr(series, constant)!r}, but {name} ({created[name].kind}, unit "
                f"{created[name].unit!r}) is exported as {created[name].series!r}")
