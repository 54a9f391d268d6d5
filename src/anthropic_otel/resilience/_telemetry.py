"""Deprecated module path: the wrapper's telemetry is `_metrics.ResilienceMetrics` (renamed so it does not collide
with the instrumentation's names). Kept for code that imported the old name."""

from __future__ import annotations

from ._metrics import ResilienceMetrics

Telemetry = ResilienceMetrics

__all__ = ["ResilienceMetrics", "Telemetry"]
