"""Prompt-cache diagnostics, as the API gives them (SDK >= 2.14): why this request could not reuse the prefix of
the request named by `diagnostics.previous_message_id`.

The fake remembers the prompt of every message it answered (the last `LIMIT`) and compares: a different model
is `model_changed`, then `system_changed`, `tools_changed`, `messages_changed` (an earlier entry differs instead
of entries only being appended), `unavailable` (same model, system, tools and messages, but another
prompt-affecting parameter such as `thinking` or `tool_choice` differs); an id it does not know is
`previous_message_not_found`. The missed tokens are the previous request's whole prompt (what its cache would
have served). The header `x-fake-cache-miss: REASON` forces a reason (tests of dashboards and alerts).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from ._tokens import count_input_tokens

Json = dict[str, Any]

LIMIT: Final = 4096
REASONS: Final = ("model_changed", "system_changed", "tools_changed", "messages_changed",
                  "previous_message_not_found", "unavailable")
NO_TOKENS: Final = frozenset({"previous_message_not_found", "unavailable"})
FORCE_HEADER: Final = "x-fake-cache-miss"
_OTHER_PARAMS: Final = ("thinking", "tool_choice")


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class Prompt:
    """What the cache keys on, for one answered request."""

    model: str
    system: str
    tools: str
    messages: tuple[str, ...]
    other: str
    tokens: int

    @classmethod
    def of(cls, body: Json) -> Prompt:
        messages = body.get("messages")
        return cls(
            model=f"{body.get('model')}/{body.get('speed', 'standard')}",
            system=_text(body.get("system")),
            tools=_text(body.get("tools")),
            messages=tuple(_text(m) for m in messages) if isinstance(messages, list) else (),
            other=_text({name: body.get(name) for name in _OTHER_PARAMS}),
            tokens=count_input_tokens(body),
        )

    def reason_against(self, previous: Prompt) -> str | None:
        """Why `previous`'s prefix cannot be reused by this prompt; None when it only appended messages."""
        if self.model != previous.model:
            return "model_changed"
        if self.system != previous.system:
            return "system_changed"
        if self.tools != previous.tools:
            return "tools_changed"
        if self.messages[:len(previous.messages)] != previous.messages:
            return "messages_changed"
        if self.other != previous.other:
            return "unavailable"
        return None


class Diagnoser:
    """The prompts of the last `LIMIT` answered messages, and the diagnosis of a request against one of them."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._prompts: OrderedDict[str, Prompt] = OrderedDict()
        self._lock = threading.Lock()

    def diagnose(self, body: Json, message_id: str, forced: str | None = None) -> Json | None:
        """The response's `diagnostics` for `body` (answered as `message_id`), or None: not asked, first turn,
        or nothing changed. Raises ValueError for an unknown forced reason."""
        if forced is not None and forced not in REASONS:
            raise ValueError(f"{FORCE_HEADER} must be one of {', '.join(REASONS)}, not {forced!r}")
        prompt = Prompt.of(body)
        asked = body.get("diagnostics")
        previous_id = asked.get("previous_message_id") if isinstance(asked, dict) else None
        with self._lock:
            previous = self._prompts.get(previous_id) if isinstance(previous_id, str) else None
            self._prompts[message_id] = prompt
            while len(self._prompts) > self.limit:
                self._prompts.popitem(last=False)
        if not isinstance(asked, dict) or (previous_id is None and forced is None):
            return None
        if forced is not None:
            reason: str | None = forced
        elif previous is None:
            reason = "previous_message_not_found"
        else:
            reason = prompt.reason_against(previous)
        if reason is None:
            return None
        miss: Json = {"type": reason}
        if reason not in NO_TOKENS:
            miss["cache_missed_input_tokens"] = previous.tokens if previous is not None else prompt.tokens
        return {"cache_miss_reason": miss}

    def clear(self) -> None:
        with self._lock:
            self._prompts.clear()
