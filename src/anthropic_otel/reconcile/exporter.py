"""`anthropic-otel reconcile --serve`: the billed figures as Prometheus gauges, refreshed on an interval.

It serves what Anthropic billed for the last closed bucket (yesterday, by default), per model and token type,
under `anthropic_otel_billed_usd` and `anthropic_otel_billed_tokens` with the label names of the package's
own series, so a recording rule can set them against the counted growth of the same bucket. A bucket is
served only once the bill for it is final, and only while it is still the last closed one: the series are
absent rather than wrong.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TextIO

from ..telemetry import series as s
from . import billed as b
from . import buckets as bk
from .figures import Side

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Snapshot:
    bucket: bk.Bucket
    side: Side


def last_closed(now: datetime, width: str) -> bk.Bucket:
    step = bk.WIDTHS[width]
    end = bk.floor(now, step)
    return bk.Bucket(end - step, end)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def render(snapshot: Snapshot | None, now: datetime, width: str) -> str:
    """The exposition text; empty of samples unless the snapshot is the current last closed bucket."""
    lines = [f"# HELP {s.BILLED_USD} Dollars Anthropic billed for the last closed {width} bucket, final figures.",
             f"# TYPE {s.BILLED_USD} gauge"]
    usd: list[str] = []
    tokens: list[str] = []
    if snapshot is not None and snapshot.bucket == last_closed(now, width):
        for (_, model), figures in sorted(snapshot.side.items()):
            for kind, amount in sorted(figures.usd.items()):
                usd.append(f'{s.BILLED_USD}{{{s.MODEL}="{_escape(model)}",{s.TOKEN_TYPE}="{_escape(kind)}"}} '
                           f"{float(amount)!r}")
            for kind, count in sorted(figures.tokens.items()):
                tokens.append(f'{s.BILLED_TOKENS}{{{s.MODEL}="{_escape(model)}",{s.TOKEN_TYPE}="{_escape(kind)}"}} '
                              f"{count}")
    lines += usd
    lines += [f"# HELP {s.BILLED_TOKENS} Tokens Anthropic billed for the last closed {width} bucket, final figures.",
              f"# TYPE {s.BILLED_TOKENS} gauge", *tokens]
    return "\n".join(lines) + "\n"


class Exporter:
    """Holds the latest final snapshot; `refresh()` reads the bill, `text()` renders it."""

    def __init__(self, api: object, width: str, scope: b.Scope, page_size: int | None = None) -> None:
        self._api = api
        self.width = width
        self.scope = scope
        self.page_size = page_size
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def refresh(self, now: datetime | None = None) -> None:
        bucket = last_closed(now or datetime.now(UTC), self.width)
        bill = b.fetch(self._api, [bucket], self.width, self.scope, self.page_size)  # type: ignore[arg-type]
        snapshot = Snapshot(bucket, bill.side) if bill.final(bucket) else None
        with self._lock:
            self._snapshot = snapshot

    def text(self, now: datetime | None = None) -> str:
        with self._lock:
            snapshot = self._snapshot
        return render(snapshot, now or datetime.now(UTC), self.width)


def _handler(exporter: Exporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = exporter.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: Prometheus scrapes every few seconds."""

    return Handler


def serve(args: argparse.Namespace, out: TextIO) -> int:
    key = b.admin_key()
    exporter = Exporter(b.client(key, args.api_url), args.bucket, b.Scope(args.workspace, args.api_key_id),
                        args.page_size)
    server = ThreadingHTTPServer((args.host, args.port), _handler(exporter))
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                exporter.refresh()
            except b.BilledError as error:
                print(f"anthropic-otel reconcile --serve: {error}", file=sys.stderr, flush=True)
            except Exception as error:  # keep serving (the last final figures) and keep refreshing
                print(f"anthropic-otel reconcile --serve: refresh failed: {type(error).__name__}", file=sys.stderr,
                      flush=True)
            stop.wait(args.interval)

    threading.Thread(target=loop, name="billed-refresh", daemon=True).start()
    print(f"serving {s.BILLED_USD} and {s.BILLED_TOKENS} on http://{args.host}:{server.server_address[1]}/metrics "
          f"(last closed {args.bucket} bucket, refreshed every {args.interval:g} s; {exporter.scope.describe()})",
          file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    return 0
