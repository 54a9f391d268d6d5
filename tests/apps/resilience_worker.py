"""One of two processes sharing a Redis-backed request limit (for tests/test_resilience_redis.py).

    python tests/apps/resilience_worker.py BASE_URL REDIS_URL CALLS sync|async

Prints READY once imported and wrapped, waits for a line on stdin (so both processes start together), makes
CALLS calls through the wrapper (600 requests per minute over a 1 s window, kept in Redis), prints DONE.
"""

from __future__ import annotations

import asyncio
import sys

import anthropic

from anthropic_otel.resilience import Limits, Policy, wrap

MODEL = "claude-haiku-4-5"
PARAMS = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "Share the limit."}]}


def main() -> None:
    base_url, redis_url, calls, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    policy = Policy(limits=Limits(requests_per_minute=600, window_seconds=1, max_wait=30),
                    redis_url=redis_url, namespace="two-processes")
    if mode == "sync":
        with anthropic.Anthropic(base_url=base_url, api_key="sk-ant-worker", max_retries=0) as raw:
            client = wrap(raw, policy)
            print("READY", flush=True)
            sys.stdin.readline()
            for _ in range(calls):
                client.messages.create(**PARAMS)
    else:
        async def run() -> None:
            async with anthropic.AsyncAnthropic(base_url=base_url, api_key="sk-ant-worker", max_retries=0) as raw:
                client = wrap(raw, policy)
                print("READY", flush=True)
                await asyncio.to_thread(sys.stdin.readline)
                await asyncio.gather(*(client.messages.create(**PARAMS) for _ in range(calls)))

        asyncio.run(run())
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
