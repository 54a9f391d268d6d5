"""dashboards/build.py run as a user runs it: variants go where --output says, never over the committed files."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"


def _fingerprint() -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(DASHBOARDS.glob("*.json"))}


def _build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(DASHBOARDS / "build.py"), *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("output", [[], ["--output", str(DASHBOARDS)], ["--output", str(DASHBOARDS / ".")]])
def test_a_variant_never_overwrites_the_committed_dashboards(output: list[str]) -> None:
    before = _fingerprint()
    done = _build("--feature-label", "team", *output)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--feature-label team changes the dashboards; refusing to overwrite" in done.stderr
    assert "Give --output DIR" in done.stderr and done.stdout == ""
    assert _fingerprint() == before


def test_a_variant_goes_to_output_and_the_defaults_equal_the_committed_files(tmp_path: Path) -> None:
    variant = _build("--feature-label", "team", "--output", str(tmp_path / "team"))
    assert variant.returncode == 0, variant.stderr
    defaults = _build("--output", str(tmp_path / "defaults"))
    assert defaults.returncode == 0, defaults.stderr
    committed = sorted(p.name for p in DASHBOARDS.glob("*.json"))
    assert sorted(p.name for p in (tmp_path / "team").iterdir()) == committed
    for name in committed:
        assert (tmp_path / "defaults" / name).read_text() == (DASHBOARDS / name).read_text()
        assert "team=~" in (tmp_path / "team" / name).read_text()
