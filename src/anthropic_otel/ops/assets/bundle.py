"""The asset set a user writes out: dashboards, rules and their config, rule tests, Alertmanager example, runbook.

Layout of the export directory (the repository's, so the rule tests' relative `rule_files` still resolve):

    dashboards/anthropic-otel-overview.json, anthropic-otel-cost.json
    alerts/anthropic-otel.rules.yml, anthropic-otel.alerts.yml, rules-config.yml   (rendered from the config)
    alerts/alertmanager.example.yml, RUNBOOK.md, tests/*.test.yml
    otel-collector.yml                                                             (the reference Collector config)

With the default config and label every file equals the repository's committed one. The rule tests are
written for the default thresholds, so they are left out (and a note says so) when a config changes the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import rules as _rules
from .dashboards import DEFAULT_FEATURE_LABEL, with_feature_label
from .files import SHIPPED, listing, read_text

DASHBOARDS = tuple(path for path in SHIPPED if path.startswith("dashboards/"))
RULE_TESTS = "alerts/tests"
COLLECTOR = "deploy/otel-collector.yml"


@dataclass
class Export:
    """Relative path -> text of every file to write, and notes for the user (what was left out, and why)."""

    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def export(config: _rules.RulesConfig | None = None, feature_label: str = DEFAULT_FEATURE_LABEL) -> Export:
    """The asset set for a rules config and a feature label."""
    config = config or _rules.RulesConfig()
    out = Export()
    for path in DASHBOARDS:
        out.files[path] = with_feature_label(read_text(path), feature_label)
    for name, text in _rules.render(config).items():
        out.files[f"alerts/{name}"] = text
    out.files[f"alerts/{_rules.CONFIG_FILE}"] = _rules.dump_config(config)
    for path in ("alerts/alertmanager.example.yml", "alerts/RUNBOOK.md"):
        out.files[path] = read_text(path)
    if _rules.render(config) == _rules.render():
        for path in listing(RULE_TESTS):
            out.files[path] = read_text(path)
    else:
        out.notes.append(f"{RULE_TESTS}/ left out: the rule tests expect the default thresholds, and this config "
                         "changes the rules")
    out.files["otel-collector.yml"] = read_text(COLLECTOR)
    return out


def write(directory: str | Path, files: dict[str, str]) -> list[Path]:
    """Writes `files` under `directory` (created as needed); returns the paths written."""
    root = Path(directory)
    paths = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
