"""`instrument(cache_diagnostics=True)`: each request names the last response of its own conversation.

The conversation is the `gen_ai.conversation.id` given through `anthropic_otel.attributes()`; a call without
one is left alone, and so is a call whose caller set `diagnostics` (or put it in `extra_body`) themselves.
Memory is bounded: the most recently used `MAX_CONVERSATIONS` conversations are remembered.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from ..telemetry import names as n

MAX_CONVERSATIONS: Final = 10_000


class Conversations:
    """Conversation id -> the id of the last message answered in it (an LRU; thread-safe)."""

    def __init__(self, limit: int = MAX_CONVERSATIONS) -> None:
        self.limit = limit
        self._last: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, context: Mapping[str, Any] | None, message_id: str | None) -> None:
        """The call in `context` was answered with `message_id`."""
        conversation = _conversation(context)
        if conversation is None or not message_id:
            return
        with self._lock:
            self._last[conversation] = message_id
            self._last.move_to_end(conversation)
            while len(self._last) > self.limit:
                self._last.popitem(last=False)

    def previous(self, context: Mapping[str, Any] | None) -> str | None:
        conversation = _conversation(context)
        if conversation is None:
            return None
        with self._lock:
            found = self._last.get(conversation)
            if found is not None:
                self._last.move_to_end(conversation)
            return found

    def fill(self, kwargs: dict[str, Any], context: Mapping[str, Any] | None) -> str | None:
        """Adds `diagnostics.previous_message_id` to a request's kwargs; the id added, or None."""
        if "diagnostics" in kwargs and _given(kwargs["diagnostics"]):
            return None
        extra = kwargs.get("extra_body")
        if isinstance(extra, Mapping) and "diagnostics" in extra:
            return None
        previous = self.previous(context)
        if previous is not None:
            kwargs["diagnostics"] = {"previous_message_id": previous}
        return previous

    def __len__(self) -> int:
        return len(self._last)


def _conversation(context: Mapping[str, Any] | None) -> str | None:
    value = context.get(n.GEN_AI_CONVERSATION_ID) if context else None
    return None if value is None else str(value)


def _given(value: Any) -> bool:
    """False for the SDK's `omit` / `NOT_GIVEN` sentinels (what a wrapper forwarding defaults passes)."""
    return type(value).__name__ not in ("Omit", "NotGiven")
