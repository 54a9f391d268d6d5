"""Reconcile what the package counted with what Anthropic billed: `anthropic-otel reconcile`.

The counted side is the growth of the package's own cost and token series, read from a Prometheus-compatible
API; the billed side is Anthropic's Usage & Cost API (an Admin API key, `ANTHROPIC_ADMIN_API_KEY`). Both are
cut into the same time buckets and compared per model. Imports `telemetry` and `cost` only.
"""
