"""End to end: `anthropic-otel reconcile` against a real Prometheus and the fake server's usage and cost API.

A workload (tests/apps/reconcile_workload.py) calls the fake server, which runs here and bills what it answered;
a real Prometheus (the Debian binary, tests/_tools.py) scrapes the workload's endpoint every second. Then the
command, run as users run it, must find zero drift for every model on an honest bill, and about 10% drift for
the one model whose billed price is raised by 10%, failing the run; the same bucket still open never fails.
The clock is `--now`, so a closed day needs no waiting.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from _tools import ROOT, tool, tool_env
from anthropic_otel import cli
from anthropic_otel.testing import FakeAnthropicServer

WORKLOAD = ROOT / "tests" / "apps" / "reconcile_workload.py"
ADMIN_KEY = "sk-ant-admin-e2e-test"
MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6")
PRICED_UP = "claude-haiku-4-5"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _wait(what: str, check: Callable[[], bool], timeout: float, procs: list[subprocess.Popen[Any]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[0]} exited ({proc.returncode}) while waiting for {what}")
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
            if check():
                return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def _running(args: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=tool_env(), **kwargs)
        try:
            yield proc
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _scalar(prom: str, promql: str) -> float:
    result = _get(f"{prom}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")["data"]["result"]
    return float(result[0]["value"][1]) if result else -1.0


def _reconcile(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = cli.main(["reconcile", *args, "--json"])
    captured = capsys.readouterr()
    assert ADMIN_KEY not in captured.out + captured.err
    assert captured.out, f"exit {code}, no report; stderr: {captured.err}"
    return code, json.loads(captured.out)


def _away_from_midnight() -> None:
    """A call answered just before midnight UTC and scraped just after would be counted a day later than billed."""
    now = datetime.now(UTC)
    to_midnight = (now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1) - now).total_seconds()
    if to_midnight < 120:
        time.sleep(to_midnight + 2)


def test_reconcile_finds_zero_drift_then_the_mispriced_model(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    prometheus = tool("prometheus")
    _away_from_midnight()
    monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", ADMIN_KEY)
    ports = {name: _free_port() for name in ("workload", "prometheus")}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "anthropic-otel",
                            "static_configs": [{"targets": [f"127.0.0.1:{ports['workload']}"]}]}],
    }))
    prom = f"http://127.0.0.1:{ports['prometheus']}"
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(FakeAnthropicServer())
        server.billing.admin_key = ADMIN_KEY
        server.billing.page_size = 3  # several pages per report
        proc = stack.enter_context(_running([
            prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
        ], tmp_path / "prometheus.log"))
        workload = stack.enter_context(_running(
            [sys.executable, str(WORKLOAD), "--port", str(ports["workload"]), "--base-url", server.base_url],
            tmp_path / "workload.log", stdin=subprocess.PIPE))
        procs = [proc, workload]
        try:
            _wait("the workload's calls", lambda: "DONE" in (tmp_path / "workload.log").read_text(), 60, procs)
            totals = server.totals()
            # Prometheus has scraped the final values (the counters no longer grow after DONE).
            _wait("the last scrape", lambda: _scalar(prom, 'sum(anthropic_otel_tokens_total{anthropic_otel_token_type='
                                                           '"output"})') == totals["output_tokens"], 30, procs)
        except AssertionError as error:
            logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in tmp_path.glob("*.log"))
            raise AssertionError(f"{error}\n{logs}") from None
        assert totals["requests"] == 40 and totals["cache_read_input_tokens"] > 0
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT01:00:00Z")
        common = ["--prometheus", prom, "--api-url", server.base_url, "--bucket", "1d", "--since", today,
                  "--max-drift", "1"]

        # Tomorrow by --now, but the report was refreshed only up to the real now: the closed day is not final
        # yet, so it is shown as pending and judged later.
        code, report = _reconcile(capsys, *common, "--now", tomorrow)
        assert {row["status"] for row in report["rows"]} == {"pending"} and code == 0

        # An honest bill, refreshed past the closed day: zero drift for every model, tokens equal type by type.
        server.billing.refreshed_lag = -timedelta(days=1)  # the report as the replayed clock would see it
        code, report = _reconcile(capsys, *common, "--now", tomorrow)
        rows = {row["model"]: row for row in report["rows"]}
        assert set(rows) == set(MODELS), report
        for row in rows.values():
            assert row["status"] == "ok" and row["closed"], row
            assert abs(Decimal(row["drift_usd"])) < Decimal("1e-9"), row
            assert Decimal(row["computed"]["usd"]) > 0
            assert row["computed"]["tokens"] == row["billed"]["tokens"], row
        assert sum(row["billed"]["tokens"]["output"] for row in rows.values()) == totals["output_tokens"]
        assert sum(row["billed"]["tokens"]["cache_read"] for row in rows.values()) == totals["cache_read_input_tokens"]
        assert code == 0 and report["ok"]
        assert "EVERY caller" in report["scope"]  # no --workspace / --api-key-id: the output says what that means

        # One model billed 10% above its list price: about 10% drift for that model only, and the run fails.
        server.billing.price_factor[PRICED_UP] = Decimal("1.10")
        code, report = _reconcile(capsys, *common, "--now", tomorrow)
        rows = {row["model"]: row for row in report["rows"]}
        assert rows[PRICED_UP]["status"] == "drift"
        assert rows[PRICED_UP]["drift_pct"] == pytest.approx(10.0, abs=1e-6)
        other = rows[MODELS[1]]
        assert other["status"] == "ok" and abs(Decimal(other["drift_usd"])) < Decimal("1e-9")
        assert code == 1 and not report["ok"] and PRICED_UP in report["verdict"]

        # The same drift in the day still open: shown, never failing.
        code, report = _reconcile(capsys, *common)
        assert {row["status"] for row in report["rows"]} == {"open"}
        assert code == 0 and report["ok"]

        # The table says the same to people.
        assert cli.main(["reconcile", *common, "--now", tomorrow]) == 1
        table = capsys.readouterr().out
        with capsys.disabled():
            print("\n" + table)
        assert "+10.00%" in table and "FAIL" in table and PRICED_UP in table


def test_the_drift_alert_fires_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter (`reconcile --serve`, by the minute here) and the workload scraped by a real Prometheus that
    runs the drift rules rendered for 1m buckets: the mispriced model's alert fires once its minute closes."""
    from anthropic_otel.ops import rules

    prometheus = tool("prometheus")
    monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", ADMIN_KEY)
    config = rules.config_from_mapping({"cost_drift": {"window": "1m", "for": "0s", "min_usd": 0, "ratio": 0.05}})
    (tmp_path / "drift.yml").write_text(yaml.safe_dump({"groups": [rules.drift_rules(config),
                                                                   rules.drift_alerts(config)]}))
    ports = {name: _free_port() for name in ("workload", "exporter", "prometheus")}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "drift.yml")],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{ports[job]}"]}]}
                           for job in ("workload", "exporter")],
    }))
    prom = f"http://127.0.0.1:{ports['prometheus']}"

    def firing() -> set[str]:
        alerts = _get(f"{prom}/api/v1/alerts")["data"]["alerts"]
        return {alert["labels"]["gen_ai_request_model"] for alert in alerts
                if alert["labels"]["alertname"] == "AnthropicCostDrift" and alert["state"] == "firing"}

    with contextlib.ExitStack() as stack:
        server = stack.enter_context(FakeAnthropicServer())
        server.billing.admin_key = ADMIN_KEY
        server.billing.price_factor[PRICED_UP] = Decimal("2")  # far off: a call counted a minute late cannot hide it
        proc = stack.enter_context(_running([
            prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
        ], tmp_path / "prometheus.log"))
        exporter = stack.enter_context(_running([
            sys.executable, "-m", "anthropic_otel.cli", "reconcile", "--serve", "--bucket", "1m", "--interval", "1",
            "--host", "127.0.0.1", "--port", str(ports["exporter"]), "--api-url", server.base_url,
        ], tmp_path / "exporter.log"))
        while not 1 <= datetime.now(UTC).second <= 30:  # the calls within one minute, away from its end
            time.sleep(0.5)
        workload = stack.enter_context(_running(
            [sys.executable, str(WORKLOAD), "--port", str(ports["workload"]), "--base-url", server.base_url],
            tmp_path / "workload.log", stdin=subprocess.PIPE))
        procs = [proc, exporter, workload]
        try:
            _wait("the workload's calls", lambda: "DONE" in (tmp_path / "workload.log").read_text(), 60, procs)
            _wait("the billed figures", lambda: _scalar(prom, "count(anthropic_otel_billed_usd)") > 0, 90, procs)
            _wait("AnthropicCostDrift", lambda: PRICED_UP in firing(), 30, procs)
        except AssertionError as error:
            logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in tmp_path.glob("*.log"))
            raise AssertionError(f"{error}\n{logs}") from None
        answered = {int(at // 60) for at, _, _ in server.billed_usage()}
        if len(answered) == 1:  # every call answered in one minute: the honest model's bill matched to the cent
            assert firing() == {PRICED_UP}
        drift = _scalar(prom, f'model:anthropic_otel_cost_drift:ratio1m_closed{{gen_ai_request_model="{PRICED_UP}"}}')
        assert drift == pytest.approx(1.0, abs=0.2)
        assert ADMIN_KEY not in (tmp_path / "exporter.log").read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['exporter']}/metrics", timeout=5) as response:
            assert ADMIN_KEY not in response.read().decode()
