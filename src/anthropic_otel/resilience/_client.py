"""Proxies with the client's own interface: `messages.create / parse / stream / count_tokens`, the same under
`beta`, everything else passed through to the wrapped client (so `isinstance` and every other resource work).
`beta.messages.tool_runner` and `beta.messages.thread` are the SDK's own, run on the wrapped client, so each
request they send goes through the policy."""

from __future__ import annotations

from types import MethodType
from typing import Any

import anthropic
import wrapt
from anthropic._base_client import AsyncAPIClient

from ..telemetry import names as n
from ._engine import Engine
from ._shared import Shared

_PATH = ("messages",)
_BETA_PATH = ("beta", "messages")


def _omit() -> Any:
    return getattr(anthropic, "omit", anthropic.NOT_GIVEN)


def _manager_class(is_async: bool, beta: bool) -> Any:
    from anthropic.lib import streaming

    name = ("Beta" if beta else "") + ("Async" if is_async else "") + "MessageStreamManager"
    return getattr(streaming, name)


def _request_of(manager: Any) -> Any:
    """The request a `MessageStreamManager` sends in `__enter__` (the instrumentation may have replaced it)."""
    attribute = next((name for name in vars(manager) if name.endswith("__api_request")), None)
    if attribute is None:
        raise TypeError(f"unsupported {type(manager).__name__}: no request attribute")
    return getattr(manager, attribute)


def wrap_client(client: Any, policy: Shared) -> Any:
    """`client` under `policy` (a `Policy`; typed by the state it shares, which is all this module uses)."""
    if isinstance(client, ResilientClient | AsyncResilientClient):
        client = client.__wrapped__
    if isinstance(client, AsyncAPIClient):
        return AsyncResilientClient(client, policy)
    return ResilientClient(client, policy)


class _Messages(wrapt.ObjectProxy[Any]):
    """What both flavours share: the SDK's helpers that send through `self._client` get the wrapped client."""

    def __init__(self, wrapped: Any, engine: Engine, path: tuple[str, ...], client: Any) -> None:
        super().__init__(wrapped)
        self._self_engine = engine
        self._self_path = path
        self._self_client = client

    def _self_on_client(self, name: str) -> Any:
        """The SDK's method `name` bound to a copy of the resource whose client is the wrapped one, so the runner
        or thread it makes sends through the policy (`AttributeError` when this SDK has no such method)."""
        function = getattr(type(self.__wrapped__), name)
        return MethodType(function, type(self.__wrapped__)(self._self_client))

    @property
    def tool_runner(self) -> Any:
        return self._self_on_client("tool_runner")

    @property
    def thread(self) -> Any:
        return self._self_on_client("thread")


class ResilientMessages(_Messages):
    """`client.messages` (or `client.beta.messages`) under the policy; other attributes (`batches`, ...) are the
    wrapped client's own."""

    def create(self, **kwargs: Any) -> Any:
        engine = self._self_engine
        resource = engine.resource(self._self_path)
        return engine.run(n.OP_CHAT, kwargs, lambda kw: resource.create(**kw), stream=kwargs.get("stream") is True)

    def parse(self, **kwargs: Any) -> Any:
        engine = self._self_engine
        resource = engine.resource(self._self_path)
        return engine.run(n.OP_CHAT, kwargs, lambda kw: resource.parse(**kw))

    def count_tokens(self, **kwargs: Any) -> Any:
        engine = self._self_engine
        resource = engine.resource(self._self_path)
        return engine.run(n.OP_COUNT_TOKENS, kwargs, lambda kw: resource.count_tokens(**kw), light=True)

    def stream(self, **kwargs: Any) -> Any:
        engine = self._self_engine
        resource = engine.resource(self._self_path)

        def send(kw: dict[str, Any]) -> Any:
            return _request_of(resource.stream(**kw))()

        def request() -> Any:
            return engine.run(n.OP_CHAT, kwargs, send, stream=True)

        manager_class = _manager_class(False, self._self_path == _BETA_PATH)
        return manager_class(request, output_format=kwargs.get("output_format", _omit()))


class AsyncResilientMessages(_Messages):
    """`AsyncAnthropic().messages` under the policy."""

    async def create(self, **kwargs: Any) -> Any:
        engine = self._self_engine
        resource = engine.resource(self._self_path)

        async def send(kw: dict[str, Any]) -> Any:
            return await resource.create(**kw)

        return await engine.run_async(n.OP_CHAT, kwargs, send, stream=kwargs.get("stream") is True)

    async def parse(self, **kwargs: Any) -> Any:
        engine = self._self_engine
        resource = engine.resource(self._self_path)

        async def send(kw: dict[str, Any]) -> Any:
            return await resource.parse(**kw)

        return await engine.run_async(n.OP_CHAT, kwargs, send)

    async def count_tokens(self, **kwargs: Any) -> Any:
        engine = self._self_engine
        resource = engine.resource(self._self_path)

        async def send(kw: dict[str, Any]) -> Any:
            return await resource.count_tokens(**kw)

        return await engine.run_async(n.OP_COUNT_TOKENS, kwargs, send, light=True)

    def stream(self, **kwargs: Any) -> Any:
        engine = self._self_engine
        resource = engine.resource(self._self_path)

        async def send(kw: dict[str, Any]) -> Any:
            return await _request_of(resource.stream(**kw))

        manager_class = _manager_class(True, self._self_path == _BETA_PATH)
        return manager_class(engine.run_async(n.OP_CHAT, kwargs, send, stream=True),
                             output_format=kwargs.get("output_format", _omit()))


class _Beta(wrapt.ObjectProxy[Any]):
    def __init__(self, wrapped: Any, messages: Any) -> None:
        super().__init__(wrapped)
        self._self_messages = messages

    @property
    def messages(self) -> Any:
        return self._self_messages


class ResilientClient(wrapt.ObjectProxy[Any]):
    """A sync client under a policy; `isinstance(wrapped, anthropic.Anthropic)` still holds."""

    _messages_class: Any = ResilientMessages

    def __init__(self, wrapped: Any, policy: Shared) -> None:
        super().__init__(wrapped)
        self._self_policy = policy
        self._self_engine = engine = Engine(policy, wrapped)
        self._self_messages = self._messages_class(wrapped.messages, engine, _PATH, self)
        self._self_beta: Any = None

    @property
    def messages(self) -> Any:
        return self._self_messages

    @property
    def beta(self) -> Any:
        if self._self_beta is None:
            beta = self.__wrapped__.beta
            self._self_beta = _Beta(beta, self._messages_class(beta.messages, self._self_engine, _BETA_PATH, self))
        return self._self_beta

    @property
    def resilience_policy(self) -> Shared:
        return self._self_policy

    def with_options(self, **kwargs: Any) -> Any:
        """A re-wrapped copy (same policy, so the same breakers, limits and budget)."""
        return type(self)(self.__wrapped__.with_options(**kwargs), self._self_policy)

    def copy(self, **kwargs: Any) -> Any:
        return type(self)(self.__wrapped__.copy(**kwargs), self._self_policy)

    def __enter__(self) -> Any:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped__.__exit__(*exc_info)

    def __repr__(self) -> str:
        return f"<resilient {self.__wrapped__!r}>"


class AsyncResilientClient(ResilientClient):
    """An async client under a policy."""

    _messages_class = AsyncResilientMessages

    async def __aenter__(self) -> Any:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)
