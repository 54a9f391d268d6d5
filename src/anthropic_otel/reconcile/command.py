"""`anthropic-otel reconcile`: its arguments and the one-shot run (the exporter is `reconcile --serve`)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TextIO

from . import billed as b
from . import buckets as bk
from . import counted as c
from .compare import compare, failed
from .report import Header, as_json, table

EXIT_DRIFT = 1
EXIT_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus", metavar="URL", help="a Prometheus-compatible API that scrapes the package")
    parser.add_argument("--since", metavar="DATE", help="start (2026-11-01 or an RFC 3339 time; default: 7 days "
                        "ago by day, 24 hours ago by hour)")
    parser.add_argument("--until", metavar="DATE", help="end, exclusive (default: the end of the current bucket)")
    parser.add_argument("--bucket", choices=tuple(bk.WIDTHS), default="1d",
                        help="bucket width: 1d or 1h (1m for short checks; default 1d)")
    parser.add_argument("--workspace", metavar="ID", help="count only the bill of this workspace (wrkspc_...)")
    parser.add_argument("--api-key-id", metavar="ID", help="count only the bill of this API key (apikey_...)")
    parser.add_argument("--max-drift", metavar="PCT", default="2",
                        help="fail when a closed bucket drifts more than this percent (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--now", metavar="TIME", help="judge open and closed buckets as of this time (default: now; "
                        "for replays and tests)")
    parser.add_argument("--api-url", metavar="URL", default=None,
                        help="the Anthropic API base URL (default: $ANTHROPIC_BASE_URL or the real API)")
    parser.add_argument("--page-size", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true",
                        help="run an exporter of the billed figures for Prometheus instead of a report")
    parser.add_argument("--port", type=int, default=9465, help="--serve: port to listen on (default 9465)")
    parser.add_argument("--host", default="0.0.0.0", help="--serve: address to listen on (default 0.0.0.0)")
    parser.add_argument("--interval", type=float, default=300.0,
                        help="--serve: seconds between refreshes of the billed figures (default 300)")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if args.serve:
            from .exporter import serve

            return serve(args, out)
        return _report(args, out)
    except (b.BilledError, c.CountedError, ValueError) as error:
        print(f"anthropic-otel reconcile: {error}", file=err)
        return EXIT_ERROR


def _now(text: str | None) -> datetime:
    return bk.parse_time(text) if text else datetime.now(UTC)


def _report(args: argparse.Namespace, out: TextIO) -> int:
    if not args.prometheus:
        raise ValueError("--prometheus URL is required (a Prometheus-compatible API that scrapes the package)")
    try:
        max_drift = Decimal(str(args.max_drift))
    except InvalidOperation:
        raise ValueError(f"--max-drift: not a number: {args.max_drift!r}") from None
    key = b.admin_key()
    now = _now(args.now)
    width = bk.WIDTHS[args.bucket]
    since, until = bk.default_range(now, width)
    since = bk.parse_time(args.since) if args.since else since
    until = bk.parse_time(args.until) if args.until else until
    if until <= since:
        raise ValueError("--until must be after --since")
    buckets = bk.span(since, until, width)
    scope = b.Scope(args.workspace, args.api_key_id)
    bill = b.fetch(b.client(key, args.api_url), buckets, args.bucket, scope, args.page_size)
    counted = c.fetch(args.prometheus, buckets, min(now, datetime.now(UTC)))
    rows = compare(buckets, counted, bill.side, now, bill.final, max_drift)
    header = Header(args.prometheus, scope.describe(), args.bucket, buckets[0].start.isoformat(),
                    buckets[-1].end.isoformat(), now.isoformat(), max_drift)
    (as_json if args.json else table)(header, rows, out)
    return EXIT_DRIFT if failed(rows) else 0
