"""The instrumentation: patches, the call lifecycle, streams, batches, content and context.

Imports `telemetry` and `cost`.
"""
