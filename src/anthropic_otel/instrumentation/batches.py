"""Message-batch results: each succeeded result the application reads is priced at the batch rate.

`batches.results()` returns a lazy JSONL decoder; it is handed back inside a proxy that counts each result's
tokens and cost as it is read (labelled with the result's model and `gen_ai.operation.name=batch`), so batch
spend lands on the same cost series as direct calls. A result read twice in this process is counted once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import wrapt

from ..cost.pricing import Cost
from ..cost.usage import Usage, problem
from ..telemetry import faults as _faults
from ..telemetry import names as n
from .context import current as current_attributes
from .start import Instrumentation, server

_REMEMBERED_BATCHES = 256
_COUNT = _faults.Guard("batch result")
_LEDGER = _faults.Guard("spend ledger")
_RESULTS = _faults.Guard("batch results")


class _Seen:
    """The custom ids already counted, for the most recently read batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: OrderedDict[str, set[str]] = OrderedDict()

    def first_time(self, batch_id: str, custom_id: str) -> bool:
        with self._lock:
            ids = self._batches.get(batch_id)
            if ids is None:
                ids = self._batches[batch_id] = set()
                while len(self._batches) > _REMEMBERED_BATCHES:
                    self._batches.popitem(last=False)
            else:
                self._batches.move_to_end(batch_id)
            if custom_id in ids:
                return False
            ids.add(custom_id)
            return True


_SEEN = _Seen()


class _Counter:
    """Prices one result; what the sync and async proxies share."""

    __slots__ = ("batch_id", "context", "host", "provider", "telemetry")

    def __init__(self, telemetry: Instrumentation, resource: Any, batch_id: str) -> None:
        client = resource._client
        self.telemetry = telemetry
        self.provider: str = getattr(client, "_gen_ai_provider_name", n.PROVIDER_ANTHROPIC)
        self.host = server(client)[0]
        self.context: Mapping[str, Any] | None = current_attributes()
        self.batch_id = batch_id

    def count(self, item: Any) -> None:
        cost: Cost | None = None
        with _COUNT:
            result = item.result
            if getattr(result, "type", None) != "succeeded":
                return
            if not _SEEN.first_time(self.batch_id, str(item.custom_id)):
                return
            message = result.message
            model = message.model if isinstance(message.model, str) else ""
            usage = Usage.of(message.usage)
            if not usage.valid:
                for name, value in (usage.bad or {}).items():
                    kind = problem(value) or "non-integer"
                    _faults.bad_value(kind, f"usage.{name} = {repr(value)[:60]} in a batch result of {model!r} "
                                            f"cannot be real ({kind})")
                return
            tel = self.telemetry
            cost = tel.pricer.cost(model, self.provider, usage, batch=True)
            key = tel.metrics.common_key(n.OP_BATCH, self.provider, model, self.host, self.context)
            tel.metrics.batch_result(key, usage, cost)
        if cost is not None:  # the spend ledger is a sink of its own: a metrics fault does not lose it
            with _LEDGER:
                self.telemetry.ledger.add(cost.total)


class BatchResults(wrapt.ObjectProxy[Any]):
    """The SDK's `JSONLDecoder`, unchanged, counting each result as it is read."""

    def __init__(self, decoder: Any, counter: _Counter) -> None:
        super().__init__(decoder)
        self._self_counter = counter

    def __iter__(self) -> Iterator[Any]:
        count = self._self_counter.count
        for item in self.__wrapped__:
            count(item)
            yield item

    def __next__(self) -> Any:
        item = next(self.__wrapped__)
        self._self_counter.count(item)
        return item


class AsyncBatchResults(wrapt.ObjectProxy[Any]):
    """The SDK's `AsyncJSONLDecoder`, unchanged, counting each result as it is read."""

    def __init__(self, decoder: Any, counter: _Counter) -> None:
        super().__init__(decoder)
        self._self_counter = counter

    async def __aiter__(self) -> AsyncIterator[Any]:
        count = self._self_counter.count
        async for item in self.__wrapped__:
            count(item)
            yield item

    async def __anext__(self) -> Any:
        item = await self.__wrapped__.__anext__()
        self._self_counter.count(item)
        return item


def counted_results(telemetry: Instrumentation, resource: Any, batch_id: Any, decoder: Any) -> Any:
    """`decoder` in a counting proxy; the decoder itself when anything about it is unexpected."""
    if not isinstance(batch_id, str):
        return decoder
    with _RESULTS:
        counter = _Counter(telemetry, resource, batch_id)
        if hasattr(decoder, "__anext__"):
            return AsyncBatchResults(decoder, counter)
        if hasattr(decoder, "__next__"):
            return BatchResults(decoder, counter)
    return decoder
