"""Seconds from an instrumented application's last call to its exit, with a dead or missing Collector.

    PYTHONPATH=src python benchmarks/exit_time.py [--runs N]

Runs `tests/apps/exit_app.py` (instrument() from OTEL_* alone, one call to the fake server, exit) against:
no OTEL_* at all (OTLP/gRPC to localhost:4317, where nothing should listen), a loopback port that refuses
connections, and one that accepts them but never answers, each over gRPC and HTTP; plus a baseline with
the SDK disabled, which is the interpreter's own teardown. Prints the median and maximum per case and the
most stderr lines one run printed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "tests" / "apps" / "exit_app.py"


def measure(extra: dict[str, str]) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | extra
    process = subprocess.Popen([sys.executable, str(APP)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.readline()  # LAST
    start = time.monotonic()
    _, err = process.communicate(timeout=120)
    return time.monotonic() - start, len(err.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with socket.socket() as silent, socket.socket() as probe:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # never accepted: the handshake completes, nothing answers
        probe.bind(("127.0.0.1", 0))
        refused = probe.getsockname()[1]
        probe.close()  # nobody listens there now
        cases = {"baseline (OTEL_SDK_DISABLED=true)": {"OTEL_SDK_DISABLED": "true"},
                 "quick start (no OTEL_*: localhost:4317)": {}}
        for name, port in (("refused", refused), ("silent", silent.getsockname()[1])):
            for protocol in ("grpc", "http/protobuf"):
                cases[f"{name} {protocol}"] = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                                               "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
        for label, extra in cases.items():
            results = [measure(extra) for _ in range(runs)]
            times = [seconds for seconds, _ in results]
            print(f"{label:42s} median {statistics.median(times):5.2f} s  max {max(times):5.2f} s  "
                  f"stderr lines <= {max(lines for _, lines in results)}", flush=True)


if __name__ == "__main__":
    main()
