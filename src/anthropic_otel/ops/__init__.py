"""Operations assets: Prometheus recording and alerting rules (`ops.rules`), rendered from a config.

Imports `telemetry` (series names); see docs/architecture.md.
"""
