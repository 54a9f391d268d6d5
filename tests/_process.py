"""Waiting on a subprocess's output lines instead of sleeping: startup takes seconds on a busy machine."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
import time


def default_sigint() -> None:
    """`preexec_fn` for a child that a test stops with Ctrl-C: SIGINT back to its default before exec.

    A test runner started in the background without job control (`cmd &` in a script, nohup, some CI agents)
    passes SIGINT on as ignored, and Python then installs no KeyboardInterrupt handler: SIGINT would do nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Lines:
    """A process's stdout read on a thread, so a test can wait for a line without racing the process."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._stdout = process.stdout
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match[str]:
        """The first line matching `pattern`; fails if the process ends or `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"output ended before {pattern!r}: {self.seen}")
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no {pattern!r} within {timeout} s: {self.seen}")

    def rest(self) -> str:
        """Everything after what was waited for, once the process has closed its stdout."""
        self._thread.join(timeout=180)
        tail = []
        while (line := self._lines.get_nowait()) is not None:
            tail.append(line)
        return "".join(tail)
