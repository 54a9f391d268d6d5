"""One warning, not a stream, when the OTLP endpoint of the exporters we created cannot be reached.

The OpenTelemetry exporters log every failed attempt and every retry at WARNING/ERROR. With no Collector
running (the quick start without one, a Collector restarting) that is a line every few seconds for the life
of the process. Installed only when this package builds the exporters itself, `quiet_export_errors()` turns
those records into one warning on the `anthropic_otel` logger (again at most every ten minutes, with the
count in between); the rest go to DEBUG on that logger. Records of any other kind pass through untouched.
"""

from __future__ import annotations

import logging
import threading
import time

_log = logging.getLogger("anthropic_otel")

# The loggers of the OTLP exporters (gRPC: one for both signals; HTTP: one per signal).
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
)
# Templates of the records an unreachable or failing endpoint produces; the first two are news.
_FAILURES = ("Transient error", "Failed to export")
_CONSEQUENCES = ("Shutdown in progress", "Exporter already shutdown", "OTLP client already shutdown")
REPEAT_SECONDS = 600.0


class _Limiter:
    """Lets one warning through per `REPEAT_SECONDS`, counting the ones it holds back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warned_at: float | None = None
        self._held = 0

    def warn(self, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            due = self._warned_at is None or now - self._warned_at >= REPEAT_SECONDS
            held = self._held
            if due:
                self._warned_at, self._held = now, 0
            else:
                self._held += 1
        if not due:
            _log.debug("anthropic_otel: %s", message)
        elif held:
            _log.warning("anthropic_otel: %s (%d similar messages since the last warning are at DEBUG on the "
                         "'anthropic_otel' logger)", message, held)
        else:
            _log.warning("anthropic_otel: %s (further export errors go to DEBUG on the 'anthropic_otel' logger "
                         "for %d minutes)", message, REPEAT_SECONDS // 60)


_limiter = _Limiter()


def warn_unreachable(message: str) -> None:
    """A telemetry delivery problem, warned once per window whichever part of the package sees it first."""
    _limiter.warn(message)


class _ExportErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        template = record.msg if isinstance(record.msg, str) else ""
        if template.startswith(_FAILURES):
            warn_unreachable(f"OTLP export failed, telemetry is dropped: {record.getMessage()}")
            return False
        if template.startswith(_CONSEQUENCES):
            _log.debug("anthropic_otel: %s", record.getMessage())
            return False
        return True


_filter = _ExportErrors()


def quiet_export_errors() -> None:
    """Route the OTLP exporters' connection errors through the one-warning limiter (idempotent).

    An exporter logger the application gave a level of its own is left alone: that is a choice it made."""
    for name in EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET and _filter not in logger.filters:
            logger.addFilter(_filter)
