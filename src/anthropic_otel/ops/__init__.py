"""Operations assets: Prometheus rule configuration and rendering.

Imports `telemetry`.
"""
