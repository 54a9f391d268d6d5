"""The fake API itself: Messages, token counting and Message Batches on top of an ``Exchange``."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs

from . import _billing
from ._diagnostics import FORCE_HEADER
from ._dimensions import Dimensions, resolve_dimensions
from ._http import Exchange
from ._responses import TOOL_INPUT, TOOL_TOKENS, Json, Plan, usage_dict
from ._scenarios import ERRORS, Scenario, parse_spec, resolve_knobs
from ._state import State
from ._tokens import cache_breakpoint, count_input_tokens

MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
BATCHES = "/v1/messages/batches"
STREAM_ERROR_EVENT: Json = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def route(ex: Exchange) -> None:
    """Dispatch on method and path (query ignored, so ``?beta=true`` works too)."""
    method, path, state = ex.method, ex.path, ex.state
    if path == MESSAGES and method == "POST":
        messages(ex)
    elif path == COUNT_TOKENS and method == "POST":
        count_tokens(ex)
    elif path == BATCHES and method in ("POST", "GET"):
        (create_batch if method == "POST" else list_batches)(ex)
    elif path.startswith(_billing.PREFIX):
        _billing.route(ex, state.billing)
    elif path.startswith(BATCHES + "/"):
        batch_id, _, action = path[len(BATCHES) + 1 :].partition("/")
        handler = {
            ("GET", ""): retrieve_batch,
            ("DELETE", ""): delete_batch,
            ("POST", "cancel"): cancel_batch,
            ("GET", "results"): batch_results,
        }.get((method, action))
        if handler is None:
            not_found(ex)
        else:
            handler(ex, batch_id)
    else:
        not_found(ex)


def not_found(ex: Exchange, message: str = "Not found") -> None:
    ex.send_error(404, "not_found_error", message, ex.state.rate_limit_headers())


# -- messages --------------------------------------------------------------------------------------
def messages(ex: Exchange) -> None:
    """POST /v1/messages: pick the scenario, then answer with JSON, SSE, an error or a hang-up."""
    state = ex.state
    body = ex.json_body()
    if body is None:
        return
    ex.model = body["model"] if isinstance(body.get("model"), str) else None
    ex.stream = body.get("stream") is True
    problem = invalid_params(body)
    if problem:
        ex.send_error(400, "invalid_request_error", problem, state.rate_limit_headers(requests=1))
        return
    try:
        scripted = state.pop_script()
        scenario, params = scripted or parse_spec(ex.headers.get("x-fake-scenario", state.default_scenario))
        knobs = resolve_knobs(scenario, params, ex.headers)
        dimensions = resolve_dimensions(body, ex.headers)
    except ValueError as exc:
        ex.send_error(400, "invalid_request_error", str(exc), state.rate_limit_headers(requests=1))
        return
    retry_after = knobs.retry_after
    throttled = state.throttle()
    if throttled is not None and scenario not in ERRORS:
        scenario, retry_after = Scenario.RATE_LIMIT, math.ceil(throttled)
    ex.scenario = scenario.value
    if knobs.delay_ms:
        time.sleep(knobs.delay_ms / 1000)

    as_error = Scenario.OVERLOADED if scenario is Scenario.STREAM_ERROR and not ex.stream else scenario
    error = ERRORS.get(as_error)
    if error is not None:
        headers = state.rate_limit_headers(requests=1, exhausted=error.status == 429)
        if error.status in (429, 529):
            headers += retry_headers(retry_after)
        ex.send_error(error.status, error.type, error.message, headers)
        return

    plan = make_plan(state, body, scenario, knobs.output_tokens, dimensions=dimensions,
                     tool_index=knobs.tool_index)
    try:
        diagnostics = state.diagnoser.diagnose(body, plan.message_id, ex.headers.get(FORCE_HEADER))
    except ValueError as exc:
        ex.send_error(400, "invalid_request_error", str(exc), state.rate_limit_headers(requests=1))
        return
    if diagnostics is not None:
        plan = replace(plan, diagnostics=diagnostics)
        ex.diagnostics = diagnostics
    if scenario is Scenario.STREAM_CUT and not ex.stream:
        ex.hang_up()  # no response at all
        return
    usage = plan.usage
    headers = state.rate_limit_headers(
        requests=1,
        input_tokens=usage["input_tokens"] + usage["cache_creation_input_tokens"],
        output_tokens=usage["output_tokens"],
    )
    ex.billed = usage
    if not ex.stream:
        ex.usage, ex.stop_reason = usage, plan.stop_reason
        ex.send_json(200, plan.message(), headers)
        return

    broken = scenario in (Scenario.STREAM_CUT, Scenario.STREAM_ERROR)
    events, ex.usage = plan.stream(
        delta_only=scenario is Scenario.USAGE_ON_DELTA_ONLY,
        cut_after=max(1, plan.text_tokens // 2) if broken else None,
    )
    if scenario is Scenario.STREAM_ERROR:
        events.append(("error", STREAM_ERROR_EVENT))
    if not broken:
        ex.stop_reason = plan.stop_reason
    ex.send_stream(
        events,
        headers=headers,
        event_delay=knobs.event_delay_ms / 1000,
        terminate=scenario is not Scenario.STREAM_CUT,
        completed=not broken,
    )


def invalid_params(body: Json) -> str | None:
    """The few checks the real API makes that tests are likely to trip over."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Field required (an integer >= 1)"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages: at least one message is required"
    return None


def make_plan(state: State, body: Json, scenario: Scenario, wanted: int, service_tier: str = "standard",
              dimensions: Dimensions | None = None, tool_index: int = 0) -> Plan:
    """Decide the output and usage; touches the prompt cache, so call once per generated message."""
    total = count_input_tokens(body)
    cache = state.use_cache(cache_breakpoint(body))
    limit = int(body["max_tokens"])
    if scenario is Scenario.MAX_TOKENS:
        wanted = max(wanted, limit + 1)
    tool: Json | None = None
    stop_sequence: str | None = None
    if scenario is Scenario.TOOL_USE and limit > TOOL_TOKENS:
        output = min(max(wanted, TOOL_TOKENS + 1), limit)
        text_tokens = output - TOOL_TOKENS
        tool = {"type": "tool_use", "id": state.next_tool_id(), "name": _tool_name(body, tool_index)}
        tool["input"] = dict(TOOL_INPUT)
        stop_reason = "tool_use"
    else:
        output = text_tokens = min(wanted, limit)
        stop_reason = "max_tokens" if wanted > limit else "end_turn"
        if scenario is Scenario.STOP_SEQUENCE:
            stop_reason, stop_sequence = "stop_sequence", _first_stop_sequence(body)
    usage = usage_dict(
        input_tokens=total - cache.read - cache.created,
        output_tokens=output,
        cache_read=cache.read,
        cache_creation=cache.created,
        one_hour=cache.one_hour,
        service_tier=service_tier if dimensions is None else dimensions.service_tier,
    )
    message_id = state.next_message_id()
    container = None
    if dimensions is not None:
        usage.update(dimensions.usage_fields(output))
        container = dimensions.container_json(message_id, time.time())
    return Plan(
        message_id=message_id,
        model=body["model"],
        text_tokens=text_tokens,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=usage,
        tool=tool,
        container=container,
    )


def _tool_name(body: Json, index: int = 0) -> str:
    tools = body.get("tools")
    first = tools[index % len(tools)] if isinstance(tools, list) and tools else None
    name = first.get("name") if isinstance(first, dict) else None
    return name if isinstance(name, str) else "get_weather"


def _first_stop_sequence(body: Json) -> str:
    sequences = body.get("stop_sequences")
    if isinstance(sequences, list) and sequences and isinstance(sequences[0], str):
        return sequences[0]
    return "END"


def retry_headers(seconds: float) -> list[tuple[str, str]]:
    """``retry-after`` plus ``retry-after-ms``; the latter is at least 1 because the SDK ignores 0
    and falls back to ~0.5 s exponential backoff, which would make retry tests slow."""
    text = str(int(seconds)) if seconds == int(seconds) else f"{seconds:g}"
    return [("retry-after", text), ("retry-after-ms", str(max(1, round(seconds * 1000))))]


def count_tokens(ex: Exchange) -> None:
    body = ex.json_body()
    if body is None:
        return
    ex.model = body["model"] if isinstance(body.get("model"), str) else None
    if not isinstance(body.get("messages"), list):
        ex.send_error(400, "invalid_request_error", "messages: Field required", ex.state.rate_limit_headers())
        return
    ex.send_json(200, {"input_tokens": count_input_tokens(body)}, ex.state.rate_limit_headers())


# -- message batches -------------------------------------------------------------------------------
def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def create_batch(ex: Exchange) -> None:
    """Run every request at once; the batch is born ``ended`` so tests need no polling."""
    state = ex.state
    body = ex.json_body()
    if body is None:
        return
    requests = body.get("requests")
    try:
        knobs = resolve_knobs(Scenario.NORMAL, {}, ex.headers)
        if not isinstance(requests, list) or not requests:
            raise ValueError("requests: at least one request is required")
        for item in requests:
            if not (isinstance(item, dict) and isinstance(item.get("custom_id"), str)):
                raise ValueError("requests: each request needs a string custom_id")
            if not isinstance(item.get("params"), dict):
                raise ValueError("requests: each request needs params")
            resolve_dimensions(item["params"], ex.headers, batch=True)  # a bad value fails the whole batch
    except ValueError as exc:
        ex.send_error(400, "invalid_request_error", str(exc), state.rate_limit_headers())
        return

    batch_id = state.next_batch_id()
    results: list[Json] = []
    usages: list[Json] = []
    for item in requests:
        params = item["params"]
        problem = invalid_params(params)
        if problem:
            error = {"type": "error", "error": {"type": "invalid_request_error", "message": problem}}
            results.append({"custom_id": item["custom_id"], "result": {"type": "errored", "error": error}})
            continue
        plan = make_plan(state, params, Scenario.NORMAL, knobs.output_tokens, service_tier="batch",
                         dimensions=resolve_dimensions(params, ex.headers, batch=True))
        result = {"type": "succeeded", "message": plan.message()}
        results.append({"custom_id": item["custom_id"], "result": result})
        usages.append(plan.usage)
    now = time.time()
    batch: Json = {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": {
            "processing": 0,
            "succeeded": len(usages),
            "errored": len(results) - len(usages),
            "canceled": 0,
            "expired": 0,
        },
        "created_at": _timestamp(now),
        "ended_at": _timestamp(now),
        "expires_at": _timestamp(now + 24 * 3600),
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"{ex.base_url}{BATCHES}/{batch_id}/results",
    }
    state.add_batch(batch, results, usages)
    ex.send_json(200, batch, state.rate_limit_headers())


def _found(ex: Exchange, batch_id: str) -> Json | None:
    batch = ex.state.get_batch(batch_id)
    if batch is None:
        not_found(ex, f"message batch {batch_id!r} not found")
    return batch


def retrieve_batch(ex: Exchange, batch_id: str) -> None:
    batch = _found(ex, batch_id)
    if batch is not None:
        ex.send_json(200, batch, ex.state.rate_limit_headers())


def cancel_batch(ex: Exchange, batch_id: str) -> None:
    """Our batches have always ended already, and cancelling an ended batch changes nothing."""
    retrieve_batch(ex, batch_id)


def delete_batch(ex: Exchange, batch_id: str) -> None:
    if ex.state.delete_batch(batch_id):
        ex.send_json(200, {"id": batch_id, "type": "message_batch_deleted"}, ex.state.rate_limit_headers())
    else:
        not_found(ex, f"message batch {batch_id!r} not found")


def list_batches(ex: Exchange) -> None:
    query = {key: values[-1] for key, values in parse_qs(ex.query).items()}
    try:
        limit = min(max(int(query.get("limit", "20")), 1), 1000)
    except ValueError:
        ex.send_error(400, "invalid_request_error", "limit must be an integer", ex.state.rate_limit_headers())
        return
    items = ex.state.list_batches()
    ids = [batch["id"] for batch in items]
    if query.get("before_id") in ids:
        items = items[: ids.index(query["before_id"])]
        page, has_more = items[-limit:], len(items) > limit
    else:
        if query.get("after_id") in ids:
            items = items[ids.index(query["after_id"]) + 1 :]
        page, has_more = items[:limit], len(items) > limit
    payload = {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }
    ex.send_json(200, payload, ex.state.rate_limit_headers())


def batch_results(ex: Exchange, batch_id: str) -> None:
    results = ex.state.get_results(batch_id)
    if results is None:
        not_found(ex, f"message batch {batch_id!r} not found")
        return
    payload = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in results).encode()
    accept = ex.headers.get("accept", "")
    content_type = "application/binary" if "application/binary" in accept else "application/x-jsonl"
    ex.send_bytes(200, payload, content_type, ex.state.rate_limit_headers())
