"""Class-level `wrapt` patches that can be switched off and removed together."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import unwrap


class Patches:
    """The patches of one `instrument()`; `on` is read by every wrapper (off: hand the call on)."""

    def __init__(self) -> None:
        self.on = True
        self._applied: list[tuple[type, str]] = []

    def wrap(self, module_name: str, class_name: str, method: str, wrapper: Callable[..., Any]) -> bool:
        """Wraps `module.Class.method` when it exists (and is not wrapped already); False when it does not."""
        try:
            cls = getattr(importlib.import_module(module_name), class_name, None)
        except ImportError:
            return False
        if not isinstance(cls, type) or method not in cls.__dict__:
            return False
        if isinstance(cls.__dict__[method], wrapt.FunctionWrapper):
            return False
        wrapt.wrap_function_wrapper(cls, method, wrapper)
        self._applied.append((cls, method))
        return True

    def remove(self) -> None:
        self.on = False
        for cls, method in reversed(self._applied):
            unwrap(cls, method)
        self._applied.clear()
