"""The Claude Agent SDK (`claude-agent-sdk`): one `invoke_agent` run per answer, tool spans, priced usage.

The SDK drives the Claude Code CLI in a subprocess; the model calls go out from there, not through this
process's Anthropic SDK, so nothing here is counted twice. A run starts when `query()` is first iterated
(the run span is current while the transport connects, so the subprocess transport's `TRACEPARENT` names
it) or when `ClaudeSDKClient.query()` sends a prompt, and ends with its `ResultMessage`. Tool calls become
`execute_tool {name}` spans from the `ToolUseBlock` / `ToolResultBlock` pairs, timed as this process saw
them. The result's per-model usage is priced with this package's prices and recorded on the token and cost
series (operation `invoke_agent`) and in the spend ledger; the CLI's own `total_cost_usd` stays on the span.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import AsyncIterator, Mapping
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ..cost.pricing import Cost
from ..cost.usage import Usage, problem
from ..instrumentation.context import current as current_attributes
from ..instrumentation.metrics import CommonKey
from ..instrumentation.record import error_type
from ..instrumentation.start import Instrumentation
from ..telemetry import names as n
from ..telemetry.faults import Guard
from .metrics import AgentMetrics
from .patching import Patches
from .run import Run

_START = Guard("agent run start")
_MESSAGE = Guard("agent message")
_END = Guard("agent run end")

_DEFAULT_HOST = "api.anthropic.com"
# `ModelUsage.provider` -> the provider name the chat spans use (pricing and the provider label).
_PROVIDERS = {"bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai", "anthropicAws": "aws.bedrock",
              "anthropicGoogleCloud": "gcp.vertex_ai"}
# ModelUsage keys -> Usage fields; `inputTokens` is uncached input, as in the API's own usage.
_MODEL_USAGE = (("inputTokens", "input_tokens"), ("outputTokens", "output_tokens"),
                ("cacheReadInputTokens", "cache_read"), ("cacheCreationInputTokens", "cache_write"),
                ("webSearchRequests", "web_search_requests"))
_API_USAGE = (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"),
              ("cache_read_input_tokens", "cache_read"), ("cache_creation_input_tokens", "cache_write"))


def _host(options: Any) -> str:
    env = getattr(options, "env", None)
    url = (env.get("ANTHROPIC_BASE_URL") if isinstance(env, Mapping) else None) or os.environ.get(
        "ANTHROPIC_BASE_URL")
    if isinstance(url, str) and url:
        host = urlsplit(url).hostname
        if host:
            return host
    return _DEFAULT_HOST


def _usage(raw: Mapping[str, Any], fields: tuple[tuple[str, str], ...]) -> Usage | None:
    """A `Usage` from the CLI's counts, or None when one cannot be real (it then stays out of the metrics)."""
    usage = Usage()
    for key, field in fields:
        value = raw.get(key, 0)
        if value is None:
            continue
        if problem(value) is not None:
            return None
        setattr(usage, field, value)
    return usage


class _AgentRun:
    """One run of the Agent SDK: its span, rollup, open tool calls and the options it started with."""

    def __init__(self, owner: AgentSdkPatches, options: Any) -> None:
        tel = owner.tel
        self.owner = owner
        self.context = current_attributes()
        self.host = _host(options)
        model = getattr(options, "model", None)
        self.model = model if isinstance(model, str) else ""
        attributes: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OP_INVOKE_AGENT,
            n.GEN_AI_PROVIDER_NAME: n.PROVIDER_ANTHROPIC,
            n.GEN_AI_REQUEST_MODEL: self.model,
            n.SERVER_ADDRESS: self.host,
            n.RUN_FRAMEWORK: n.FRAMEWORK_AGENT_SDK,
        }
        if self.context:
            attributes.update(self.context)
        span = tel.tracer.start_span(n.OP_INVOKE_AGENT, kind=SpanKind.INTERNAL, attributes=attributes)
        self.run = Run(owner.metrics, span, self._key(self.model, n.PROVIDER_ANTHROPIC), n.FRAMEWORK_AGENT_SDK)
        self.tools: dict[str, tuple[trace.Span, str, float]] = {}  # tool_use id -> span, name, start

    @property
    def span(self) -> trace.Span:
        return self.run.span

    def _key(self, model: str, provider: str) -> CommonKey:
        return self.owner.tel.metrics.common_key(n.OP_INVOKE_AGENT, provider, model, self.host, self.context)

    # -- messages --------------------------------------------------------------------------------

    def observe(self, message: Any) -> bool:
        """Learns from one message; True when it was the run's `ResultMessage` (the run has ended)."""
        kind = type(message).__name__
        if kind == "AssistantMessage":
            self._assistant(message)
        elif kind == "UserMessage":
            self._user(message)
        elif kind == "ResultMessage":
            self._result(message)
            return True
        return False

    def _assistant(self, message: Any) -> None:
        model = getattr(message, "model", None)
        if not self.model and isinstance(model, str) and model:
            self.model = model  # the CLI's default model: the run's label from now on
            self.run.key = self._key(model, n.PROVIDER_ANTHROPIC)
            self.span.set_attribute(n.GEN_AI_REQUEST_MODEL, model)
        for block in getattr(message, "content", None) or ():
            if type(block).__name__ == "ToolUseBlock":
                self._tool_started(block)

    def _tool_started(self, block: Any) -> None:
        name = block.name if isinstance(getattr(block, "name", None), str) else ""
        attributes: dict[str, Any] = {n.GEN_AI_OPERATION_NAME: n.OP_EXECUTE_TOOL, n.GEN_AI_TOOL_NAME: name,
                                      n.GEN_AI_TOOL_TYPE: n.TOOL_TYPE_FUNCTION}
        call_id = getattr(block, "id", None)
        if isinstance(call_id, str):
            attributes[n.GEN_AI_TOOL_CALL_ID] = call_id
        span = self.owner.tel.tracer.start_span(
            f"{n.OP_EXECUTE_TOOL} {name}" if name else n.OP_EXECUTE_TOOL, kind=SpanKind.INTERNAL,
            attributes=attributes, context=trace.set_span_in_context(self.span))
        self.tools[call_id if isinstance(call_id, str) else str(id(block))] = (span, name, perf_counter())

    def _user(self, message: Any) -> None:
        content = getattr(message, "content", None)
        if not isinstance(content, list):
            return
        for block in content:
            if type(block).__name__ == "ToolResultBlock":
                self._tool_ended(getattr(block, "tool_use_id", None), getattr(block, "is_error", None) is True)

    def _tool_ended(self, call_id: Any, failed: bool) -> None:
        found = self.tools.pop(call_id, None) if isinstance(call_id, str) else None
        if found is None:
            return
        span, name, start = found
        duration = perf_counter() - start
        if failed:
            span.set_attribute(n.ERROR_TYPE, n.TOOL_ERROR)
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        self.run.tool_done(failed)
        self.owner.metrics.tool_called(self.run.key, name, n.TOOL_ERROR if failed else None, duration)

    # -- the end ---------------------------------------------------------------------------------

    def _result(self, result: Any) -> None:
        span = self.span
        attributes: dict[str, Any] = {}
        session = getattr(result, "session_id", None)
        if isinstance(session, str) and session:
            attributes[n.GEN_AI_CONVERSATION_ID] = session
        reason = getattr(result, "terminal_reason", None)
        if isinstance(reason, str):
            attributes[n.RUN_TERMINAL_REASON] = reason
        api_ms = getattr(result, "duration_api_ms", None)
        if isinstance(api_ms, int | float) and not isinstance(api_ms, bool):
            attributes[n.RUN_API_DURATION] = api_ms / 1000
        status = getattr(result, "api_error_status", None)
        if isinstance(status, int) and not isinstance(status, bool):
            attributes[n.RUN_API_ERROR_STATUS] = status
        cli_cost = getattr(result, "total_cost_usd", None)
        if isinstance(cli_cost, int | float) and not isinstance(cli_cost, bool):
            attributes[n.RUN_CLI_COST_USD] = float(cli_cost)
        else:
            cli_cost = None
        stop = getattr(result, "stop_reason", None)
        if isinstance(stop, str):
            self.run.stop_reason = stop
        if span.is_recording():
            span.set_attributes(attributes)
        self._priced_usage(result)
        subtype = getattr(result, "subtype", None)
        failed = getattr(result, "is_error", False) is True or (isinstance(subtype, str) and subtype != "success")
        if subtype == "error_max_turns" or reason == "max_turns":
            outcome, err = n.OUTCOME_MAX_TURNS, None
        elif failed:
            outcome = n.OUTCOME_ERROR
            err = str(status) if attributes.get(n.RUN_API_ERROR_STATUS) else (
                subtype if isinstance(subtype, str) and subtype != "success" else "error")
        else:
            outcome, err = n.OUTCOME_COMPLETED, None
        turns = getattr(result, "num_turns", None)
        self.end(outcome, err, turns if isinstance(turns, int) and not isinstance(turns, bool) else None)
        if cli_cost is not None and self.run.priced and self.run.cost > 0:
            ours = float(self.run.cost)
            self.owner.metrics.cost_divergence(self.run.key, abs(ours - float(cli_cost)) / ours)

    def _priced_usage(self, result: Any) -> None:
        """Prices each model's usage and records it as every other call's: tokens, cost, ledger, the run."""
        per_model = getattr(result, "model_usage", None)
        entries: list[tuple[str, str, Usage | None]] = []
        if isinstance(per_model, Mapping) and per_model:
            for model, raw in per_model.items():
                if not isinstance(raw, Mapping):
                    continue
                provider = _PROVIDERS.get(str(raw.get("provider")), n.PROVIDER_ANTHROPIC)
                priced_as = raw.get("canonicalModel") if isinstance(raw.get("canonicalModel"), str) else model
                entries.append((str(priced_as), provider, _usage(raw, _MODEL_USAGE)))
        else:
            raw_usage = getattr(result, "usage", None)
            if isinstance(raw_usage, Mapping) and self.model:
                entries.append((self.model, n.PROVIDER_ANTHROPIC, _usage(raw_usage, _API_USAGE)))
        tel = self.owner.tel
        for model, provider, usage in entries:
            if usage is None:
                continue
            cost: Cost | None = tel.pricer.cost(model, provider, usage)
            tel.metrics.batch_result(self._key(model, provider), usage, cost)  # tokens and cost, no request
            if cost is not None:
                tel.ledger.add(cost.total)
            self.run.add_usage(usage, cost)
            event: dict[str, Any] = {
                n.GEN_AI_REQUEST_MODEL: model,
                n.GEN_AI_USAGE_INPUT_TOKENS: usage.total_input,
                n.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
                n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: usage.cache_read,
                n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: usage.cache_write,
            }
            if cost is not None:
                event[n.COST_USD] = float(cost.total)
            self.span.add_event(n.RUN_MODEL_USAGE_EVENT, event)

    def end(self, outcome: str, err: str | None = None, iterations: int | None = None,
            error: BaseException | None = None) -> None:
        """Ends open tool spans, rolls the run up and ends its span (once)."""
        for span, _, _ in self.tools.values():
            span.end()
        self.tools.clear()
        if error is not None and err is None:
            err = error_type(error)
        if not self.run.finish(outcome, err, iterations):
            return
        if err is not None:
            self.span.set_status(Status(StatusCode.ERROR, None if error is None else str(error)[:500]))
        self.span.end()


class AgentSdkPatches:
    """The Claude Agent SDK patches of one `instrument()`: `query()` and `ClaudeSDKClient`."""

    def __init__(self, tel: Instrumentation, metrics: AgentMetrics) -> None:
        self.tel = tel
        self.metrics = metrics
        self.patches = Patches()
        self._clients: weakref.WeakKeyDictionary[Any, _AgentRun] = weakref.WeakKeyDictionary()

    def apply(self) -> None:
        wrap = self.patches.wrap
        wrap("claude_agent_sdk._internal.client", "InternalClient", "process_query", self._process_query)
        wrap("claude_agent_sdk.client", "ClaudeSDKClient", "query", self._client_query)
        wrap("claude_agent_sdk.client", "ClaudeSDKClient", "receive_messages", self._receive_messages)
        wrap("claude_agent_sdk.client", "ClaudeSDKClient", "disconnect", self._disconnect)

    def remove(self) -> None:
        self.patches.remove()

    def _start(self, options: Any) -> _AgentRun | None:
        try:
            return _AgentRun(self, options)
        except Exception as fault:
            _START.fault(fault)
            return None

    # -- query() ---------------------------------------------------------------------------------

    def _process_query(self, wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        messages = wrapped(*args, **kwargs)
        if not self.patches.on:
            return messages
        options = kwargs.get("options", args[1] if len(args) > 1 else None)
        return self._query_runs(messages, options)

    async def _query_runs(self, messages: AsyncIterator[Any], options: Any) -> AsyncIterator[Any]:
        """`query()`'s messages, each read with the current run's span current (a run per result).

        The first run starts before the first read; a later one (a streamed prompt's next answer) with its
        first message.
        """
        run = self._start(options)  # before the first read: current while the transport connects
        try:
            while True:
                token = None if run is None else otel_context.attach(trace.set_span_in_context(run.span))
                try:
                    message = await messages.__anext__()
                except StopAsyncIteration:
                    break
                except BaseException as error:
                    if run is not None:
                        with _END:
                            run.end(n.OUTCOME_ERROR if isinstance(error, Exception) else n.OUTCOME_CLOSED,
                                    error=error if isinstance(error, Exception) else None)
                        run = None
                    raise
                finally:
                    if token is not None:
                        otel_context.detach(token)
                if run is None:
                    run = self._start(options)  # the next answer of a streamed prompt
                if run is not None:
                    ended = False
                    with _MESSAGE:
                        ended = run.observe(message)
                    if ended:
                        run = None
                yield message
        finally:
            try:
                close = getattr(messages, "aclose", None)
                if close is not None:
                    await close()
            finally:
                if run is not None:
                    with _END:
                        run.end(n.OUTCOME_CLOSED)

    # -- ClaudeSDKClient -------------------------------------------------------------------------

    def _client_run(self, client: Any) -> _AgentRun | None:
        run = self._clients.get(client)
        if run is None:
            run = self._start(getattr(client, "options", None))
            if run is not None:
                self._clients[client] = run
        return run

    async def _client_query(self, wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if not self.patches.on:
            return await wrapped(*args, **kwargs)
        run = self._client_run(instance)
        token = None if run is None else otel_context.attach(trace.set_span_in_context(run.span))
        try:
            return await wrapped(*args, **kwargs)
        finally:
            if token is not None:
                otel_context.detach(token)

    def _receive_messages(self, wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        messages = wrapped(*args, **kwargs)
        if not self.patches.on:
            return messages
        return self._client_messages(instance, messages)

    async def _client_messages(self, client: Any, messages: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The client's messages; a run per answer (its first message, or the `query()` that asked, to its result)."""
        async for message in messages:
            run = self._client_run(client)
            if run is not None:
                ended = False
                with _MESSAGE:
                    ended = run.observe(message)
                if ended:
                    self._clients.pop(client, None)
            yield message

    async def _disconnect(self, wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        run = self._clients.pop(instance, None)
        if run is not None:
            with _END:
                run.end(n.OUTCOME_CLOSED)
        return await wrapped(*args, **kwargs)
