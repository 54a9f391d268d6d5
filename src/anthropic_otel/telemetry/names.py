"""Every telemetry name the package emits, defined once.

The telemetry contract, docs/telemetry.md, documents every one of these names (tests/test_contract.py fails
on a name added here until it has its row there); alert rules, dashboards and tests depend on them.
`gen_ai.*` names are plain literals because the semantic-conventions package marks its `gen_ai` constants
deprecated ("moved").
"""

from __future__ import annotations

from typing import Final

SCOPE: Final = "anthropic_otel"

# Span attributes (OpenTelemetry GenAI semantic conventions v1.41.1).
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
GEN_AI_DETAILS_EVENT: Final = "gen_ai.client.inference.operation.details"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
HTTP_RESEND_COUNT: Final = "http.request.resend_count"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"  # thinking, part of output

# Anthropic-specific and package attributes.
ANTHROPIC_REQUEST_ID: Final = "anthropic.request.id"
ANTHROPIC_STOP_REASON: Final = "anthropic.stop_reason"
ANTHROPIC_BATCH_ID: Final = "anthropic.batch.id"
COST_USD: Final = "anthropic_otel.cost.usd"
CACHE_SAVINGS_USD: Final = "anthropic_otel.cache.savings.usd"  # span: net dollars caching saved (may be < 0)
TOKEN_TYPE: Final = "anthropic_otel.token.type"
RATELIMIT_RESOURCE: Final = "anthropic_otel.ratelimit.resource"
BUDGET_PERIOD: Final = "anthropic_otel.budget.period"
BATCH_OPERATION: Final = "anthropic_otel.batch.operation"
STREAM_CLOSED_EARLY: Final = "anthropic_otel.stream.closed_early"
ATTEMPT_EVENT: Final = "anthropic_otel.attempt"
ATTEMPT_STATUS: Final = "http.response.status_code"
USAGE_RAW_PREFIX: Final = "anthropic_otel.usage."  # span: + SDK usage field, a value that cannot be real, as seen
# Billing dimensions (issue 12): span attributes with the raw value, bounded labels on the token and cost series.
# The names the SDK's own tracing uses (`anthropic.response.service_tier`); no GenAI convention covers them.
ANTHROPIC_SERVICE_TIER: Final = "anthropic.response.service_tier"  # standard, priority, batch
ANTHROPIC_SPEED: Final = "anthropic.response.speed"  # standard, fast
ANTHROPIC_INFERENCE_GEO: Final = "anthropic.response.inference_geo"  # us, global
ANTHROPIC_WEB_SEARCH_REQUESTS: Final = "anthropic.usage.server_tool_use.web_search_requests"
ANTHROPIC_WEB_FETCH_REQUESTS: Final = "anthropic.usage.server_tool_use.web_fetch_requests"
ANTHROPIC_CONTAINER_ID: Final = "anthropic.container.id"  # span: the code-execution container the call used
SERVER_TOOL_TYPE: Final = "anthropic_otel.server_tool.type"  # metric: web_search, web_fetch

# Calls whose final usage never arrived (issue 12): span attribute and metric label, and its values.
USAGE_UNKNOWN_REASON: Final = "anthropic_otel.usage.unknown.reason"
UNKNOWN_STREAM_CUT: Final = "stream_cut"  # a stream failed or ended before its message_delta
UNKNOWN_TIMEOUT: Final = "timeout"  # a timeout after the request was sent
UNKNOWN_CLOSED_EARLY: Final = "closed_early"  # the caller closed or dropped a stream before its message_delta
UNKNOWN_NOT_PARSED: Final = "not_parsed"  # a raw response whose body the caller never had parsed
# Prompt-cache diagnostics (SDK >= 2.14, `diagnostics={"previous_message_id": ...}`): span and label.
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"  # from attributes(); Agent SDK session id
CACHE_MISS_REASON: Final = "anthropic_otel.cache.miss.reason"  # model_changed, system_changed, ...
CACHE_MISS_INPUT_TOKENS: Final = "anthropic_otel.cache.miss.input_tokens"  # span: cache_missed_input_tokens
CACHE_MISS_USD: Final = "anthropic_otel.cache.miss.usd"  # span: those tokens x (input rate - cache-read rate)
CACHE_PREVIOUS_MESSAGE_ID: Final = "anthropic_otel.cache.previous_message_id"  # span: the id the package filled in

# Operation names.
OP_CHAT: Final = "chat"
OP_COUNT_TOKENS: Final = "count_tokens"
OP_BATCH: Final = "batch"

# Provider names, per client class.
PROVIDER_ANTHROPIC: Final = "anthropic"

# Values.
NONE: Final = "none"
OTHER: Final = "_other"
FINISH_ERROR: Final = "error"
TOKEN_INPUT: Final = "input"
TOKEN_OUTPUT: Final = "output"
TOKEN_CACHE_READ: Final = "cache_read"
TOKEN_CACHE_WRITE: Final = "cache_write"
TOKEN_WEB_SEARCH: Final = "web_search"
RATELIMIT_RESOURCES: Final = ("requests", "tokens", "input_tokens", "output_tokens")
TOKEN_WEB_FETCH: Final = "web_fetch"  # cost series only, and only where a fee applied
SERVER_TOOL_WEB_SEARCH: Final = "web_search"
SERVER_TOOL_WEB_FETCH: Final = "web_fetch"
# The closed sets of the dimension labels; any other value is `_other`, an absent one `none`.
SERVICE_TIERS: Final = ("standard", "priority", "batch")
SPEEDS: Final = ("standard", "fast")
INFERENCE_GEOS: Final = ("us", "global")

# Metric instruments.
M_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
M_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
M_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
M_REQUESTS: Final = "anthropic_otel.requests"
M_TOKENS: Final = "anthropic_otel.tokens"
M_COST: Final = "anthropic_otel.cost.usd"
M_UNPRICED: Final = "anthropic_otel.unpriced.requests"
M_ACTIVE: Final = "anthropic_otel.requests.active"
M_RATELIMIT_REMAINING: Final = "anthropic_otel.ratelimit.remaining"
M_RATELIMIT_LIMIT: Final = "anthropic_otel.ratelimit.limit"
M_BUDGET: Final = "anthropic_otel.budget.usd"
M_CACHE_SAVINGS: Final = "anthropic_otel.cache.savings.usd"  # gross: what cache reads saved over the input rate
M_CACHE_WRITE_PREMIUM: Final = "anthropic_otel.cache.write_premium.usd"  # what cache writes cost over it
# The reconcile exporter (`anthropic-otel reconcile --serve`): what Anthropic billed for the last closed bucket.
M_BILLED_USD: Final = "anthropic_otel.billed.usd"
M_BILLED_TOKENS: Final = "anthropic_otel.billed.tokens"
M_THINKING_TOKENS: Final = "anthropic_otel.thinking.tokens"  # the thinking share of output: not added to tokens
M_SERVER_TOOL_REQUESTS: Final = "anthropic_otel.server_tool.requests"  # web search / web fetch requests
M_CONTAINER_REQUESTS: Final = "anthropic_otel.container.requests"  # calls whose response carried a container
M_USAGE_UNKNOWN: Final = "anthropic_otel.usage.unknown"  # calls whose final usage never arrived, by reason
M_CACHE_MISSED_TOKENS: Final = "anthropic_otel.cache.missed.tokens"  # diagnosed cache misses, by reason
M_CACHE_MISSED_USD: Final = "anthropic_otel.cache.missed.usd"  # what they cost over a cache read, by reason

DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS: Final = tuple(4**i for i in range(14))  # 1, 4, 16 ... 67108864

# Logger names.
REQUEST_LOGGER: Final = "anthropic_otel.requests"

# Resilience wrapper (issue 5): its attribute and metric names go below this line.
RESILIENT_SPAN_PREFIX: Final = "resilient"  # span `resilient {operation} {model}`, INTERNAL, parent of the attempts
RESILIENCE_ATTEMPTS: Final = "anthropic_otel.resilience.attempts"  # span: requests sent for the call (incl. fallback)
RESILIENCE_RETRY_EVENT: Final = "anthropic_otel.resilience.retry"  # span event, one per retry
RETRY_REASON: Final = "anthropic_otel.retry.reason"  # rate_limit_error, overloaded_error, api_error, http_503, timeout
RETRY_ATTEMPT: Final = "anthropic_otel.retry.attempt"  # event: number of the attempt that failed (1-based)
RETRY_DELAY: Final = "anthropic_otel.retry.delay"  # event: seconds slept before the next attempt
LIMITER_RESOURCE: Final = "anthropic_otel.limiter.resource"  # concurrency, requests, input/output_tokens, headers
LIMITER_WAIT: Final = "anthropic_otel.limiter.wait"  # span: seconds the call waited for limits in total
REJECTION_REASON: Final = "anthropic_otel.rejection.reason"  # circuit_open, limit_timeout, budget
CIRCUIT_STATE: Final = "anthropic_otel.circuit.state"  # closed, open, half_open (the state entered)
FALLBACK_MODEL: Final = "anthropic_otel.fallback.model"
FALLBACK_REASON: Final = "anthropic_otel.fallback.reason"  # overloaded, circuit_open
STREAM_TIMEOUT: Final = "anthropic_otel.stream.timeout"  # idle, total
M_RESILIENCE_RETRIES: Final = "anthropic_otel.resilience.retries"
M_RESILIENCE_CIRCUIT_STATE: Final = "anthropic_otel.resilience.circuit.state"  # gauge: 0 closed, 1 half-open, 2 open
M_RESILIENCE_CIRCUIT_TRANSITIONS: Final = "anthropic_otel.resilience.circuit.transitions"
M_RESILIENCE_LIMITER_WAIT: Final = "anthropic_otel.resilience.limiter.wait"  # histogram, s, only calls that waited
M_RESILIENCE_REJECTED: Final = "anthropic_otel.resilience.rejected"
M_RESILIENCE_FALLBACKS: Final = "anthropic_otel.resilience.fallbacks"
M_RESILIENCE_STREAM_TIMEOUTS: Final = "anthropic_otel.resilience.stream.timeouts"
M_RESILIENCE_STORE_FAILURES: Final = "anthropic_otel.resilience.store.failures"  # Redis failures the policy handled
STORE_COMPONENT: Final = "anthropic_otel.store.component"  # limits, budget
STORE_STAGE: Final = "anthropic_otel.store.stage"  # acquire, reserve, settle

# Agent runs (issue 14): the SDK's tool runner and the Claude Agent SDK.
OP_INVOKE_AGENT: Final = "invoke_agent"  # operation of a run span, and of an Agent SDK run's cost and tokens
OP_EXECUTE_TOOL: Final = "execute_tool"  # operation of a tool call's span
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"  # `function` (a client tool the application runs)
TOOL_TYPE_FUNCTION: Final = "function"
TOOL_ERROR: Final = "tool_error"  # error.type of a tool call whose result is an error without an exception seen
RUN_FRAMEWORK: Final = "anthropic_otel.run.framework"  # span: `tool_runner` or `claude_agent_sdk`
RUN_OUTCOME: Final = "anthropic_otel.run.outcome"  # span and metric: how the run ended (see RUN_OUTCOMES)
RUN_ITERATIONS: Final = "anthropic_otel.run.iterations"  # span: model calls (tool runner) or turns (Agent SDK)
RUN_TOOL_CALLS: Final = "anthropic_otel.run.tool_calls"  # span: tool calls the run made
RUN_TOOL_ERRORS: Final = "anthropic_otel.run.tool_errors"  # span: tool calls that failed
RUN_UNPRICED_CALLS: Final = "anthropic_otel.run.unpriced_calls"  # span: model calls of the run without a price
RUN_TERMINAL_REASON: Final = "anthropic_otel.run.terminal_reason"  # span: the Agent SDK's terminal_reason
RUN_API_DURATION: Final = "anthropic_otel.run.api_duration"  # span: seconds the CLI spent in API calls
RUN_API_ERROR_STATUS: Final = "anthropic_otel.run.api_error_status"  # span: HTTP status of the failing API call
RUN_CLI_COST_USD: Final = "anthropic_otel.run.cli_cost.usd"  # span: the CLI's own total_cost_usd
RUN_MODEL_USAGE_EVENT: Final = "anthropic_otel.run.model_usage"  # span event: one per model of an Agent SDK run
FRAMEWORK_TOOL_RUNNER: Final = "tool_runner"
FRAMEWORK_AGENT_SDK: Final = "claude_agent_sdk"
OUTCOME_COMPLETED: Final = "completed"  # the run ended on its own
OUTCOME_MAX_ITERATIONS: Final = "max_iterations"  # the tool runner stopped at max_iterations, a tool call pending
OUTCOME_MAX_TURNS: Final = "max_turns"  # the Agent SDK stopped at max_turns
OUTCOME_ERROR: Final = "error"  # the run raised, or the Agent SDK reported an error
OUTCOME_CLOSED: Final = "closed"  # the application closed or dropped the run before it ended
RUN_OUTCOMES: Final = (OUTCOME_COMPLETED, OUTCOME_MAX_ITERATIONS, OUTCOME_MAX_TURNS, OUTCOME_ERROR, OUTCOME_CLOSED)
M_AGENT_RUNS: Final = "anthropic_otel.agent.runs"  # counter, by outcome
M_AGENT_RUN_COST: Final = "anthropic_otel.agent.run.cost.usd"  # histogram: dollars per run (priced runs)
M_AGENT_RUN_ITERATIONS: Final = "anthropic_otel.agent.run.iterations"  # histogram: iterations per run
M_AGENT_TOOL_CALLS: Final = "anthropic_otel.agent.tool.calls"  # counter, by tool name and error type
M_AGENT_TOOL_DURATION: Final = "anthropic_otel.agent.tool.duration"  # histogram, s, by tool name and error type
M_AGENT_COST_DIVERGENCE: Final = "anthropic_otel.agent.cost.divergence"  # histogram: |ours - CLI's| / ours
RUN_COST_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0)
RUN_ITERATION_BUCKETS: Final = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 25, 30, 40, 50, 75, 100)
TOOL_DURATION_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                                60.0, 120.0)
COST_DIVERGENCE_BUCKETS: Final = (0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
