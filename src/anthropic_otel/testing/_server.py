"""``FakeAnthropicServer``: the public face of the fake Messages API."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

from ._bill import Billing
from ._http import FakeHTTPServer
from ._routes import route
from ._scenarios import Scenario
from ._state import Limits, RecordedCall, State


class FakeAnthropicServer:
    """A local stand-in for the Anthropic API that the real SDK talks to over real HTTP.

    Deterministic usage (see ``count_input_tokens``), realistic prompt caching, errors, broken
    streams and batches, so instrumentation and alert rules can be tested without spending money::

        with FakeAnthropicServer() as server:
            client = anthropic.Anthropic(base_url=server.base_url, api_key="test")
            server.script("rate_limit", "normal")
            ...
            assert server.totals()["requests"] == 1

    ``default_scenario`` (and each scripted entry) may carry knobs: ``"normal:delay_ms=50"``.
    Rate limits are advertised in headers; with ``enforce_rate_limits`` the server also answers
    429 once a per-minute limit is used up.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        default_scenario: str = Scenario.NORMAL,
        *,
        requests_per_minute: int = 1000,
        tokens_per_minute: int = 1_000_000,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        enforce_rate_limits: bool = False,
    ) -> None:
        limits = Limits(
            requests=requests_per_minute,
            tokens=tokens_per_minute,
            input_tokens=tokens_per_minute if input_tokens_per_minute is None else input_tokens_per_minute,
            output_tokens=tokens_per_minute if output_tokens_per_minute is None else output_tokens_per_minute,
        )
        self._state = State(str(default_scenario), limits, enforce_rate_limits)
        self._address = (host, port)
        self._httpd: FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind and serve on a daemon thread; returns self for ``server = FakeAnthropicServer().start()``."""
        if self._httpd is not None:
            raise RuntimeError("FakeAnthropicServer is already running")
        httpd = FakeHTTPServer(self._address, self._state, route)
        host, port = httpd.server_address[:2]
        httpd.base_url = f"http://{_url_host(str(host))}:{port}"
        self._httpd = httpd
        # A short poll interval keeps stop() fast; idle wake-ups cost nothing measurable.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-anthropic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections; safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``anthropic.Anthropic(base_url=...)``."""
        if self._httpd is None:
            raise RuntimeError("FakeAnthropicServer is not running; call start() first")
        return self._httpd.base_url

    # -- control and inspection ------------------------------------------------------------------
    def script(self, *scenarios: str) -> None:
        """Queue scenarios for the next ``/v1/messages`` requests, ahead of headers and the default."""
        self._state.script(scenarios)

    @property
    def calls(self) -> list[RecordedCall]:
        """Finished requests in arrival order (a snapshot copy)."""
        return self._state.calls()

    @property
    def billing(self) -> Billing:
        """The fake usage and cost API's knobs (price factor per model, page size, 429s, a rejected key)."""
        return self._state.billing

    def billed_usage(self) -> list[tuple[float, str, dict[str, Any]]]:
        """(Unix time answered, model, usage) of every completed message: what the fake usage and cost API bills."""
        return self._state.billed_usage()

    def reset(self) -> None:
        """Forget calls, script, prompt cache, batches and the rate-limit window."""
        self._state.reset()

    def totals(self, include_batches: bool = False) -> dict[str, int]:
        """Ground-truth usage summed over completed successful messages (batch results on request)."""
        return self._state.totals(include_batches)

    def __repr__(self) -> str:
        where = self._httpd.base_url if self._httpd else "stopped"
        return f"<FakeAnthropicServer {where}>"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
