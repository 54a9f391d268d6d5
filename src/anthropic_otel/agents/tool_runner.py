"""The Anthropic SDK's tool runner (`client.beta.messages.tool_runner(...)`): one run span, tool spans, rollup.

The runner asks itself for its run span (`_start_tool_runner_span`) and for each tool call's span
(`_tool_use_span`); both are replaced, so the SDK's own `anthropic.messages.tool_runner` and
`anthropic.custom_tool_use` spans are never made, whether its tracing is on or not, and ours take their
place: `invoke_agent` (INTERNAL) with the `chat` spans and `execute_tool {name}` spans as children. The SDK
still makes our run span current around each step, sets its status and ends it; its `end()` is where the
run is rolled up. Each step of the loop runs with the run in `CURRENT_RUN`, so the chat calls it makes
(streamed ones too, which end later in the application's hands) add to the run.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from time import perf_counter
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ..instrumentation.context import current as current_attributes
from ..instrumentation.record import error_type
from ..instrumentation.runs import CURRENT_RUN
from ..instrumentation.start import Instrumentation, server
from ..telemetry import names as n
from ..telemetry.faults import Guard
from .metrics import AgentMetrics
from .patching import Patches
from .run import Run

_MODULE = "anthropic.lib.tools._beta_runner"
_START = Guard("agent run start")
_TOOL = Guard("tool call span")
_END = Guard("agent run end")


class _ToolCall:
    """What one tool call learned while it ran: the error type of the exception its tool raised."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: str | None = None


_CURRENT_TOOL: ContextVar[_ToolCall | None] = ContextVar("anthropic_otel_current_tool", default=None)


class _ToolRun:
    """Where the runner puts a tool call's result (the SDK's own `ToolRun` has the same two attributes)."""

    result: Any = None
    content: Any = None


class _RunSpan(wrapt.ObjectProxy[Any]):
    """The run span as the runner sees it: its status is noted and its end rolls the run up first."""

    def __init__(self, span: trace.Span, run: Run, runner: Any) -> None:
        super().__init__(span)
        self._self_run = run
        self._self_runner = weakref.ref(runner)
        self._self_status: StatusCode | None = None

    def set_status(self, status: Any, description: str | None = None) -> None:
        code = getattr(status, "status_code", status)
        if isinstance(code, StatusCode):
            self._self_status = code
        self.__wrapped__.set_status(status, description)

    def set_attribute(self, key: str, value: Any) -> None:
        raised = self._self_run.error_type
        if key == n.ERROR_TYPE and raised is not None:
            value = raised  # what the run raised, named as on the chat spans (the SDK says `client_error`)
        self.__wrapped__.set_attribute(key, value)

    def end(self, end_time: int | None = None) -> None:
        with _END:
            outcome = self._outcome()
            self._self_run.finish(outcome, self._self_run.error_type if outcome == n.OUTCOME_ERROR else None)
        self.__wrapped__.end(end_time)

    def _outcome(self) -> str:
        status = self._self_status
        if status is StatusCode.ERROR:
            return n.OUTCOME_ERROR
        if status is not StatusCode.OK:
            return n.OUTCOME_CLOSED  # closed by the application (the runner leaves the status unset)
        runner = self._self_runner()
        limit = getattr(runner, "_max_iterations", None)
        count = getattr(runner, "_iteration_count", 0)
        if isinstance(limit, int) and count >= limit and self._self_run.stop_reason == "tool_use":
            return n.OUTCOME_MAX_ITERATIONS
        return n.OUTCOME_COMPLETED


def _run_of(runner: Any) -> Run | None:
    span = getattr(runner, "_tool_runner_span", None)
    run = getattr(span, "_self_run", None) if isinstance(span, _RunSpan) else None
    return run if isinstance(run, Run) else None


class ToolRunnerPatches:
    """The tool-runner patches of one `instrument()`."""

    def __init__(self, tel: Instrumentation, metrics: AgentMetrics) -> None:
        self.tel = tel
        self.metrics = metrics
        self.patches = Patches()

    def apply(self) -> None:
        wrap = self.patches.wrap
        if not wrap(_MODULE, "BaseToolRunner", "_start_tool_runner_span", self._start):
            return  # an SDK without the runner's tracing hooks: runs stay untraced (their calls are not)
        wrap(_MODULE, "BaseToolRunner", "_tool_use_span", self._tool_use_span)
        wrap(_MODULE, "BaseSyncToolRunner", "_steps", self._steps)
        wrap(_MODULE, "BaseAsyncToolRunner", "_steps", self._async_steps)
        wrap(_MODULE, "BaseSyncToolRunner", "_run_tool", self._run_tool)
        wrap(_MODULE, "BaseAsyncToolRunner", "_run_tool", self._run_tool)

    def remove(self) -> None:
        self.patches.remove()

    # -- the run ---------------------------------------------------------------------------------

    def _start(self, wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if not self.patches.on:
            return wrapped(*args, **kwargs)
        try:
            client = args[0] if args else kwargs["client"]
            proxy = self._start_run(instance, client)
        except Exception as fault:
            _START.fault(fault)
            return wrapped(*args, **kwargs)
        instance._tool_runner_span = proxy
        return proxy

    def _start_run(self, runner: Any, client: Any) -> _RunSpan:
        tel = self.tel
        params = runner._params
        model = params.get("model")
        model = model if isinstance(model, str) else ""
        provider = getattr(client, "_gen_ai_provider_name", n.PROVIDER_ANTHROPIC)
        host, port = server(client)
        context = current_attributes()
        key = tel.metrics.common_key(n.OP_INVOKE_AGENT, provider, model, host, context)
        attributes: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OP_INVOKE_AGENT,
            n.GEN_AI_PROVIDER_NAME: provider,
            n.GEN_AI_REQUEST_MODEL: model,
            n.SERVER_ADDRESS: host,
            n.RUN_FRAMEWORK: n.FRAMEWORK_TOOL_RUNNER,
        }
        if port is not None:
            attributes[n.SERVER_PORT] = port
        if context:
            attributes.update(context)
        span = tel.tracer.start_span(n.OP_INVOKE_AGENT, kind=SpanKind.INTERNAL, attributes=attributes)
        return _RunSpan(span, Run(self.metrics, span, key, n.FRAMEWORK_TOOL_RUNNER), runner)

    def _steps(self, wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        steps = wrapped(*args, **kwargs)
        run = _run_of(instance) if self.patches.on else None
        return steps if run is None else _steps_in_run(steps, run)

    def _async_steps(self, wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        steps = wrapped(*args, **kwargs)
        run = _run_of(instance) if self.patches.on else None
        return steps if run is None else _async_steps_in_run(steps, run)

    # -- tool calls --------------------------------------------------------------------------------

    def _tool_use_span(self, wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        run = _run_of(instance) if self.patches.on else None
        if run is None:
            return wrapped(*args, **kwargs)
        tool_use = args[2] if len(args) > 2 else kwargs["tool_use"]
        return self._tool_call(run, tool_use)

    @contextmanager
    def _tool_call(self, run: Run, tool_use: Any) -> Iterator[_ToolRun]:
        name = getattr(tool_use, "name", None)
        name = name if isinstance(name, str) else ""
        span: trace.Span = trace.INVALID_SPAN
        with _TOOL:
            attributes: dict[str, Any] = {
                n.GEN_AI_OPERATION_NAME: n.OP_EXECUTE_TOOL,
                n.GEN_AI_TOOL_NAME: name,
                n.GEN_AI_TOOL_TYPE: n.TOOL_TYPE_FUNCTION,
            }
            call_id = getattr(tool_use, "id", None)
            if isinstance(call_id, str):
                attributes[n.GEN_AI_TOOL_CALL_ID] = call_id
            span = self.tel.tracer.start_span(f"{n.OP_EXECUTE_TOOL} {name}" if name else n.OP_EXECUTE_TOOL,
                                              kind=SpanKind.INTERNAL, attributes=attributes)
        call = _ToolCall()
        tool_run = _ToolRun()
        call_token = _CURRENT_TOOL.set(call)
        run_token = CURRENT_RUN.set(run.nested())
        start = perf_counter()
        raised: BaseException | None = None
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                yield tool_run
        except BaseException as error:
            raised = error
            raise
        finally:
            duration = perf_counter() - start
            CURRENT_RUN.reset(run_token)
            _CURRENT_TOOL.reset(call_token)
            with _TOOL:
                self._tool_ended(run, span, name, call, tool_run, raised, duration)

    def _tool_ended(self, run: Run, span: trace.Span, name: str, call: _ToolCall, tool_run: _ToolRun,
                    raised: BaseException | None, duration: float) -> None:
        result = tool_run.result
        failed = isinstance(result, dict) and result.get("is_error") is True
        err_type = call.error
        if err_type is None and isinstance(raised, Exception):
            err_type = error_type(raised)
        if err_type is None and failed:
            err_type = n.TOOL_ERROR
        if err_type is not None:
            span.set_attribute(n.ERROR_TYPE, err_type)
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        run.tool_done(err_type is not None)
        self.metrics.tool_called(run.key, name, err_type, duration)

    def _run_tool(self, wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        call = _CURRENT_TOOL.get()
        if call is None or not args:
            return wrapped(*args, **kwargs)
        return wrapped(_RecordingTool(args[0], call), *args[1:], **kwargs)


class _RecordingTool(wrapt.ObjectProxy[Any]):
    """A tool whose `call` notes the class of what it raised (the runner turns it into an error result)."""

    def __init__(self, tool: Any, call: _ToolCall) -> None:
        super().__init__(tool)
        self._self_call = call

    def call(self, input: Any) -> Any:
        try:
            result = self.__wrapped__.call(input)
        except BaseException as error:
            self._self_call.error = error_type(error)
            raise
        if inspect.isawaitable(result):
            return self._awaited(result)
        return result

    async def _awaited(self, result: Awaitable[Any]) -> Any:
        try:
            return await result
        except BaseException as error:
            self._self_call.error = error_type(error)
            raise


def _steps_in_run(steps: Iterator[Any], run: Run) -> Iterator[Any]:
    """The runner's loop, each step with `run` current (the application's code between steps without it)."""
    try:
        while True:
            token = CURRENT_RUN.set(run)
            try:
                item = next(steps)
            except StopIteration:
                return
            except Exception as error:
                run.error_type = error_type(error)
                raise
            finally:
                CURRENT_RUN.reset(token)
            yield item
    finally:
        close = getattr(steps, "close", None)
        if close is not None:
            close()


async def _async_steps_in_run(steps: AsyncIterator[Any], run: Run) -> AsyncIterator[Any]:
    try:
        while True:
            token = CURRENT_RUN.set(run)
            try:
                item = await steps.__anext__()
            except StopAsyncIteration:
                return
            except Exception as error:
                run.error_type = error_type(error)
                raise
            finally:
                CURRENT_RUN.reset(token)
            yield item
    finally:
        close = getattr(steps, "aclose", None)
        if close is not None:
            await close()
