"""Instrumentation faults are swallowed: logged once per kind, then counted, never raised into the app."""

from __future__ import annotations

import logging
import threading
from collections import Counter

_log = logging.getLogger("anthropic_otel")
_lock = threading.Lock()
_seen: Counter[str] = Counter()


def report(where: str, error: BaseException) -> None:
    """Records a fault of our own at `where`; the first of each kind is logged with its traceback."""
    try:
        kind = f"{where}:{type(error).__name__}"
        with _lock:
            _seen[kind] += 1
            first = _seen[kind] == 1
        if first:
            _log.warning("anthropic_otel: instrumentation fault in %s (further ones of this kind are counted, "
                         "not logged)", where, exc_info=error)
    except Exception:  # pragma: no cover - logging itself failed
        pass


def counts() -> dict[str, int]:
    """Faults seen so far, by `where:ExceptionClass`; tests assert it stays empty."""
    with _lock:
        return dict(_seen)


def clear() -> None:
    with _lock:
        _seen.clear()
