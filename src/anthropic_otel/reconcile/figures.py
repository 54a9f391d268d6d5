"""Dollars and tokens per token type, for one model in one bucket, on one side (counted or billed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ..telemetry import names as n

# The order the token types are shown in; the cost series also has web_search, the bill code execution.
TOKEN_TYPES = (n.TOKEN_INPUT, n.TOKEN_OUTPUT, n.TOKEN_CACHE_READ, n.TOKEN_CACHE_WRITE)


@dataclass
class Figures:
    usd: dict[str, Decimal] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)

    def add_usd(self, kind: str, amount: Decimal) -> None:
        self.usd[kind] = self.usd.get(kind, Decimal(0)) + amount

    def add_tokens(self, kind: str, count: int) -> None:
        self.tokens[kind] = self.tokens.get(kind, 0) + count

    @property
    def total_usd(self) -> Decimal:
        return sum(self.usd.values(), Decimal(0))

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())


Key = tuple[datetime, str]  # (bucket start, model)
Side = dict[Key, Figures]


def figures(side: Side, key: Key) -> Figures:
    found = side.get(key)
    if found is None:
        found = side[key] = Figures()
    return found
