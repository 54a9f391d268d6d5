"""Output: a table for people, `--json` for machines, both stating the scope and the verdict."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TextIO

from .compare import Row, Status, failed
from .figures import TOKEN_TYPES, Figures


@dataclass(frozen=True)
class Header:
    prometheus: str
    scope: str
    bucket: str
    since: str
    until: str
    now: str
    max_drift_pct: Decimal


def _money(value: Decimal) -> str:
    return f"{value:,.4f}"


def _tokens(figures: Figures) -> str:
    return "/".join(str(figures.tokens.get(kind, 0)) for kind in TOKEN_TYPES)


def _pct(row: Row) -> str:
    pct = row.drift_pct
    if pct is None:
        return "-" if not row.drift_usd else "new"
    return f"{pct:+.2f}%"


def verdict(rows: Sequence[Row], max_drift_pct: Decimal) -> str:
    if failed(rows):
        bad = sorted({f"{row.model} ({row.bucket.label()})" for row in rows if row.status is Status.DRIFT})
        return f"FAIL: drift above {max_drift_pct}% in a closed bucket: {', '.join(bad)}"
    waiting = sum(row.status in (Status.OPEN, Status.PENDING) for row in rows)
    tail = f" ({waiting} open or not yet final, not judged)" if waiting else ""
    if not rows:
        return "OK: nothing counted and nothing billed in the range"
    return f"OK: every closed bucket within {max_drift_pct}%{tail}"


def table(header: Header, rows: Sequence[Row], out: TextIO) -> None:
    print(f"Reconcile {header.since} .. {header.until} by {header.bucket} (now {header.now})", file=out)
    print(f"Scope: counted: what {header.prometheus} scraped from the package (provider anthropic); "
          f"{header.scope}", file=out)
    print("Tokens: input/output/cache read/cache write", file=out)
    head = ("bucket", "model", "computed $", "billed $", "drift $", "drift %", "tokens counted", "tokens billed",
            "status")
    lines: list[tuple[str, ...]] = [head]
    for row in rows:
        lines.append((row.bucket.label(), row.model, _money(row.computed.total_usd), _money(row.billed.total_usd),
                      _money(row.drift_usd), _pct(row), _tokens(row.computed), _tokens(row.billed),
                      row.status.value))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    right = {2, 3, 4, 5}
    for line in lines:
        cells = [cell.rjust(width) if i in right else cell.ljust(width)
                 for i, (cell, width) in enumerate(zip(line, widths, strict=True))]
        print("  ".join(cells).rstrip(), file=out)
    print(verdict(rows, header.max_drift_pct), file=out)


def _side(figures: Figures) -> dict[str, Any]:
    return {"usd": str(figures.total_usd), "usd_by_type": {k: str(v) for k, v in sorted(figures.usd.items())},
            "tokens": dict(sorted(figures.tokens.items()))}


def as_json(header: Header, rows: Sequence[Row], out: TextIO) -> None:
    pct = [row.drift_pct for row in rows]
    payload = {
        "prometheus": header.prometheus, "scope": header.scope, "bucket": header.bucket, "since": header.since,
        "until": header.until, "now": header.now, "max_drift_pct": str(header.max_drift_pct),
        "ok": not failed(rows), "verdict": verdict(rows, header.max_drift_pct),
        "rows": [{"bucket_start": row.bucket.start.isoformat(), "bucket_end": row.bucket.end.isoformat(),
                  "model": row.model, "status": row.status.value, "closed": row.status is not Status.OPEN,
                  "computed": _side(row.computed), "billed": _side(row.billed), "drift_usd": str(row.drift_usd),
                  "drift_pct": None if p is None else float(p)} for row, p in zip(rows, pct, strict=True)],
    }
    json.dump(payload, out, indent=2)
    print(file=out)
