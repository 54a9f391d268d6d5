"""Telemetry names (spans, metrics, Prometheus series), provider set-up and the fault guard.

Imports nothing else of the package.
"""
