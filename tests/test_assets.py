"""`anthropic-otel assets export`: the dashboards, rules, rule tests, runbook and examples, from the wheel too."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from _tools import ROOT, tool, tool_env
from anthropic_otel import cli
from anthropic_otel.ops import rules as _rules
from anthropic_otel.ops.assets import bundle as _bundle
from anthropic_otel.ops.assets import dashboards as _dashboards
from anthropic_otel.ops.assets import files as _files

RULE_TESTS = sorted((ROOT / "alerts" / "tests").glob("*.test.yml"))


def _run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(arg) for arg in args], cwd=cwd, env=env or tool_env(), capture_output=True, text=True,
                          timeout=900)  # a bound against a hang only: promtool and pip are slow on a loaded machine


def _tree(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(root.rglob("*")) if path.is_file()}


def _committed() -> dict[str, str]:
    """What a default export must equal: the repository's files, at their export paths."""
    files = {f"alerts/{path.relative_to(ROOT / 'alerts').as_posix()}": path.read_text(encoding="utf-8")
             for path in sorted((ROOT / "alerts").rglob("*")) if path.is_file()}
    files.update({f"dashboards/{path.name}": path.read_text(encoding="utf-8")
                  for path in sorted((ROOT / "dashboards").glob("*.json"))})
    files["otel-collector.yml"] = (ROOT / "deploy" / "otel-collector.yml").read_text(encoding="utf-8")
    return files


def _check_with_promtool_and_amtool(out: Path, env: dict[str, str], rule_tests: bool = True) -> None:
    promtool, amtool = tool("promtool"), tool("amtool")
    alerts = out / "alerts"
    result = _run(promtool, "check", "rules", alerts / _rules.RULES_FILE, alerts / _rules.ALERTS_FILE, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    if rule_tests:
        tests = sorted((alerts / "tests").glob("*.test.yml"))
        assert [path.name for path in tests] == [path.name for path in RULE_TESTS]
        result = _run(promtool, "test", "rules", *tests, cwd=alerts / "tests", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    result = _run(amtool, "check-config", alerts / "alertmanager.example.yml", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


# -- what ships --------------------------------------------------------------------------------------

def test_the_wheel_ships_exactly_the_files_the_exporter_reads() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    force_include = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force_include == {path: f"{_files.WHEEL_DIR}/{path}" for path in _files.SHIPPED}
    assert {path for path in _files.SHIPPED if path.startswith("dashboards/")} == {
        f"dashboards/{path.name}" for path in (ROOT / "dashboards").glob("*.json")}, "a new dashboard must ship"


def test_a_source_checkout_reads_the_repository_files() -> None:
    assert _files.shipped_root() == ROOT
    assert _files.read_text("alerts/RUNBOOK.md") == (ROOT / "alerts" / "RUNBOOK.md").read_text(encoding="utf-8")


# -- the export ---------------------------------------------------------------------------------------

def test_default_export_equals_the_committed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["assets", "export", str(tmp_path)]) == 0
    assert _tree(tmp_path) == _committed()
    assert "note:" not in capsys.readouterr().out


def test_export_renders_the_rules_config_and_leaves_out_the_default_rule_tests(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mine.yml"
    config.write_text("truncation:\n  ratio: 0.2\n  for: 1m\nlatency:\n  p99_seconds: 12\n")
    out = tmp_path / "out"
    assert cli.main(["assets", "export", str(out), "--rules-config", str(config)]) == 0
    written = _tree(out)
    assert written[f"alerts/{_rules.ALERTS_FILE}"] == _rules.render(_rules.load_config(config))[_rules.ALERTS_FILE]
    assert "model:anthropic_otel_requests_max_tokens:ratio_rate5m > 0.2" in written[f"alerts/{_rules.ALERTS_FILE}"]
    assert _rules.load_config(out / "alerts" / _rules.CONFIG_FILE) == _rules.load_config(config)
    assert not any(path.startswith("alerts/tests/") for path in written)
    assert "note: alerts/tests/ left out" in capsys.readouterr().out
    _check_with_promtool_and_amtool(out, tool_env(), rule_tests=False)


def test_export_rejects_a_bad_config_or_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("truncation:\n  treshold: 0.2\n")
    assert cli.main(["assets", "export", str(tmp_path / "out"), "--rules-config", str(bad)]) == 2
    assert "unknown setting 'treshold'" in capsys.readouterr().err
    assert cli.main(["assets", "export", str(tmp_path / "out"), "--feature-label", "team-name"]) == 2
    assert "not a Prometheus label name" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- the feature label --------------------------------------------------------------------------------

def _builder() -> ModuleType:
    pytest.importorskip("grafana_foundation_sdk", reason="pip install -e '.[test]' (grafana-foundation-sdk)")
    spec = importlib.util.spec_from_file_location("dashboards_build_for_assets", ROOT / "dashboards" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("label", ["team", "app_feature_name", "tenant.id"])
def test_relabelled_dashboards_equal_what_the_builder_makes_for_that_label(label: str) -> None:
    build = _builder()
    assert build.FEATURE_LABEL == _dashboards.DEFAULT_FEATURE_LABEL
    expected = build.render(_dashboards.label_name(label))
    exported = _bundle.export(feature_label=label).files
    for name, text in expected.items():
        assert exported[f"dashboards/{name}"] == text, name
        assert text != (ROOT / "dashboards" / name).read_text(encoding="utf-8")


def test_relabelled_dashboards_keep_no_trace_of_the_default_label(tmp_path: Path) -> None:
    assert cli.main(["assets", "export", str(tmp_path), "--feature-label", "team"]) == 0
    board = json.loads((tmp_path / "dashboards" / "anthropic-otel-overview.json").read_text())
    assert "app_feature" not in json.dumps(board)
    feature = next(variable for variable in board["templating"]["list"] if variable["name"] == "feature")
    assert feature["query"].endswith(", team)") and feature["label"] == "team"


# -- from a wheel, without the repository ---------------------------------------------------------------

def test_a_wheel_install_exports_files_that_promtool_and_amtool_accept(tmp_path: Path) -> None:
    """Builds the wheel, installs it alone into a new venv (dependencies: this venv's, by a .pth), exports."""
    tool("promtool"), tool("amtool")  # skip early, before building, when the tools are missing
    dist = tmp_path / "dist"
    result = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = dist.glob("anthropic_otel-*.whl")
    venv = tmp_path / "venv"
    result = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert result.returncode == 0, result.stderr
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet",
                  wheel)
    assert result.returncode == 0, result.stdout + result.stderr

    away = tmp_path / "elsewhere"  # not the repository, and no PYTHONPATH into it
    away.mkdir()
    env = {key: value for key, value in tool_env().items() if key != "PYTHONPATH"}
    where = _run(python, "-c", "import anthropic_otel.ops.assets.files as f; print(f.shipped_root())", cwd=away,
                 env=env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout
    result = _run(venv / "bin" / "anthropic-otel", "assets", "export", "out", cwd=away, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = away / "out"
    assert _tree(out) == _committed()
    _check_with_promtool_and_amtool(out, env)
    result = _run(venv / "bin" / "anthropic-otel", "assets", "export", "k8s", "--kubernetes", cwd=away, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _tree(away / "k8s") == _tree(ROOT / "deploy" / "kubernetes")
