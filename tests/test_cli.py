"""The `anthropic-otel` command's own options and `fake-server`, run as the processes a user starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import pytest

import anthropic_otel
from _process import Lines, default_sigint

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).with_name("anthropic-otel"))
MODEL = "claude-haiku-4-5"
URL = r"^Fake Anthropic API: (http://127\.0\.0\.1:\d+) "


def test_version_is_the_package_version() -> None:
    done = subprocess.run([CLI, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert done.stdout == f"anthropic-otel {anthropic_otel.__version__}\n"
    assert anthropic_otel.__version__ == project["version"]


@contextmanager
def fake_server(*command: str) -> Iterator[tuple[subprocess.Popen[str], Lines, str]]:
    """Start a fake-server command, wait for the URL it prints, kill it on the way out whatever happened."""
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)
    try:
        lines = Lines(process)
        url = lines.wait_for(URL).group(1)
        yield process, lines, url
    finally:
        process.kill()
        process.wait(timeout=60)


def stop(process: subprocess.Popen[str], lines: Lines, signum: int) -> tuple[str, str]:
    process.send_signal(signum)
    out = lines.rest()
    assert process.stderr is not None
    err = process.stderr.read()
    process.wait(timeout=120)
    return out, err


def test_fake_server_command_serves_the_sdk_until_ctrl_c() -> None:
    """The scenario and script options reach the server; the SDK sees them; Ctrl-C ends it with a tally."""
    command = (CLI, "fake-server", "--scenario", "max_tokens:output_tokens=40", "--script", "rate_limit",
               "--script", "normal:output_tokens=7")
    with fake_server(*command) as (process, lines, url):
        assert f"export ANTHROPIC_BASE_URL={url} " in lines.wait_for("export ANTHROPIC_BASE_URL").string
        client = anthropic.Anthropic(base_url=url, api_key="fake-key", max_retries=0)
        ask = {"model": MODEL, "max_tokens": 30, "messages": [{"role": "user", "content": "hello"}]}
        with pytest.raises(anthropic.RateLimitError):  # first scripted entry
            client.messages.create(**ask)
        second = client.messages.create(**ask)  # second scripted entry
        assert (second.stop_reason, second.usage.output_tokens) == ("end_turn", 7)
        third = client.messages.create(**ask)  # the default scenario, with its knob
        assert (third.stop_reason, third.usage.output_tokens) == ("max_tokens", 30)
        header = client.messages.create(**ask, extra_headers={"x-fake-scenario": "tool_use"})
        assert header.stop_reason == "tool_use"
        client.close()
        out, err = stop(process, lines, signal.SIGINT)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "Stopped after 4 requests (3 messages completed:" in out


def test_python_m_testing_binds_the_port_asked_and_stops_on_sigterm() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "ANTHROPIC_BASE_URL": ""}
    with fake_server(sys.executable, "-m", "anthropic_otel.testing", "--port", str(port)) as (process, lines, url):
        assert url == f"http://127.0.0.1:{port}"
        done = subprocess.run([sys.executable, "-c", _CALL], capture_output=True, text=True, timeout=120,
                              env={**env, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "fake-key"})
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["end_turn", "20"]  # the documented default: 20 output tokens
        out, err = stop(process, lines, signal.SIGTERM)
    assert process.returncode == 0, err
    assert "Stopped after 1 requests (1 messages completed:" in out


# Another process finds the server through the SDK's own environment variables, as the printed hint says.
_CALL = ("import anthropic\n"
         f"m = anthropic.Anthropic().messages.create(model={MODEL!r}, max_tokens=100, "
         "messages=[{'role': 'user', 'content': 'hi'}])\n"
         "print(m.stop_reason, m.usage.output_tokens)\n")


@pytest.mark.parametrize(("args", "message"), [
    (["--scenario", "rate_limited"], "unknown fake scenario 'rate_limited'; expected one of: normal,"),
    (["--script", "normal:delay=5"], "bad scenario parameter 'delay=5'"),
    (["--port", "70000"], "port must be 0-65535"),
    (["--requests-per-minute", "0"], "must be >= 1"),
])
def test_fake_server_refuses_bad_options_before_starting(args: list[str], message: str) -> None:
    done = subprocess.run([CLI, "fake-server", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert done.stdout == ""


def test_fake_server_says_when_its_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([CLI, "fake-server", "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"cannot bind 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr


def test_package_metadata_states_license_python_and_where_to_look() -> None:
    """What PyPI and pip show: a license file that is the Apache-2.0 text, the Pythons, the project's URLs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11" and project["license"] == "Apache-2.0"
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
    classifiers = set(project["classifiers"])
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in (11, 12, 13)} <= classifiers
    assert "License :: OSI Approved :: Apache Software License" in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    base = "https://github.com/anthropic-otel/anthropic-otel"
    urls = project["urls"]
    assert urls["Homepage"] == urls["Source"] == base and urls["Issues"] == f"{base}/issues"
    assert urls["Documentation"].startswith(base)
    from anthropic_otel.ops.rules import RulesConfig

    assert RulesConfig().runbook_url.startswith(f"{base}/")  # the runbook links point at the same project
    assert f"## [{project['version']}]" in (ROOT / "CHANGELOG.md").read_text()
