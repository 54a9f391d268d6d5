"""External binaries the tests drive (Prometheus, Alertmanager, promtool, amtool, redis-server, docker-compose).

They come from Debian packages: `.ci/debian-tools` unpacks them into `.ci-cache/debian`; a binary on PATH
also works. Missing locally, a test skips with the reason; under `CI=true` it fails instead, so CI cannot
pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEBIAN = ROOT / ".ci-cache" / "debian"
_LIB = DEBIAN / "usr" / "lib" / "x86_64-linux-gnu"

# Debian names the Alertmanager binary prometheus-alertmanager.
_ALIASES = {"alertmanager": ("prometheus-alertmanager", "alertmanager")}


def tool(name: str) -> str:
    """The path of `name`; skips the test (fails under CI=true) when it is not available."""
    for candidate in _ALIASES.get(name, (name,)):
        local = DEBIAN / "usr" / "bin" / candidate
        if local.is_file() and os.access(local, os.X_OK):
            return str(local)
        found = shutil.which(candidate)
        if found:
            return found
    reason = f"{name} not found: run .ci/debian-tools (Debian packages) or put it on PATH"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)
    raise AssertionError("unreachable")


def tool_env() -> dict[str, str]:
    """The environment for running a tool unpacked from Debian packages (their shared libraries)."""
    env = dict(os.environ)
    if _LIB.is_dir():
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(_LIB), env.get("LD_LIBRARY_PATH")]))
    return env
