"""Why a chat call's final usage never arrived: what the cost counters cannot see, by reason.

Only calls that may have been billed count: an HTTP error answer (429, 529, 400, ...) is not billed and is not
"usage unknown"; a call whose request never left (a connect or pool timeout) neither.
"""

from __future__ import annotations

from typing import Any

from ..telemetry import names as n

# httpx's timeouts raised before the request was sent (the SDK's APITimeoutError carries one as __cause__).
_NOT_SENT = frozenset({"ConnectTimeout", "PoolTimeout"})
_TIMEOUTS = frozenset({"APITimeoutError", "TimeoutException", "ReadTimeout", "WriteTimeout"})


def reason(unknown: str | None, usage_final: bool, error: BaseException | None, closed_early: bool) -> str | None:
    """The reason to count, or None when the final usage arrived or nothing can have been billed.

    `unknown` is what the call's path preset: `stream_cut` once a stream's response arrived, `not_parsed` for a
    raw response handed back unparsed.
    """
    if usage_final:
        return None
    if closed_early:
        return n.UNKNOWN_CLOSED_EARLY
    if error is not None:
        if timed_out_after_send(error):
            return n.UNKNOWN_TIMEOUT
        return n.UNKNOWN_STREAM_CUT if unknown == n.UNKNOWN_STREAM_CUT else None
    return unknown


def timed_out_after_send(error: BaseException) -> bool:
    """A timeout while waiting for (or reading) the answer, not while connecting."""
    seen: Any = error
    timed_out = False
    for _ in range(4):  # the error and its causes: APITimeoutError <- httpx ReadTimeout
        if seen is None:
            break
        name = type(seen).__name__
        if name in _NOT_SENT:
            return False
        timed_out = timed_out or name in _TIMEOUTS or isinstance(seen, TimeoutError)
        seen = seen.__cause__ or seen.__context__
    return timed_out
