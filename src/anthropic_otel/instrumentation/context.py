"""`attributes(...)`: application context (feature, end user, ...) that lands on every call's span."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_ATTRIBUTES: ContextVar[Mapping[str, Any] | None] = ContextVar("anthropic_otel_attributes", default=None)


@contextmanager
def attributes(**values: Any) -> Iterator[None]:
    """Adds `values` to the span (and, for keys in `metric_attributes`, the metrics) of calls made inside.

    Nested blocks merge, the inner value winning. Dotted keys are passed as `**{"app.feature": "x"}`.
    Works across threads started inside only if the context is copied, like any ContextVar. As metric labels,
    values are cut to 128 characters and each name keeps at most `metric_attribute_limit` distinct values
    (later ones count as `_other`); the span gets them as given.
    """
    outer = _ATTRIBUTES.get()
    token = _ATTRIBUTES.set({**outer, **values} if outer else dict(values))
    try:
        yield
    finally:
        _ATTRIBUTES.reset(token)


def current() -> Mapping[str, Any] | None:
    return _ATTRIBUTES.get()
