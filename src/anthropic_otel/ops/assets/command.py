"""`anthropic-otel assets export DIR`: the shipped assets, rendered with the user's thresholds and label."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from .dashboards import DEFAULT_FEATURE_LABEL, label_name


def register(commands: Any) -> None:
    """Adds `assets export` to the `anthropic-otel` subcommands (an argparse subparsers object)."""
    assets = commands.add_parser("assets", help="write the dashboards, rules, rule tests, runbook and examples")
    actions = assets.add_subparsers(dest="assets_command", required=True)
    out = actions.add_parser(
        "export", help="write the assets into DIR (alerts/, dashboards/, otel-collector.yml)",
        description="Writes the Grafana dashboards, the Prometheus rules (rendered from --rules-config), their "
                    "promtool tests, the Alertmanager example, the runbook and the reference Collector config; "
                    "with --kubernetes, the same as Kubernetes manifests instead.")
    out.add_argument("directory", metavar="DIR", help="where to write (created if needed; files are overwritten)")
    out.add_argument("--feature-label", default=DEFAULT_FEATURE_LABEL,
                     help="Prometheus label of your feature attribute in the dashboards (default "
                          f"{DEFAULT_FEATURE_LABEL}; an attribute name such as team.name becomes team_name)")
    out.add_argument("--rules-config", default=None,
                     help="a YAML or TOML (.toml) file of rule thresholds (see alerts/rules-config.yml; default: "
                          "the defaults)")
    out.add_argument("--kubernetes", action="store_true",
                     help="write Kubernetes manifests (PrometheusRule, dashboard ConfigMaps, Collector, PodMonitor)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Runs `assets export`; 2 on a bad config file or label."""
    from .. import rules as _rules  # here, not at the top: every `anthropic-otel` command imports this module
    from .bundle import export, write
    from .kubernetes import manifests

    try:
        config = _rules.load_config(args.rules_config)
        label_name(args.feature_label)
    except (OSError, ValueError) as error:
        print(f"anthropic-otel assets: {error}", file=sys.stderr)
        return 2
    if args.kubernetes:
        files = manifests(config, args.feature_label)
        notes: list[str] = []
    else:
        result = export(config, args.feature_label)
        files, notes = result.files, result.notes
    for path in write(args.directory, files):
        print(f"wrote {path}", file=out)
    for note in notes:
        print(f"note: {note}", file=out)
    return 0
