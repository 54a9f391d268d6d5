"""PromQL and Prometheus template text, built by small functions rather than by hand in every rule.

Prometheus annotations are Go templates (`{{ $value | humanize }}`); writing them inside f-strings would need
every brace doubled (`{{{{ ... }}}}`), so `value()` and `label()` build them instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...telemetry.series import MODEL, REQUESTS

if TYPE_CHECKING:
    from .config import RulesConfig

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as `1d`, `5m`, `1h30m`, `500ms`; `ValueError` otherwise."""
    match = _DURATION.match(duration)
    if not duration or match is None:
        raise ValueError(f"not a Prometheus duration: {duration!r} (examples: 30s, 5m, 1h, 1d)")
    return sum(int(part) * unit for part, unit in zip(match.groups(), _DURATION_SECONDS, strict=True) if part)


def number(value: float) -> str:
    """A threshold as PromQL prints best: `20`, not `20.0`."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# -- Prometheus template text (alert annotations) -------------------------------------------------

def template(expression: str) -> str:
    """`{{ expression }}`: one Go template action of an alert annotation."""
    return "{{ " + expression + " }}"


def value(*functions: str) -> str:
    """The alert's value, piped through template functions: `value("humanizePercentage")`."""
    return template(" | ".join(["$value", *functions]))


def label(name: str) -> str:
    """The value of one of the alert's labels: `label("gen_ai_request_model")`."""
    return template(f"$labels.{name}")


# -- PromQL ---------------------------------------------------------------------------------------

def select(series: str, matchers: str = "") -> str:
    """`series{matchers}`, or the bare series without matchers."""
    return series + "{" + matchers + "}" if matchers else series


def eq(name: str, wanted: str) -> str:
    """The label matcher `name="wanted"`."""
    return f'{name}="{wanted}"'


def ne(name: str, unwanted: str) -> str:
    """The label matcher `name!="unwanted"`."""
    return f'{name}!="{unwanted}"'


def matches(name: str, pattern: str) -> str:
    """The label matcher `name=~"pattern"`."""
    return f'{name}=~"{pattern}"'


def labels(config: RulesConfig, *names: str) -> str:
    """The labels an aggregation keeps: `names` and the config's `group_by`."""
    return ", ".join([*names, *config.group_by])


def agg(config: RulesConfig, op: str, by: Sequence[str], inner: str) -> str:
    """`op by (by, group_by...) (inner)`, or `op(inner)` when nothing is kept."""
    listed = labels(config, *by)
    return f"{op} by ({listed}) ({inner})" if listed else f"{op}({inner})"


def on(config: RulesConfig, *names: str) -> str:
    """The `on (...)` vector-matching clause over `names` and the config's `group_by`."""
    return f"on ({labels(config, *names)})"


def requests_rate(config: RulesConfig, matchers: str = "") -> str:
    """Calls per second per model over the config's rate window, optionally only those matching `matchers`."""
    return agg(config, "sum", [MODEL], f"rate({select(REQUESTS, matchers)}[{config.rate_window}])")


def counted(config: RulesConfig, by: Sequence[str], series: str, matchers: str, window: str) -> str:
    """Events of a counter within `window`, summed by `by`. A series born within the window (its first sample
    already 1, with no earlier one for increase() to see) counts in full, so the first event is not lost."""
    sel = select(series, matchers)
    return agg(config, "sum", by, f"\n  ({sel} unless {sel} offset {window})\n  or\n  increase({sel}[{window}])\n")
