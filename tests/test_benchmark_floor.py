"""The benchmark's bare-OpenTelemetry floor makes the same span and histogram records as the package.

`benchmarks/overhead.py` reports our own Python as ours minus that floor; the number means something only while
the floor does exactly what we do for the same call, so a change to the spans or records we make fails here.
"""

from __future__ import annotations

import sys

from _tools import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import floor
import overhead


def test_floor_makes_the_same_span_and_records_as_ours() -> None:
    scenarios = list(overhead.SCENARIOS)
    result = floor.check(scenarios, overhead.scenario_client, overhead.REQUEST)
    assert result["problems"] == []
    assert result["compared"] == len(scenarios)
    assert result["histogram_records"] > 0
