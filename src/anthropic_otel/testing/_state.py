"""Thread-safe server state: script queue, prompt cache, rate-limit window, call log, batches."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._bill import Billing
from ._diagnostics import Diagnoser
from ._scenarios import Scenario, parse_spec
from ._tokens import CacheBreakpoint

TOTAL_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens",
    "requests",
)
WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class RecordedCall:
    """One request as the server saw it and what it answered, for assertions in tests.

    ``usage`` is what the client was finally told (what the SDK's final ``Message.usage`` equals),
    ``None`` for errors; ``completed`` is False when the response was cut or failed mid-stream.
    ``started``/``ended`` are ``time.monotonic()`` values.
    """

    request_id: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    scenario: str
    status: int
    stream: bool
    usage: dict[str, Any] | None
    completed: bool
    model: str | None
    stop_reason: str | None
    started: float
    ended: float
    diagnostics: dict[str, Any] | None = None  # the `diagnostics` answered (cache miss reason), if any


@dataclass(frozen=True)
class CacheOutcome:
    read: int
    created: int
    one_hour: bool


@dataclass(frozen=True)
class _Entry:
    seq: int
    call: RecordedCall
    billed: dict[str, Any] | None  # ground-truth usage, only for completed successful messages


@dataclass(frozen=True)
class Limits:
    """Per-minute limits advertised in ``anthropic-ratelimit-*`` headers."""

    requests: int
    tokens: int
    input_tokens: int
    output_tokens: int


def rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    """All mutable server state behind one lock; every operation is short, so contention is low."""

    def __init__(self, default_scenario: str, limits: Limits, enforce_rate_limits: bool) -> None:
        parse_spec(default_scenario)  # fail at construction, not on the first request
        self.default_scenario = default_scenario
        self.limits = limits
        self.enforce_rate_limits = enforce_rate_limits
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._tool_ids = itertools.count(1)
        self._batch_ids = itertools.count(1)
        self._reset_seq = 0
        self._script: deque[tuple[Scenario, dict[str, float]]] = deque()
        self._cache: dict[str, float] = {}  # key -> monotonic expiry
        self._entries: dict[int, _Entry] = {}  # by arrival seq; re-recording a call replaces it
        self._batch_usage: list[dict[str, Any]] = []
        self._batches: dict[str, dict[str, Any]] = {}
        self._batch_results: dict[str, list[dict[str, Any]]] = {}
        self._window_start = 0.0
        self._used = {"requests": 0, "input": 0, "output": 0}
        self._billed: list[tuple[float, str, dict[str, Any]]] = []  # (wall time, model, usage) for the usage API
        self.billing = Billing()
        self.diagnoser = Diagnoser()

    # -- ids -------------------------------------------------------------------------------------
    def next_seq(self) -> int:
        with self._lock:
            return next(self._seq)

    def next_message_id(self) -> str:
        with self._lock:
            return f"msg_fake_{next(self._message_ids)}"

    def next_tool_id(self) -> str:
        with self._lock:
            return f"toolu_fake_{next(self._tool_ids)}"

    def next_batch_id(self) -> str:
        with self._lock:
            return f"msgbatch_fake_{next(self._batch_ids)}"

    # -- scenario script -------------------------------------------------------------------------
    def script(self, specs: Iterable[str]) -> None:
        parsed = [parse_spec(spec) for spec in specs]  # validate all before queueing any
        with self._lock:
            self._script.extend(parsed)

    def pop_script(self) -> tuple[Scenario, dict[str, float]] | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    # -- prompt cache ----------------------------------------------------------------------------
    def use_cache(self, breakpoint_: CacheBreakpoint | None) -> CacheOutcome:
        """Read the prefix if cached (refreshing its TTL), otherwise write it."""
        if breakpoint_ is None:
            return CacheOutcome(0, 0, False)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(breakpoint_.key, 0.0) > now
            self._cache[breakpoint_.key] = now + breakpoint_.ttl_seconds
        if hit:
            return CacheOutcome(breakpoint_.tokens, 0, False)
        return CacheOutcome(0, breakpoint_.tokens, breakpoint_.one_hour)

    # -- rate limits -----------------------------------------------------------------------------
    def _roll_window(self, now: float) -> None:
        if now >= self._window_start + WINDOW_SECONDS:
            self._window_start = now
            self._used = {"requests": 0, "input": 0, "output": 0}

    def throttle(self) -> float | None:
        """Seconds until the window resets if enforcement is on and a limit is used up, else None."""
        if not self.enforce_rate_limits:
            return None
        now = time.time()
        with self._lock:
            self._roll_window(now)
            used, limits = self._used, self.limits
            exhausted = (
                used["requests"] >= limits.requests
                or used["input"] >= limits.input_tokens
                or used["output"] >= limits.output_tokens
                or used["input"] + used["output"] >= limits.tokens
            )
            return self._window_start + WINDOW_SECONDS - now if exhausted else None

    def rate_limit_headers(
        self, *, requests: int = 0, input_tokens: int = 0, output_tokens: int = 0, exhausted: bool = False
    ) -> list[tuple[str, str]]:
        """Account this request in the 60 s window and describe what is left."""
        now = time.time()
        with self._lock:
            self._roll_window(now)
            self._used["requests"] += requests
            self._used["input"] += input_tokens
            self._used["output"] += output_tokens
            used = dict(self._used)
            reset = rfc3339(math.ceil(self._window_start + WINDOW_SECONDS))
        limits = self.limits
        rows = (
            ("requests", limits.requests, used["requests"]),
            ("tokens", limits.tokens, used["input"] + used["output"]),
            ("input-tokens", limits.input_tokens, used["input"]),
            ("output-tokens", limits.output_tokens, used["output"]),
        )
        headers: list[tuple[str, str]] = []
        for name, limit, spent in rows:
            remaining = 0 if exhausted else max(0, limit - spent)
            headers += [
                (f"anthropic-ratelimit-{name}-limit", str(limit)),
                (f"anthropic-ratelimit-{name}-remaining", str(remaining)),
                (f"anthropic-ratelimit-{name}-reset", reset),
            ]
        return headers

    # -- call log --------------------------------------------------------------------------------
    def record(self, seq: int, call: RecordedCall, billed: dict[str, Any] | None) -> None:
        with self._lock:
            if seq > self._reset_seq:  # calls in flight during reset() belong to the old epoch
                self._entries[seq] = _Entry(seq, call, billed)
                if billed is not None and call.model:
                    self._billed.append((time.time(), call.model, billed))

    def calls(self) -> list[RecordedCall]:
        with self._lock:
            entries = list(self._entries.values())
        return [entry.call for entry in sorted(entries, key=lambda entry: entry.seq)]

    def totals(self, include_batches: bool) -> dict[str, int]:
        with self._lock:
            usages = [entry.billed for entry in self._entries.values() if entry.billed is not None]
            if include_batches:
                usages += self._batch_usage
        totals = dict.fromkeys(TOTAL_KEYS, 0)
        for usage in usages:
            for key in TOTAL_KEYS[:4]:
                totals[key] += usage[key]
            for key in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
                totals[key] += usage["cache_creation"][key]
            totals["requests"] += 1
        return totals

    def reset(self) -> None:
        with self._lock:
            self._reset_seq = next(self._seq)
            self._script.clear()
            self._cache.clear()
            self._entries.clear()
            self._batch_usage.clear()
            self._batches.clear()
            self._batch_results.clear()
            self._billed.clear()
            self.diagnoser.clear()
            self._window_start = 0.0
            self._used = {"requests": 0, "input": 0, "output": 0}

    def billed_usage(self) -> list[tuple[float, str, dict[str, Any]]]:
        """(wall-clock time answered, model, usage) of every completed message, for the usage and cost API."""
        with self._lock:
            return list(self._billed)

    # -- batches ---------------------------------------------------------------------------------
    def add_batch(self, batch: dict[str, Any], results: list[dict[str, Any]], usages: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            self._batch_usage.extend(usages)
            self._batches[batch["id"]] = batch
            self._batch_results[batch["id"]] = results

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._batches.get(batch_id)

    def get_results(self, batch_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            return self._batch_results.get(batch_id)

    def list_batches(self) -> list[dict[str, Any]]:
        """Newest first, like the real list endpoint."""
        with self._lock:
            return list(reversed(self._batches.values()))

    def delete_batch(self, batch_id: str) -> bool:
        with self._lock:
            self._batch_results.pop(batch_id, None)
            return self._batches.pop(batch_id, None) is not None
