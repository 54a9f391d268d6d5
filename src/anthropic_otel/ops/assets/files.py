"""Where the shipped asset files are: inside the installed wheel, else in the repository (source or editable).

The wheel carries the repository files in `SHIPPED` under `anthropic_otel/ops/assets/files/` (hatch
`force-include` in pyproject.toml; tests/test_assets.py keeps that table and this one equal). An editable
install or a source checkout has no such copy: there the repository itself is read, so both see the same bytes.
"""

from __future__ import annotations

from pathlib import Path

# Repository paths (files, or directories taken whole) that the wheel ships, at the same relative paths.
SHIPPED = (
    "dashboards/anthropic-otel-overview.json",
    "dashboards/anthropic-otel-cost.json",
    "alerts/RUNBOOK.md",
    "alerts/alertmanager.example.yml",
    "alerts/tests",
    "deploy/otel-collector.yml",
)
# Where the wheel puts them (a path inside the wheel, relative to site-packages).
WHEEL_DIR = "anthropic_otel/ops/assets/files"

_PACKAGED = Path(__file__).resolve().parent / "files"
_REPOSITORY = Path(__file__).resolve().parents[4]  # src/anthropic_otel/ops/assets/files.py -> the checkout


def shipped_root() -> Path:
    """The directory holding the `SHIPPED` paths: the wheel's copy when installed, else the repository."""
    for root in (_PACKAGED, _REPOSITORY):
        if all((root / path).exists() for path in SHIPPED):
            return root
    raise FileNotFoundError(
        f"anthropic-otel assets: neither {_PACKAGED} nor {_REPOSITORY} holds the shipped files "
        f"({', '.join(SHIPPED)}); reinstall the package")


def read_text(path: str) -> str:
    """One shipped file's text, by its repository path (e.g. `alerts/RUNBOOK.md`)."""
    return (shipped_root() / path).read_text(encoding="utf-8")


def listing(directory: str) -> list[str]:
    """The repository paths of the files in a shipped directory (e.g. `alerts/tests`), sorted."""
    root = shipped_root()
    return sorted(path.relative_to(root).as_posix() for path in (root / directory).iterdir() if path.is_file())
