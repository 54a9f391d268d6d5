"""The state a policy shares between every client it wraps: breakers, limiters, budget and the wrapper's
telemetry, built (and checked) once from the configuration."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from ..cost.pricing import Pricer
from ._breaker import Breakers
from ._budget import BudgetGuard
from ._config import STORE_OPEN, Breaker, Budget, Limits, Retry, StoreFailure, StreamTimeouts, check_type
from ._limiter import Limiters, Stores
from ._metrics import ResilienceMetrics
from ._run_budget import RunBudget


class Shared:
    """Each feature is off (None) until configured. With `redis_url`, rate limits and the budget live in Redis,
    shared by every process and host using the same `namespace`; concurrency limits and breakers stay
    in-process. When Redis fails, `store_failure` decides (see `StoreFailure`)."""

    def __init__(self, *, retry: Retry | None = None, breaker: Breaker | None = None,
                 limits: Limits | Sequence[Limits] | None = None, budget: Budget | None = None,
                 fallback_model: str | None = None, stream_timeouts: StreamTimeouts | None = None,
                 redis_url: str | None = None, namespace: str = "default",
                 tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None,
                 pricer: Pricer | None = None, store_failure: StoreFailure | None = None) -> None:
        check_type("Policy", "retry", retry, Retry)
        check_type("Policy", "breaker", breaker, Breaker)
        check_type("Policy", "budget", budget, Budget)
        check_type("Policy", "stream_timeouts", stream_timeouts, StreamTimeouts)
        check_type("Policy", "store_failure", store_failure, StoreFailure)
        check_type("Policy", "fallback_model", fallback_model, str)
        check_type("Policy", "redis_url", redis_url, str)
        check_type("Policy", "namespace", namespace, str, optional=False)
        check_type("Policy", "pricer", pricer, Pricer)
        if not namespace:
            raise ValueError("Policy(namespace=...) must not be empty")
        if fallback_model == "":
            raise ValueError("Policy(fallback_model=...) must be a model name or None, not ''")
        configs = [limits] if isinstance(limits, Limits) else list(limits or ())
        for config in configs:
            check_type("Policy", "limits", config, Limits, optional=False)
        self.retry = retry
        self.fallback_model = fallback_model
        self.stream_timeouts = stream_timeouts
        self.redis_url = redis_url
        self.namespace = namespace
        self.store_failure = store_failure = store_failure or StoreFailure()
        self.metrics = metrics = ResilienceMetrics(tracer_provider, meter_provider)
        self.breakers = Breakers(breaker, metrics.circuit) if breaker is not None else None
        if breaker is not None and self.breakers is not None:
            metrics.state_ttl = breaker.state_ttl
            metrics.circuit_source = self.breakers.snapshot
        stores = Stores(redis_url, store_failure.limits == STORE_OPEN, metrics.store_failure)
        self.limiters = Limiters(configs, namespace, stores, metrics.waited) if configs else None
        pricer = pricer or Pricer()
        self.budget = BudgetGuard(budget, namespace, redis_url, pricer, store_failure.budget,
                                  metrics.store_failure) if budget is not None and budget.budgets() else None
        self.run_budget = RunBudget(budget.per_run, pricer, budget.worst_case) if (
            budget is not None and budget.per_run is not None) else None
        self.tracks_usage = self.budget is not None or any(
            c.input_tokens_per_minute or c.output_tokens_per_minute for c in configs)

    @property
    def telemetry(self) -> ResilienceMetrics:
        """The former name of `metrics`."""
        return self.metrics

    @property
    def active(self) -> bool:
        return any(x is not None for x in (self.retry, self.breakers, self.limiters, self.budget, self.run_budget,
                                           self.fallback_model, self.stream_timeouts))
