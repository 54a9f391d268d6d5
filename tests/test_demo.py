"""The README's main command: the demo runs, prints its summary and serves the contract's series."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _process import Lines, default_sigint


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connects(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) == 0


SERIES = ("gen_ai_client_operation_duration_seconds_bucket", "gen_ai_client_token_usage_bucket",
          "gen_ai_client_operation_time_to_first_chunk_seconds_bucket", "anthropic_otel_requests_total",
          "anthropic_otel_tokens_total", "anthropic_otel_cost_usd_total", "anthropic_otel_requests_active",
          "anthropic_otel_ratelimit_remaining", "anthropic_otel_ratelimit_limit",
          "anthropic_otel_unpriced_requests_total", "anthropic_otel_budget_usd",
          "anthropic_otel_cache_savings_usd_total", "anthropic_otel_cache_write_premium_usd_total",
          'anthropic_stop_reason="max_tokens"', 'app_feature="summarize"', 'error_type="rate_limit_error"',
          'error_type="overloaded_error"', "anthropic_otel_agent_runs_total")


BOX_DRAWING = re.compile("[\u2500-\u257f]")
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\\\)|\x1b[@-Z\\\\-_]")
BLOCK = re.compile(r"^(\S+) / (\S+): (\d+) calls, truncated \d+ \(")


def summary_blocks(out: str) -> dict[tuple[str, str], int]:
    """Calls per (model, feature) block of the default summary; checks the 'all' block adds them up.

    A cut cell (a model name, a count) breaks the match or the sum, so this also proves nothing was cut.
    """
    summary = out[out.rindex("Summary by model and feature"):]
    calls = {(m[1], m[2]): int(m[3]) for line in summary.splitlines() if (m := BLOCK.match(line))}
    total = re.search(r"^all models and features: (\d+) calls,", summary, re.MULTILINE)
    assert total is not None, summary
    assert int(total[1]) == sum(calls.values()) > 0, (total[1], calls)
    return calls


def test_demo_runs_and_serves_every_series_of_the_contract() -> None:
    port = free_port()
    cli = Path(sys.executable).with_name("anthropic-otel")
    process = subprocess.Popen([str(cli), "demo", "--duration", "6", "--prometheus-port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    other_interface: bool | None = None
    try:
        body = ""
        # The loop ends when every series is seen or the demo exits; the bound only guards a hang (imports alone
        # take 8 s and more on a busy machine, so 20 s from the start could end the polling before the run).
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None and not all(s in body for s in SERIES):
            time.sleep(0.5)
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                continue
            if other_interface is None:  # served on loopback: is it served on another address too?
                other_interface = connects("127.0.0.2", port)
        out, err = process.communicate(timeout=180)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "\x1b" not in out  # piped: no escape codes
    assert not BOX_DRAWING.search(out), BOX_DRAWING.findall(out)  # piped: plain text
    assert "Summary by model and feature" in out and "Spend $" in out
    blocks = summary_blocks(out)
    for model in ("claude-haiku-4-5", "claude-sonnet-4-6"):
        for feature in ("summarize", "chat"):
            assert blocks.get((model, feature), 0) > 0, (model, feature, blocks)
    assert [s for s in SERIES if s not in body] == []
    agents = re.search(r"^Agent runs \(tool runner\): (\d+) runs, 0 failed, (\d+) tool errors\.$", out, re.MULTILINE)
    assert agents is not None and int(agents[1]) > 0 and int(agents[2]) > 0, out
    assert other_interface is False  # the endpoint it prints is 127.0.0.1, and that is all it binds
    alerts = out[out.index("Alerts of alerts/"):]
    assert "AnthropicMaxTokensTruncationHigh (claude-haiku-4-5" in alerts
    assert "AnthropicUnpricedCalls (claude-preview-next" in alerts and "AnthropicBudgetBurnRateHigh (day" in alerts


def test_ctrl_c_ends_cleanly_with_the_summary_so_far() -> None:
    """Ctrl-C once the workload runs (announced by the progress line, however slow the start) keeps the summary.

    The signal is sent only after a progress line has counted calls, never after a fixed sleep: on a busy
    machine the imports alone can take longer than any sleep chosen here.
    """
    cli = Path(sys.executable).with_name("anthropic-otel")
    process = subprocess.Popen([str(cli), "demo", "--duration", "600", "--prometheus-port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        lines = Lines(process)
        lines.wait_for(r"^Running a mixed workload")
        calls = int(lines.wait_for(r"calls (\d+) ").group(1))
        process.send_signal(signal.SIGINT)
        out = lines.rest()
        assert process.stderr is not None
        err = process.stderr.read()
        process.wait(timeout=180)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Interrupted: the summary so far." in out and "Summary by model and feature" in out
    assert "Traceback" not in err
    assert calls > 0


def test_ctrl_c_while_starting_ends_without_a_traceback() -> None:
    """Ctrl-C while the demo is still importing (the slow part of a start under load): exit 130, one line."""
    hook = ("import os, signal, sys\n"
            "def interrupt(event, args):\n"
            "    if event == 'import' and args[0] == 'anthropic_otel.demo':\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            "sys.addaudithook(interrupt)\n"
            "from anthropic_otel.cli import main\n"
            "sys.exit(main(['demo', '--duration', '5', '--prometheus-port', '0']))\n")
    done = subprocess.run([sys.executable, "-c", hook], capture_output=True, text=True, timeout=180,
                          preexec_fn=default_sigint)
    assert done.returncode == 130, done.stderr
    assert done.stderr == "anthropic-otel demo: interrupted\n"


def test_live_display_on_a_terminal() -> None:
    """On a TTY the demo shows a live panel (rich), refreshed while it runs."""
    import os
    import pty

    cli = Path(sys.executable).with_name("anthropic-otel")
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(cli), "demo", "--duration", "3", "--prometheus-port", "0"],
                               stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE,
                               env={**os.environ, "COLUMNS": "200", "LINES": "50", "TERM": "xterm"})
    os.close(follower)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the demo closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=30)
    finally:
        process.kill()
        os.close(leader)
    screen = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0
    assert screen.count("anthropic-otel demo (live)") >= 2  # redrawn while running
    assert "\x1b[" in screen and "Summary by model and feature" in screen


def test_live_mode_needs_a_key_and_states_its_cost_bound() -> None:
    import os

    from anthropic_otel.demo import _LIVE_CALLS, _live_estimate

    cli = Path(sys.executable).with_name("anthropic-otel")
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    done = subprocess.run([str(cli), "demo", "--live", "--duration", "5", "--prometheus-port", "0"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and "needs ANTHROPIC_API_KEY" in done.stderr
    # The bound shown before a live run: a dozen small Haiku calls stay under ten cents.
    estimate = _live_estimate()
    assert 0 < estimate < 0.10 and _LIVE_CALLS == 12


def run_on_a_terminal(*args: str, columns: int) -> str:
    """The demo's screen on a pseudo-terminal of `columns` columns, escape sequences removed."""
    import os
    import pty

    cli = Path(sys.executable).with_name("anthropic-otel")
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(cli), "demo", "--prometheus-port", "0", *args],
                               stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE,
                               env={**os.environ, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm"})
    os.close(follower)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the demo closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=180)
    finally:
        process.kill()
        os.close(leader)
    assert process.returncode == 0
    return ANSI.sub("", b"".join(chunks).decode(errors="replace")).replace("\r", "")


def test_summary_fits_100_columns_on_a_terminal_with_nothing_cut() -> None:
    screen = run_on_a_terminal("--duration", "3", columns=100)
    summary = screen[screen.rindex("Summary by model and feature"):]
    assert [line for line in summary.splitlines() if len(line) > 100] == []
    assert "\u2026" not in summary  # rich's ellipsis: a cut cell
    assert {feature for _, feature in summary_blocks(summary)} == {"summarize", "chat"}


def test_wide_piped_is_the_full_table_in_plain_text() -> None:
    cli = Path(sys.executable).with_name("anthropic-otel")
    done = subprocess.run([str(cli), "demo", "--duration", "2", "--prometheus-port", "0", "--wide"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and not BOX_DRAWING.search(done.stdout)
    table = done.stdout[done.stdout.index("Summary by model and feature"):].splitlines()
    assert [c.strip() for c in table[1].split("  ") if c] == ["model", "feature", "calls", "errors", "p50", "p95",
                                                              "p99", "ttft p50", "ttft p99", "input", "output",
                                                              "cache read", "cache write", "cost $", "cache hit",
                                                              "saved $", "truncated"]
    assert any(line.startswith("all ") for line in table)


def test_wide_on_a_narrow_terminal_keeps_every_column_whole() -> None:
    """`--wide` asked for the full table: rich draws it at its own width instead of folding it to 100 columns."""
    screen = run_on_a_terminal("--duration", "2", "--wide", columns=100)
    summary = screen[screen.rindex("Summary by model and feature"):]
    header = next(line for line in summary.splitlines() if "cache write" in line)
    assert "ttft p99" in header and "truncated" in header and "\u2026" not in summary
