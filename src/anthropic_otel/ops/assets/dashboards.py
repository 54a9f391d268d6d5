"""The committed dashboards for another feature label, without the dashboard builder.

`dashboards/build.py` (grafana-foundation-sdk, a test dependency only) writes the feature label into the
queries' selectors and `by` clauses, the legends, some titles and descriptions and the `$feature` variable's
label and query: everywhere as the same whole word. Replacing that word in every string of the committed JSON
therefore gives what the builder gives for the other label (tests/test_assets.py checks it against the builder).
"""

from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_FEATURE_LABEL = "app_feature"  # instrument(metric_attributes=["app.feature"]) -> label app_feature
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def label_name(feature: str) -> str:
    """The Prometheus label for `feature`: an attribute name (`app.feature`) or a label name (`app_feature`)."""
    label = feature.replace(".", "_")
    if not _LABEL.fullmatch(label) or label.startswith("__"):
        raise ValueError(f"feature label {feature!r}: not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, "
                         "not starting with __)")
    return label


def with_feature_label(text: str, feature: str) -> str:
    """A committed dashboard's JSON text with its feature label replaced; the text itself for the default."""
    label = label_name(feature)
    if label == DEFAULT_FEATURE_LABEL:
        return text
    word = re.compile(rf"\b{DEFAULT_FEATURE_LABEL}\b")

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return word.sub(label, value)
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            return {walk(key): walk(item) for key, item in value.items()}
        return value

    return json.dumps(walk(json.loads(text)), indent=2, sort_keys=True) + "\n"
