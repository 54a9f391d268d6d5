"""A bounded flush at interpreter exit for the providers this package created.

The SDK's own exit handlers shut the providers down one after the other, and each OTLP export waits up to its
timeout (10 s by default, retries included) for an endpoint that refuses or never answers: 12 to 16 s, up to
20-30 s, between an application's last call and its exit. Providers built by `setup` skip those handlers and
are shut down here instead, in parallel, for at most `budget` seconds: 1 s unless the user set an OTLP
timeout (`OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]TIMEOUT`, seconds as the Python exporters read it), which is
then the bound. A reachable Collector takes milliseconds; what is not delivered in time is dropped, with one
warning. Providers the application set up itself are never touched.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from typing import Any

from .exportlog import warn_unreachable

_log = logging.getLogger("anthropic_otel")

DEFAULT_BUDGET = 1.0
_TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                      "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT")

_lock = threading.Lock()
_providers: list[Any] = []
_exporters: list[Any] = []
_registered = False


def exit_budget() -> float:
    """Seconds the exit flush may take: the largest OTLP timeout the user set, else `DEFAULT_BUDGET`."""
    chosen: list[float] = []
    for variable in _TIMEOUT_VARIABLES:
        raw = os.environ.get(variable, "").strip()
        with contextlib.suppress(ValueError):
            if raw and float(raw) > 0:
                chosen.append(float(raw))
    return max(chosen) if chosen else DEFAULT_BUDGET


def own(provider: Any, exporters: list[Any]) -> None:
    """Shut `provider` (created with `shutdown_on_exit=False`) down at exit, within the budget."""
    global _registered
    with _lock:
        _providers.append(provider)
        _exporters.extend(exporters)
        if not _registered:
            atexit.register(shutdown_owned)
            _registered = True


def _shut(provider: Any) -> None:
    if getattr(provider, "_shutdown", False):  # a MeterProvider the application already shut down
        return
    try:
        provider.shutdown()
    except Exception as error:  # a reader that failed: telemetry must not fail the exit
        _log.debug("anthropic_otel: shutting down %s failed: %r", type(provider).__name__, error)


def shutdown_owned(budget: float | None = None) -> bool:
    """Shut our providers down in parallel within `budget` seconds; True when they all finished in time."""
    with _lock:
        providers, exporters = list(_providers), list(_exporters)
        _providers.clear()
        _exporters.clear()
    if not providers:
        return True
    seconds = exit_budget() if budget is None else budget
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=_shut, args=(provider,), name="anthropic_otel-shutdown", daemon=True)
               for provider in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if not any(thread.is_alive() for thread in threads):
        return True
    for exporter in exporters:  # ends retry back-offs and closes gRPC channels, cancelling calls in flight
        with contextlib.suppress(Exception):
            exporter.shutdown()
    warn_unreachable(f"telemetry export did not finish within {seconds:g} s at exit (an OTLP endpoint that does "
                     f"not answer?); the rest is dropped. OTEL_EXPORTER_OTLP_TIMEOUT (seconds) sets this bound")
    return False
